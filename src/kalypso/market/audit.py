"""`kalypso market audit`: is a market's verifier code fixed (`kalypso.market.codecheck`),
and do its on-chain key, metadata and trusted setup match a set of local artifacts
(DESIGN §8, market creators)?

Every check is reported, passed or not; none stops the others.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import keccak
from web3 import Web3

from kalypso.chain.logs import get_logs
from kalypso.circuits import sha256_file
from kalypso.circuits.setup import zkey_verify, zkey_vkey
from kalypso.contracts.client import MarketplaceClient
from kalypso.errors import KalypsoError, NotFoundError
from kalypso.market.catalog import created_topic
from kalypso.market.codecheck import (
    GROTH16,
    Check,
    code_roles,
    groth16_key,
    identify,
    judge_code,
    trusted_contracts,
)
from kalypso.market.events import marketplace_decoder
from kalypso.provers.proof import verifier_args

ZERO_ADDRESS = "0x" + "00" * 20


@dataclass(frozen=True)
class OnChainMarket:
    market_id: int
    creator: str
    verifier: str
    #: None when the market has none
    input_verifier: str | None
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


def read_market(client: MarketplaceClient, market_id: int) -> OnChainMarket:
    """A market's terms and the metadata bytes of its `MarketCreated` event."""
    terms = client.markets.functions.market(market_id).call()
    if market_id >= client.market_count() or terms[0] == ZERO_ADDRESS:
        raise NotFoundError("markets: unknown market", f"there is no market {market_id}")
    query = {
        "address": client.markets.address,
        "topics": [created_topic(), "0x" + market_id.to_bytes(32, "big").hex()],
    }
    head = client.w3.eth.block_number
    logs = get_logs(client.w3, query, client.deployment.deploy_block, head, enough=bool)
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
        input_verifier=None if int(str(terms[2]), 16) == 0 else str(terms[2]),
        public_inputs_count=int(terms[7]),
        metadata_hash=bytes(terms[8]),
        metadata=bytes(event["metadata"]),
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
    checks.extend(code_checks(client, market))
    try:
        metadata: dict[str, Any] = dict(json.loads(market.metadata))
    except (ValueError, TypeError):
        checks.append(Check("metadata", False, "the metadata is not a JSON object"))
        return checks
    if metadata.get("verifier") != "groth16":
        if files != AuditFiles():
            checks.append(Check("metadata", False, "not a Groth16 market: no files to check"))
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
    loaders: dict[str, Callable[[], Any]] = {}
    if (zkey := files.zkey) is not None:
        loaders["zkey"] = lambda: zkey_vkey(zkey)
    if (vkey := files.vkey) is not None:
        loaders["vkey"] = lambda: json.loads(vkey.read_text())
    if loaders:
        code = _code(client, market.verifier)
        checks.extend(_key_check(market.verifier, code, k, load) for k, load in loaders.items())
    return checks


def code_checks(client: MarketplaceClient, market: OnChainMarket) -> list[Check]:
    """Whether the market's verifier and input verifier can change their answers."""
    trusted = trusted_contracts(client.deployment)
    return [
        judge_code(name, address, _code(client, address), trusted)
        for name, address in code_roles(market.verifier, market.input_verifier)
    ]


def _code(client: MarketplaceClient, address: str) -> bytes:
    return bytes(client.w3.eth.get_code(Web3.to_checksum_address(address)))


def _key_check(verifier: str, code: bytes, kind: str, load: Callable[[], Any]) -> Check:
    """The key in the verifier's code (its immutables, not its getters) against `kind`'s."""
    name = f"on-chain key = {kind}'s"
    try:
        expected = verifier_args(load())
    except (KalypsoError, OSError, ValueError) as exc:
        return Check(name, False, f"cannot read the local key: {exc}")
    found = identify(code)
    if found is None or found[0].name != GROTH16:
        return Check(name, False, f"{verifier} is not kalypso's Groth16Verifier: no key to read")
    actual = groth16_key(found[1])
    if actual is None:
        return Check(name, False, f"the immutables of {verifier} are not a key its code writes")
    same = tuple(expected) == actual
    return Check(name, same, f"the key in {verifier}'s code {'matches' if same else 'differs'}")
