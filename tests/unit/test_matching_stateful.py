"""The matching core against a model of the chain, under random event sequences.

The model (`Chain`) is written from the contracts, independently of the book:
`requests._assign` then `GeneratorRegistry.lock`, with the registry's and the request
lifecycle's own asserts deciding which events can happen. Two books are fed the same
events; a third party ("another engine") assigns too, including the other shard's market.

Properties:
- every match would pass the contract's checks, applied after every earlier assignment
  still in flight (the chain may land them first), and has the offer's price, compute,
  key and the market's penalty; a private request goes to a keyed offer; the generator is
  the one the documented score and tie-break pick among those eligible;
- matching never leaves a generator's free compute or stake (net of reservations)
  negative, and the book's locked compute and stake always equal the chain's;
- when nothing is in flight and `match` stopped short of its limit, no waiting request
  could have been assigned to any generator (parking loses nothing);
- two books fed the same events emit identical matches and views (determinism).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from eth_utils import keccak
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from kalypso.market import Request
from kalypso.matching import Match, Offer, OrderBook, Outcome

PENALTIES = {0: 10, 1: 0, 2: 25}
SHARD = (0, 2)  # market 1 belongs to another engine
GENS = tuple("0x" + (bytes([i]) * 20).hex() for i in (1, 2, 3, 4))
KEYS = (b"\x00" * 32, b"\x05" * 32)
REQUESTER = "0x" + "ee" * 20
UNREGISTERED, ACTIVE, EXITING = 0, 1, 2
#: price, proof time, compute per request, key
OFFER_TERMS = st.tuples(
    st.sampled_from((5, 10, 20, 35, 70)),  # few prices and proof times: ties happen
    st.sampled_from((5, 20, 40)),
    st.integers(1, 3),
    st.sampled_from(KEYS),
)


@dataclass
class ChainGen:
    status: int = UNREGISTERED
    declared: int = 0
    used: int = 0
    stake: int = 0
    locked: int = 0
    offers: dict[int, Offer] = field(default_factory=dict)


@dataclass
class ChainReq:
    request: Request
    private: bool
    state: str = "open"  # open, assigned, done, closed
    generator: str = ""
    compute: int = 0


@dataclass
class Chain:
    """What the contracts hold, and `_assign` + `lock` as they check them."""

    now: int = 1_000
    gens: dict[str, ChainGen] = field(default_factory=dict)
    requests: dict[bytes, ChainReq] = field(default_factory=dict)

    def gen(self, address: str) -> ChainGen:
        return self.gens.setdefault(address, ChainGen())

    def check(self, request_id: bytes, request: Request, generator: str, price: int) -> str:
        r = self.requests.get(request_id)
        if r is None:
            return "requests: unknown request"
        if r.state != "open":
            return "requests: not open"
        if r.request != request:
            return "requests: fields mismatch"
        if self.now > request.expiry:
            return "requests: expired"
        if price > request.max_price:
            return "requests: price above max"
        g = self.gen(generator)
        if g.status == UNREGISTERED:
            return "registry: not registered"
        if g.status == EXITING:
            return "registry: generator exiting"
        offer = g.offers.get(request.market_id)
        if offer is None:
            return "registry: not in market"
        if offer.price != price:
            return "registry: price is not the quote"
        if offer.proof_time > request.proof_time:
            return "registry: proof time too long"
        if g.used + offer.compute_per_request > g.declared:
            return "registry: not enough compute"
        if g.locked + PENALTIES[request.market_id] > g.stake:
            return "registry: not enough free stake"
        return ""

    def assign(self, request_id: bytes, request: Request, generator: str, price: int) -> str:
        reason = self.check(request_id, request, generator, price)
        if reason == "":
            g, r = self.gen(generator), self.requests[request_id]
            r.compute = g.offers[request.market_id].compute_per_request
            g.used += r.compute
            g.locked += PENALTIES[request.market_id]
            r.state, r.generator = "assigned", generator
        return reason

    def release(self, request_id: bytes, forfeit: int) -> ChainGen:
        r = self.requests[request_id]
        g = self.gen(r.generator)
        g.used -= r.compute
        g.locked -= PENALTIES[r.request.market_id]
        g.stake -= forfeit
        return g


def passes_matcher_rules(chain: Chain, request_id: bytes, generator: str) -> bool:
    r = chain.requests[request_id]
    offer = chain.gen(generator).offers.get(r.request.market_id)
    return offer is not None and (not r.private or any(offer.encryption_key))


class MatchingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain = Chain()
        self.books = (OrderBook(markets=SHARD), OrderBook(markets=SHARD))
        for book in self.books:
            for market_id, penalty in PENALTIES.items():
                book.add_market(market_id, penalty)
        self.sent: list[list[Match]] = []
        self.count = 0
        #: every task outcome, by generator: True for a success
        self.outcomes: dict[str, list[bool]] = {}
        #: (request, generator) pairs the chain skipped or the generator discarded: the
        #: book may keep them apart, so the liveness check does not count them
        self.excluded: set[tuple[bytes, str]] = set()

    def feed(self, method: str, *args: object) -> None:
        for book in self.books:
            getattr(book, method)(*args)

    @initialize(
        setup=st.lists(
            st.tuples(st.integers(1, 6), st.integers(0, 80)), min_size=len(GENS), max_size=len(GENS)
        ),
        data=st.data(),
    )
    def generators_join(self, setup: list[tuple[int, int]], data: st.DataObject) -> None:
        """Every generator starts registered, offering in every market."""
        for g, (compute, stake) in zip(GENS, setup, strict=True):
            self._register(g, compute, stake)
            for market in PENALTIES:
                self.set_offer(g, market, *data.draw(OFFER_TERMS))

    # ------------------------------------------------------------- requests

    @rule(
        terms=st.lists(
            st.tuples(
                st.sampled_from(sorted(PENALTIES)),
                st.integers(10, 60),  # max price
                st.integers(10, 80),  # proof time
                st.integers(0, 60),  # time to expiry
                st.booleans(),  # private
            ),
            min_size=1,
            max_size=4,
        )
    )
    def create_requests(self, terms: list[tuple[int, int, int, int, bool]]) -> None:
        for market, max_price, proof_time, ttl, private in terms:
            self.count += 1
            request_id = keccak(self.count.to_bytes(32, "big"))
            expiry = self.chain.now + ttl
            request = Request(
                market,
                REQUESTER,
                REQUESTER,
                max_price,
                proof_time,
                expiry,
                b"\x01" * 32,
                b"\x02" * 32,
            )
            self.chain.requests[request_id] = ChainReq(request, private)
            self.feed("add_request", request_id, request, self.count, private)

    def _ids(self, state: str) -> list[bytes]:
        return sorted(i for i, r in self.chain.requests.items() if r.state == state)

    def has_open(self) -> bool:
        return any(r.state == "open" for r in self.chain.requests.values())

    @precondition(has_open)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        request_id = data.draw(st.sampled_from(self._ids("open")))
        self.chain.requests[request_id].state = "closed"
        self.feed("remove_request", request_id)

    @precondition(has_open)
    @rule(data=st.data(), more=st.integers(1, 30))
    def increase_max_price(self, data: st.DataObject, more: int) -> None:
        r = self.chain.requests[request_id := data.draw(st.sampled_from(self._ids("open")))]
        if self.chain.now <= r.request.expiry:
            r.request = r.request.with_max_price(r.request.max_price + more)
            self.feed("increase_max_price", request_id, r.request.max_price)

    @rule(dt=st.integers(1, 30))
    def tick(self, dt: int) -> None:
        self.chain.now += dt

    @precondition(has_open)
    @rule()
    def cancel_expired(self) -> None:
        for request_id in self._ids("open"):
            if self.chain.now > self.chain.requests[request_id].request.expiry:
                self.chain.requests[request_id].state = "closed"
                self.feed("remove_request", request_id)

    # ----------------------------------------------------------- generators

    def _gens(self, *statuses: int) -> list[str]:
        return [g for g in GENS if self.chain.gen(g).status in statuses]

    @rule(data=st.data(), compute=st.integers(1, 6), stake=st.integers(0, 80))
    def register(self, data: st.DataObject, compute: int, stake: int) -> None:
        if free := self._gens(UNREGISTERED):
            self._register(data.draw(st.sampled_from(free)), compute, stake)

    def _register(self, g: str, compute: int, stake: int) -> None:
        gen = self.chain.gen(g)
        gen.status, gen.declared, gen.stake = ACTIVE, compute, stake
        self.feed("register_generator", g, compute, stake)

    @rule(g=st.sampled_from(GENS), delta=st.integers(-40, 40).filter(bool))
    def change_stake(self, g: str, delta: int) -> None:
        gen = self.chain.gen(g)
        if gen.status == UNREGISTERED:
            return
        if delta > 0:
            gen.stake += delta
            self.feed("add_stake", g, delta)
        elif gen.stake - gen.locked >= -delta:
            gen.stake += delta
            self.feed("remove_stake", g, -delta)

    @rule(g=st.sampled_from(GENS), compute=st.integers(1, 8))
    def set_compute(self, g: str, compute: int) -> None:
        gen = self.chain.gen(g)
        if gen.status != UNREGISTERED and compute >= gen.used:
            gen.declared = compute
            self.feed("set_compute", g, compute)

    @rule(g=st.sampled_from(GENS), market=st.sampled_from(sorted(PENALTIES)), terms=OFFER_TERMS)
    def change_offer(self, g: str, market: int, terms: tuple[int, int, int, bytes]) -> None:
        self.set_offer(g, market, *terms)

    def set_offer(
        self, g: str, market: int, price: int, proof_time: int, compute: int, key: bytes
    ) -> None:
        gen = self.chain.gen(g)
        joining = market not in gen.offers
        if (joining and gen.status != ACTIVE) or compute > gen.declared:
            return
        offer = Offer(g, market, price, proof_time, compute, key)
        gen.offers[market] = offer
        self.feed("set_offer", offer)

    @rule(g=st.sampled_from(GENS), market=st.sampled_from(sorted(PENALTIES)))
    def leave_market(self, g: str, market: int) -> None:
        gen = self.chain.gen(g)
        if market in gen.offers:
            del gen.offers[market]
            self.feed("leave_market", g, market)

    @precondition(lambda self: len(self._gens(ACTIVE)) >= 3)  # keep most generators working
    @rule(data=st.data())
    def request_exit(self, data: st.DataObject) -> None:
        g = data.draw(st.sampled_from(self._gens(ACTIVE)))
        self.chain.gen(g).status = EXITING
        self.feed("request_exit", g)

    @precondition(lambda self: self._gens(EXITING))
    @rule(data=st.data())
    def withdraw(self, data: st.DataObject) -> None:
        g = data.draw(st.sampled_from(self._gens(EXITING)))
        gen = self.chain.gen(g)
        if gen.used == 0:
            gen.status, gen.stake = UNREGISTERED, 0
            self.feed("withdraw", g)

    # ---------------------------------------------------------------- tasks

    @rule(limit=st.integers(1, 8))
    def match(self, limit: int) -> None:
        self._match(limit)

    @rule(limit=st.integers(1, 8))
    def match_and_land(self, limit: int) -> None:
        """The common case: a batch is sent and lands before the next one."""
        self._match(limit)
        while self.sent:
            self.mine()

    def _match(self, limit: int) -> None:
        now = self.chain.now
        first, second = (book.match(now, limit) for book in self.books)
        assert first == second
        assert self.books[0].take_expired() == self.books[1].take_expired()
        in_flight = bool(self.sent)
        # The chain may land every earlier batch first: check against that state.
        landed = copy.deepcopy(self.chain)
        for batch in self.sent:
            for m in batch:
                landed.assign(m.request_id, m.request, m.generator, m.price)
        for m in first:
            assert m.request.market_id in SHARD
            offer = landed.gen(m.generator).offers.get(m.request.market_id)
            if not in_flight and (m.request_id, m.generator) not in self.excluded:
                assert m.generator == self.best(landed, m.request_id)
            assert landed.assign(m.request_id, m.request, m.generator, m.price) == ""
            assert offer is not None
            assert (m.compute, m.encryption_key) == (
                offer.compute_per_request,
                offer.encryption_key,
            )
            assert m.penalty == PENALTIES[m.request.market_id]
            assert passes_matcher_rules(landed, m.request_id, m.generator)
        for g in {m.generator for m in first}:
            view = self.books[0].generator_view(g, now)
            assert view.free_compute >= 0 and view.free_stake >= 0
        if first:
            self.sent.append(first)
        if not in_flight and len(first) < limit:
            self.check_nothing_left_behind(landed)

    def score(self, offer: Offer) -> int:
        """The documented score, W = 20, a = 1, T = 3600."""
        successes = sum(self.outcomes.get(offer.generator, [])[-20:])
        return (offer.price + 1) * (20 + (20 - successes)) * (3600 + offer.proof_time)

    def best(self, landed: Chain, request_id: bytes) -> str:
        """The generator the documented rule picks: lowest score, then lowest keccak."""
        r = landed.requests[request_id]
        eligible = []
        for g in GENS:
            offer = landed.gen(g).offers.get(r.request.market_id)
            if (
                offer is not None
                and (request_id, g) not in self.excluded
                and landed.check(request_id, r.request, g, offer.price) == ""
                and passes_matcher_rules(landed, request_id, g)
            ):
                eligible.append((self.score(offer), keccak(request_id + bytes.fromhex(g[2:])), g))
        return min(eligible)[2]

    def check_nothing_left_behind(self, landed: Chain) -> None:
        book = self.books[0]
        for request_id, r in landed.requests.items():
            if r.state != "open" or r.request.market_id not in SHARD:
                continue
            state = book.explain(request_id, landed.now).state
            if state == "pending":
                continue
            if landed.now > r.request.expiry:
                assert state in ("expired", "closed")
                continue
            assert state in ("open", "parked")
            for g in GENS:
                offer = landed.gen(g).offers.get(r.request.market_id)
                if offer is None or (request_id, g) in self.excluded:
                    continue
                eligible = landed.check(request_id, r.request, g, offer.price) == ""
                assert not (eligible and passes_matcher_rules(landed, request_id, g)), (
                    f"request {request_id.hex()[:8]} left waiting though {g} could take it"
                )

    @precondition(lambda self: self.sent)
    @rule()
    def mine(self) -> None:
        """The oldest batch in flight lands: each item assigned or skipped."""
        for m in self.sent.pop(0):
            reason = self.chain.assign(m.request_id, m.request, m.generator, m.price)
            if reason == "":
                self.feed("task_assigned", m.request_id, m.request.market_id, m.generator)
            else:
                self.excluded.add((m.request_id, m.generator))
                self.feed("assign_skipped", m.request_id, m.generator, reason)

    @precondition(lambda self: self.sent)
    @rule()
    def drop(self) -> None:
        """The oldest batch in flight reverts or is dropped."""
        self.feed("assignment_failed", [m.request_id for m in self.sent.pop(0)])

    @precondition(has_open)
    @rule(data=st.data())
    def another_engine_assigns(self, data: st.DataObject) -> None:
        request_id = data.draw(st.sampled_from(self._ids("open")))
        r = self.chain.requests[request_id]
        for g in data.draw(st.permutations(GENS)):
            offer = self.chain.gen(g).offers.get(r.request.market_id)
            if offer and self.chain.assign(request_id, r.request, g, offer.price) == "":
                self.feed("task_assigned", request_id, r.request.market_id, g)
                return

    @precondition(lambda self: any(r.state == "assigned" for r in self.chain.requests.values()))
    @rule(data=st.data(), outcome=st.sampled_from(Outcome))
    def finish(self, data: st.DataObject, outcome: Outcome) -> None:
        request_id = data.draw(st.sampled_from(self._ids("assigned")))
        r = self.chain.requests[request_id]
        penalty = PENALTIES[r.request.market_id]
        forfeit = {Outcome.SLASHED: penalty, Outcome.DISCARDED: penalty * 2000 // 10000}.get(
            outcome, 0
        )
        generator = r.generator
        self.chain.release(request_id, forfeit)
        if forfeit:  # StakeForfeited comes before the task's own event
            self.feed("remove_stake", generator, forfeit)
        self.feed("task_finished", request_id, outcome)
        success = outcome in (Outcome.FULFILLED, Outcome.INVALID_INPUTS)
        self.outcomes.setdefault(generator, []).append(success)
        if outcome is Outcome.DISCARDED:
            r.state, r.generator = "open", ""
            self.excluded.add((request_id, generator))
        else:
            r.state = "done"
            self.feed("remove_request", request_id)  # as the daemon's feed does

    # ----------------------------------------------------------- invariants

    @invariant()
    def book_mirrors_the_chain(self) -> None:
        for g in GENS:
            chain = self.chain.gen(g)
            assert 0 <= chain.used <= chain.declared or chain.status == UNREGISTERED
            assert 0 <= chain.locked <= chain.stake or chain.status == UNREGISTERED
            view = self.books[0].generator_view(g, self.chain.now)
            assert (view.used_compute, view.locked_stake) == (chain.used, chain.locked)
            assert (view.stake, view.declared_compute) == (chain.stake, chain.declared)
            assert view.reserved_compute >= 0 and view.reserved_stake >= 0
            if view.reserved_compute == 0 and view.reserved_stake == 0 and chain.status:
                assert view.free_compute >= 0 and view.free_stake >= 0
            assert view == self.books[1].generator_view(g, self.chain.now)

    @invariant()
    def books_agree(self) -> None:
        for market_id in SHARD:
            assert self.books[0].book_view(market_id) == self.books[1].book_view(market_id)


# A run of 50 steps takes ~0.1 s: three times the profile's examples stays well under 30 s.
MatchingMachine.TestCase.settings = settings(
    max_examples=3 * settings().max_examples,
    stateful_step_count=50,
    deadline=None,
)
TestMatchingMachine = MatchingMachine.TestCase
