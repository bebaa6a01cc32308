"""What the owner of a deployment controls, read from the chain (`kalypso admin show`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from web3.exceptions import BadFunctionCallOutput, ContractLogicError

from kalypso.chain.logs import get_logs
from kalypso.contracts.admin import CONTRACTS, TWO_STEP, AdminClient


@dataclass(frozen=True)
class Ownership:
    contract: str
    address: str
    #: None for a token without `owner()` (one given to `kalypso deploy --token`)
    owner: str | None
    #: None for the token, whose ownership moves in one step
    pending_owner: str | None


@dataclass(frozen=True)
class AdminState:
    chain_id: int
    #: the latest block's timestamp
    now: int
    ownership: list[Ownership]
    treasury: str
    market_creation_fee: int
    enclave_registry: str
    market_registry: str
    registry_marketplace: str
    #: the attestation authorities; None when the deployment names no EnclaveRegistry
    authorities: list[str] | None
    matching_engine_image: bytes | None
    pending_authority: str | None
    pending_matching_engine_image: bytes | None
    #: when the pending change was proposed; 0: none pending
    pending_since: int
    authority_delay: int
    apply_window: int
    #: engines allowed in every market (None: not read)
    matching_engines: list[str] | None
    #: market id -> engines allowed there (None: not read)
    market_matching_engines: dict[int, list[str]] | None

    @property
    def applies_from(self) -> int:
        return self.pending_since + self.authority_delay

    @property
    def applies_until(self) -> int:
        return self.applies_from + self.apply_window

    def rows(self, show_amount: Callable[[int], str]) -> list[tuple[str, str]]:
        """(name, value) lines for a person; amounts through `show_amount`."""
        rows = []
        for o in self.ownership:
            owner = o.owner or "(no owner() on this token)"
            pending = "" if o.pending_owner is None else f", pending {_none(o.pending_owner)}"
            rows.append((o.contract, f"{o.address} owner {owner}{pending}"))
        fee = self.market_creation_fee
        rows += [
            ("treasury", self.treasury),
            ("market creation fee", f"{show_amount(fee)} ({fee} base units)"),
            ("enclave registry", _none(self.enclave_registry)),
            ("market registry", _none(self.market_registry)),
            ("registry's marketplace", _none(self.registry_marketplace)),
        ]
        if self.matching_engines is not None:
            rows.append(("matching engines", ", ".join(self.matching_engines) or "none"))
        for market_id, engines in (self.market_matching_engines or {}).items():
            rows.append((f"engines of market {market_id}", ", ".join(engines)))
        if self.authorities is None:
            return rows
        rows += [
            ("attestation authorities", ", ".join(self.authorities) or "none (enclaves halted)"),
            ("matching engine image", "0x" + (self.matching_engine_image or b"").hex()),
            ("authority delay", f"{self.authority_delay} s"),
        ]
        if not self.pending_since:
            return [*rows, ("pending authority", "none")]
        image = "0x" + (self.pending_matching_engine_image or b"").hex()
        return [
            *rows,
            ("pending authority", f"{self.pending_authority} (image {image})"),
            ("proposed", _when(self.pending_since, self.now)),
            ("applies from", _when(self.applies_from, self.now)),
            ("lapses after", _when(self.applies_until, self.now)),
        ]


def read_state(client: AdminClient, *, engines: bool = True) -> AdminState:
    """Owners, settings and the attestation authorities. `engines` also reads the engine
    events from the deploy block (the contract's sets cannot be listed otherwise)."""
    market = client.contracts["marketplace"].functions
    enclaves = client.contracts.get("enclaves")
    e = enclaves.functions if enclaves is not None else None
    pending = int(e.pending_since().call()) if e else 0
    return AdminState(
        chain_id=client.chain_id,
        now=int(client.w3.eth.get_block("latest")["timestamp"]),
        ownership=_ownership(client),
        treasury=market.treasury().call(),
        market_creation_fee=int(market.market_creation_fee().call()),
        enclave_registry=market.enclave_registry().call(),
        market_registry=market.market_registry().call(),
        registry_marketplace=client.contracts["registry"].functions.marketplace().call(),
        authorities=list(e.authorities().call()) if e else None,
        matching_engine_image=bytes(e.matching_engine_image().call()) if e else None,
        pending_authority=e.pending_authority().call() if pending and e else None,
        pending_matching_engine_image=(
            bytes(e.pending_matching_engine_image().call()) if pending and e else None
        ),
        pending_since=pending,
        authority_delay=int(e.AUTHORITY_DELAY().call()) if e else 0,
        apply_window=int(e.APPLY_WINDOW().call()) if e else 0,
        matching_engines=_engines(client) if engines else None,
        market_matching_engines=_market_engines(client) if engines else None,
    )


def _ownership(client: AdminClient) -> list[Ownership]:
    found = []
    for key in (*TWO_STEP, "token"):
        bound = client.contracts.get(key)
        if bound is None:
            continue
        try:
            owner = bound.functions.owner().call()
        except (ContractLogicError, BadFunctionCallOutput):
            owner = None
        pending = bound.functions.pending_owner().call() if key in TWO_STEP else None
        found.append(Ownership(CONTRACTS[key], bound.address, owner, pending))
    return found


def _engines(client: AdminClient) -> list[str]:
    market = client.contracts["marketplace"].functions
    named = {str(args["engine"]) for args in _events(client, "MatchingEngineSet")}
    return sorted(engine for engine in named if market.matching_engines(engine).call())


def _market_engines(client: AdminClient) -> dict[int, list[str]]:
    market = client.contracts["marketplace"].functions
    events = _events(client, "MarketMatchingEngineSet")
    named = {(int(args["market_id"]), str(args["engine"])) for args in events}
    found: dict[int, list[str]] = {}
    for market_id, engine in sorted(named):
        if market.market_matching_engines(market_id, engine).call():
            found.setdefault(market_id, []).append(engine)
    return found


def _events(client: AdminClient, name: str) -> list[Any]:
    """The arguments of the marketplace's `name` events since the deploy block, read in
    windows the endpoint accepts."""
    event = getattr(client.contracts["marketplace"].events, name)()
    query = {"address": event.address, "topics": [event.topic]}
    head = int(client.w3.eth.block_number)
    logs = get_logs(client.w3, query, client.deployment.deploy_block, head)
    return [event.process_log(log)["args"] for log in logs]


def _none(address: str) -> str:
    return "none" if int(address, 16) == 0 else address


def _when(t: int, now: int) -> str:
    """`t` in UTC, and how far from the chain's `now`."""
    stamp = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    seconds = abs(t - now)
    if seconds >= 86400:
        span = f"{seconds // 86400} d {seconds % 86400 // 3600} h"
    elif seconds >= 3600:
        span = f"{seconds // 3600} h {seconds % 3600 // 60} min"
    else:
        span = f"{seconds} s"
    return f"{stamp} ({'in ' + span if t > now else span + ' ago'})"
