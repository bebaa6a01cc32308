"""The matching core, path by path: waiting and waking, privacy, shards, explanations,
reliability, ties, and the reservations that stand for sent assignments."""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils import keccak

from kalypso.market import Request
from kalypso.matching import (
    Match,
    Offer,
    OrderBook,
    Outcome,
    ScoreWeights,
    offer_score,
    tie_break,
)
from kalypso.matching.book import OrderBook as BookOrderBook
from kalypso.matching.model import Entry

NOW = 1_000
PENALTY = 10
KEY = b"\x07" * 32
NO_KEY = b"\x00" * 32


def addr(i: int) -> str:
    return "0x" + i.to_bytes(20, "big").hex()


A, B, C, D, E, F, G, H = (addr(i) for i in range(1, 9))


def rid(i: int) -> bytes:
    return keccak(i.to_bytes(32, "big"))


def request(
    market: int = 0, max_price: int = 100, proof_time: int = 600, expiry: int = NOW + 100
) -> Request:
    who = addr(0xEE)
    return Request(market, who, who, max_price, proof_time, expiry, b"\x01" * 32, b"\x02" * 32)


def offer(
    generator: str,
    market: int = 0,
    price: int = 50,
    proof_time: int = 60,
    compute: int = 1,
    key: bytes = KEY,
) -> Offer:
    return Offer(generator, market, price, proof_time, compute, key)


def book_with(*generators: str, markets: tuple[int, ...] = (0,), **kw: Any) -> OrderBook:
    """Markets 0 and 1 (penalty 10); each generator: compute 10, stake 1000, an offer in 0."""
    book = OrderBook(markets=markets)
    book.add_market(0, PENALTY)
    book.add_market(1, PENALTY)
    for g in generators:
        book.register_generator(g, 10, 1_000)
        book.set_offer(offer(g, **kw))
    return book


def confirm(book: OrderBook, matches: list[Match]) -> None:
    for m in matches:
        book.task_assigned(m.request_id, m.request.market_id, m.generator)


def test_book_module_exports_what_the_daemon_imports() -> None:
    assert BookOrderBook is OrderBook


def test_match_reserves_and_reports_what_the_contract_locks() -> None:
    book = book_with(A, price=40, compute=3)
    book.add_request(rid(1), request(), seq=1)
    [m] = book.match(NOW, 10)
    assert (m.request_id, m.generator, m.price, m.compute, m.penalty) == (rid(1), A, 40, 3, 10)
    assert m.encryption_key == KEY
    view = book.generator_view(A, NOW)
    assert (view.reserved_compute, view.reserved_stake, view.free_compute) == (3, 10, 7)
    assert book.pending_count() == 1 and book.open_count() == 0
    confirm(book, [m])
    view = book.generator_view(A, NOW)
    assert (view.used_compute, view.locked_stake, view.reserved_compute) == (3, 10, 0)
    assert book.task_count() == 1 and book.pending_count() == 0


def test_fifo_by_seq_not_by_arrival_order() -> None:
    book = book_with(A)
    book.set_compute(A, 1)
    book.add_request(rid(2), request(), seq=20)
    book.add_request(rid(1), request(), seq=10)
    [m] = book.match(NOW, 10)
    assert m.request_id == rid(1)


def test_add_request_is_idempotent() -> None:
    book = book_with(A)
    book.add_request(rid(1), request(), seq=1)
    book.add_request(rid(1), request(), seq=1)
    assert len(book.match(NOW, 10)) == 1
    book.add_request(rid(1), request(), seq=1)  # pending: still ignored
    assert book.match(NOW, 10) == []


def test_price_too_low_waits_until_a_cheaper_offer_appears() -> None:
    book = book_with(A, price=100)
    book.add_request(rid(1), request(max_price=50), seq=1)
    assert book.match(NOW, 10) == []
    view = book.explain(rid(1), NOW)
    assert (view.state, view.parked_on) == ("parked", "terms")
    assert [(c.generator, c.rule) for c in view.checks] == [(A, "requests: price above max")]
    book.register_generator(B, 10, 1_000)
    book.set_offer(offer(B, price=45))
    [m] = book.match(NOW, 10)
    assert (m.generator, m.price) == (B, 45)


def test_max_price_increase_wakes_a_priced_out_request() -> None:
    book = book_with(A, price=100)
    book.add_request(rid(1), request(max_price=50), seq=1)
    assert book.match(NOW, 10) == []
    book.increase_max_price(rid(1), 100)
    [m] = book.match(NOW, 10)
    assert m.request.max_price == 100 and m.generator == A


def test_parked_request_is_examined_again_when_capacity_is_released() -> None:
    book = book_with(A)
    book.set_compute(A, 1)
    book.add_request(rid(1), request(), seq=1)
    book.add_request(rid(2), request(), seq=2)
    first = book.match(NOW, 10)
    assert [m.request_id for m in first] == [rid(1)]
    view = book.explain(rid(2), NOW)
    assert (view.state, view.parked_on) == ("parked", "capacity")
    assert view.checks[0].rule == "registry: not enough compute"
    confirm(book, first)
    assert book.match(NOW, 10) == []
    book.task_finished(rid(1), Outcome.FULFILLED)
    [m] = book.match(NOW, 10)
    assert (m.request_id, m.generator) == (rid(2), A)


def test_parked_requests_are_not_rescanned_without_a_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    book = book_with(A)
    book.set_compute(A, 1)
    for i in range(50):
        book.add_request(rid(i), request(), seq=i)
    assert len(book.match(NOW, 100)) == 1
    examined: list[bytes] = []
    original = OrderBook._match_one

    def spy(self: OrderBook, entry: Entry) -> Match | None:
        examined.append(entry.request_id)
        return original(self, entry)

    monkeypatch.setattr(OrderBook, "_match_one", spy)
    assert book.match(NOW, 100) == []
    book.register_generator(B, 10, 1_000)  # no offer: nothing to wake
    assert book.match(NOW, 100) == []
    assert examined == []
    book.set_offer(offer(B))  # room for 10: the 10 oldest come back
    assert len(book.match(NOW, 100)) == 10
    assert examined == [rid(i) for i in range(1, 11)]


def test_stake_limits_like_compute() -> None:
    book = book_with(A)
    book.remove_stake(A, 1_000 - 2 * PENALTY)  # room for two penalties
    for i in range(3):
        book.add_request(rid(i), request(), seq=i)
    assert len(book.match(NOW, 10)) == 2
    assert book.explain(rid(2), NOW).checks[0].rule == "registry: not enough free stake"
    book.add_stake(A, PENALTY)
    assert [m.request_id for m in book.match(NOW, 10)] == [rid(2)]


def test_private_request_needs_an_encryption_key() -> None:
    book = book_with(A, price=10, key=NO_KEY)
    book.register_generator(B, 10, 1_000)
    book.set_offer(offer(B, price=90, key=KEY))
    book.add_request(rid(1), request(), seq=1, private=True)
    book.add_request(rid(2), request(), seq=2)
    matched = {m.request_id: m.generator for m in book.match(NOW, 10)}
    assert matched == {rid(1): B, rid(2): A}


def test_private_request_without_any_keyed_offer_waits_for_one() -> None:
    book = book_with(A, key=NO_KEY)
    book.add_request(rid(1), request(), seq=1, private=True)
    assert book.match(NOW, 10) == []
    assert book.explain(rid(1), NOW).checks[0].rule == "matching: no encryption key"
    book.set_offer(offer(A, key=KEY))
    assert [m.generator for m in book.match(NOW, 10)] == [A]


def test_shard_matches_only_its_markets_but_counts_every_task() -> None:
    book = book_with(A, markets=(0,))
    book.set_compute(A, 1)
    book.set_offer(offer(A, market=1))
    book.add_request(rid(1), request(market=1), seq=1)  # another shard's
    assert book.match(NOW, 10) == []
    assert book.explain(rid(1), NOW).state == "unknown"
    book.task_assigned(rid(1), 1, A)  # the other shard assigned it: A is full
    book.add_request(rid(2), request(market=0), seq=2)
    assert book.match(NOW, 10) == []
    book.task_finished(rid(1), Outcome.FULFILLED)
    assert [m.request_id for m in book.match(NOW, 10)] == [rid(2)]


def test_explain_names_each_generators_first_failing_rule() -> None:
    book = OrderBook()
    book.add_market(0, PENALTY)
    cases = {
        A: "requests: price above max",
        B: "registry: not registered",
        C: "registry: generator exiting",
        D: "registry: proof time too long",
        E: "registry: not enough compute",
        F: "registry: not enough free stake",
        G: "matching: no encryption key",
        H: None,
    }
    for g in cases:
        book.register_generator(g, 10, 1_000)
    book.set_offer(offer(A, price=101))
    book.set_offer(offer(B))
    book.request_exit(B)
    book.withdraw(B)
    book.set_offer(offer(C))
    book.request_exit(C)
    book.set_offer(offer(D, proof_time=601))
    book.set_offer(offer(E, compute=11))
    book.set_offer(offer(F))
    book.remove_stake(F, 1_000 - PENALTY + 1)
    book.set_offer(offer(G, key=NO_KEY))
    book.set_offer(offer(H))
    book.add_request(rid(1), request(), seq=1, private=True)
    view = book.explain(rid(1), NOW)
    assert {c.generator: c.rule for c in view.checks} == cases
    assert {c.generator: c.rank for c in view.checks if c.rank} == {H: 1}
    assert {c.rule for c in book.explain(rid(1), NOW + 101).checks} == {"requests: expired"}


def test_explain_unknown_request() -> None:
    assert OrderBook().explain(rid(9), NOW).state == "unknown"


def test_reliable_generator_beats_a_newcomer_at_the_same_price() -> None:
    book = book_with(A, B)
    for i in range(20):  # B completes 20 tasks
        book.task_assigned(rid(1000 + i), 0, B)
        book.task_finished(rid(1000 + i), Outcome.FULFILLED)
    for i in range(5):
        book.add_request(rid(i), request(), seq=i)
    assert {m.generator for m in book.match(NOW, 10)} == {B}
    ranks = {o.generator: o.rank for o in book.book_view(0).offers}
    assert ranks == {B: 1, A: 2}


def test_a_fresh_address_gains_nothing_over_a_slashed_one() -> None:
    book = book_with(A, B)
    for i in range(20):
        book.task_assigned(rid(1000 + i), 0, B)
        book.task_finished(rid(1000 + i), Outcome.SLASHED)
    scores = {o.generator: o.score for o in book.book_view(0).offers}
    assert scores[A] == scores[B]


def test_score_formula_matches_the_documented_example() -> None:
    w = ScoreWeights()
    assert offer_score(100, 600, 20, 20, w) == 101 * 20 * 4200 == 8_484_000
    assert offer_score(60, 600, 0, 20, w) == 10_248_000
    assert offer_score(49, 600, 0, 20, w) < offer_score(100, 600, 20, 20, w)
    with pytest.raises(ValueError):
        ScoreWeights(time_scale=0)


def test_ties_break_by_keccak_of_request_and_generator() -> None:
    winners = set()
    for i in range(16):
        expected = min((A, B, C), key=lambda g: keccak(rid(i) + bytes.fromhex(g[2:])))
        assert expected == min((A, B, C), key=lambda g: tie_break(rid(i), g))
        for order in ((A, B, C), (C, B, A)):
            book = book_with(*order)
            book.add_request(rid(i), request(), seq=1)
            [m] = book.match(NOW, 1)
            assert m.generator == expected
        winners.add(expected)
    assert len(winners) > 1  # spread over generators, not one favoured address


def test_assign_skipped_releases_and_tries_another_generator() -> None:
    book = book_with(A, price=10)
    book.register_generator(B, 10, 1_000)
    book.set_offer(offer(B, price=20))
    book.add_request(rid(1), request(), seq=1)
    [m] = book.match(NOW, 10)
    assert m.generator == A
    book.assign_skipped(rid(1), A, "registry: not enough compute")
    assert book.generator_view(A, NOW).reserved_compute == 0
    [m] = book.match(NOW, 10)
    assert m.generator == B
    assert book.explain(rid(1), NOW).last_skip == "registry: not enough compute"
    book.assignment_failed([rid(1)])  # the tx reverted: back to the book; A still excluded
    [m] = book.match(NOW, 10)
    assert m.generator == B
    book.add_stake(A, 1)  # A changed: it may be offered the request again
    book.assignment_failed([rid(1)])
    assert book.match(NOW, 10)[0].generator == A


def test_request_level_skip_drops_the_request() -> None:
    book = book_with(A)
    book.add_request(rid(1), request(), seq=1)
    book.match(NOW, 10)
    book.assign_skipped(rid(1), A, "requests: not open")
    assert book.match(NOW, 10) == []
    assert book.explain(rid(1), NOW).state == "closed"
    assert book.generator_view(A, NOW).reserved_compute == 0


def test_fields_mismatch_after_a_price_increase_retries_with_new_fields() -> None:
    book = book_with(A)
    book.add_request(rid(1), request(), seq=1)
    book.match(NOW, 10)
    book.increase_max_price(rid(1), 200)
    book.assign_skipped(rid(1), A, "requests: fields mismatch")
    [m] = book.match(NOW, 10)
    assert (m.generator, m.request.max_price) == (A, 200)


def test_another_engine_assigning_our_pending_request() -> None:
    book = book_with(A, B)
    book.add_request(rid(1), request(), seq=1)
    [m] = book.match(NOW, 10)
    other = B if m.generator == A else A
    book.task_assigned(rid(1), 0, other)
    assert book.generator_view(m.generator, NOW).reserved_compute == 0
    assert book.generator_view(other, NOW).used_compute == 1
    assert book.explain(rid(1), NOW).generator == other
    book.assign_skipped(rid(1), m.generator, "requests: not open")  # our tx, later
    assert book.explain(rid(1), NOW).state == "assigned"


def test_offer_change_while_pending_reserves_the_larger_compute() -> None:
    book = book_with(A, compute=1)
    book.add_request(rid(1), request(), seq=1)
    [m] = book.match(NOW, 10)
    book.set_offer(offer(A, compute=4))
    assert book.generator_view(A, NOW).reserved_compute == 4
    confirm(book, [m])  # the contract locked the current offer's compute
    view = book.generator_view(A, NOW)
    assert (view.used_compute, view.reserved_compute) == (4, 0)


def test_discarded_request_reopens_for_other_generators_only() -> None:
    book = book_with(A, B)
    book.add_request(rid(1), request(), seq=1)
    [m] = book.match(NOW, 10)
    confirm(book, [m])
    book.task_finished(rid(1), Outcome.DISCARDED)
    [again] = book.match(NOW, 10)
    assert again.generator != m.generator
    rules = {c.generator: c.rule for c in book.explain(rid(1), NOW).checks}
    assert rules[m.generator] == "matching: discarded by this generator"


def test_expired_requests_leave_the_book() -> None:
    book = book_with(A, price=200)
    book.add_request(rid(1), request(expiry=NOW), seq=1)
    book.add_request(rid(2), request(expiry=NOW + 5), seq=2)
    assert book.match(NOW, 10) == []
    assert book.take_expired() == []
    assert book.match(NOW + 1, 10) == []
    assert [i for i, _ in book.take_expired()] == [rid(1)]
    assert book.explain(rid(1), NOW + 1).state == "expired"
    assert book.open_count() == 1
    book.remove_request(rid(2))  # cancelled
    assert book.open_count() == 0 and book.explain(rid(2), NOW).state == "closed"


def test_exit_and_leave_stop_matching() -> None:
    book = book_with(A, B)
    book.request_exit(A)
    book.leave_market(B, 0)
    book.add_request(rid(1), request(), seq=1)
    assert book.match(NOW, 10) == []
    book.withdraw(A)
    book.register_generator(A, 10, 1_000)  # back, with its kept offer
    assert [m.generator for m in book.match(NOW, 10)] == [A]


def test_generator_view_verdicts_on_recent_requests() -> None:
    book = book_with(A, B, price=50)
    book.set_offer(offer(B, price=40))
    book.set_offer(offer(A, price=50, proof_time=700))
    book.add_request(rid(1), request(proof_time=800), seq=1)  # B wins, A eligible
    book.add_request(rid(2), request(proof_time=600), seq=2)  # A too slow
    book.match(NOW, 10)
    recent = {r.request_id: r.verdict for r in book.generator_view(A, NOW).recent}
    assert recent == {rid(1): "outranked", rid(2): "registry: proof time too long"}
    recent = {r.request_id: r.verdict for r in book.generator_view(B, NOW).recent}
    assert recent == {rid(1): "assigned", rid(2): "assigned"}
    view = book.generator_view(A, NOW)
    assert [(o.market_id, o.rank, o.offers_in_market) for o in view.offers] == [(0, 2, 2)]
    assert book.generator_view(addr(99), NOW).status == "unregistered"


def test_book_view_counts_and_lists() -> None:
    book = book_with(A, price=60)
    book.set_compute(A, 1)
    book.add_request(rid(1), request(), seq=1)
    book.add_request(rid(2), request(), seq=2)
    book.add_request(rid(3), request(max_price=10), seq=3)
    book.match(NOW, 10)
    book.add_request(rid(4), request(), seq=4)
    view = book.book_view(0)
    assert (view.waiting, view.queued, view.parked, view.pending) == (3, 1, 2, 1)
    assert view.queued_ids == (rid(4),)
    assert view.parked_ids == (rid(2), rid(3))
    assert view.pending_ids == (rid(1),)
    assert [o.generator for o in view.offers] == [A]
    assert book.parked_count(0) == 2 and book.generator_count() == 1


def test_unknown_market_is_an_error() -> None:
    book = OrderBook()
    with pytest.raises(KeyError, match="add_market"):
        book.add_request(rid(1), request(market=3), seq=1)


def test_generator_back_from_exit_without_stake_gets_the_waiting_requests_once_staked() -> None:
    book = book_with(A)
    book.request_exit(A)
    book.add_request(rid(1), request(), seq=1)
    assert book.match(NOW, 10) == []
    book.withdraw(A)
    book.add_request(rid(2), request(), seq=2)
    assert book.match(NOW, 10) == []
    book.register_generator(A, 10, 0)  # back, but no stake for the penalty yet
    assert book.match(NOW, 10) == []
    assert book.explain(rid(2), NOW).parked_on == "capacity"
    book.add_stake(A, 1_000)
    assert [m.request_id for m in book.match(NOW, 10)] == [rid(1), rid(2)]


def test_a_request_back_from_a_skip_after_its_expiry_expires() -> None:
    book = book_with(A)
    book.add_request(rid(1), request(expiry=NOW + 5), seq=1)
    [m] = book.match(NOW, 10)
    assert book.match(NOW + 6, 10) == []  # pending: not expired from under the sent tx
    book.assign_skipped(rid(1), A, "requests: expired")
    assert book.match(NOW + 6, 10) == []
    assert [i for i, _ in book.take_expired()] == [m.request_id]


def test_a_parked_request_keeps_its_turn_over_newer_ones() -> None:
    book = book_with(A)
    book.set_compute(A, 1)
    book.add_request(rid(1), request(), seq=1)
    book.add_request(rid(2), request(), seq=2)
    confirm(book, book.match(NOW, 10))  # 1 assigned, 2 parked
    book.task_finished(rid(1), Outcome.FULFILLED)
    book.add_request(rid(3), request(), seq=3)
    assert [m.request_id for m in book.match(NOW, 10)] == [rid(2)]


def test_finished_requests_do_not_pile_up_in_the_expiry_heap() -> None:
    book = book_with(A)
    book.set_compute(A, 3_000)
    book.add_stake(A, 3_000 * PENALTY)
    for i in range(3_000):
        book.add_request(rid(i), request(), seq=i)
    matches = book.match(NOW, 3_000)
    confirm(book, matches)
    for m in matches:
        book.task_finished(m.request_id, Outcome.FULFILLED)
    book.add_request(rid(99_999), request(max_price=1, expiry=NOW + 1), seq=10_000)
    assert book.match(NOW, 10) == []  # priced out; the heap is rebuilt from live requests
    assert len(book._expiries) <= 2 * len(book._requests) + 1024
    assert book.match(NOW + 2, 10) == []
    assert [i for i, _ in book.take_expired()] == [rid(99_999)]  # still expires
