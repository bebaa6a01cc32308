"""The orderbook: a mirror of the registry and the open requests, and `match`.

Pure: no I/O, no clock (the caller passes `now`), no randomness. The same calls in the
same order give the same matches, in every process (nothing iterates a set or a hash).
The rules and the score are documented in the package docstring (`kalypso.matching`).
"""

from __future__ import annotations

from collections.abc import Iterable
from heapq import heappop, heappush

from kalypso.market.types import GeneratorStatus, Request
from kalypso.matching import views
from kalypso.matching.model import (
    ASSIGNED,
    CLOSED,
    DISCARDED_BY,
    EXPIRED,
    EXPIRED_STATE,
    FINISHED,
    PARKED,
    PENDING,
    PRICED_OUT,
    QUEUED,
    REQUEST_REASONS,
    WAITING,
    Entry,
    Generator,
    Market,
    Match,
    Offer,
    Outcome,
    Task,
)
from kalypso.matching.score import ScoreWeights
from kalypso.matching.state import BookState

__all__ = ["Match", "Offer", "OrderBook", "Outcome", "ScoreWeights"]

_ACTIVE = GeneratorStatus.ACTIVE


class OrderBook(BookState):
    """Requests waiting for a generator, generators' offers and capacity, and the matching.

    `markets` are the shard's markets, the only ones `match` assigns; the book still
    follows every market's offers and tasks, since a generator's compute and stake are
    shared by all its markets. Every market must be added (`add_market`) before a request,
    offer or task refers to it. `now` must not go backwards between `match` calls.

    `weights` and `window` (W) shape the score; `history` is how many finished requests
    `explain` still knows.
    """

    # ------------------------------------------------------------------ markets

    def add_market(self, market_id: int, penalty: int) -> None:
        """A market (`MarketCreated`); its penalty is what a task there locks."""
        m = self._markets.get(market_id)
        if m is None:
            in_shard = self._shard is None or market_id in self._shard
            self._markets[market_id] = Market(market_id, penalty, in_shard, self.window)
        elif m.penalty != penalty:
            m.penalty = penalty
            for generator in list(m.offers):
                self._refresh(self._gens[generator], gained=True)

    def markets(self) -> list[int]:
        """Every market added (the shard's and the others'), in id order."""
        return sorted(self._markets)

    # ----------------------------------------------------------------- requests

    def add_request(
        self, request_id: bytes, request: Request, seq: int, private: bool = False
    ) -> None:
        """A new request (`RequestCreated`); `seq` orders matching (FIFO). Idempotent;
        requests of markets outside the shard are ignored."""
        if request_id in self._requests or request_id in self._history:
            return
        m = self._market(request.market_id)
        if not m.in_shard:
            return
        entry = Entry(request_id, request, seq, private)
        self._requests[request_id] = entry
        m.counts[QUEUED] += 1
        m.recent.append(entry)
        heappush(self._queue, (seq, request_id))
        heappush(self._expiries, (request.expiry, seq, request_id))

    def remove_request(self, request_id: bytes) -> None:
        """Cancelled or expired on chain. Idempotent; drops a pending reservation."""
        entry = self._requests.get(request_id)
        if entry is None or entry.state == ASSIGNED:
            return
        res = self._pending.pop(request_id, None)
        if res is not None:
            self._release(res)
        self._close(entry, CLOSED)

    def increase_max_price(self, request_id: bytes, max_price: int) -> None:
        """`MaxPriceIncreased`: a parked request is examined again."""
        entry = self._requests.get(request_id)
        if entry is None:
            return
        if entry.state in (PARKED, PRICED_OUT):
            m = self._markets[entry.request.market_id]
            self._unpark(entry, m)
            entry.request = entry.request.with_max_price(max_price)
            self._enqueue(entry, m)
        else:
            entry.request = entry.request.with_max_price(max_price)

    def take_expired(self) -> list[tuple[bytes, Request]]:
        """Requests `match` dropped because they expired unassigned, since the last call
        (at most the last `history` of them)."""
        expired = list(self._expired)
        self._expired.clear()
        return expired

    # --------------------------------------------------------------- generators

    def register_generator(self, generator: str, declared_compute: int, stake: int) -> None:
        """`GeneratorRegistered` (also a return after `withdraw`; kept offers count again)."""
        g = self._gen(generator)
        g.status = _ACTIVE
        g.declared_compute = declared_compute
        g.stake = stake
        g.version += 1
        for market_id, offer in g.offers.items():
            m = self._markets[market_id]
            m.frontier = None
            self._wake_priced_out(m, offer)
        self._refresh(g, gained=True)

    def add_stake(self, generator: str, amount: int) -> None:
        g = self._gen(generator)
        g.stake += amount
        g.version += 1
        self._refresh(g, gained=True)

    def remove_stake(self, generator: str, amount: int) -> None:
        """`StakeRemoved` (unstake) and `StakeForfeited` (a discard's or a slash's penalty)."""
        g = self._gen(generator)
        g.stake = max(0, g.stake - amount)
        g.version += 1
        self._refresh(g, gained=False)

    def set_compute(self, generator: str, declared_compute: int) -> None:
        g = self._gen(generator)
        gained = declared_compute > g.declared_compute
        g.declared_compute = declared_compute
        g.version += 1
        self._refresh(g, gained=gained)

    def request_exit(self, generator: str) -> None:
        self._set_status(self._gen(generator), GeneratorStatus.EXITING)

    def withdraw(self, generator: str) -> None:
        """Unregistered again, with no stake; its offers stay (the contract keeps them)."""
        g = self._gen(generator)
        g.stake = 0
        self._set_status(g, GeneratorStatus.UNREGISTERED)

    def _set_status(self, g: Generator, status: GeneratorStatus) -> None:
        g.status = status
        g.version += 1
        for market_id in g.offers:
            self._markets[market_id].frontier = None
        self._refresh(g, gained=False)

    def set_offer(self, offer: Offer) -> None:
        """`OfferSet` (join_market / update_offer)."""
        g = self._gen(offer.generator)
        m = self._market(offer.market_id)
        if offer.market_id in g.offers:
            self._unrank(g, m)
        g.offers[offer.market_id] = offer
        m.offers[g.address] = offer
        m.frontier = None
        g.version += 1
        # Pending assignments lock the offer's compute as of when they land: reserve the
        # larger of the old and the new (a new price makes them fail; a smaller one holds).
        for res in g.reservations.values():
            if res.request.market_id == offer.market_id and offer.compute_per_request > res.compute:
                g.reserved_compute += offer.compute_per_request - res.compute
                res.compute = offer.compute_per_request
        self._rank(g, m)
        if g.status == _ACTIVE:
            self._wake_priced_out(m, offer)
        self._refresh(g, gained=True)

    def leave_market(self, generator: str, market_id: int) -> None:
        g = self._gens.get(generator)
        if g is None or market_id not in g.offers:
            return
        m = self._markets[market_id]
        self._unrank(g, m)
        del g.offers[market_id]
        del m.offers[generator]
        m.frontier = None
        g.version += 1

    # -------------------------------------------------------------------- tasks

    def task_assigned(self, task_id: bytes, market_id: int, generator: str) -> None:
        """`TaskAssigned`: lock what the contract locked, i.e. the generator's current offer's
        compute (events come in log order) and the market's penalty. Ours or not: any
        reservation for the request is dropped. A replayed event is ignored."""
        if task_id in self._tasks:
            return
        m = self._market(market_id)
        g = self._gen(generator)
        res = self._pending.pop(task_id, None)
        if res is not None:
            self._drop_reservation(res)
            if res.generator != generator:
                self._refresh(self._gens[res.generator], gained=True)
        offer = g.offers.get(market_id)
        if offer is not None:
            compute = offer.compute_per_request
        elif res is not None and res.generator == generator:
            compute = res.compute
        else:
            compute = 0
        g.used_compute += compute
        g.locked_stake += m.penalty
        g.version += 1
        entry = self._requests.get(task_id)
        self._tasks[task_id] = Task(generator, market_id, compute, m.penalty, entry)
        if entry is not None:
            self._unpark(entry, m)
            self._set_state(entry, m, ASSIGNED)
            entry.generator = generator
        gained = res is not None and res.generator == generator and res.compute > compute
        self._refresh(g, gained=gained)

    def task_finished(self, task_id: bytes, outcome: Outcome) -> None:
        """A task ended (proof, invalid inputs, slash, discard): its compute and stake are
        free again (forfeited stake arrives separately, as `remove_stake`). A discarded
        request is open again, but not for the generator that discarded it."""
        task = self._tasks.pop(task_id, None)
        if task is None:
            return
        g = self._gens[task.generator]
        g.used_compute = max(0, g.used_compute - task.compute)
        g.locked_stake = max(0, g.locked_stake - task.penalty)
        g.record(outcome.success)
        g.version += 1
        for market_id in g.offers:
            m = self._markets[market_id]
            self._unrank(g, m)
            self._rank(g, m)
        self._refresh(g, gained=True)
        entry = task.entry
        if entry is None or entry.state != ASSIGNED:
            return
        if outcome is Outcome.DISCARDED:
            self._skip(entry, task.generator, -1, DISCARDED_BY)
            self._enqueue(entry, self._markets[task.market_id])
        else:
            entry.outcome = outcome
            self._close(entry, FINISHED)

    def assign_skipped(self, request_id: bytes, generator: str, reason: str) -> None:
        """`AssignSkipped` for one of our matches: the reservation is released. The request
        goes back to the book, without this generator until its state changes, unless the
        reason is about the request itself (then it leaves the book)."""
        entry = self._requests.get(request_id) or self._history.get(request_id)
        if entry is not None:
            entry.skip_reason = reason
        res = self._pending.get(request_id)
        if res is None or res.generator != generator or entry is None:
            return
        del self._pending[request_id]
        self._release(res)
        m = self._markets[entry.request.market_id]
        stale_fields = reason == "requests: fields mismatch" and res.request != entry.request
        if reason in REQUEST_REASONS and not stale_fields:
            self._close(entry, CLOSED)
            return
        if reason != EXPIRED and not stale_fields:
            self._skip(entry, generator, self._gens[generator].version, reason)
        self._enqueue(entry, m)

    def assignment_failed(self, request_ids: Iterable[bytes]) -> None:
        """Our transaction reverted or was dropped: its requests are open again."""
        for request_id in request_ids:
            res = self._pending.pop(request_id, None)
            if res is not None:
                self._release(res)
                self._enqueue(res.entry, self._markets[res.entry.request.market_id])

    # ----------------------------------------------------------------- matching

    def match(self, now: int, limit: int) -> list[Match]:
        """Up to `limit` new assignments at time `now`, FIFO by `seq` over the shard's
        markets; each reserves its generator's compute and penalty until the chain answers
        (`task_assigned`, `assign_skipped`, `assignment_failed`)."""
        self._expire(now)
        out: list[Match] = []
        queue, requests = self._queue, self._requests
        while True:
            if self._dirty:
                # Woken requests are older than anything queued since they parked: wake
                # them first, so that newcomers do not jump ahead of them.
                self._wake()
            if not queue:
                return out
            while queue and len(out) < limit:
                seq, request_id = heappop(queue)
                entry = requests.get(request_id)
                if entry is None or entry.state != QUEUED or entry.seq != seq:
                    continue  # stale: the request moved on since it was queued
                if now > entry.request.expiry:
                    self._close(entry, EXPIRED_STATE)
                    self._expired.append((request_id, entry.request))
                    continue
                found = self._match_one(entry)
                if found is not None:
                    out.append(found)
            if len(out) >= limit or not self._dirty:
                return out

    # -------------------------------------------------------------------- views

    def explain(self, request_id: bytes, now: int) -> views.RequestView:
        """Why a request is (not) assigned: see `views.explain`."""
        entry = self._requests.get(request_id) or self._history.get(request_id)
        if entry is None:
            return views.unknown_request(request_id)
        return views.explain(entry, self._markets[entry.request.market_id], self._view_ctx(now))

    def generator_view(self, generator: str, now: int) -> views.GeneratorView:
        return views.generator_view(self._gen_or_blank(generator), self._view_ctx(now))

    def book_view(self, market_id: int, limit: int = 50) -> views.MarketBookView:
        return views.book_view(self._market(market_id), self._requests, self._gens, limit)

    def offers(self, market_id: int) -> tuple[views.OfferView, ...]:
        """A market's offers by score (`book_view`'s, without looking at its requests)."""
        return views.market_offers(self._market(market_id), self._gens)

    def _gen_or_blank(self, generator: str) -> Generator:
        return self._gens.get(generator) or Generator(generator, self.window)

    def _view_ctx(self, now: int) -> views.Context:
        return views.Context(
            now, self.window, self._markets, self._gens, self._pending, self._tasks
        )

    # ------------------------------------------------------------------ counters

    def open_count(self, market: int | None = None) -> int:
        """Requests waiting for a generator (queued or parked)."""
        return sum(m.counts[s] for m in self._select(market) for s in WAITING)

    def parked_count(self, market: int | None = None) -> int:
        return sum(m.counts[PARKED] + m.counts[PRICED_OUT] for m in self._select(market))

    def pending_count(self, market: int | None = None) -> int:
        """Matches sent and not yet confirmed, skipped or failed."""
        return sum(m.counts[PENDING] for m in self._select(market))

    def task_count(self) -> int:
        """Live tasks in every market (not only the shard's)."""
        return len(self._tasks)

    def generator_count(self) -> int:
        return sum(1 for g in self._gens.values() if g.status == _ACTIVE)

    def _select(self, market: int | None) -> list[Market]:
        if market is None:
            return list(self._markets.values())
        return [self._market(market)]
