"""The generator node's configuration: one TOML file (`EXAMPLE` shows every key),
overridable by the environment variables KALYPSO_RPC_URL and KALYPSO_DEPLOYMENT.

The file is the truth about the operator's offers: at start the node registers,
tops up its stake, sets its compute and joins (or updates, or leaves) markets until
the chain says what the file says.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from kalypso.configfile import read_config
from kalypso.errors import ConfigError
from kalypso.provers.legacy import ENCODINGS

PROVERS = ("snarkjs", "command", "http", "enclave")
DEFAULT_RPC_URL = "http://127.0.0.1:8545"
#: what an HTTP prover speaks: Kalypso's API, or Marlin's prover template
APIS = ("kalypso", "legacy")

EXAMPLE_SETTINGS = """\
# generator.toml — keys marked (required) must be set
rpc_url = "http://127.0.0.1:8545"        # or KALYPSO_RPC_URL; several, comma-separated,
                                         # are tried in turn when one fails
# deployment = "~/.kalypso/deployments/31337.json"  # or KALYPSO_DEPLOYMENT; default by chain id
# keystore = "generator.json"            # encrypted key (password: KALYPSO_GENERATOR_PASSWORD)
                                         # or the key itself in KALYPSO_GENERATOR_KEY
# state = "~/.kalypso/generator/31337-0xYou.sqlite"  # task journal; default by chain and key
# reward_address = "0x…"                 # where earnings go; default: the generator's address
stake = 1000000000000000000000           # (required) base units; topped up to this at start
compute = 4                              # (required) declared compute units
# max_parallel_proofs = 2                # command/http proofs at once; default: the CPU count
                                         # (snarkjs proves one at a time on every core)
submit_margin = 5                        # seconds kept before a deadline to get a proof mined
batch_window = 2                         # at most this long a ready proof waits for others
                                         # of its market, to share one submit_proofs; 0: never
confirmations = 0                        # blocks to wait before trusting a log
poll_interval = 0.5                      # seconds between looks at the chain
max_log_range = 2000                     # most blocks per eth_getLogs (fewer while the
                                         # endpoint refuses: it halves, then grows back)
rpc_rate = 0                             # calls per second to the RPC endpoint; 0: no cap
startup_timeout = 300                    # seconds to keep trying to reach the chain at start
low_gas_balance = 50000000000000000      # wei; a warning below this (here 0.05 ETH)
api_host = "127.0.0.1"
api_port = 7400                          # health, tasks, pause/resume, /metrics; 0: off
"""

EXAMPLE_MARKETS = """\

# One table per market, by id ([markets.2]) or by name: the market's on-chain name, or one
# the deployment file records (a name two markets carry is refused: give the id). A
# market of private requests is proven only in its Generator Image: prover = "enclave".
[markets.square_root]
price = 5000000000000000000              # (required) base units per proof
proof_time = 60                          # (required) seconds promised per proof
compute_per_request = 1
prover = "snarkjs"                       # snarkjs | command | http | enclave
circuit = "square_root"                  # a sample circuit, a folder `kalypso circuit build`
                                         # wrote ("./build/"), or wasm, zkey and schema:
# wasm = "build/circuit.wasm"
# zkey = "build/circuit.zkey"
# schema = "circuit.schema.json"         # which inputs are private, public signal order
solver = "square_root"                   # completes a task's inputs from its public signals
# command = ["./my-prover", "--gpu"]     # prover = "command": see kalypso.provers.command
# url = "http://127.0.0.1:3030"          # prover = "http": Kalypso's prover API; prover =
                                         # "enclave": a Generator Image (`kalypso enclave
                                         # generator`) proves the tasks, with its own key
# api = "legacy"                         # prover = "http" built on Marlin's prover template:
# ivs_url = "http://127.0.0.1:3030"      #   its IVS server, where checkInput is (a
                                         #   confidential-layout prover serves it at url)
# public_encoding = "fixed"              #   its `public`: uint256[N] as Marlin's circom
                                         #   markets, or "verbatim" (the request's bytes)
# proof_system = "groth16"               # or "plonk" (snarkjs; a sample circuit's PLONK setup)
# proof_attestor = "http://127.0.0.1:7301"  # a Proof Verification Image attests each proof
# input_attestor = "http://127.0.0.1:7302"  # an Input Verification Image attests invalid inputs
# timeout = 600                          # seconds one proof may take at most
# trust_market_code = true               # join even though its verifier or input verifier
                                         # code can change its answers (see `kalypso market
                                         # audit`): only if you trust the market's owner
"""

EXAMPLE = EXAMPLE_SETTINGS + EXAMPLE_MARKETS


def table_name(key: str) -> str:
    """A market's table as TOML writes it, `[markets.3]` or `[markets."a b"]`: what error
    messages call it (an empty key included)."""
    bare = re.fullmatch(r"[A-Za-z0-9_-]+", key)
    return f"[markets.{key if bare else json.dumps(key)}]"


@dataclass(frozen=True)
class MarketConfig:
    """One market the node serves: its offer and how to prove it."""

    market: str  # its table's key: an id, or a name (the deployment file's or on-chain)
    price: int
    proof_time: int
    compute_per_request: int = 1
    prover: str = "snarkjs"
    circuit: str | None = None
    wasm: Path | None = None
    zkey: Path | None = None
    schema: Path | None = None
    solver: str | None = None
    command: tuple[str, ...] | None = None
    url: str | None = None
    api: str = "kalypso"
    ivs_url: str | None = None
    public_encoding: str | None = None
    proof_system: str = "groth16"
    proof_attestor: str | None = None
    input_attestor: str | None = None
    timeout: float = 600.0
    #: join even when the verifier code audit fails (`kalypso.market.codecheck`)
    trust_market_code: bool = False

    def check(self, source: str) -> None:
        where = f"{source}: {table_name(self.market)}"
        if self.price < 0 or self.price >= 2**96:
            raise ConfigError(f"{where}: price must be 0 to 2^96 - 1 base units")
        if not 1 <= self.proof_time <= 86_400:
            raise ConfigError(f"{where}: proof_time must be 1 to 86400 seconds")
        if not 1 <= self.compute_per_request < 2**32:
            raise ConfigError(f"{where}: compute_per_request must be at least 1")
        if self.prover not in PROVERS:
            raise ConfigError(f"{where}: prover must be one of {', '.join(PROVERS)}")
        if not 0 < self.timeout < math.inf:
            raise ConfigError(f"{where}: timeout must be positive")
        if self.prover == "command" and not self.command:
            raise ConfigError(f'{where}: prover "command" needs command = ["program", ...]')
        if self.prover in ("http", "enclave") and not self.url:
            raise ConfigError(f'{where}: prover "{self.prover}" needs url = "http://…"')
        self._check_api(where)
        if self.proof_system not in ("groth16", "plonk"):
            raise ConfigError(f'{where}: proof_system must be "groth16" or "plonk"')
        if self.proof_system == "plonk" and (self.prover != "snarkjs" or self.circuit is None):
            raise ConfigError(f'{where}: PLONK proofs need prover = "snarkjs" and a sample circuit')
        if self.prover == "snarkjs" or (self.prover == "http" and self.api == "kalypso"):
            files = (self.wasm, self.zkey, self.schema)
            if self.circuit is None and not all(files):
                raise ConfigError(
                    f"{where}: name a sample `circuit`, or give `wasm`, `zkey` and `schema`"
                )

    def _check_api(self, where: str) -> None:
        if self.api not in APIS:
            raise ConfigError(f'{where}: api must be "kalypso" or "legacy"')
        if self.api == "legacy" and self.prover != "http":
            raise ConfigError(
                f'{where}: api = "legacy" goes with prover = "http" (a confidential template '
                "prover of private inputs runs inside the Generator Image: `kalypso enclave "
                'generator --prover-url`, with prover = "enclave" here)'
            )
        if self.api == "legacy" and any(
            (self.circuit, self.wasm, self.zkey, self.schema, self.solver)
        ):
            raise ConfigError(
                f"{where}: a template prover finds its own witness: circuit, wasm, zkey, schema "
                'and solver do not go with api = "legacy"'
            )
        if self.api != "legacy" and (self.ivs_url or self.public_encoding):
            raise ConfigError(f'{where}: ivs_url and public_encoding go with api = "legacy"')
        if self.public_encoding is not None and self.public_encoding not in ENCODINGS:
            raise ConfigError(f'{where}: public_encoding must be "fixed" or "verbatim"')


@dataclass(frozen=True)
class GeneratorConfig:
    stake: int
    compute: int
    markets: tuple[MarketConfig, ...]
    rpc_url: str = DEFAULT_RPC_URL
    deployment: Path | None = None
    keystore: Path | None = None
    state: Path | None = None
    reward_address: str | None = None
    max_parallel_proofs: int = os.cpu_count() or 1
    submit_margin: float = 5.0
    batch_window: float = 2.0
    confirmations: int = 0
    poll_interval: float = 0.5
    max_log_range: int = 2_000
    low_gas_balance: int = 5 * 10**16
    api_host: str = "127.0.0.1"
    api_port: int = 7400
    #: calls per second to the RPC endpoint (0: no cap): stay inside a provider's quota
    rpc_rate: float = 0.0
    #: seconds the start-up keeps trying while the chain does not answer
    startup_timeout: float = 300.0

    @classmethod
    def load(cls, path: Path, env: dict[str, str] | None = None) -> GeneratorConfig:
        """Read `path`, then apply `KALYPSO_RPC_URL` / `KALYPSO_DEPLOYMENT`."""
        return cls.from_dict(_read(path, env), source=str(path))

    @staticmethod
    def chain_of(path: Path, env: dict[str, str] | None = None) -> tuple[str, Path | None]:
        """Only the chain a config names (rpc_url, deployment, after the environment):
        for commands that need no market table, such as `fetch`, which prints one."""
        raw = _read(path, env)
        rpc_url, deployment = raw.get("rpc_url", DEFAULT_RPC_URL), raw.get("deployment")
        if not isinstance(rpc_url, str) or not isinstance(deployment, str | None):
            raise ConfigError(f"{path}: rpc_url and deployment must be strings")
        return rpc_url, None if deployment is None else Path(deployment).expanduser()

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> GeneratorConfig:
        raw = dict(raw)
        tables = raw.pop("markets", None)
        if not isinstance(tables, dict) or not tables:
            raise ConfigError(f"{source}: add at least one [markets.<id or name>] table")
        markets = tuple(
            _build(
                MarketConfig, {**table, "market": str(name)}, f"{source}: {table_name(str(name))}"
            )
            if isinstance(table, dict)
            else _bad(source, table_name(str(name)), table)
            for name, table in tables.items()
        )
        for market in markets:
            market.check(source)
        config: GeneratorConfig = _build(cls, {**raw, "markets": markets}, source)
        config._check(source)
        return config

    def _check(self, source: str) -> None:
        if not 0 < self.stake < 2**128:
            raise ConfigError(f"{source}: stake must be positive (base units)")
        if not 1 <= self.compute < 2**32:
            raise ConfigError(f"{source}: compute must be at least 1")
        if self.max_parallel_proofs < 1:
            raise ConfigError(f"{source}: max_parallel_proofs must be at least 1")
        if self.confirmations < 0 or self.max_log_range < 1:
            raise ConfigError(f"{source}: confirmations ≥ 0 and max_log_range ≥ 1")
        if not 0 < self.poll_interval < math.inf or not all(
            0 <= v < math.inf
            for v in (self.submit_margin, self.batch_window, self.rpc_rate, self.startup_timeout)
        ):
            raise ConfigError(
                f"{source}: poll_interval > 0; submit_margin, batch_window, rpc_rate and "
                "startup_timeout ≥ 0"
            )
        if not 0 <= self.api_port < 65536:
            raise ConfigError(f"{source}: api_port must be a port number (0 turns the API off)")
        for market in self.markets:
            if market.compute_per_request > self.compute:
                raise ConfigError(
                    f"{source}: {table_name(market.market)} needs {market.compute_per_request} "
                    f"compute per request, above the declared compute {self.compute}"
                )
        names = [m.market for m in self.markets]
        if twice := sorted({n for n in names if names.count(n) > 1}):
            raise ConfigError(f"{source}: {table_name(twice[0])} is listed twice")


_PATHS = {"deployment", "keystore", "state", "wasm", "zkey", "schema"}
_INTS = {
    "stake",
    "compute",
    "max_parallel_proofs",
    "confirmations",
    "max_log_range",
    "low_gas_balance",
    "api_port",
    "price",
    "proof_time",
    "compute_per_request",
}
_FLOATS = {
    "submit_margin",
    "batch_window",
    "poll_interval",
    "timeout",
    "rpc_rate",
    "startup_timeout",
}
_BOOLS = {"trust_market_code"}


def _read(path: Path, env: dict[str, str] | None) -> dict[str, Any]:
    return read_config(path, env, what="generator", example="kalypso generator run --example")


def _bad(source: str, name: str, value: Any) -> Any:
    raise ConfigError(f"{source}: {name} has the wrong type ({value!r})")


def _build(kind: Any, raw: dict[str, Any], source: str) -> Any:
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}")
    missing = sorted(
        f.name
        for f in fields(kind)
        if f.name not in raw and f.default is MISSING and f.default_factory is MISSING
    )
    if missing:
        raise ConfigError(f"{source}: missing required key(s) {', '.join(missing)}")
    return kind(**{name: _coerce(name, value, source) for name, value in raw.items()})


def _coerce(name: str, value: Any, source: str) -> Any:
    if name == "markets":
        return value
    if name in _PATHS:
        return Path(value).expanduser() if isinstance(value, str) else _bad(source, name, value)
    if name in _INTS:
        if isinstance(value, bool) or not isinstance(value, int):
            return _bad(source, name, value)
        return value
    if name in _BOOLS:
        return value if isinstance(value, bool) else _bad(source, name, value)
    if name in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return _bad(source, name, value)
        return float(value)
    if name == "command":
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            return _bad(source, name, value)
        return tuple(value)
    return value if isinstance(value, str) else _bad(source, name, value)
