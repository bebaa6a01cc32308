"""`kalypso market audit`: does a market's on-chain verifier, metadata and trusted setup
match a set of local artifacts (DESIGN §8, market creators)?

Every check is reported, passed or not; none stops the others.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import event_abi_to_log_topic, keccak

from kalypso.circuits import sha256_file
from kalypso.circuits.setup import zkey_verify, zkey_vkey
from kalypso.contracts import artifact
from kalypso.contracts.client import MarketplaceClient
from kalypso.contracts.web3tx import bind
from kalypso.errors import ConfigError, KalypsoError, NotFoundError
from kalypso.market.events import marketplace_decoder
from kalypso.provers.proof import verifier_args

ZERO_ADDRESS = "0x" + "00" * 20


@dataclass(frozen=True)
class OnChainMarket:
    market_id: int
    creator: str
    verifier: str
    public_inputs_count: int
    metadata_hash: bytes
    #: the bytes of its `MarketCreated` event
    metadata: bytes


@dataclass(frozen=True)
class AuditFiles:
    """Local artifacts to check the market against; any may be missing."""

    zkey: Path | None = None
    vkey: Path | None = None
    wasm: Path | None = None
    r1cs: Path | None = None
    ptau: Path | None = None


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def read_market(client: MarketplaceClient, market_id: int) -> OnChainMarket:
    """A market's terms and the metadata bytes of its `MarketCreated` event."""
    terms = client.markets.functions.market(market_id).call()
    if market_id >= client.market_count() or terms[0] == ZERO_ADDRESS:
        raise NotFoundError("markets: unknown market", f"there is no market {market_id}")
    abi = next(
        e
        for e in artifact("MarketRegistry").abi
        if e.get("type") == "event" and e.get("name") == "MarketCreated"
    )
    logs = client.w3.eth.get_logs(
        {
            "address": client.markets.address,
            "fromBlock": client.deployment.deploy_block,
            "toBlock": "latest",
            "topics": [
                "0x" + event_abi_to_log_topic(abi).hex(),  # type: ignore[arg-type]
                "0x" + market_id.to_bytes(32, "big").hex(),
            ],
        }
    )
    if not logs:
        raise NotFoundError(
            "markets: no MarketCreated event",
            f"market {market_id} has no creation log after block "
            f"{client.deployment.deploy_block}; is the deployment file right?",
        )
    event = marketplace_decoder().decode(logs[0])
    return OnChainMarket(
        market_id=market_id,
        creator=str(terms[0]),
        verifier=str(terms[1]),
        public_inputs_count=int(terms[7]),
        metadata_hash=bytes(terms[8]),
        metadata=bytes(event["metadata"]),
    )


def onchain_key(client: MarketplaceClient, verifier: str) -> tuple[Any, ...]:
    """The verifying key a deployed `Groth16Verifier` holds, as `verifier_args` gives it."""
    views = bind(client.w3, "Groth16Verifier", verifier).functions

    def array(view: Any, n: int) -> list[int]:
        return [int(view(i).call()) for i in range(n)]

    length = int(views.IC_LENGTH().call())
    return (
        array(views.ALPHA, 2),
        array(views.BETA, 4),
        array(views.GAMMA, 4),
        array(views.DELTA, 4),
        [[int(views.IC(j, k).call()) for k in range(2)] for j in range(length)],
    )


def _hash_check(kind: str, path: Path, recorded: Any) -> Check:
    if not isinstance(recorded, str):
        return Check(f"{kind} sha256", False, "the metadata records no hash for it")
    try:
        actual = sha256_file(path)
    except OSError as exc:
        return Check(f"{kind} sha256", False, f"cannot read {path}: {exc.strerror or exc}")
    if actual == recorded:
        return Check(f"{kind} sha256", True, f"{path.name} = {recorded[:16]}…")
    return Check(
        f"{kind} sha256", False, f"{path.name} is {actual[:16]}…, metadata has {recorded[:16]}…"
    )


def audit_market(client: MarketplaceClient, market_id: int, files: AuditFiles) -> list[Check]:
    """Check market `market_id` against `files`; every check runs."""
    market = read_market(client, market_id)
    checks: list[Check] = []
    digest = keccak(market.metadata)
    checks.append(
        Check(
            "metadata hash",
            digest == market.metadata_hash,
            f"keccak(event metadata) {'=' if digest == market.metadata_hash else '≠'} "
            f"on-chain 0x{market.metadata_hash.hex()[:16]}…",
        )
    )
    try:
        metadata: dict[str, Any] = dict(json.loads(market.metadata))
    except (ValueError, TypeError):
        checks.append(Check("metadata", False, "the metadata is not a JSON object"))
        return checks
    if metadata.get("verifier") != "groth16":
        checks.append(Check("metadata", False, "not a Groth16 market"))
        return checks
    signals = metadata.get("public_signals")
    count_ok = isinstance(signals, list) and len(signals) == market.public_inputs_count
    checks.append(
        Check(
            "public inputs",
            count_ok,
            f"market takes {market.public_inputs_count}, schema lists "
            f"{len(signals) if isinstance(signals, list) else 'none'}",
        )
    )
    recorded = metadata.get("artifacts") or {}
    for kind in ("zkey", "vkey", "wasm", "r1cs"):
        path = getattr(files, kind)
        if path is not None:
            checks.append(_hash_check(kind, path, recorded.get(kind)))
    if files.ptau is not None:
        checks.append(_hash_check("transcript", files.ptau, metadata.get("trusted_setup_sha256")))
    if files.zkey is not None and files.r1cs is not None and files.ptau is not None:
        ok, line = zkey_verify(files.r1cs, files.ptau, files.zkey)
        checks.append(Check("zkey verify (r1cs, ptau)", ok, line))
    if files.zkey is not None:
        checks.append(_key_check(client, market.verifier, "zkey", lambda: zkey_vkey(files.zkey)))
    if files.vkey is not None:
        vkey = files.vkey
        checks.append(
            _key_check(client, market.verifier, "vkey", lambda: json.loads(vkey.read_text()))
        )
    return checks


def _key_check(client: MarketplaceClient, verifier: str, kind: str, load: Any) -> Check:
    name = f"on-chain key = {kind}'s"
    try:
        expected = verifier_args(load())
    except (KalypsoError, OSError, ValueError) as exc:
        return Check(name, False, f"cannot read the local key: {exc}")
    try:
        actual = onchain_key(client, verifier)
    except Exception as exc:  # a verifier that is not a Groth16Verifier
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Check(name, False, f"cannot read the verifier's key at {verifier}: {first}")
    same = tuple(expected) == actual
    return Check(name, same, f"Groth16Verifier {verifier} {'matches' if same else 'differs'}")


def require_files(files: AuditFiles) -> None:
    if all(getattr(files, k) is None for k in ("zkey", "vkey", "wasm", "r1cs", "ptau")):
        raise ConfigError("give artifacts to audit: --circuit NAME, or --zkey/--vkey/--r1cs/--ptau")
