"""The matching core's public value types and its internal records.

The records are plain mutable objects with `__slots__`: the orderbook owns them and
updates them in place on the hot path; nothing outside `kalypso.matching` sees them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

from sortedcontainers import SortedList

from kalypso.market.types import GeneratorStatus, Request

# The rule names are the contract's reason strings (`requests._assign`, `registry.lock`
# through `requests._lock_failure`), in the order the contract checks them, so that an
# explanation reads like the `AssignSkipped` event the chain would emit.
EXPIRED = "requests: expired"
PRICE_ABOVE_MAX = "requests: price above max"
NOT_REGISTERED = "registry: not registered"
EXITING = "registry: generator exiting"
NOT_IN_MARKET = "registry: not in market"
NOT_THE_QUOTE = "registry: price is not the quote"
TOO_SLOW = "registry: proof time too long"
NO_COMPUTE = "registry: not enough compute"
NO_STAKE = "registry: not enough free stake"
#: A private request's offer key must be a Generator Image key valid until the deadline.
NO_LIVE_KEY = "registry: offer key not live until the deadline"
#: The matcher's own rule, checked after the contract's: a private request's secret is
#: re-encrypted to the generator's key, so a generator without one cannot take it.
NO_ENCRYPTION_KEY = "matching: no encryption key"

#: The matcher's own rule: a generator that discarded a request is not offered it again.
DISCARDED_BY = "matching: discarded by this generator"

#: Every rule, in the order they are checked.
RULES = (
    EXPIRED,
    PRICE_ABOVE_MAX,
    NOT_REGISTERED,
    EXITING,
    NOT_IN_MARKET,
    NOT_THE_QUOTE,
    TOO_SLOW,
    NO_COMPUTE,
    NO_STAKE,
    NO_ENCRYPTION_KEY,
    DISCARDED_BY,
)

#: `AssignSkipped` reasons that say the request itself cannot be assigned as sent; any
#: other reason is about the generator, and the request goes back to the book.
REQUEST_REASONS = frozenset(
    {
        "requests: image revoked",
        "requests: unknown request",
        "requests: not open",
        "requests: fields mismatch",
    }
)


class Outcome(Enum):
    """How a task ended; FULFILLED and INVALID_INPUTS count as successes for reliability."""

    FULFILLED = "fulfilled"
    INVALID_INPUTS = "invalid_inputs"
    SLASHED = "slashed"
    DISCARDED = "discarded"

    @property
    def success(self) -> bool:
        return self in (Outcome.FULFILLED, Outcome.INVALID_INPUTS)


@dataclass(frozen=True, slots=True)
class Offer:
    """A generator's offer in one market (`join_market` / `update_offer`)."""

    generator: str
    market_id: int
    price: int
    proof_time: int
    compute_per_request: int
    encryption_key: bytes

    @property
    def has_key(self) -> bool:
        return any(self.encryption_key)


@dataclass(frozen=True, slots=True)
class Match:
    """One assignment to send: `price` is the generator's quote, `compute` and `penalty`
    what the contract will lock (and what the book reserves until it hears back)."""

    request_id: bytes
    request: Request
    generator: str
    price: int
    compute: int
    penalty: int
    encryption_key: bytes


# ------------------------------------------------------------------ internal records

# Request states. The first five are live (the request is in `OrderBook._requests`).
QUEUED = 0  # waiting in the arrival queue to be examined
PARKED = 1  # some active offer fits its terms, but none of those generators has room
PRICED_OUT = 2  # no active offer fits its terms (price, proof time, key)
PENDING = 3  # matched; the assignment is sent but not confirmed
ASSIGNED = 4  # a live task on chain
EXPIRED_STATE = 5
CLOSED = 6  # cancelled, expired on chain, or dropped after a request-level skip
FINISHED = 7

STATE_NAMES = {
    QUEUED: "open",
    PARKED: "parked",
    PRICED_OUT: "parked",
    PENDING: "pending",
    ASSIGNED: "assigned",
    EXPIRED_STATE: "expired",
    CLOSED: "closed",
    FINISHED: "finished",
}
WAITING = (QUEUED, PARKED, PRICED_OUT)


class Entry:
    """A request the book knows."""

    __slots__ = (
        "generator",
        "outcome",
        "private",
        "request",
        "request_id",
        "seq",
        "skip_reason",
        "skips",
        "state",
    )

    def __init__(self, request_id: bytes, request: Request, seq: int, private: bool) -> None:
        self.request_id = request_id
        self.request = request
        self.seq = seq
        self.private = private
        self.state = QUEUED
        #: the generator it is pending with or assigned to (the last one, once finished)
        self.generator: str | None = None
        #: the last `AssignSkipped` reason the chain gave for it
        self.skip_reason: str | None = None
        #: generators not to offer it again: generator -> (its version when skipped, the
        #: reason); version -1 means for good (it discarded the task)
        self.skips: dict[str, tuple[int, str]] | None = None
        #: how its task ended, once FINISHED
        self.outcome: Outcome | None = None


class Reservation:
    """Compute and stake a sent match holds until the chain answers."""

    __slots__ = ("compute", "entry", "generator", "penalty", "request")

    def __init__(self, entry: Entry, generator: str, compute: int, penalty: int) -> None:
        self.entry = entry
        self.generator = generator
        self.compute = compute
        self.penalty = penalty
        #: the fields sent: a later `increase_max_price` makes the chain see a mismatch
        self.request = entry.request


class Task:
    """A live task: what the contract locked for it."""

    __slots__ = ("compute", "entry", "generator", "market_id", "penalty")

    def __init__(
        self, generator: str, market_id: int, compute: int, penalty: int, entry: Entry | None
    ) -> None:
        self.generator = generator
        self.market_id = market_id
        self.compute = compute
        self.penalty = penalty
        self.entry = entry


class Generator:
    """The registry's record of a generator, plus what this book has reserved on it."""

    __slots__ = (
        "address",
        "declared_compute",
        "locked_stake",
        "offers",
        "outcomes",
        "reservations",
        "reserved_compute",
        "reserved_stake",
        "stake",
        "status",
        "successes",
        "used_compute",
        "version",
    )

    def __init__(self, address: str, window: int) -> None:
        self.address = address
        self.status = GeneratorStatus.UNREGISTERED
        self.declared_compute = 0
        self.stake = 0
        #: what live tasks lock on chain
        self.used_compute = 0
        self.locked_stake = 0
        #: what this book's sent-but-unconfirmed matches hold
        self.reserved_compute = 0
        self.reserved_stake = 0
        self.offers: dict[int, Offer] = {}
        self.reservations: dict[bytes, Reservation] = {}
        self.outcomes: deque[bool] = deque(maxlen=window)
        self.successes = 0
        #: bumped on every change; a skip excludes the generator until it changes
        self.version = 0

    @property
    def free_compute(self) -> int:
        return self.declared_compute - self.used_compute - self.reserved_compute

    @property
    def free_stake(self) -> int:
        return self.stake - self.locked_stake - self.reserved_stake

    def record(self, success: bool) -> None:
        """Remember an outcome in the sliding window."""
        outcomes = self.outcomes
        if len(outcomes) == outcomes.maxlen and outcomes[0]:
            self.successes -= 1
        outcomes.append(success)
        if success:
            self.successes += 1


def can_take(g: Generator, offer: Offer, penalty: int) -> bool:
    """Whether `g` may take one more task at `offer` now (the registry's `lock` checks,
    less the price and proof time, which depend on the request), counting reservations."""
    return (
        g.status == GeneratorStatus.ACTIVE
        and offer.compute_per_request <= g.free_compute
        and penalty <= g.free_stake
    )


def fits(offer: Offer, request: Request, private: bool) -> bool:
    """Whether an offer's terms suit a request: the request-dependent rules."""
    return (
        offer.price <= request.max_price
        and offer.proof_time <= request.proof_time
        and (not private or offer.has_key)
    )


class Market:
    """A market's offers and waiting requests."""

    __slots__ = (
        "avail",
        "available",
        "counts",
        "frontier",
        "in_shard",
        "market_id",
        "offers",
        "parked",
        "penalty",
        "priced_out",
        "ranked",
        "recent",
        "scores",
    )

    def __init__(self, market_id: int, penalty: int, in_shard: bool, recent: int) -> None:
        self.market_id = market_id
        self.penalty = penalty
        self.in_shard = in_shard
        self.offers: dict[str, Offer] = {}
        self.scores: dict[str, int] = {}
        #: (score, generator) of every joined offer
        self.ranked = SortedList()
        #: (score, generator) of the offers whose generator has room for one more task
        #: now; kept for the shard's markets only
        self.available = SortedList()
        self.avail: set[str] = set()
        #: (seq, request id) of PARKED requests
        self.parked = SortedList()
        #: (-max price, seq, request id) of PRICED_OUT requests
        self.priced_out = SortedList()
        self.recent: deque[Entry] = deque(maxlen=recent)
        #: number of requests in each state
        self.counts = [0] * (FINISHED + 1)
        #: Pareto-minimal (price, proof time) of active offers, all and keyed; None = stale
        self.frontier: tuple[list[tuple[int, int]], list[tuple[int, int]]] | None = None
