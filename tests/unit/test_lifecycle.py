"""The whole on-chain lifecycle in titanoboa: request, assign, prove, pay; and a slash."""

import boa

from kalypso.market import RequestState
from tests.unit.helpers import PENALTY, UNIT, Kal, mock_proof, state


def test_request_assign_prove_pay(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    held = kal.total_held()
    rid, req, inputs = kal.request(alice, market_id, max_price=50 * UNIT)
    assert state(kal, rid).state == RequestState.OPEN
    kal.assign(rid, req, gen)
    task = state(kal, rid)
    assert task.state == RequestState.ASSIGNED
    assert task.deadline == boa.env.evm.patch.timestamp + req.proof_time
    assert kal.registry.free_stake(gen) == 1_000 * UNIT - PENALTY

    kal.market.submit_proof(rid, req.as_tuple(), inputs, mock_proof(inputs, rid, gen), sender=gen)
    assert state(kal, rid).state == RequestState.FULFILLED
    assert kal.market.is_fulfilled(rid)
    assert kal.market.balance_of(gen) == 10 * UNIT
    assert kal.market.balance_of(alice) == 40 * UNIT
    assert kal.registry.free_stake(gen) == 1_000 * UNIT
    assert kal.total_held() == held + 50 * UNIT


def test_missed_deadline_is_slashed(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _ = kal.request(alice, market_id, max_price=50 * UNIT, proof_time=600)
    kal.assign(rid, req, gen)
    boa.env.time_travel(seconds=601)
    slasher = boa.env.generate_address("slasher")
    kal.market.slash(rid, req.as_tuple(), sender=slasher)
    assert state(kal, rid).state == RequestState.SLASHED
    assert kal.market.balance_of(alice) == 50 * UNIT
    assert kal.market.balance_of(slasher) == PENALTY // 2
    assert kal.market.balance_of(kal.d.treasury) == PENALTY // 2
    assert kal.registry.generators(gen).stake == 900 * UNIT
    assert kal.registry.generators(gen).missed_deadlines == 1
