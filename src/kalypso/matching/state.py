"""The orderbook's structures and the transitions every event shares; `OrderBook`
(book.py) is the public face. The hot path is `_match_one`.

A request is in exactly one place: the arrival queue (QUEUED, a heap by seq, pruned
lazily), a market's PARKED list (an active offer suits its terms, but none of those
generators has room: woken, oldest first, when one gains room), a market's PRICED_OUT
list (no active offer suits its terms: woken by a suiting offer or a higher max price),
a reservation (PENDING) or a task (ASSIGNED). A market's `available` list holds, by
score, exactly the offers whose generator could take one more task now, so a request
looks only at offers that can take it, and stops at the first that suits it.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Collection
from heapq import heapify, heappop, heappush

from kalypso.market.types import GeneratorStatus, Request
from kalypso.matching.model import (
    EXPIRED_STATE,
    PARKED,
    PENDING,
    PRICED_OUT,
    QUEUED,
    WAITING,
    Entry,
    Generator,
    Market,
    Match,
    Offer,
    Reservation,
    Task,
    can_take,
    fits,
)
from kalypso.matching.score import DEFAULT_WEIGHTS, ScoreWeights, offer_score, tie_break

_ACTIVE = GeneratorStatus.ACTIVE
#: "no limit" for a generator whose offer locks no compute or no stake
_UNBOUNDED = 1 << 62


class BookState:
    """The data of an `OrderBook` and its shared transitions."""

    def __init__(
        self,
        markets: Collection[int] | None = None,
        weights: ScoreWeights = DEFAULT_WEIGHTS,
        window: int = 20,
        history: int = 10_000,
    ) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self.weights = weights
        self.window = window
        self._shard = None if markets is None else frozenset(markets)
        self._history_size = history
        self._markets: dict[int, Market] = {}
        self._gens: dict[str, Generator] = {}
        self._requests: dict[bytes, Entry] = {}  # live requests
        self._history: OrderedDict[bytes, Entry] = OrderedDict()  # the last finished ones
        self._pending: dict[bytes, Reservation] = {}
        self._tasks: dict[bytes, Task] = {}
        self._queue: list[tuple[int, bytes]] = []  # heap of (seq, request id), lazily pruned
        self._expiries: list[tuple[int, int, bytes]] = []  # heap of (expiry, seq, id)
        #: expired unassigned, not yet taken (`take_expired`); the oldest go past `history`
        self._expired: deque[tuple[bytes, Request]] = deque(maxlen=history)
        #: (generator, market) whose room grew: parked requests may now fit it
        self._dirty: dict[tuple[str, int], None] = {}

    def _market(self, market_id: int) -> Market:
        try:
            return self._markets[market_id]
        except KeyError:
            raise KeyError(f"market {market_id} is unknown: add_market first") from None

    def _gen(self, generator: str) -> Generator:
        g = self._gens.get(generator)
        if g is None:
            g = self._gens[generator] = Generator(generator, self.window)
        return g

    def _rank(self, g: Generator, m: Market) -> None:
        offer = g.offers[m.market_id]
        score = offer_score(offer.price, offer.proof_time, g.successes, self.window, self.weights)
        m.scores[g.address] = score
        m.ranked.add((score, g.address))
        if m.in_shard and can_take(g, offer, m.penalty):
            m.available.add((score, g.address))
            m.avail.add(g.address)

    def _unrank(self, g: Generator, m: Market) -> None:
        key = (m.scores.pop(g.address), g.address)
        m.ranked.remove(key)
        if g.address in m.avail:
            m.available.remove(key)
            m.avail.discard(g.address)

    def _refresh(self, g: Generator, gained: bool) -> None:
        """Bring `g`'s availability up to date in its markets; `gained`: its room may have
        grown, so parked requests that fit it are looked at again."""
        address = g.address
        for market_id, offer in g.offers.items():
            m = self._markets[market_id]
            if not m.in_shard:
                continue
            if can_take(g, offer, m.penalty):
                if address not in m.avail:
                    m.available.add((m.scores[address], address))
                    m.avail.add(address)
                if gained and m.parked:
                    self._dirty[(address, market_id)] = None
            elif address in m.avail:
                m.available.remove((m.scores[address], address))
                m.avail.discard(address)

    def _skip(self, entry: Entry, generator: str, version: int, reason: str) -> None:
        if entry.skips is None:
            entry.skips = {}
        entry.skips[generator] = (version, reason)

    def _drop_reservation(self, res: Reservation) -> None:
        g = self._gens[res.generator]
        g.reserved_compute -= res.compute
        g.reserved_stake -= res.penalty
        del g.reservations[res.entry.request_id]

    def _release(self, res: Reservation) -> None:
        self._drop_reservation(res)
        self._refresh(self._gens[res.generator], gained=True)

    def _set_state(self, entry: Entry, m: Market, state: int) -> None:
        m.counts[entry.state] -= 1
        m.counts[state] += 1
        entry.state = state

    def _enqueue(self, entry: Entry, m: Market) -> None:
        entry.generator = None
        self._set_state(entry, m, QUEUED)
        heappush(self._queue, (entry.seq, entry.request_id))

    def _unpark(self, entry: Entry, m: Market) -> None:
        if entry.state == PARKED:
            m.parked.remove((entry.seq, entry.request_id))
        elif entry.state == PRICED_OUT:
            m.priced_out.remove((-entry.request.max_price, entry.seq, entry.request_id))

    def _close(self, entry: Entry, state: int) -> None:
        m = self._markets[entry.request.market_id]
        self._unpark(entry, m)
        self._set_state(entry, m, state)
        del self._requests[entry.request_id]
        self._history[entry.request_id] = entry
        if len(self._history) > self._history_size:
            self._history.popitem(last=False)

    def _park(self, entry: Entry, m: Market) -> None:
        """No generator can take it now. PARKED if some active offer suits its terms
        (it waits for room), else PRICED_OUT (it waits for an offer or a higher price)."""
        request = entry.request
        frontier = self._frontier(m)[1 if entry.private else 0]
        for price, proof_time in frontier:
            if price > request.max_price:
                break
            if proof_time <= request.proof_time:
                self._set_state(entry, m, PARKED)
                m.parked.add((entry.seq, entry.request_id))
                return
        self._set_state(entry, m, PRICED_OUT)
        m.priced_out.add((-request.max_price, entry.seq, entry.request_id))

    def _frontier(self, m: Market) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        if m.frontier is None:
            terms: tuple[list[tuple[int, int]], list[tuple[int, int]]] = ([], [])
            for keyed, out in ((False, terms[0]), (True, terms[1])):
                pairs = sorted(
                    (o.price, o.proof_time)
                    for generator, o in m.offers.items()
                    if self._gens[generator].status == _ACTIVE and (o.has_key or not keyed)
                )
                for price, proof_time in pairs:
                    if not out or proof_time < out[-1][1]:
                        out.append((price, proof_time))
            m.frontier = terms
        return m.frontier

    def _wake_priced_out(self, m: Market, offer: Offer) -> None:
        """A new or changed active offer: the priced-out requests it suits are examined."""
        if not m.priced_out:
            return
        woken = [
            self._requests[key[2]]
            for key in m.priced_out.irange(maximum=(1 - offer.price,), inclusive=(True, False))
        ]
        for entry in woken:
            if fits(offer, entry.request, entry.private):
                self._unpark(entry, m)
                self._enqueue(entry, m)

    def _match_one(self, entry: Entry) -> Match | None:
        request = entry.request
        m = self._markets[request.market_id]
        max_price, proof_time, private = request.max_price, request.proof_time, entry.private
        skips, offers, gens = entry.skips, m.offers, self._gens
        best: str | None = None
        best_score = 0
        ties: list[str] | None = None
        for score, generator in m.available:
            if best is not None and score != best_score:
                break
            o = offers[generator]
            if o.price > max_price or o.proof_time > proof_time or (private and not o.has_key):
                continue
            if skips is not None and generator in skips:
                version = skips[generator][0]
                if version < 0 or version == gens[generator].version:
                    continue
            if best is None:
                best, best_score = generator, score
            elif ties is None:
                ties = [best, generator]
            else:
                ties.append(generator)
        if best is None:
            self._park(entry, m)
            return None
        request_id = entry.request_id
        if ties is not None:
            best = min(ties, key=lambda generator: tie_break(request_id, generator))
        g = gens[best]
        offer = offers[best]
        compute, penalty = offer.compute_per_request, m.penalty
        g.reserved_compute += compute
        g.reserved_stake += penalty
        res = Reservation(entry, best, compute, penalty)
        self._pending[request_id] = res
        g.reservations[request_id] = res
        self._set_state(entry, m, PENDING)
        entry.generator = best
        free_compute, free_stake = g.free_compute, g.free_stake
        for market_id, o in g.offers.items():
            other = self._markets[market_id]
            if best in other.avail and (
                o.compute_per_request > free_compute or other.penalty > free_stake
            ):
                other.available.remove((other.scores[best], best))
                other.avail.discard(best)
        return Match(request_id, request, best, offer.price, compute, penalty, offer.encryption_key)

    def _expire(self, now: int) -> None:
        if len(self._expiries) > 2 * len(self._requests) + 1024:
            # Finished and cancelled requests leave their entry behind until their expiry
            # (up to 30 days): rebuild from the live ones so the heap stays their size.
            self._expiries = [(e.request.expiry, e.seq, i) for i, e in self._requests.items()]
            heapify(self._expiries)
        expiries = self._expiries
        while expiries and expiries[0][0] < now:
            _, _, request_id = heappop(expiries)
            entry = self._requests.get(request_id)
            if entry is not None and entry.state in WAITING:
                self._close(entry, EXPIRED_STATE)
                self._expired.append((request_id, entry.request))

    def _wake(self) -> None:
        """Parked requests that fit a generator whose room grew go back to the queue, as
        many as it can take (oldest first); it stays marked while more may be waiting."""
        dirty, self._dirty = self._dirty, {}
        for generator, market_id in dirty:
            m = self._markets[market_id]
            g = self._gens[generator]
            offer = g.offers.get(market_id)
            if offer is None or not m.parked:
                continue
            room = self._room(g, offer, m.penalty)
            if room <= 0:
                continue
            woken: list[Entry] = []
            for _, request_id in m.parked:
                entry = self._requests[request_id]
                if fits(offer, entry.request, entry.private) and not self._excluded(entry, g):
                    woken.append(entry)
                    if len(woken) >= room:
                        self._dirty[(generator, market_id)] = None
                        break
            for entry in woken:
                self._unpark(entry, m)
                self._enqueue(entry, m)

    def _excluded(self, entry: Entry, g: Generator) -> bool:
        skip = entry.skips.get(g.address) if entry.skips is not None else None
        return skip is not None and (skip[0] < 0 or skip[0] == g.version)

    @staticmethod
    def _room(g: Generator, offer: Offer, penalty: int) -> int:
        """How many more tasks `g` can take at `offer` now."""
        if not can_take(g, offer, penalty):
            return 0
        compute = offer.compute_per_request
        by_compute = g.free_compute // compute if compute else _UNBOUNDED
        by_stake = g.free_stake // penalty if penalty else _UNBOUNDED
        return min(by_compute, by_stake)
