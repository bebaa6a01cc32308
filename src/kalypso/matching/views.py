"""Read-only views of the orderbook for operators: why a request waits, why a generator
gets no tasks, what a market's book holds.

Rules are evaluated against the book's *current* state at the `now` given, not the state
when a request arrived: a generator that was full an hour ago and is idle now shows as
eligible for an old request (then "outranked", if someone else took it). Capacity counts
the book's pending reservations, as matching does; for the generator a request is pending
with or assigned to, its own hold on that request is not counted against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kalypso.market.types import GeneratorStatus
from kalypso.matching.model import (
    ASSIGNED,
    CLOSED,
    EXITING,
    EXPIRED,
    FINISHED,
    NO_COMPUTE,
    NO_ENCRYPTION_KEY,
    NO_STAKE,
    NOT_IN_MARKET,
    NOT_REGISTERED,
    PARKED,
    PENDING,
    PRICE_ABOVE_MAX,
    PRICED_OUT,
    QUEUED,
    STATE_NAMES,
    TOO_SLOW,
    WAITING,
    Entry,
    Generator,
    Market,
    Reservation,
    Task,
    can_take,
)
from kalypso.matching.score import tie_break

#: How many recent requests `generator_view` reports.
RECENT = 20


@dataclass(frozen=True)
class RuleCheck:
    """One generator against one request: the first rule it fails (None: eligible), its
    offer's score and, if eligible, its rank among the eligible (1 = would be chosen)."""

    generator: str
    rule: str | None
    score: int
    rank: int | None


@dataclass(frozen=True)
class RequestView:
    request_id: bytes
    #: open, parked, pending, assigned, expired, closed, finished or unknown
    state: str
    market_id: int | None = None
    seq: int | None = None
    max_price: int | None = None
    #: "capacity" (an offer suits it, its generators are full) or "terms" (none suits it)
    parked_on: str | None = None
    #: the generator it is pending with or assigned to
    generator: str | None = None
    #: every generator with an offer in its market, in score order
    checks: tuple[RuleCheck, ...] = ()
    #: the reason of the last `AssignSkipped` the chain emitted for it
    last_skip: str | None = None


@dataclass(frozen=True)
class OfferView:
    generator: str
    market_id: int
    price: int
    proof_time: int
    compute_per_request: int
    has_key: bool
    score: int
    #: position by score among the market's offers, 1 = best
    rank: int
    offers_in_market: int
    #: whether its generator can take a task at this offer now
    available: bool


@dataclass(frozen=True)
class RecentRequest:
    request_id: bytes
    market_id: int
    seq: int
    #: "assigned" (a live task of this generator's), how its task ended ("fulfilled",
    #: "invalid_inputs", "slashed"), "outranked" (eligible, another took it),
    #: "eligible" (still open), "closed", or the first rule it fails now
    verdict: str


@dataclass(frozen=True)
class GeneratorView:
    generator: str
    status: str
    stake: int
    locked_stake: int
    reserved_stake: int
    free_stake: int
    declared_compute: int
    used_compute: int
    reserved_compute: int
    free_compute: int
    #: successes among the last `window` outcomes (missing ones count as failures)
    successes: int
    outcomes: int
    window: int
    offers: tuple[OfferView, ...]
    recent: tuple[RecentRequest, ...]


@dataclass(frozen=True)
class MarketBookView:
    market_id: int
    penalty: int
    in_shard: bool
    #: unassigned requests: queued (not yet examined) + parked
    waiting: int
    queued: int
    parked: int
    pending: int
    assigned: int
    #: request ids, oldest first, at most `limit` of each
    queued_ids: tuple[bytes, ...]
    parked_ids: tuple[bytes, ...]
    pending_ids: tuple[bytes, ...]
    offers: tuple[OfferView, ...]


@dataclass(frozen=True)
class Context:
    now: int
    window: int
    markets: Mapping[int, Market]
    gens: Mapping[str, Generator]
    pending: Mapping[bytes, Reservation]
    tasks: Mapping[bytes, Task]


def unknown_request(request_id: bytes) -> RequestView:
    return RequestView(request_id, "unknown")


def first_failure(entry: Entry, g: Generator, m: Market, ctx: Context) -> str | None:
    """The first rule `g` fails for `entry` now, in the contract's order, then the
    matcher's own (encryption key, not offered again after a skip or a discard)."""
    request = entry.request
    if ctx.now > request.expiry:
        return EXPIRED
    offer = g.offers.get(request.market_id)
    if offer is not None and offer.price > request.max_price:
        return PRICE_ABOVE_MAX
    if g.status == GeneratorStatus.UNREGISTERED:
        return NOT_REGISTERED
    if g.status == GeneratorStatus.EXITING:
        return EXITING
    if offer is None:
        return NOT_IN_MARKET
    if offer.proof_time > request.proof_time:
        return TOO_SLOW
    held_compute = held_stake = 0
    if entry.generator == g.address:
        hold = ctx.pending.get(entry.request_id) if entry.state == PENDING else None
        task = ctx.tasks.get(entry.request_id) if entry.state == ASSIGNED else None
        if hold is not None or task is not None:
            held_compute = hold.compute if hold else task.compute if task else 0
            held_stake = hold.penalty if hold else task.penalty if task else 0
    if offer.compute_per_request > g.free_compute + held_compute:
        return NO_COMPUTE
    if m.penalty > g.free_stake + held_stake:
        return NO_STAKE
    if entry.private and not offer.has_key:
        return NO_ENCRYPTION_KEY
    skip = entry.skips.get(g.address) if entry.skips is not None else None
    if skip is not None and (skip[0] < 0 or skip[0] == g.version):
        return skip[1]
    return None


def explain(entry: Entry, m: Market, ctx: Context) -> RequestView:
    """Every generator with an offer in the request's market against the rules."""
    results: list[tuple[str, str | None, int]] = []
    for score, generator in m.ranked:
        results.append((generator, first_failure(entry, ctx.gens[generator], m, ctx), score))
    eligible = sorted(
        (score, tie_break(entry.request_id, generator), generator)
        for generator, rule, score in results
        if rule is None
    )
    ranks = {generator: i + 1 for i, (_, _, generator) in enumerate(eligible)}
    parked_on = {PARKED: "capacity", PRICED_OUT: "terms"}.get(entry.state)
    return RequestView(
        request_id=entry.request_id,
        state=STATE_NAMES[entry.state],
        market_id=entry.request.market_id,
        seq=entry.seq,
        max_price=entry.request.max_price,
        parked_on=parked_on,
        generator=entry.generator,
        checks=tuple(
            RuleCheck(generator, rule, score, ranks.get(generator))
            for generator, rule, score in results
        ),
        last_skip=entry.skip_reason,
    )


def offer_view(g: Generator, m: Market) -> OfferView:
    offer = g.offers[m.market_id]
    score = m.scores[g.address]
    return OfferView(
        generator=g.address,
        market_id=m.market_id,
        price=offer.price,
        proof_time=offer.proof_time,
        compute_per_request=offer.compute_per_request,
        has_key=offer.has_key,
        score=score,
        rank=m.ranked.index((score, g.address)) + 1,
        offers_in_market=len(m.ranked),
        available=can_take(g, offer, m.penalty),
    )


def _verdict(entry: Entry, g: Generator, ctx: Context) -> str:
    taken = entry.state in (PENDING, ASSIGNED, FINISHED)
    if taken and entry.generator == g.address:
        return entry.outcome.value if entry.outcome is not None else "assigned"
    if entry.state == CLOSED:
        return "closed"
    rule = first_failure(entry, g, ctx.markets[entry.request.market_id], ctx)
    if rule is not None:
        return rule
    return "outranked" if taken else "eligible"


def generator_view(g: Generator, ctx: Context) -> GeneratorView:
    """A generator's standing, and its verdict on the last requests of its markets."""
    markets = [ctx.markets[market_id] for market_id in sorted(g.offers)]
    seen = sorted(
        (entry for m in markets for entry in m.recent), key=lambda e: e.seq, reverse=True
    )[:RECENT]
    return GeneratorView(
        generator=g.address,
        status=g.status.name.lower(),
        stake=g.stake,
        locked_stake=g.locked_stake,
        reserved_stake=g.reserved_stake,
        free_stake=g.free_stake,
        declared_compute=g.declared_compute,
        used_compute=g.used_compute,
        reserved_compute=g.reserved_compute,
        free_compute=g.free_compute,
        successes=g.successes,
        outcomes=len(g.outcomes),
        window=ctx.window,
        offers=tuple(offer_view(g, m) for m in markets),
        recent=tuple(
            RecentRequest(e.request_id, e.request.market_id, e.seq, _verdict(e, g, ctx))
            for e in seen
        ),
    )


def book_view(
    m: Market, requests: Mapping[bytes, Entry], gens: Mapping[str, Generator], limit: int
) -> MarketBookView:
    """A market's counts, its oldest waiting and pending requests, its offers by score."""
    market_id = m.market_id
    by_state: dict[int, list[Entry]] = {QUEUED: [], PARKED: [], PENDING: []}
    for entry in requests.values():
        if entry.request.market_id != market_id:
            continue
        state = PARKED if entry.state == PRICED_OUT else entry.state
        if state in by_state:
            by_state[state].append(entry)

    def oldest(state: int) -> tuple[bytes, ...]:
        entries = sorted(by_state[state], key=lambda e: e.seq)[:limit]
        return tuple(e.request_id for e in entries)

    return MarketBookView(
        market_id=market_id,
        penalty=m.penalty,
        in_shard=m.in_shard,
        waiting=sum(m.counts[s] for s in WAITING),
        queued=m.counts[QUEUED],
        parked=m.counts[PARKED] + m.counts[PRICED_OUT],
        pending=m.counts[PENDING],
        assigned=m.counts[ASSIGNED],
        queued_ids=oldest(QUEUED),
        parked_ids=oldest(PARKED),
        pending_ids=oldest(PENDING),
        offers=market_offers(m, gens),
    )


def market_offers(m: Market, gens: Mapping[str, Generator]) -> tuple[OfferView, ...]:
    """A market's offers by score, best first."""
    return tuple(offer_view(gens[generator], m) for _, generator in m.ranked)
