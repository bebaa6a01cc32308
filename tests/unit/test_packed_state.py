"""Packed storage and final states: ids are never reusable, views unpack what hot paths pack."""

import boa

from kalypso.contracts import source_path
from kalypso.market import RequestState, TaskState
from tests.unit.helpers import UNIT, Kal, mock_proof


def state(kal: Kal, rid: bytes) -> RequestState:
    return TaskState.from_tuple(kal.market.request_state(rid)).state


def test_cancelled_request_is_closed_and_its_id_never_returns(
    kal: Kal, market_id: int, alice: str
) -> None:
    salt = b"\x07" * 32
    rid, req, _ = kal.request(alice, market_id, salt=salt)
    kal.market.cancel_request(rid, req.as_tuple(), sender=alice)
    assert state(kal, rid) == RequestState.CLOSED
    assert kal.market.request_hash(rid) == req.commitment()
    with boa.reverts("requests: request exists"):
        kal.request(alice, market_id, salt=salt)


def test_expired_request_is_closed(kal: Kal, market_id: int, alice: str) -> None:
    rid, req, _ = kal.request(alice, market_id, expiry_in=10)
    boa.env.time_travel(seconds=11)
    kal.market.cancel_expired(rid, req.as_tuple())
    assert state(kal, rid) == RequestState.CLOSED
    with boa.reverts("requests: not open"):
        kal.market.cancel_expired(rid, req.as_tuple())


def test_fulfilled_request_clears_its_hash_and_keeps_its_id(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    salt = b"\x08" * 32
    rid, req, inputs = kal.request(alice, market_id, salt=salt)
    kal.assign(rid, req, gen)
    kal.market.submit_proof(rid, req.as_tuple(), inputs, mock_proof(inputs, rid, gen), sender=gen)
    assert kal.market.request_hash(rid) == b"\x00" * 32
    assert state(kal, rid) == RequestState.FULFILLED
    with boa.reverts("requests: request finished"):
        kal.market.cancel_request(rid, req.as_tuple(), sender=alice)
    with boa.reverts("requests: request exists"):
        kal.request(alice, market_id, salt=salt)


def test_unknown_request_state_is_unknown(kal: Kal) -> None:
    assert state(kal, b"\x01" * 32) == RequestState.UNKNOWN


def test_only_the_registry_releases_stake(kal: Kal, alice: str) -> None:
    with boa.reverts("requests: not the registry"):
        kal.market.release_stake(alice, 1, sender=alice)


def test_stake_is_held_by_the_marketplace(kal: Kal, market_id: int) -> None:
    generator = boa.env.generate_address("vaulted")
    before = kal.token.balanceOf(kal.market.address)
    kal.register(generator, market_id, stake=250 * UNIT)
    assert kal.token.balanceOf(kal.market.address) == before + 250 * UNIT
    assert kal.token.balanceOf(kal.registry.address) == 0
    kal.registry.unstake(50 * UNIT, sender=generator)
    assert kal.token.balanceOf(kal.market.address) == before + 200 * UNIT


def test_stake_above_128_bits_reverts(kal: Kal) -> None:
    generator = boa.env.generate_address("whale")
    with boa.reverts("registry: stake too large"):
        kal.registry.register(generator, 1, 2**128, sender=generator)


def test_penalty_above_88_bits_reverts(kal: Kal) -> None:
    with boa.reverts("markets: penalty too large"):
        kal.create_market(penalty=2**88)
    market_id = kal.create_market(penalty=2**88 - 1)  # beside the verifier and the flags
    assert kal.markets.market(market_id).slashing_penalty == 2**88 - 1


def test_registry_without_marketplace_cannot_take_stake(kal: Kal) -> None:
    registry = boa.load_partial(str(source_path("GeneratorRegistry"))).deploy(kal.token.address)
    generator = boa.env.generate_address("early")
    with boa.reverts("registry: marketplace not set"):
        registry.register(generator, 1, 1, sender=generator)


def test_reward_address_back_to_self_pays_the_generator(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    other = boa.env.generate_address("payee")
    kal.registry.set_reward_address(other, sender=gen)
    assert kal.registry.generators(gen).reward_address == other
    kal.registry.set_reward_address(gen, sender=gen)
    assert kal.registry.generators(gen).reward_address == gen
    rid, req, inputs = kal.request(alice, market_id)
    kal.assign(rid, req, gen)
    kal.market.submit_proof(rid, req.as_tuple(), inputs, mock_proof(inputs, rid, gen), sender=gen)
    assert kal.market.balance_of(gen) == 10 * UNIT and kal.market.balance_of(other) == 0


def test_generator_fields_round_trip_through_the_packed_slots(kal: Kal, market_id: int) -> None:
    generator = boa.env.generate_address("packed")
    kal.fund(generator)
    kal.registry.register(generator, 2**32 - 1, 3 * UNIT, sender=generator)
    kal.registry.join_market(
        market_id, 2**96 - 1, 86_400, 2**32 - 1, b"\x09" * 32, sender=generator
    )
    g = kal.registry.generators(generator)
    assert (g.status, g.declared_compute, g.stake, g.locked_stake) == (1, 2**32 - 1, 3 * UNIT, 0)
    offer = kal.registry.offers(generator, market_id)
    assert offer == (True, 2**96 - 1, 86_400, 2**32 - 1, b"\x09" * 32)
    kal.registry.request_exit(sender=generator)
    g = kal.registry.generators(generator)
    assert g.status == 2 and g.exit_requested_at == boa.env.evm.patch.timestamp
