"""Tasks: assignment rules, proofs, invalid inputs, discard and slash."""

from typing import Any

import boa
import pytest

from kalypso.market import Request, RequestState, TaskState, encode_signals
from tests.unit.helpers import (
    PENALTY,
    UNIT,
    Kal,
    events,
    inline_verifier,
    live,
    mock_proof,
    now,
    prove,
    state,
)

PRICE = 10 * UNIT
STAKE = 1_000 * UNIT
NO_KEY = b"\x00" * 32


def item(rid: bytes, req: Request, inputs: bytes, generator: str) -> tuple[Any, ...]:
    return (rid, req.as_tuple(), inputs, mock_proof(inputs, rid, generator))


def join(kal: Kal, generator: str, market_id: int) -> None:
    kal.registry.join_market(market_id, PRICE, 600, 1, NO_KEY, sender=generator)


@pytest.fixture(scope="module")
def other_market(kal: Kal) -> int:
    return kal.create_market()


@pytest.fixture
def engine(kal: Kal, market_id: int) -> str:
    """A matching engine allowed for `market_id` only."""
    who = boa.env.generate_address("market-engine")
    kal.market.set_market_matching_engine(market_id, who, True, sender=kal.d.owner)
    return str(who)


# ------------------------------------------------------------------ assign


def test_assign_logs_task_assigned(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _ = kal.request(alice, market_id, proof_time=3600)
    kal.market.assign(rid, req.as_tuple(), gen, PRICE, b"sealed-key", sender=kal.d.owner)
    (log,) = events(kal.market, "TaskAssigned")
    assert (log.task_id, log.market_id, log.generator) == (rid, market_id, gen)
    assert (log.price, log.deadline) == (PRICE, now() + 3600)
    assert log.generator_secret == b"sealed-key"


def test_assign_stores_the_task(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, _, _ = live(kal, alice, market_id, gen, proof_time=3600)
    index = kal.registry.generators(gen).index
    assert state(kal, rid) == TaskState(RequestState.ASSIGNED, index, now() + 3600, PRICE, 1)


def test_assign_locks_penalty_and_compute(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    live(kal, alice, market_id, gen)
    g = kal.registry.generators(gen)
    assert (g.locked_stake, g.used_compute) == (PENALTY, 1)


def test_assign_by_non_engine_reverts(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _ = kal.request(alice, market_id)
    with boa.reverts("requests: not a matching engine"):
        kal.market.assign(rid, req.as_tuple(), gen, PRICE, b"", sender=alice)


def test_market_engine_assigns_in_its_market(
    kal: Kal, market_id: int, alice: str, gen: str, engine: str
) -> None:
    rid, req, _ = kal.request(alice, market_id)
    kal.market.assign(rid, req.as_tuple(), gen, PRICE, b"", sender=engine)
    assert state(kal, rid).state == RequestState.ASSIGNED


def test_market_engine_cannot_assign_in_another_market(
    kal: Kal, other_market: int, alice: str, gen: str, engine: str
) -> None:
    join(kal, gen, other_market)
    rid, req, _ = kal.request(alice, other_market)
    with boa.reverts("requests: not a matching engine"):
        kal.market.assign(rid, req.as_tuple(), gen, PRICE, b"", sender=engine)


def test_disallowed_engine_cannot_assign(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    kal.market.set_matching_engine(kal.d.owner, False, sender=kal.d.owner)
    rid, req, _ = kal.request(alice, market_id)
    with boa.reverts("requests: not a matching engine"):
        kal.assign(rid, req, gen)


def test_assign_unknown_request_reverts(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    _, req, _ = kal.request(alice, market_id)
    with boa.reverts("requests: unknown request"):
        kal.assign(b"\x09" * 32, req, gen)


def test_assign_with_wrong_fields_reverts(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _ = kal.request(alice, market_id)
    with boa.reverts("requests: fields mismatch"):
        kal.assign(rid, req.with_max_price(100 * UNIT), gen)


def test_assign_twice_reverts(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _ = live(kal, alice, market_id, gen)
    with boa.reverts("requests: not open"):
        kal.assign(rid, req, gen)


def test_assign_cancelled_request_reverts(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _ = kal.request(alice, market_id)
    kal.market.cancel_request(rid, req.as_tuple(), sender=alice)
    with boa.reverts("requests: not open"):
        kal.assign(rid, req, gen)


def test_assign_after_expiry_reverts(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _ = kal.request(alice, market_id, expiry_in=600)
    boa.env.time_travel(seconds=601)
    with boa.reverts("requests: expired"):
        kal.assign(rid, req, gen)


def test_assign_price_above_max_reverts(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _ = kal.request(alice, market_id, max_price=PRICE - 1)
    with boa.reverts("requests: price above max"):
        kal.assign(rid, req, gen, price=PRICE)


def test_assign_at_exactly_max_price(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, _, _ = live(kal, alice, market_id, gen, max_price=PRICE)
    assert state(kal, rid).price == PRICE


def test_assign_unregistered_generator_reverts(kal: Kal, market_id: int, alice: str) -> None:
    rid, req, _ = kal.request(alice, market_id)
    with boa.reverts("registry: not registered"):
        kal.assign(rid, req, boa.env.generate_address("nobody"))


def test_assign_exiting_generator_reverts(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    kal.registry.request_exit(sender=gen)
    rid, req, _ = kal.request(alice, market_id)
    with boa.reverts("registry: generator exiting"):
        kal.assign(rid, req, gen)


def test_assign_generator_not_in_market_reverts(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    kal.registry.leave_market(market_id, sender=gen)
    rid, req, _ = kal.request(alice, market_id)
    with boa.reverts("registry: not in market"):
        kal.assign(rid, req, gen)


def test_assign_generator_of_another_market_reverts(
    kal: Kal, other_market: int, alice: str, gen: str
) -> None:
    rid, req, _ = kal.request(alice, other_market)
    with boa.reverts("registry: not in market"):
        kal.assign(rid, req, gen)


def test_assign_price_not_the_quote_reverts(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _ = kal.request(alice, market_id)
    with boa.reverts("registry: price is not the quote"):
        kal.assign(rid, req, gen, price=PRICE - 1)


def test_assign_proof_time_too_long_reverts(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _ = kal.request(alice, market_id, proof_time=599)  # the offer promises 600 s
    with boa.reverts("registry: proof time too long"):
        kal.assign(rid, req, gen)


def test_assign_proof_time_equal_to_offer(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, _, _ = live(kal, alice, market_id, gen, proof_time=600)
    assert state(kal, rid).deadline == now() + 600


def test_assign_without_compute_reverts(kal: Kal, market_id: int, alice: str) -> None:
    small = boa.env.generate_address("small")
    kal.register(small, market_id, compute=1)
    live(kal, alice, market_id, small)
    rid, req, _ = kal.request(alice, market_id)
    with boa.reverts("registry: not enough compute"):
        kal.assign(rid, req, small)


def test_assign_without_free_stake_reverts(kal: Kal, market_id: int, alice: str) -> None:
    poor = boa.env.generate_address("poor")
    kal.register(poor, market_id, stake=PENALTY - 1)
    rid, req, _ = kal.request(alice, market_id)
    with boa.reverts("registry: not enough free stake"):
        kal.assign(rid, req, poor)


def test_assign_second_task_when_stake_covers_one_penalty_reverts(
    kal: Kal, market_id: int, alice: str
) -> None:
    one = boa.env.generate_address("one-penalty")
    kal.register(one, market_id, stake=PENALTY)
    live(kal, alice, market_id, one)
    rid, req, _ = kal.request(alice, market_id)
    with boa.reverts("registry: not enough free stake"):
        kal.assign(rid, req, one)


# ------------------------------------------------------------ assign_batch


def test_assign_batch_skips_the_failing_item(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    a = kal.request(alice, market_id)
    b = kal.request(alice, market_id, max_price=PRICE - 1)
    c = kal.request(alice, market_id)
    batch = [(rid, req.as_tuple(), gen, PRICE, b"") for rid, req, _ in (a, b, c)]
    assigned = kal.market.assign_batch(batch, sender=kal.d.owner)
    (skipped,) = events(kal.market, "AssignSkipped")
    assert len(events(kal.market, "TaskAssigned")) == 2
    assert assigned == 2
    assert (skipped.request_id, skipped.generator) == (b[0], gen)
    assert skipped.reason == "requests: price above max"
    assert [state(kal, x[0]).state for x in (a, b, c)] == [
        RequestState.ASSIGNED,
        RequestState.OPEN,
        RequestState.ASSIGNED,
    ]
    assert kal.registry.generators(gen).used_compute == 2


def test_assign_batch_by_non_engine_reverts(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _ = kal.request(alice, market_id)
    with boa.reverts("requests: not a matching engine"):
        kal.market.assign_batch([(rid, req.as_tuple(), gen, PRICE, b"")], sender=alice)
    assert state(kal, rid).state == RequestState.OPEN


def test_assign_batch_same_request_twice_assigns_once(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, _ = kal.request(alice, market_id)
    one = (rid, req.as_tuple(), gen, PRICE, b"")
    assert kal.market.assign_batch([one, one], sender=kal.d.owner) == 1
    assert kal.registry.generators(gen).used_compute == 1


# ------------------------------------------------------------- submit_proof


def test_submit_proof_pays_reward_address_and_refunds(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    reward = boa.env.generate_address("reward")
    kal.registry.set_reward_address(reward, sender=gen)
    rid, req, inputs = live(kal, alice, market_id, gen, max_price=50 * UNIT)
    prove(kal, rid, req, inputs, gen)
    (log,) = events(kal.market, "ProofSubmitted")
    assert (log.task_id, log.generator, log.payment, log.refund) == (rid, gen, PRICE, 40 * UNIT)
    assert log.proof == mock_proof(inputs, rid, gen)
    assert kal.market.balance_of(reward) == PRICE
    assert kal.market.balance_of(gen) == 0
    assert kal.market.balance_of(alice) == 40 * UNIT


def test_submit_proof_releases_stake_and_compute(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, inputs = live(kal, alice, market_id, gen)
    prove(kal, rid, req, inputs, gen)
    g = kal.registry.generators(gen)
    assert (g.stake, g.locked_stake, g.used_compute) == (STAKE, 0, 0)
    assert state(kal, rid).state == RequestState.FULFILLED
    assert kal.market.is_fulfilled(rid)


def test_submit_wrong_proof_reverts_and_task_stays_assigned(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, inputs = live(kal, alice, market_id, gen)
    with boa.reverts("mock: bad proof"):
        kal.market.submit_proof(rid, req.as_tuple(), inputs, b"\x00" * 32, sender=gen)
    assert state(kal, rid).state == RequestState.ASSIGNED


def test_submit_proof_rejected_by_verifier_reverts(kal: Kal, alice: str) -> None:
    verifier = inline_verifier("ctx.task_id == empty(bytes32)")  # accepts only the sample (no task)
    params = (
        verifier.address,
        kal.d.input_verifier.address,
        PENALTY,
        NO_KEY,
        NO_KEY,
        NO_KEY,
        0,
        True,  # all inputs provable: the verifier is what is under test
        1,
    )
    mid = int(kal.markets.create_market(params, b"", b"x", b"", 2**256 - 1, sender=kal.d.owner))
    prover = boa.env.generate_address("prover")
    kal.register(prover, mid)
    rid, req, inputs = live(kal, alice, mid, prover)
    with boa.reverts("requests: proof rejected"):
        kal.market.submit_proof(rid, req.as_tuple(), inputs, b"", sender=prover)
    assert state(kal, rid).state == RequestState.ASSIGNED


def test_submit_proof_by_another_reverts(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, inputs = live(kal, alice, market_id, gen)
    with boa.reverts("requests: not the generator"):
        prove(kal, rid, req, inputs, alice)


def test_submit_proof_with_other_inputs_reverts(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, _ = live(kal, alice, market_id, gen)
    with boa.reverts("requests: inputs mismatch"):
        prove(kal, rid, req, encode_signals([43]), gen)


def test_submit_proof_after_deadline_reverts(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, inputs = live(kal, alice, market_id, gen, proof_time=3600)
    boa.env.time_travel(seconds=3601)
    with boa.reverts("requests: deadline passed"):
        prove(kal, rid, req, inputs, gen)


def test_submit_proof_for_open_request_reverts(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, inputs = kal.request(alice, market_id)
    with boa.reverts("requests: not assigned"):
        prove(kal, rid, req, inputs, gen)


def test_submit_proof_twice_reverts(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, inputs = live(kal, alice, market_id, gen)
    prove(kal, rid, req, inputs, gen)
    with boa.reverts("requests: request finished"):
        prove(kal, rid, req, inputs, gen)


# ------------------------------------------------------------ submit_proofs


def test_submit_proofs_batch_of_one_market(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    tasks = [live(kal, alice, market_id, gen, signals=[i]) for i in range(3)]
    kal.market.submit_proofs([item(*t, gen) for t in tasks], sender=gen)
    assert len(events(kal.market, "ProofSubmitted")) == 3
    assert all(kal.market.is_fulfilled(t[0]) for t in tasks)
    assert kal.market.balance_of(gen) == 3 * PRICE
    assert kal.registry.generators(gen).used_compute == 0


def test_submit_proofs_of_mixed_markets_reverts(
    kal: Kal, market_id: int, other_market: int, alice: str, gen: str
) -> None:
    join(kal, gen, other_market)
    first = live(kal, alice, market_id, gen)
    second = live(kal, alice, other_market, gen)
    with boa.reverts("requests: mixed markets"):
        kal.market.submit_proofs([item(*first, gen), item(*second, gen)], sender=gen)
    assert state(kal, first[0]).state == RequestState.ASSIGNED


def test_submit_proofs_empty_reverts(kal: Kal, gen: str) -> None:
    with boa.reverts("requests: empty batch"):
        kal.market.submit_proofs([], sender=gen)


def test_submit_proofs_with_one_bad_proof_reverts_all(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    tasks = [live(kal, alice, market_id, gen, signals=[i]) for i in range(3)]
    items = [item(*t, gen) for t in tasks]
    items[2] = (*items[2][:3], b"\x00" * 256)
    with boa.reverts("mock: bad proof"):
        kal.market.submit_proofs(items, sender=gen)
    assert [state(kal, t[0]).state for t in tasks] == [RequestState.ASSIGNED] * 3


# ---------------------------------------------------- submit_invalid_inputs


def test_submit_invalid_inputs_pays_and_refunds(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, inputs = live(kal, alice, market_id, gen, signals=[2_000_000], max_price=50 * UNIT)
    kal.market.submit_invalid_inputs(rid, req.as_tuple(), inputs, b"", sender=gen)
    (log,) = events(kal.market, "InvalidInputsProven")
    assert (log.task_id, log.generator, log.payment, log.refund) == (rid, gen, PRICE, 40 * UNIT)
    assert kal.market.balance_of(gen) == PRICE
    assert kal.market.balance_of(alice) == 40 * UNIT
    assert state(kal, rid).state == RequestState.INVALID_INPUTS
    g = kal.registry.generators(gen)
    assert (g.stake, g.locked_stake, g.used_compute) == (STAKE, 0, 0)


def test_submit_invalid_inputs_for_valid_inputs_reverts(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, inputs = live(kal, alice, market_id, gen, signals=[42])
    with boa.reverts("requests: inputs not shown invalid"):
        kal.market.submit_invalid_inputs(rid, req.as_tuple(), inputs, b"", sender=gen)


def test_first_input_at_the_limit_is_invalid(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, inputs = live(kal, alice, market_id, gen, signals=[1_000_000])
    kal.market.submit_invalid_inputs(rid, req.as_tuple(), inputs, b"", sender=gen)
    assert state(kal, rid).state == RequestState.INVALID_INPUTS


def test_first_input_below_the_limit_is_not_shown_invalid(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, inputs = live(kal, alice, market_id, gen, signals=[999_999])
    with boa.reverts("requests: inputs not shown invalid"):
        kal.market.submit_invalid_inputs(rid, req.as_tuple(), inputs, b"", sender=gen)


def test_submit_invalid_inputs_without_input_verifier_reverts(
    kal: Kal, alice: str, gen: str
) -> None:
    provable = kal.create_market(input_verifier=False)
    join(kal, gen, provable)
    rid, req, inputs = live(kal, alice, provable, gen, signals=[2_000_000])
    with boa.reverts("requests: no invalid-input path"):
        kal.market.submit_invalid_inputs(rid, req.as_tuple(), inputs, b"", sender=gen)


def test_submit_invalid_inputs_by_another_reverts(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, inputs = live(kal, alice, market_id, gen, signals=[2_000_000])
    with boa.reverts("requests: not the generator"):
        kal.market.submit_invalid_inputs(rid, req.as_tuple(), inputs, b"", sender=alice)


# ------------------------------------------------------------------ discard


def test_discard_forfeits_a_fifth_of_the_penalty_to_the_treasury(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, _ = live(kal, alice, market_id, gen)
    treasury = kal.market.balance_of(kal.d.treasury)
    kal.market.discard(rid, req.as_tuple(), sender=gen)
    (log,) = events(kal.market, "TaskDiscarded")
    assert (log.task_id, log.generator, log.penalty) == (rid, gen, PENALTY // 5)
    assert kal.market.balance_of(alice) == 0  # a requester gains nothing from a discard
    assert kal.market.balance_of(kal.d.treasury) == treasury + PENALTY // 5
    g = kal.registry.generators(gen)
    assert (g.stake, g.locked_stake, g.used_compute) == (STAKE - PENALTY // 5, 0, 0)
    assert g.missed_deadlines == 0


def test_discarded_request_is_open_and_reassignable(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, _ = live(kal, alice, market_id, gen)
    kal.market.discard(rid, req.as_tuple(), sender=gen)
    assert state(kal, rid) == TaskState(RequestState.OPEN, 0, 0, 0, 0)
    other = boa.env.generate_address("other-generator")
    kal.register(other, market_id)
    kal.assign(rid, req, other)
    assert state(kal, rid).state == RequestState.ASSIGNED


def test_discard_after_deadline_reverts(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _ = live(kal, alice, market_id, gen, proof_time=3600)
    boa.env.time_travel(seconds=3601)
    with boa.reverts("requests: deadline passed"):
        kal.market.discard(rid, req.as_tuple(), sender=gen)


def test_discard_by_another_reverts(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _ = live(kal, alice, market_id, gen)
    with boa.reverts("requests: not the generator"):
        kal.market.discard(rid, req.as_tuple(), sender=alice)


def test_discard_open_request_reverts(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _ = kal.request(alice, market_id)
    with boa.reverts("requests: not assigned"):
        kal.market.discard(rid, req.as_tuple(), sender=gen)


# -------------------------------------------------------------------- slash


def test_slash_before_deadline_reverts(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _ = live(kal, alice, market_id, gen, proof_time=3600)
    boa.env.time_travel(seconds=3599)
    with boa.reverts("requests: deadline not passed"):
        kal.market.slash(rid, req.as_tuple(), sender=alice)


def test_slash_open_request_reverts(kal: Kal, market_id: int, alice: str) -> None:
    rid, req, _ = kal.request(alice, market_id)
    with boa.reverts("requests: not assigned"):
        kal.market.slash(rid, req.as_tuple(), sender=alice)


def test_slash_fulfilled_task_reverts(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, inputs = live(kal, alice, market_id, gen, proof_time=3600)
    prove(kal, rid, req, inputs, gen)
    boa.env.time_travel(seconds=3601)
    with boa.reverts("requests: request finished"):
        kal.market.slash(rid, req.as_tuple(), sender=alice)


def test_slash_splits_penalty_and_refunds_in_full(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, _ = live(kal, alice, market_id, gen, proof_time=3600, max_price=50 * UNIT)
    boa.env.time_travel(seconds=3601)
    slasher = boa.env.generate_address("slasher")
    treasury = kal.market.balance_of(kal.d.treasury)
    kal.market.slash(rid, req.as_tuple(), sender=slasher)
    (log,) = events(kal.market, "TaskSlashed")
    assert (log.task_id, log.generator, log.slasher) == (rid, gen, slasher)
    assert (log.penalty, log.bounty, log.refund) == (PENALTY, PENALTY // 2, 50 * UNIT)
    assert kal.market.balance_of(slasher) == PENALTY // 2
    assert kal.market.balance_of(kal.d.treasury) == treasury + PENALTY // 2
    assert kal.market.balance_of(alice) == 50 * UNIT
    assert state(kal, rid).state == RequestState.SLASHED


def test_slash_counts_a_missed_deadline_and_releases_the_lock(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, _ = live(kal, alice, market_id, gen, proof_time=3600)
    boa.env.time_travel(seconds=3601)
    kal.market.slash(rid, req.as_tuple(), sender=alice)
    g = kal.registry.generators(gen)
    assert (g.stake, g.locked_stake, g.used_compute) == (STAKE - PENALTY, 0, 0)
    assert g.missed_deadlines == 1


def test_slash_twice_reverts(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _ = live(kal, alice, market_id, gen, proof_time=3600)
    boa.env.time_travel(seconds=3601)
    kal.market.slash(rid, req.as_tuple(), sender=alice)
    with boa.reverts("requests: request finished"):
        kal.market.slash(rid, req.as_tuple(), sender=alice)


def test_settlements_keep_tokens_accounted(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    held = kal.total_held()
    rid, req, inputs = live(kal, alice, market_id, gen)
    prove(kal, rid, req, inputs, gen)
    slashed = live(kal, alice, market_id, gen, proof_time=3600)
    boa.env.time_travel(seconds=3601)
    kal.market.slash(slashed[0], slashed[1].as_tuple(), sender=alice)
    assert kal.total_held() == held + 100 * UNIT
    owed = sum(kal.market.balance_of(a) for a in (alice, gen, kal.d.treasury))
    assert owed == 100 * UNIT + PENALTY
