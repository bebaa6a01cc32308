"""Markets as an app sees them: terms, the circuit's input schema, and live statistics.

Everything here is read from the chain: a market's terms from `market(id)`, its
metadata from `MarketCreated` (checked against the stored hash), its statistics from
recent events and the registry's live offers. `MarketStats.from_events` is pure.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from eth_utils import keccak

from kalypso.errors import ConfigError, InvalidInputsError
from kalypso.market.names import name_notes
from kalypso.market.types import RequestKinds

#: Share of the penalty a generator pays when it hands a task back (`requests.vy`).
DISCARD_SHARE_BPS = 2_000

ZERO_ADDRESS = "0x" + "00" * 20
NO_IMAGE = b"\x00" * 32


@dataclass(frozen=True)
class Market:
    """A market's immutable terms and what its metadata says of its circuit."""

    id: int
    name: str
    verifier: str
    slashing_penalty: int
    input_verifier: str | None
    generator_image: bytes
    input_verification_image: bytes
    proof_verification_image: bytes
    #: "groth16", "plonk" (attested by a Proof Verification Image) or "opaque"
    proof_system: str
    #: the requests it takes: public inputs only, private only (sealed, opened only by
    #: its Generator Image), or both
    request_kinds: RequestKinds = RequestKinds.PUBLIC
    #: circuit input name -> "public" | "private" (empty: the market takes raw signals)
    inputs: dict[str, str] = field(default_factory=dict)
    #: public signals in snarkjs order
    public_signals: list[str] = field(default_factory=list)
    circuit: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    #: why `name` does not address this market (another market carries it too, or the
    #: deployment file gives it to another); set by listings (`markets()`), else None
    name_note: str | None = None

    @property
    def metadata_name(self) -> str | None:
        """The name its metadata gives it (anyone's choice: see `kalypso.market.names`)."""
        name = self.metadata.get("name")
        return str(name) if name not in (None, "") else None

    @property
    def private_inputs(self) -> list[str]:
        return [n for n, kind in self.inputs.items() if kind == "private"]

    def check_takes(self, private: bool) -> None:
        """Refuse a request of a kind this market does not take, before any money moves."""
        if self.request_kinds.takes(private):
            return
        if private:
            raise InvalidInputsError(
                f"market {self.name} takes public inputs only: give no private input (its "
                "generators compute any private signal themselves)"
            )
        raise InvalidInputsError(
            f"market {self.name} takes private requests only: give the private inputs "
            f"({', '.join(self.private_inputs) or 'as its schema names them'}); they are sealed "
            "and opened only inside its Generator Image"
        )

    def stakes(self, show: Callable[[int], str]) -> list[str]:
        """What each party can lose in this market, and when (`show` formats an amount)."""
        penalty = self.slashing_penalty
        return [
            "a requester pays at most its max price, and only the generator's quote when the "
            "task is proven or its inputs are shown invalid; the rest is refunded, all of it "
            "if the task is slashed, cancelled or expires",
            f"a generator that misses its deadline loses {show(penalty)} of stake (half to "
            "whoever slashes, half to the treasury); one that hands a task back loses "
            f"{show(penalty * DISCARD_SHARE_BPS // 10_000)}, to the treasury, never to the "
            "requester",
            "a generator that proves every task on time loses nothing, while the market's "
            "verifier and input verifier are honest (`kalypso market audit`)",
        ]

    @property
    def proves_in_enclave(self) -> bool:
        """Private inputs are opened only inside the market's Generator Image."""
        return self.generator_image != NO_IMAGE

    @classmethod
    def from_chain(
        cls, market_id: int, terms: Sequence[Any], metadata: bytes, names: dict[str, int]
    ) -> Market:
        """From `market(id)`'s tuple and the `MarketCreated` metadata bytes."""
        creator, verifier, input_verifier, penalty, gen_image, ivs, pvs, _, meta_hash, kinds = terms
        if str(creator) == ZERO_ADDRESS:
            raise ConfigError(f"there is no market {market_id}")
        if keccak(metadata) != bytes(meta_hash):
            raise ConfigError(f"market {market_id}'s metadata does not match its on-chain hash")
        try:
            meta = json.loads(metadata) if metadata else {}
        except ValueError:
            meta = {}
        meta = meta if isinstance(meta, dict) else {}
        known = [name for name, i in names.items() if i == market_id]
        inputs, signals = meta.get("inputs"), meta.get("public_signals")
        schema = (
            (inputs, signals) if isinstance(inputs, dict) and isinstance(signals, list) else None
        )
        system = str(meta.get("proof_system") or meta.get("verifier") or "opaque")
        return cls(
            id=market_id,
            name=known[0] if known else str(meta.get("name") or market_id),
            verifier=str(verifier),
            slashing_penalty=int(penalty),
            input_verifier=None if str(input_verifier) == ZERO_ADDRESS else str(input_verifier),
            generator_image=bytes(gen_image),
            input_verification_image=bytes(ivs),
            proof_verification_image=bytes(pvs),
            proof_system=system if system in ("groth16", "plonk") else "opaque",
            request_kinds=RequestKinds(int(kinds)),
            inputs={str(k): str(v) for k, v in schema[0].items()} if schema else {},
            public_signals=[str(s) for s in schema[1]] if schema else [],
            circuit=str(meta["circuit"]) if isinstance(meta.get("circuit"), str) else None,
            metadata=meta,
        )


@dataclass(frozen=True)
class Offer:
    """A live offer: a registered, active generator that joined the market."""

    generator: str
    price: int
    proof_time: int


@dataclass(frozen=True)
class MarketStats:
    """What pricing strategies and people look at before asking for a proof."""

    market_id: int
    open_requests: int
    offers: tuple[Offer, ...]
    #: recent clearing prices (the price of each assignment), oldest first
    prices: tuple[int, ...]
    #: recent seconds from assignment to proof, oldest first
    proof_seconds: tuple[int, ...]
    #: seconds between recent blocks
    block_time: float

    @property
    def active_generators(self) -> int:
        return len(self.offers)

    def price_percentile(self, p: float) -> int | None:
        """The `p` quantile (0 to 1) of recent clearing prices; None without history."""
        return percentile(self.prices, p)

    @property
    def price_p50(self) -> int | None:
        return self.price_percentile(0.5)

    @property
    def price_p90(self) -> int | None:
        return self.price_percentile(0.9)

    @property
    def typical_proof_time(self) -> int | None:
        """The median seconds from assignment to proof; None without history."""
        return int(statistics.median(self.proof_seconds)) if self.proof_seconds else None

    def cheapest_offer(self, proof_time: int) -> int | None:
        """The lowest price among generators that promise `proof_time` or less."""
        prices = [o.price for o in self.offers if o.proof_time <= proof_time]
        return min(prices) if prices else None

    @classmethod
    def from_events(
        cls,
        market_id: int,
        events: Sequence[Any],
        offers: Sequence[Offer],
        *,
        now: int,
        proof_timestamps: dict[bytes, int],
        block_time: float,
        history: int = 100,
    ) -> MarketStats:
        """From the market's recent marketplace events (decoded, in chain order).

        `proof_timestamps` maps a task id to the timestamp of its `ProofSubmitted` block.
        """
        expiries: dict[bytes, int] = {}  # request id -> expiry
        open_ids: set[bytes] = set()
        proof_time: dict[bytes, int] = {}
        assigned_at: dict[bytes, int] = {}
        prices: list[int] = []
        seconds: list[int] = []
        for event in events:
            rid = bytes(event.args.get("request_id") or event.args.get("task_id") or b"")
            if event.name == "RequestCreated":
                expiries[rid] = int(event["expiry"])
                open_ids.add(rid)
                proof_time[rid] = int(event["proof_time"])
            elif event.name == "TaskAssigned":
                open_ids.discard(rid)
                prices.append(int(event["price"]))
                if rid in proof_time:
                    assigned_at[rid] = int(event["deadline"]) - proof_time[rid]
            elif event.name == "TaskDiscarded" and rid in expiries:
                open_ids.add(rid)  # the request is open to matching again
            elif event.name in ("RequestCancelled", "RequestExpired"):
                open_ids.discard(rid)
            elif event.name == "ProofSubmitted" and rid in assigned_at and rid in proof_timestamps:
                seconds.append(max(0, proof_timestamps[rid] - assigned_at[rid]))
        return cls(
            market_id=market_id,
            open_requests=sum(1 for rid in open_ids if expiries[rid] >= now),
            offers=tuple(offers),
            prices=tuple(prices[-history:] if history > 0 else ()),
            proof_seconds=tuple(seconds[-history:] if history > 0 else ()),
            block_time=block_time,
        )


def with_name_notes(markets: Sequence[Market], recorded: dict[str, int]) -> list[Market]:
    """`markets` (all of them), each noting whether its name is contested."""
    notes = name_notes({m.id: m.name for m in markets}, recorded, metadata_names(markets))
    return [replace(m, name_note=notes.get(m.id)) for m in markets]


def metadata_names(markets: Sequence[Market]) -> dict[int, str]:
    """Each market's metadata name, by id: what `resolve_market` reads as `carried`."""
    return {m.id: name for m in markets if (name := m.metadata_name) is not None}


def percentile(values: Sequence[int], p: float) -> int | None:
    """The nearest-rank `p` quantile (0 < p ≤ 1) of `values`; None when empty."""
    if not 0 < p <= 1:
        raise ConfigError(f"a percentile is in (0, 1], got {p}")
    if not values:
        return None
    ordered = sorted(values)
    # the rank in exact decimals: 100 * 0.55 in floats is 55.000000000000007
    return ordered[max(1, math.ceil(len(ordered) * Fraction(repr(p)))) - 1]
