"""What an operator does beside running the node (DESIGN §8, operators): fetch and check
a market's artifacts before joining it, ask the matcher why no tasks come, benchmark the
prover and price a proof, and exit to take the stake back.

`kalypso generator fetch|why|benchmark|exit` print what these return. Reads go through
the synchronous `MarketplaceClient`; `exit` is the only one that signs, and it refuses
to while the node runs (the node owns the key's nonce).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, keccak, to_checksum_address
from web3 import Web3
from web3.logs import DISCARD

from kalypso.circuits import circuit, load_schema
from kalypso.contracts.client import MarketplaceClient
from kalypso.contracts.web3tx import send
from kalypso.deployment import DEVNET_CHAIN_ID, Deployment, default_path
from kalypso.devnet import dev_keys
from kalypso.errors import ChainError, ConfigError, InvalidStateError, KalypsoError
from kalypso.generator.config import GeneratorConfig, MarketConfig
from kalypso.generator.proving import BUILTIN_SOLVERS, build_prover, check_reachable
from kalypso.market import GeneratorStatus
from kalypso.market.audit import AuditFiles, OnChainMarket, audit_market, read_market
from kalypso.matching import model
from kalypso.provers import InvalidInputs
from kalypso.provers.snarkjs import SnarkjsWorker

DEFAULT_MATCHER_URL = "http://127.0.0.1:7300"
#: gas of one `submit_proof` without the verifier: the first payment to a generator,
#: with the MockVerifier (bench/results/gas.json, "submit_proof (first payment)": 94,801)
SUBMIT_GAS = 95_000
#: `Groth16Verifier.verify` without the 21,000 transaction base: 199,352 gas at one
#: public input, 206,773 at two (bench/results/verify.json), so ~192,000 + 7,500 a
#: signal. A single Groth16 submit with one public input: ~290,000 gas.
GROTH16_VERIFY_GAS = 192_000
GROTH16_GAS_PER_SIGNAL = 7_500
#: `benchmark` never suggests a proof time below this (a few block times)
MIN_PROOF_TIME = 10
_CHUNK = 1 << 20

#: (artifact file name, bytes so far, total bytes or None)
Progress = Callable[[str, int, int | None], None]


# ---------------------------------------------------------------------- shared


def connect(settings: GeneratorConfig) -> MarketplaceClient:
    """The config's chain and deployment, checked to belong together."""
    w3 = Web3(Web3.HTTPProvider(settings.rpc_url, request_kwargs={"timeout": 60}))
    try:
        chain_id = w3.eth.chain_id
    except Exception as exc:
        raise ChainError(f"cannot reach {settings.rpc_url}: {exc}") from None
    deployment = Deployment.load(settings.deployment or default_path(chain_id))
    if deployment.chain_id != chain_id:
        raise ConfigError(
            f"the deployment file is for chain {deployment.chain_id}, "
            f"but {settings.rpc_url} is chain {chain_id}"
        )
    return MarketplaceClient(w3, deployment)


def market_id(client: MarketplaceClient, market: str) -> int:
    """A market by the deployment's name for it, or by id."""
    names = client.deployment.markets
    if market in names:
        found = names[market]
    elif market.isdigit():
        found = int(market)
    else:
        known = ", ".join(sorted(names)) or "none"
        raise ConfigError(f"unknown market {market!r}: give an id or a name ({known})")
    count = client.market_count()
    if found >= count:
        raise ConfigError(f"there is no market {found} (the marketplace has {count})")
    return found


def market_name(client: MarketplaceClient, market: int) -> str:
    """The deployment's name for a market, else its id: a `[markets.…]` key."""
    names = [n for n, i in client.deployment.markets.items() if i == market]
    return names[0] if names else str(market)


def metadata(market: OnChainMarket) -> dict[str, Any]:
    """A market's metadata JSON, checked against the hash the chain holds."""
    if keccak(market.metadata) != market.metadata_hash:
        raise ConfigError(f"market {market.market_id}'s metadata does not match its on-chain hash")
    try:
        data = json.loads(market.metadata)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ConfigError(f"market {market.market_id}'s metadata is not a JSON object")
    return data


# ----------------------------------------------------------------------- fetch


@dataclass(frozen=True)
class Fetched:
    market_id: int
    name: str
    wasm: Path
    zkey: Path
    schema: Path
    solver: str | None

    def snippet(self) -> str:
        """The config table that proves this market with the fetched files."""
        key = self.name if re.fullmatch(r"[A-Za-z0-9_-]+", self.name) else json.dumps(self.name)
        lines = [
            f"[markets.{key}]",
            "# price = …           # (required) base units per proof; see `benchmark`",
            "# proof_time = …      # (required) seconds; `benchmark` suggests one",
            'prover = "snarkjs"',
            f"wasm = {json.dumps(str(self.wasm))}",
            f"zkey = {json.dumps(str(self.zkey))}",
            f"schema = {json.dumps(str(self.schema))}",
        ]
        if self.solver:
            lines.append(f'solver = "{self.solver}"')
        return "\n".join(lines) + "\n"


def fetch_artifacts(
    settings: GeneratorConfig,
    market: str,
    *,
    source: str | None = None,
    dest: Path | None = None,
    progress: Progress | None = None,
) -> Fetched:
    """Get a market's wasm and zkey from `source` (a directory or an http(s) base URL
    holding `<circuit>.wasm` and `<circuit>.zkey`; default: the sample circuit the
    metadata names) into `dest`. Nothing lands there unless both files have the
    metadata's SHA-256 and the zkey's verifying key is the on-chain verifier's."""
    client = connect(settings)
    mid = market_id(client, market)
    meta = metadata(read_market(client, mid))
    name, recorded = meta.get("circuit"), meta.get("artifacts") or {}
    if meta.get("verifier") != "groth16" or not isinstance(name, str) or not name:
        raise ConfigError(f"market {mid} is not a Groth16 market with a named circuit")
    for kind in ("wasm", "zkey"):
        if not isinstance(recorded.get(kind), str):
            raise ConfigError(f"market {mid}'s metadata records no {kind} hash to check against")
    folder = dest or Path.home() / ".kalypso" / "artifacts" / str(client.w3.eth.chain_id) / str(mid)
    folder = folder.expanduser().resolve()  # the config table needs paths that hold anywhere
    folder.mkdir(parents=True, exist_ok=True)
    origins = _origins(source, name)
    parts: dict[str, Path] = {}
    try:
        for kind in ("wasm", "zkey"):
            file = f"{name}.{kind}"
            parts[kind] = _download(origins[kind], folder, file, recorded[kind], progress)
        failed = [c for c in audit_market(client, mid, AuditFiles(zkey=parts["zkey"])) if not c.ok]
        if failed:
            raise ConfigError(
                f"market {mid}'s artifacts refused (deleted): "
                + "; ".join(f"{c.name}: {c.detail}" for c in failed)
            )
        schema = {k: meta.get(k) for k in ("description", "inputs", "public_signals")}
        parts["schema"] = _temp(folder, "schema", json.dumps(schema, indent=2).encode() + b"\n")
        load_schema(parts["schema"])
        final = {kind: folder / f"{name}.{kind}" for kind in ("wasm", "zkey")}
        final["schema"] = folder / f"{name}.schema.json"
        for kind, part in parts.items():
            part.replace(final[kind])
    except BaseException:
        for part in parts.values():
            part.unlink(missing_ok=True)
        raise
    solver = name if name in BUILTIN_SOLVERS else None
    key = market_name(client, mid)
    return Fetched(mid, key, final["wasm"], final["zkey"], final["schema"], solver)


def _origins(source: str | None, name: str) -> dict[str, str]:
    if source is None:
        try:
            sample = circuit(name)
        except ConfigError:
            raise ConfigError(
                f"{name!r} is not a sample circuit: give --source DIR or URL"
            ) from None
        return {"wasm": str(sample.wasm), "zkey": str(sample.zkey)}
    if source.startswith(("http://", "https://")):
        return {kind: f"{source.rstrip('/')}/{name}.{kind}" for kind in ("wasm", "zkey")}
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"--source {source} is neither a directory nor an http(s) URL")
    return {kind: str(folder / f"{name}.{kind}") for kind in ("wasm", "zkey")}


def _chunks(origin: str) -> Iterator[tuple[bytes, int | None]]:
    """The bytes of a file or URL, streamed, each chunk with the total size if known."""
    if not origin.startswith(("http://", "https://")):
        try:
            with open(origin, "rb") as handle:
                total = os.fstat(handle.fileno()).st_size
                while chunk := handle.read(_CHUNK):
                    yield chunk, total
        except FileNotFoundError:
            raise ConfigError(f"no file {origin}") from None
        return
    try:
        with httpx.stream("GET", origin, follow_redirects=True, timeout=60) as answer:
            if answer.status_code >= 400:
                raise ConfigError(f"{origin} answered HTTP {answer.status_code}")
            length = answer.headers.get("content-length")
            for chunk in answer.iter_bytes(_CHUNK):
                yield chunk, int(length) if length and length.isdigit() else None
    except httpx.HTTPError as exc:
        raise ChainError(f"cannot download {origin}: {type(exc).__name__} {exc}") from None


def _temp(folder: Path, file: str, data: bytes = b"") -> Path:
    """A new hidden file beside where `file` will land (renamed into place when checked)."""
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{file}.", suffix=".part")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return Path(name)


def _download(
    origin: str, folder: Path, file: str, expected: str, progress: Progress | None
) -> Path:
    part = _temp(folder, file)
    digest, done = hashlib.sha256(), 0
    try:
        with part.open("wb") as out:
            for chunk, total in _chunks(origin):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(file, done, total)
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if actual != expected:
            raise ConfigError(
                f"{file} from {origin} has SHA-256 {actual[:16]}…, the market's metadata "
                f"{expected[:16]}…: refused and deleted (wrong source, or a tampered file)"
            )
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return part


# ------------------------------------------------------------------------- why

#: what to change when recent requests failed a rule (the matcher's verdicts)
HINTS = {
    model.PRICE_ABOVE_MAX: "requesters pay less than `price`: lower it",
    model.TOO_SLOW: "requests want proofs sooner than `proof_time`",
    model.NO_COMPUTE: "all compute is in use: raise `compute`",
    model.NO_STAKE: "the free stake is below the penalty: raise `stake`",
    model.NO_ENCRYPTION_KEY: "private requests need `encryption_key` in the config",
    model.NOT_IN_MARKET: "the node is not in the market: is it paused?",
    model.NOT_REGISTERED: "`kalypso generator run` registers it",
    model.EXITING: "it has requested exit",
    "outranked": "another offer scored better: a lower price or proof time ranks higher",
}


def generator_address(settings: GeneratorConfig, given: str | None = None) -> str:
    """`given`, else the keystore's address (no password needed), else the env key's."""
    if given is not None:
        if not is_address(given):
            raise ConfigError(f"--address {given} is not an address")
        return str(to_checksum_address(given))
    if settings.keystore is not None:
        try:
            return str(to_checksum_address(json.loads(settings.keystore.read_text())["address"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"cannot read the address of {settings.keystore}: {exc}") from None
    if key := os.environ.get("KALYPSO_GENERATOR_KEY"):
        try:
            return str(Account.from_key(key).address)
        except (ValueError, TypeError):
            raise ConfigError("KALYPSO_GENERATOR_KEY is not a valid private key") from None
    raise ConfigError("give --address, a keystore in the config or KALYPSO_GENERATOR_KEY")


@dataclass(frozen=True)
class Why:
    """The matcher's view of a generator (`kalypso.matching.views.GeneratorView` as JSON)
    and what it means, one finding a line."""

    url: str
    view: dict[str, Any]
    findings: list[str]
    #: for amounts: the deployment's token, or base units when it could not be read
    token_symbol: str = "base units"
    token_decimals: int = 0


def why(settings: GeneratorConfig, matcher: str | None = None, address: str | None = None) -> Why:
    """Ask the matcher (`matcher`, else the deployment file's `matcher_url`, else the
    local default) about `address` (default: this node's)."""
    try:
        deployment: Deployment | None = (
            Deployment.load(settings.deployment)
            if settings.deployment is not None
            else connect(settings).deployment
        )
    except KalypsoError:
        deployment = None
    url = matcher or (deployment.matcher_url if deployment else None) or DEFAULT_MATCHER_URL
    view = ask_matcher(url, generator_address(settings, address))
    if deployment is None:
        return Why(url, view, diagnose(view))
    return Why(url, view, diagnose(view), deployment.token_symbol, deployment.token_decimals)


def ask_matcher(url: str, address: str) -> dict[str, Any]:
    """The matcher's `/generators/{address}` answer (see `kalypso.matching.views`)."""
    target = f"{url.rstrip('/')}/generators/{address}"
    try:
        answer = httpx.get(target, timeout=10)
    except httpx.HTTPError as exc:
        raise ChainError(
            f"no matcher answers on {url} ({type(exc).__name__}): give --matcher URL"
        ) from None
    if answer.status_code >= 400:
        raise ChainError(f"the matcher at {url} answered HTTP {answer.status_code}: {answer.text}")
    data: dict[str, Any] = answer.json()
    return data


def diagnose(view: dict[str, Any]) -> list[str]:
    """Why a generator gets no tasks, one finding a line, from `ask_matcher`'s view."""
    if view["status"] != "active":
        rule = model.EXITING if view["status"] == "exiting" else model.NOT_REGISTERED
        return [f"{view['status']}: {HINTS[rule]}"]
    findings = []
    if not view["offers"]:
        findings.append("in no market: " + HINTS[model.NOT_IN_MARKET])
    findings += [
        f"market {o['market_id']}: full now (no free compute or stake for its penalty)"
        for o in view["offers"]
        if not o["available"]
    ]
    recent = view["recent"]
    counts = Counter(r["verdict"] for r in recent)
    for verdict, n in counts.most_common():
        if verdict in ("assigned", "eligible", "closed"):
            continue
        hint = HINTS.get(verdict, "")
        findings.append(f"{n} of the last {len(recent)} requests: {verdict}; {hint}".rstrip("; "))
    if not recent:
        findings.append("no recent requests in its markets: nothing to take yet")
    if view["outcomes"] and view["successes"] < view["outcomes"]:
        findings.append(
            f"{view['outcomes'] - view['successes']} of its last {view['outcomes']} tasks "
            "failed (missed deadlines or discarded): it ranks lower"
        )
    return findings


# ------------------------------------------------------------------- benchmark


@dataclass(frozen=True)
class Benchmark:
    market_id: int
    config: MarketConfig
    seconds: tuple[float, ...]
    suggested_proof_time: int
    submit_gas: int
    #: where the gas figure comes from
    gas_source: str
    gas_price_wei: int
    token_symbol: str
    token_decimals: int

    @property
    def break_even_wei(self) -> int:
        return self.submit_gas * self.gas_price_wei

    def break_even_tokens(self, token_per_eth: float) -> int:
        """The break-even price in token base units at `token_per_eth` tokens an ETH."""
        rate = Decimal(str(token_per_eth)) * Decimal(10) ** (self.token_decimals - 18)
        return math.ceil(self.break_even_wei * rate)


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile: with fewer than 100 runs, p99 is the slowest."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def suggest_proof_time(seconds: list[float], submit_margin: float) -> int:
    return max(MIN_PROOF_TIME, math.ceil(2 * quantile(seconds, 0.99) + submit_margin))


def submit_gas(meta: dict[str, Any], public_inputs: int) -> tuple[int, str]:
    """Gas of one `submit_proof` in a market, from the bench results (see the constants):
    an estimate, as `eth_estimateGas` needs a live task."""
    if meta.get("verifier") == "groth16":
        gas = SUBMIT_GAS + GROTH16_VERIFY_GAS + GROTH16_GAS_PER_SIGNAL * public_inputs
        return gas, f"Groth16, {public_inputs} public signal(s); bench/results"
    return SUBMIT_GAS, "the marketplace's part only: the verifier's gas is unknown"


def benchmark(
    settings: GeneratorConfig,
    market: str,
    *,
    runs: int = 5,
    inputs: dict[str, Any] | None = None,
) -> Benchmark:
    """Prove sample inputs `runs` times with the market's configured prover (the first
    run includes starting the prover) and price a proof at the current gas price."""
    if runs < 1:
        raise ConfigError("--runs must be at least 1")
    client = connect(settings)
    mid = market_id(client, market)
    config = next((m for m in settings.markets if _same(client, m.market, mid)), None)
    if config is None:
        raise ConfigError(f"market {market} has no [markets.…] table in the config")
    onchain = read_market(client, mid)
    meta = metadata(onchain)
    sample = inputs if inputs is not None else _sample_inputs(config, meta)
    seconds = asyncio.run(_prove(mid, config, sample, runs))
    gas, source = submit_gas(meta, onchain.public_inputs_count)
    return Benchmark(
        mid,
        config,
        tuple(seconds),
        suggest_proof_time(seconds, settings.submit_margin),
        gas,
        source,
        int(client.w3.eth.gas_price),
        client.deployment.token_symbol,
        client.deployment.token_decimals,
    )


def _same(client: MarketplaceClient, market: str, mid: int) -> bool:
    try:
        return market_id(client, market) == mid
    except ConfigError:
        return False


def _sample_inputs(config: MarketConfig, meta: dict[str, Any]) -> dict[str, Any]:
    """The inputs of the sample proof of the market's circuit, if it is a sample circuit
    (circuits/samples.cjs made them)."""
    name = str(config.circuit or meta.get("circuit"))
    found = None
    try:
        if (sample := circuit(name).sample) is not None:
            found = json.loads(sample.read_text()).get("input")
    except (ConfigError, OSError, ValueError):
        pass
    if not isinstance(found, dict):
        raise ConfigError(f"no sample inputs for circuit {name}: give --inputs JSON")
    return found


async def _prove(mid: int, config: MarketConfig, inputs: dict[str, Any], runs: int) -> list[float]:
    await check_reachable(config)
    worker = SnarkjsWorker()
    prover = build_prover(mid, config, worker)
    try:
        if prover.solver is not None and not set(prover.inputs or ()) <= set(inputs):
            solved = prover.solver(inputs)
            if isinstance(solved, InvalidInputs):
                raise ConfigError(f"the sample inputs have no solution: {solved.reason}")
            inputs = {**inputs, **solved}
        seconds = []
        for _ in range(runs):
            start = time.perf_counter()
            result = await prover.prover.prove(inputs)
            seconds.append(time.perf_counter() - start)
            if isinstance(result, InvalidInputs):
                raise ConfigError(f"the sample inputs are not provable: {result.reason}")
        return seconds
    finally:
        await prover.close()
        await worker.close()


# ------------------------------------------------------------------------ exit


@dataclass(frozen=True)
class ExitStep:
    #: "requested" (exit requested), "withdrawn" (stake back) or "unregistered" (nothing)
    step: str
    address: str
    left_markets: tuple[int, ...] = ()
    withdrawable_at: int | None = None
    #: the registry's UNBONDING_DELAY, seconds
    delay: int = 0
    #: the stake withdrawn, token base units
    amount: int = 0
    token_symbol: str = "KAL"
    token_decimals: int = 18


def node_api(settings: GeneratorConfig) -> str | None:
    """The node's /health URL if something answers there: the daemon is up."""
    if not settings.api_port:
        return None
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host
    url = f"http://{host}:{settings.api_port}/health"
    try:
        httpx.get(url, timeout=3)
    except httpx.ConnectError:
        return None
    except httpx.HTTPError:
        pass  # something listens and does not answer in time: count it as the node
    return url


def refuse_if_running(settings: GeneratorConfig) -> None:
    """A `ConfigError` if the node's API answers: the daemon owns the key's nonce."""
    if url := node_api(settings):
        raise ConfigError(
            f"the node is running (its API answers on {url}) and owns the key's nonce: stop "
            "it first (`kill -TERM <pid>` drains it), then run `exit` again"
        )


def exit_generator(settings: GeneratorConfig, account: LocalAccount) -> ExitStep:
    """One step of an exit: leave every market and `request_exit`; after the unbonding
    delay, `withdraw` the whole stake. Refused while the node runs."""
    refuse_if_running(settings)
    client = connect(settings)
    if client.deployment.chain_id != DEVNET_CHAIN_ID and (
        account.key.hex().removeprefix("0x") in dev_keys()
    ):
        raise ConfigError("refusing a public development key outside the devnet")
    address = account.address
    g = client.generator(address)
    status, used, exit_requested_at = GeneratorStatus(int(g[0])), int(g[6]), int(g[7])
    if status == GeneratorStatus.UNREGISTERED:
        return ExitStep("unregistered", address)
    if used:
        then = (
            "they end when proved or slashed; run `exit` again then"
            if status == GeneratorStatus.EXITING
            else "run the node and stop it with `kill -TERM` (it drains), then `exit` again"
        )
        raise InvalidStateError("registry: tasks live", f"{used} compute in use by tasks: {then}")
    left = []
    for market in range(client.market_count()):
        if client.registry.functions.offers(address, market).call()[0]:
            send(client.w3, account, client.registry.functions.leave_market(market))
            left.append(market)
    delay = client.unbonding_delay()
    if status == GeneratorStatus.ACTIVE:
        receipt = client.request_exit(account)
        (event,) = client.registry.events.ExitRequested().process_receipt(receipt, errors=DISCARD)
        at = int(event["args"]["withdrawable_at"])
        return ExitStep("requested", address, tuple(left), at, delay)
    withdrawable_at, now = exit_requested_at + delay, client.now()
    if now < withdrawable_at:
        raise InvalidStateError(
            "registry: still unbonding",
            f"the stake is withdrawable at {format_time(withdrawable_at)} (in "
            f"{withdrawable_at - now} s): run `exit` again then",
        )
    receipt = client.withdraw_stake(account)
    (event,) = client.registry.events.GeneratorWithdrawn().process_receipt(receipt, errors=DISCARD)
    amount = int(event["args"]["amount"])
    token = (client.deployment.token_symbol, client.deployment.token_decimals)
    return ExitStep("withdrawn", address, tuple(left), withdrawable_at, delay, amount, *token)


def format_time(timestamp: int) -> str:
    """A unix time as a UTC date."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
