"""Exact-time boundaries: each deadline and expiry is inclusive for its owner, exclusive after."""

import boa

from kalypso.market import Request, RequestState
from tests.unit.helpers import UNIT, Kal, now, prove, state

PROOF_TIME = 3600
EXPIRY_IN = 600


def warp_to(timestamp: int) -> None:
    boa.env.time_travel(seconds=timestamp - now())
    assert now() == timestamp


def live(
    kal: Kal, alice: str, market_id: int, gen: str, signals: list[int] | None = None
) -> tuple[bytes, Request, bytes, int]:
    """An assigned task and its deadline (assignment time + proof time)."""
    rid, req, inputs = kal.request(
        alice, market_id, proof_time=PROOF_TIME, expiry_in=EXPIRY_IN, signals=signals
    )
    kal.assign(rid, req, gen)
    deadline = state(kal, rid).deadline
    assert deadline == now() + PROOF_TIME
    return rid, req, inputs, deadline


# --------------------------------------------------------------- deadline


def test_deadline_counts_from_assignment_not_creation(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, _ = kal.request(alice, market_id, proof_time=PROOF_TIME, expiry_in=EXPIRY_IN)
    boa.env.time_travel(seconds=500)
    kal.assign(rid, req, gen)
    assert state(kal, rid).deadline == now() + PROOF_TIME


def test_submit_proof_at_deadline_succeeds(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, inputs, deadline = live(kal, alice, market_id, gen)
    warp_to(deadline)
    prove(kal, rid, req, inputs, gen)
    assert kal.market.is_fulfilled(rid)


def test_submit_proof_one_second_after_deadline_reverts(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, inputs, deadline = live(kal, alice, market_id, gen)
    warp_to(deadline + 1)
    with boa.reverts("requests: deadline passed"):
        prove(kal, rid, req, inputs, gen)


def test_submit_invalid_inputs_at_deadline_succeeds(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, inputs, deadline = live(kal, alice, market_id, gen, signals=[2_000_000])
    warp_to(deadline)
    kal.market.submit_invalid_inputs(rid, req.as_tuple(), inputs, b"", sender=gen)
    assert state(kal, rid).state == RequestState.INVALID_INPUTS


def test_submit_invalid_inputs_one_second_after_deadline_reverts(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, inputs, deadline = live(kal, alice, market_id, gen, signals=[2_000_000])
    warp_to(deadline + 1)
    with boa.reverts("requests: deadline passed"):
        kal.market.submit_invalid_inputs(rid, req.as_tuple(), inputs, b"", sender=gen)


def test_discard_at_deadline_succeeds(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _, deadline = live(kal, alice, market_id, gen)
    warp_to(deadline)
    kal.market.discard(rid, req.as_tuple(), sender=gen)
    assert state(kal, rid).state == RequestState.OPEN


def test_discard_one_second_after_deadline_reverts(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, _, deadline = live(kal, alice, market_id, gen)
    warp_to(deadline + 1)
    with boa.reverts("requests: deadline passed"):
        kal.market.discard(rid, req.as_tuple(), sender=gen)


def test_slash_at_deadline_reverts(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _, deadline = live(kal, alice, market_id, gen)
    warp_to(deadline)
    with boa.reverts("requests: deadline not passed"):
        kal.market.slash(rid, req.as_tuple(), sender=alice)


def test_slash_one_second_after_deadline_succeeds(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, _, deadline = live(kal, alice, market_id, gen)
    warp_to(deadline + 1)
    kal.market.slash(rid, req.as_tuple(), sender=alice)
    assert state(kal, rid).state == RequestState.SLASHED


# ----------------------------------------------------------------- expiry


def test_assign_at_expiry_succeeds(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _ = kal.request(alice, market_id, proof_time=PROOF_TIME, expiry_in=EXPIRY_IN)
    warp_to(req.expiry)
    kal.assign(rid, req, gen)
    assert state(kal, rid).deadline == req.expiry + PROOF_TIME


def test_assign_one_second_after_expiry_reverts(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, _ = kal.request(alice, market_id, proof_time=PROOF_TIME, expiry_in=EXPIRY_IN)
    warp_to(req.expiry + 1)
    with boa.reverts("requests: expired"):
        kal.assign(rid, req, gen)


def test_cancel_expired_at_expiry_reverts(kal: Kal, market_id: int, alice: str) -> None:
    rid, req, _ = kal.request(alice, market_id, expiry_in=EXPIRY_IN)
    warp_to(req.expiry)
    with boa.reverts("requests: not expired"):
        kal.market.cancel_expired(rid, req.as_tuple())


def test_cancel_expired_one_second_after_expiry_succeeds(
    kal: Kal, market_id: int, alice: str
) -> None:
    rid, req, _ = kal.request(alice, market_id, expiry_in=EXPIRY_IN, max_price=50 * UNIT)
    warp_to(req.expiry + 1)
    kal.market.cancel_expired(rid, req.as_tuple())
    assert state(kal, rid).state == RequestState.CLOSED
    assert kal.market.balance_of(alice) == 50 * UNIT


def test_increase_max_price_at_expiry_succeeds(kal: Kal, market_id: int, alice: str) -> None:
    rid, req, _ = kal.request(alice, market_id, expiry_in=EXPIRY_IN, max_price=50 * UNIT)
    warp_to(req.expiry)
    kal.market.increase_max_price(rid, req.as_tuple(), 60 * UNIT, sender=alice)
    assert kal.market.request_hash(rid) == req.with_max_price(60 * UNIT).commitment()


def test_increase_max_price_one_second_after_expiry_reverts(
    kal: Kal, market_id: int, alice: str
) -> None:
    rid, req, _ = kal.request(alice, market_id, expiry_in=EXPIRY_IN)
    warp_to(req.expiry + 1)
    with boa.reverts("requests: expired"):
        kal.market.increase_max_price(rid, req.as_tuple(), 60 * UNIT, sender=alice)


def test_request_expiring_now_is_assignable_in_the_same_second(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, _ = kal.request(alice, market_id, proof_time=PROOF_TIME, expiry_in=0)
    kal.assign(rid, req, gen)
    assert state(kal, rid).state == RequestState.ASSIGNED


def test_discarded_task_gets_a_fresh_deadline_when_reassigned(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, _, _ = live(kal, alice, market_id, gen)
    boa.env.time_travel(seconds=300)
    kal.market.discard(rid, req.as_tuple(), sender=gen)
    kal.assign(rid, req, gen)
    assert state(kal, rid).deadline == now() + PROOF_TIME
