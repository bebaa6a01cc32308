"""GeneratorRegistry: every function, its happy path and each revert, by the right and wrong caller.

The `gen` fixture is a generator registered in `market_id` with stake 1000, compute 10,
price 10, 600 s and one compute per request.

Staked tokens are held by the marketplace: the registry pulls them there
(`transferFrom(generator -> marketplace)`, the generator approving the registry),
pays them out through `marketplace.release_stake`, and keeps only the accounting,
so it never holds a token; a forfeit moves no token at all.
"""

from __future__ import annotations

from typing import Any

import boa
import pytest

from kalypso import contracts
from kalypso.market import GeneratorStatus, RequestState, TaskState
from tests.unit.helpers import PENALTY, UNIT, Kal, live, prove

STAKE = 1_000 * UNIT
PRICE = 10 * UNIT
KEY = b"\x11" * 32
ZERO_KEY = b"\x00" * 32
ZERO = "0x" + "00" * 20
MAX_STAKE = 2**128 - 1

# An ERC20 whose transferFrom moves nothing and returns False: one way the
# registry's own "transfer failed" check is reached (snekmate's token reverts first).
FALSE_TOKEN = """
# pragma version ~=0.4.3
@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    return False

@external
def transfer(to: address, amount: uint256) -> bool:
    return False

@external
@view
def balanceOf(owner: address) -> uint256:
    return 0
"""

# An ERC20 whose transferFrom returns True but moves nothing: caught by the
# registry's check of the marketplace's balance change.
NOOP_TOKEN = """
# pragma version ~=0.4.3
@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    return True

@external
@view
def balanceOf(owner: address) -> uint256:
    return 0
"""


def new_account(kal: Kal, name: str, *, approve: bool = True) -> str:
    """A funded address that has not registered."""
    who = boa.env.generate_address(name)
    kal.fund(who, approve=approve)
    return who


def fresh_registry(kal: Kal, token: str | None = None) -> Any:
    """A registry with no marketplace bound, owned by the deployment owner."""
    source = str(contracts.source_path("GeneratorRegistry"))
    return boa.load_partial(source).deploy(token or kal.token.address)


def bound_registry(kal: Kal, token: str) -> Any:
    """A fresh registry over `token` whose marketplace is the deployment's."""
    registry = fresh_registry(kal, token)
    registry.set_marketplace(kal.market.address, sender=kal.d.owner)
    return registry


def vault(kal: Kal) -> int:
    """Tokens held by the marketplace, which holds every staked token."""
    return int(kal.token.balanceOf(kal.market.address))


def assert_registry_holds_nothing(kal: Kal) -> None:
    assert kal.token.balanceOf(kal.registry.address) == 0


def logs(contract: Any, name: str) -> list[Any]:
    """Decoded logs named `name` of the contract's last call (child calls included)."""
    return [e for e in contract.get_logs() if type(e).__name__ == name]


def task(kal: Kal, rid: bytes) -> TaskState:
    return TaskState.from_tuple(kal.market.request_state(rid))


def exit_fully(kal: Kal, generator: str) -> None:
    kal.registry.request_exit(sender=generator)
    kal.registry.withdraw(sender=generator)


# ------------------------------------------------------------ set_marketplace


def test_set_marketplace_binds_once(kal: Kal) -> None:
    registry = fresh_registry(kal)
    assert registry.marketplace() == ZERO
    registry.set_marketplace(kal.market.address, sender=kal.d.owner)
    (event,) = logs(registry, "MarketplaceSet")
    assert registry.marketplace() == kal.market.address
    assert event.marketplace == kal.market.address


def test_set_marketplace_only_owner(kal: Kal) -> None:
    registry = fresh_registry(kal)
    stranger = boa.env.generate_address("stranger")
    with boa.reverts("ownable: caller is not the owner"):
        registry.set_marketplace(kal.market.address, sender=stranger)


def test_set_marketplace_twice_reverts(kal: Kal) -> None:
    registry = fresh_registry(kal)
    registry.set_marketplace(kal.market.address, sender=kal.d.owner)
    with boa.reverts("registry: marketplace already set"):
        registry.set_marketplace(kal.d.mock_verifier.address, sender=kal.d.owner)
    with boa.reverts("registry: marketplace already set"):
        kal.registry.set_marketplace(kal.market.address, sender=kal.d.owner)


def test_set_marketplace_not_a_contract(kal: Kal) -> None:
    registry = fresh_registry(kal)
    with boa.reverts("registry: marketplace not a contract"):
        registry.set_marketplace(boa.env.generate_address("eoa"), sender=kal.d.owner)


# ------------------------------------------------------------------- register


def test_register(kal: Kal) -> None:
    g = new_account(kal, "g")
    reward = boa.env.generate_address("reward")
    count = kal.registry.generator_count()
    held = vault(kal)
    wallet = kal.token.balanceOf(g)
    assert tuple(kal.registry.generators(g)) == (0, 0, ZERO, 0, 0, 0, 0, 0, 0)

    kal.registry.register(reward, 7, 300 * UNIT, sender=g)
    (transfer,) = logs(kal.registry, "Transfer")
    (event,) = logs(kal.registry, "GeneratorRegistered")

    assert (event.generator, event.index, event.reward_address) == (g, count + 1, reward)
    assert (event.declared_compute, event.stake) == (7, 300 * UNIT)
    info = kal.registry.generators(g)
    assert info.status == GeneratorStatus.ACTIVE
    assert info.index == count + 1
    assert info.reward_address == reward
    assert (info.stake, info.locked_stake) == (300 * UNIT, 0)
    assert (info.declared_compute, info.used_compute) == (7, 0)
    assert (info.exit_requested_at, info.missed_deadlines) == (0, 0)
    assert kal.registry.generator_count() == count + 1
    assert kal.registry.generator_at(count + 1) == g
    assert tuple(info) == (1, count + 1, reward, 300 * UNIT, 0, 7, 0, 0, 0)
    # pulled straight from the generator into the marketplace
    assert (transfer.sender, transfer.receiver, transfer.value) == (
        g,
        kal.market.address,
        300 * UNIT,
    )
    assert vault(kal) == held + 300 * UNIT
    assert kal.token.balanceOf(g) == wallet - 300 * UNIT
    assert_registry_holds_nothing(kal)
    assert kal.registry.free_stake(g) == 300 * UNIT


def test_register_with_own_reward_address_reports_it(kal: Kal) -> None:
    g = new_account(kal, "g")
    kal.registry.register(g, 1, 0, sender=g)
    (event,) = logs(kal.registry, "GeneratorRegistered")
    assert event.reward_address == g
    assert kal.registry.generators(g).reward_address == g


def test_register_assigns_consecutive_indexes(kal: Kal) -> None:
    count = kal.registry.generator_count()
    first, second = new_account(kal, "first"), new_account(kal, "second")
    kal.registry.register(first, 1, 0, sender=first)
    kal.registry.register(second, 1, 0, sender=second)
    assert kal.registry.generators(first).index == count + 1
    assert kal.registry.generators(second).index == count + 2
    assert kal.registry.generator_at(count + 2) == second


def test_register_zero_stake_needs_no_approval(kal: Kal) -> None:
    g = new_account(kal, "g", approve=False)
    held = vault(kal)
    kal.registry.register(g, 1, 0, sender=g)
    assert logs(kal.registry, "Transfer") == []
    assert kal.registry.generators(g).status == GeneratorStatus.ACTIVE
    assert kal.registry.free_stake(g) == 0
    assert vault(kal) == held


def test_register_twice_reverts(kal: Kal, gen: str) -> None:
    with boa.reverts("registry: already registered"):
        kal.registry.register(gen, 10, 0, sender=gen)


def test_register_while_exiting_reverts(kal: Kal, gen: str) -> None:
    kal.registry.request_exit(sender=gen)
    with boa.reverts("registry: already registered"):
        kal.registry.register(gen, 10, 0, sender=gen)


def test_register_zero_reward_address(kal: Kal) -> None:
    g = new_account(kal, "g")
    with boa.reverts("registry: zero address"):
        kal.registry.register(ZERO, 10, 0, sender=g)


@pytest.mark.parametrize("compute", [0, 2**32])
def test_register_bad_compute(kal: Kal, compute: int) -> None:
    g = new_account(kal, "g")
    with boa.reverts("registry: bad compute"):
        kal.registry.register(g, compute, 0, sender=g)


def test_register_max_compute(kal: Kal) -> None:
    g = new_account(kal, "g")
    kal.registry.register(g, 2**32 - 1, 0, sender=g)
    assert kal.registry.generators(g).declared_compute == 2**32 - 1


def test_register_without_approval_reverts_in_the_token(kal: Kal) -> None:
    # The snekmate token reverts on the missing allowance before the registry's
    # own check: its reason is the one that bubbles up.
    g = new_account(kal, "g", approve=False)
    with boa.reverts("erc20: insufficient allowance"):
        kal.registry.register(g, 10, 5 * UNIT, sender=g)
    assert kal.registry.generators(g).status == GeneratorStatus.UNREGISTERED


def test_register_needs_approval_of_the_registry_not_the_marketplace(kal: Kal) -> None:
    # The registry pulls into the marketplace: the registry is the spender.
    g = new_account(kal, "g", approve=False)
    kal.token.approve(kal.market.address, 2**256 - 1, sender=g)
    with boa.reverts("erc20: insufficient allowance"):
        kal.registry.register(g, 10, 5 * UNIT, sender=g)
    kal.token.approve(kal.registry.address, 5 * UNIT, sender=g)
    kal.registry.register(g, 10, 5 * UNIT, sender=g)
    assert kal.token.allowance(g, kal.registry.address) == 0
    assert kal.token.allowance(g, kal.market.address) == 2**256 - 1
    assert kal.registry.generators(g).stake == 5 * UNIT


@pytest.mark.parametrize("source", [FALSE_TOKEN, NOOP_TOKEN])
def test_register_transfer_failed(kal: Kal, source: str) -> None:
    token = boa.loads(source)
    registry = bound_registry(kal, token.address)
    g = boa.env.generate_address("g")
    with boa.reverts("registry: transfer failed"):
        registry.register(g, 10, 5 * UNIT, sender=g)
    registry.register(g, 10, 0, sender=g)
    with boa.reverts("registry: transfer failed"):
        registry.add_stake(1, sender=g)
    assert registry.generators(g).stake == 0


def test_registry_without_marketplace_takes_no_stake(kal: Kal) -> None:
    registry = fresh_registry(kal)
    g = new_account(kal, "g")
    kal.token.approve(registry.address, 2**256 - 1, sender=g)
    wallet = kal.token.balanceOf(g)
    with boa.reverts("registry: marketplace not set"):
        registry.register(g, 10, 5 * UNIT, sender=g)
    # no stake, no pull: registering needs no marketplace
    registry.register(g, 10, 0, sender=g)
    assert registry.generators(g).status == GeneratorStatus.ACTIVE
    with boa.reverts("registry: marketplace not set"):
        registry.add_stake(1, sender=g)
    assert registry.generators(g).stake == 0
    assert kal.token.balanceOf(g) == wallet
    assert kal.token.balanceOf(registry.address) == 0


def test_register_stake_too_large(kal: Kal) -> None:
    g = new_account(kal, "g")
    with boa.reverts("registry: stake too large"):
        kal.registry.register(g, 10, MAX_STAKE + 1, sender=g)
    assert kal.registry.generators(g).status == GeneratorStatus.UNREGISTERED


def test_register_largest_stake(kal: Kal) -> None:
    g = new_account(kal, "g")
    kal.token.mint(g, MAX_STAKE, sender=kal.d.owner)
    held = vault(kal)
    kal.registry.register(g, 10, MAX_STAKE, sender=g)
    info = kal.registry.generators(g)
    assert (info.stake, info.locked_stake) == (MAX_STAKE, 0)
    assert kal.registry.free_stake(g) == MAX_STAKE
    assert vault(kal) == held + MAX_STAKE
    with boa.reverts("registry: stake too large"):
        kal.registry.add_stake(1, sender=g)
    kal.registry.unstake(MAX_STAKE, sender=g)
    assert kal.registry.generators(g).stake == 0
    assert vault(kal) == held
    assert_registry_holds_nothing(kal)


def test_reregister_after_exit_keeps_index_and_missed_deadlines(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, _ = live(kal, alice, market_id, gen)
    boa.env.time_travel(seconds=req.proof_time + 1)
    kal.market.slash(rid, req.as_tuple(), sender=alice)
    index = kal.registry.generators(gen).index
    count = kal.registry.generator_count()
    exit_fully(kal, gen)
    assert kal.registry.generators(gen).status == GeneratorStatus.UNREGISTERED

    kal.registry.register(gen, 3, 50 * UNIT, sender=gen)
    (event,) = logs(kal.registry, "GeneratorRegistered")

    info = kal.registry.generators(gen)
    assert info.status == GeneratorStatus.ACTIVE
    assert info.index == index
    assert info.missed_deadlines == 1
    assert (info.stake, info.locked_stake, info.declared_compute) == (50 * UNIT, 0, 3)
    assert (info.exit_requested_at, info.used_compute) == (0, 0)
    assert kal.registry.generator_count() == count
    assert kal.registry.generator_at(index) == gen
    assert event.index == index


# ------------------------------------------------------------------ add_stake


def test_add_stake(kal: Kal, gen: str) -> None:
    held = vault(kal)
    kal.registry.add_stake(25 * UNIT, sender=gen)
    (event,) = logs(kal.registry, "StakeAdded")
    (transfer,) = logs(kal.registry, "Transfer")
    assert kal.registry.generators(gen).stake == STAKE + 25 * UNIT
    assert vault(kal) == held + 25 * UNIT
    assert_registry_holds_nothing(kal)
    assert (transfer.sender, transfer.receiver, transfer.value) == (
        gen,
        kal.market.address,
        25 * UNIT,
    )
    assert (event.generator, event.amount) == (gen, 25 * UNIT)


def test_add_stake_too_large(kal: Kal, gen: str) -> None:
    held = vault(kal)
    with boa.reverts("registry: stake too large"):
        kal.registry.add_stake(MAX_STAKE - STAKE + 1, sender=gen)
    assert kal.registry.generators(gen).stake == STAKE
    assert vault(kal) == held


def test_add_stake_while_exiting(kal: Kal, gen: str) -> None:
    kal.registry.request_exit(sender=gen)
    kal.registry.add_stake(UNIT, sender=gen)
    assert kal.registry.generators(gen).stake == STAKE + UNIT


def test_add_stake_zero_amount(kal: Kal, gen: str) -> None:
    with boa.reverts("registry: zero amount"):
        kal.registry.add_stake(0, sender=gen)


def test_add_stake_not_registered(kal: Kal) -> None:
    g = new_account(kal, "g")
    with boa.reverts("registry: not registered"):
        kal.registry.add_stake(UNIT, sender=g)


# -------------------------------------------------------------------- unstake


def test_unstake(kal: Kal, gen: str) -> None:
    wallet = kal.token.balanceOf(gen)
    held = vault(kal)
    kal.registry.unstake(400 * UNIT, sender=gen)
    (event,) = logs(kal.registry, "StakeRemoved")
    (transfer,) = logs(kal.registry, "Transfer")
    assert kal.registry.generators(gen).stake == STAKE - 400 * UNIT
    assert kal.token.balanceOf(gen) == wallet + 400 * UNIT
    # paid out by the marketplace (release_stake)
    assert (transfer.sender, transfer.receiver, transfer.value) == (
        kal.market.address,
        gen,
        400 * UNIT,
    )
    assert vault(kal) == held - 400 * UNIT
    assert_registry_holds_nothing(kal)
    assert (event.generator, event.amount) == (gen, 400 * UNIT)


def test_release_stake_only_the_registry(kal: Kal, gen: str) -> None:
    held = vault(kal)
    for caller in (gen, kal.d.owner):
        with boa.reverts("requests: not the registry"):
            kal.market.release_stake(caller, UNIT, sender=caller)
    assert vault(kal) == held


def test_unstake_all_free_stake(kal: Kal, gen: str) -> None:
    kal.registry.unstake(STAKE, sender=gen)
    assert kal.registry.generators(gen).stake == 0
    assert kal.registry.free_stake(gen) == 0


def test_unstake_zero_amount(kal: Kal, gen: str) -> None:
    with boa.reverts("registry: zero amount"):
        kal.registry.unstake(0, sender=gen)


def test_unstake_not_registered(kal: Kal) -> None:
    g = new_account(kal, "g")
    with boa.reverts("registry: not registered"):
        kal.registry.unstake(UNIT, sender=g)


def test_unstake_more_than_stake(kal: Kal, gen: str) -> None:
    with boa.reverts("registry: stake locked"):
        kal.registry.unstake(STAKE + 1, sender=gen)


def test_unstake_only_free_stake_while_task_live(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    live(kal, alice, market_id, gen)
    assert kal.registry.generators(gen).locked_stake == PENALTY
    assert kal.registry.free_stake(gen) == STAKE - PENALTY
    with boa.reverts("registry: stake locked"):
        kal.registry.unstake(STAKE - PENALTY + 1, sender=gen)
    kal.registry.unstake(STAKE - PENALTY, sender=gen)
    assert kal.registry.generators(gen).stake == PENALTY
    assert kal.registry.free_stake(gen) == 0


# ------------------------------------------------------ set_declared_compute


def test_set_declared_compute(kal: Kal, gen: str) -> None:
    kal.registry.set_declared_compute(42, sender=gen)
    (event,) = logs(kal.registry, "ComputeChanged")
    assert kal.registry.generators(gen).declared_compute == 42
    assert (event.generator, event.declared_compute) == (gen, 42)


def test_set_declared_compute_not_registered(kal: Kal) -> None:
    g = new_account(kal, "g")
    with boa.reverts("registry: not registered"):
        kal.registry.set_declared_compute(5, sender=g)


@pytest.mark.parametrize("compute", [0, 2**32])
def test_set_declared_compute_bad(kal: Kal, gen: str, compute: int) -> None:
    with boa.reverts("registry: bad compute"):
        kal.registry.set_declared_compute(compute, sender=gen)


def test_set_declared_compute_not_below_used(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    live(kal, alice, market_id, gen)
    live(kal, alice, market_id, gen)
    assert kal.registry.generators(gen).used_compute == 2
    with boa.reverts("registry: compute in use"):
        kal.registry.set_declared_compute(1, sender=gen)
    kal.registry.set_declared_compute(2, sender=gen)
    assert kal.registry.generators(gen).declared_compute == 2


# -------------------------------------------------------- set_reward_address


def test_set_reward_address_redirects_earnings(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    payee = boa.env.generate_address("payee")
    kal.registry.set_reward_address(payee, sender=gen)
    (event,) = logs(kal.registry, "RewardAddressChanged")
    assert kal.registry.generators(gen).reward_address == payee
    assert (event.generator, event.reward_address) == (gen, payee)

    rid, req, inputs = live(kal, alice, market_id, gen)
    prove(kal, rid, req, inputs, gen)
    assert kal.market.balance_of(payee) == PRICE
    assert kal.market.balance_of(gen) == 0


def test_set_reward_address_back_to_self(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    payee = boa.env.generate_address("payee")
    kal.registry.set_reward_address(payee, sender=gen)
    kal.registry.set_reward_address(gen, sender=gen)
    (event,) = logs(kal.registry, "RewardAddressChanged")
    assert (event.generator, event.reward_address) == (gen, gen)
    assert kal.registry.generators(gen).reward_address == gen

    rid, req, inputs = live(kal, alice, market_id, gen)
    prove(kal, rid, req, inputs, gen)
    assert kal.market.balance_of(gen) == PRICE
    assert kal.market.balance_of(payee) == 0


def test_reward_address_still_reported_after_withdraw(kal: Kal, gen: str) -> None:
    payee = boa.env.generate_address("payee")
    kal.registry.set_reward_address(payee, sender=gen)
    exit_fully(kal, gen)
    info = kal.registry.generators(gen)
    assert info.status == GeneratorStatus.UNREGISTERED
    assert info.reward_address == payee


def test_set_reward_address_zero(kal: Kal, gen: str) -> None:
    with boa.reverts("registry: zero address"):
        kal.registry.set_reward_address(ZERO, sender=gen)


def test_set_reward_address_not_registered(kal: Kal) -> None:
    g = new_account(kal, "g")
    with boa.reverts("registry: not registered"):
        kal.registry.set_reward_address(g, sender=g)


# ---------------------------------------------------------------- join_market


def test_join_market(kal: Kal, market_id: int) -> None:
    g = new_account(kal, "g")
    kal.registry.register(g, 10, STAKE, sender=g)
    kal.registry.join_market(market_id, PRICE, 900, 3, KEY, sender=g)
    (event,) = logs(kal.registry, "OfferSet")
    offer = kal.registry.offers(g, market_id)
    assert offer.joined
    assert (offer.price, offer.proof_time, offer.compute_per_request) == (PRICE, 900, 3)
    assert offer.encryption_key == KEY
    assert (event.generator, event.market_id, event.joined) == (g, market_id, True)
    assert (event.price, event.proof_time, event.compute_per_request) == (PRICE, 900, 3)
    assert event.encryption_key == KEY


def test_join_market_bounds_accepted(kal: Kal, market_id: int) -> None:
    g = new_account(kal, "g")
    kal.registry.register(g, 4, 0, sender=g)
    kal.registry.join_market(market_id, 2**96 - 1, 86_400, 4, ZERO_KEY, sender=g)
    offer = kal.registry.offers(g, market_id)
    assert (offer.price, offer.proof_time, offer.compute_per_request) == (2**96 - 1, 86_400, 4)


def test_join_market_not_registered(kal: Kal, market_id: int) -> None:
    g = new_account(kal, "g")
    with boa.reverts("registry: not active"):
        kal.registry.join_market(market_id, PRICE, 600, 1, KEY, sender=g)


def test_join_market_while_exiting(kal: Kal, market_id: int, gen: str) -> None:
    other = kal.create_market(penalty=PENALTY // 2)
    kal.registry.request_exit(sender=gen)
    with boa.reverts("registry: not active"):
        kal.registry.join_market(other, PRICE, 600, 1, KEY, sender=gen)


def test_join_market_unknown_market(kal: Kal, market_id: int, gen: str) -> None:
    unknown = kal.markets.market_count()
    with boa.reverts("registry: unknown market"):
        kal.registry.join_market(unknown, PRICE, 600, 1, KEY, sender=gen)


def test_join_market_twice(kal: Kal, market_id: int, gen: str) -> None:
    with boa.reverts("registry: already in market"):
        kal.registry.join_market(market_id, PRICE, 600, 1, KEY, sender=gen)


@pytest.mark.parametrize("proof_time", [0, 86_401])
def test_join_market_bad_proof_time(kal: Kal, market_id: int, proof_time: int) -> None:
    g = new_account(kal, "g")
    kal.registry.register(g, 10, 0, sender=g)
    with boa.reverts("registry: bad proof time"):
        kal.registry.join_market(market_id, PRICE, proof_time, 1, KEY, sender=g)


def test_join_market_zero_compute(kal: Kal, market_id: int) -> None:
    g = new_account(kal, "g")
    kal.registry.register(g, 10, 0, sender=g)
    with boa.reverts("registry: bad compute"):
        kal.registry.join_market(market_id, PRICE, 600, 0, KEY, sender=g)


def test_join_market_compute_above_declared(kal: Kal, market_id: int) -> None:
    g = new_account(kal, "g")
    kal.registry.register(g, 10, 0, sender=g)
    with boa.reverts("registry: compute above declared"):
        kal.registry.join_market(market_id, PRICE, 600, 11, KEY, sender=g)


def test_join_market_price_too_large(kal: Kal, market_id: int) -> None:
    g = new_account(kal, "g")
    kal.registry.register(g, 10, 0, sender=g)
    with boa.reverts("registry: price too large"):
        kal.registry.join_market(market_id, 2**96, 600, 1, KEY, sender=g)


# --------------------------------------------------------------- update_offer


def test_update_offer(kal: Kal, market_id: int, gen: str) -> None:
    kal.registry.update_offer(market_id, 12 * UNIT, 300, 2, KEY, sender=gen)
    (event,) = logs(kal.registry, "OfferSet")
    offer = kal.registry.offers(gen, market_id)
    assert (offer.price, offer.proof_time, offer.compute_per_request) == (12 * UNIT, 300, 2)
    assert (event.market_id, event.price, event.compute_per_request) == (market_id, 12 * UNIT, 2)


def test_update_offer_not_in_market(kal: Kal, market_id: int) -> None:
    g = new_account(kal, "g")
    kal.registry.register(g, 10, 0, sender=g)
    with boa.reverts("registry: not in market"):
        kal.registry.update_offer(market_id, PRICE, 600, 1, KEY, sender=g)


def test_update_offer_checks_its_terms(kal: Kal, market_id: int, gen: str) -> None:
    with boa.reverts("registry: price too large"):
        kal.registry.update_offer(market_id, 2**96, 600, 1, KEY, sender=gen)
    with boa.reverts("registry: bad proof time"):
        kal.registry.update_offer(market_id, PRICE, 0, 1, KEY, sender=gen)
    with boa.reverts("registry: bad compute"):
        kal.registry.update_offer(market_id, PRICE, 600, 0, KEY, sender=gen)
    with boa.reverts("registry: compute above declared"):
        kal.registry.update_offer(market_id, PRICE, 600, 11, KEY, sender=gen)


def test_update_offer_keeps_the_live_task_snapshot(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    kal.registry.update_offer(market_id, PRICE, 600, 2, KEY, sender=gen)
    first, first_req, first_inputs = live(kal, alice, market_id, gen)
    assert task(kal, first).compute == 2

    kal.registry.update_offer(market_id, PRICE, 600, 5, KEY, sender=gen)
    assert kal.registry.generators(gen).used_compute == 2  # the live task is unchanged
    second, _, _ = live(kal, alice, market_id, gen)
    assert task(kal, second).compute == 5
    assert kal.registry.generators(gen).used_compute == 7

    prove(kal, first, first_req, first_inputs, gen)
    assert kal.registry.generators(gen).used_compute == 5  # exactly the 2 locked at assignment
    assert kal.registry.generators(gen).locked_stake == PENALTY


# --------------------------------------------------------------- leave_market


def test_leave_market(kal: Kal, market_id: int, gen: str) -> None:
    kal.registry.leave_market(market_id, sender=gen)
    (event,) = logs(kal.registry, "MarketLeft")
    offer = kal.registry.offers(gen, market_id)
    assert not offer.joined
    assert (offer.price, offer.proof_time, offer.compute_per_request) == (0, 0, 0)
    assert tuple(offer) == (False, 0, 0, 0, ZERO_KEY)
    assert (event.generator, event.market_id) == (gen, market_id)


def test_leave_market_clears_the_key(kal: Kal, market_id: int, gen: str) -> None:
    kal.registry.update_offer(market_id, PRICE, 600, 1, KEY, sender=gen)
    assert tuple(kal.registry.offers(gen, market_id)) == (True, PRICE, 600, 1, KEY)
    kal.registry.leave_market(market_id, sender=gen)
    assert tuple(kal.registry.offers(gen, market_id)) == (False, 0, 0, 0, ZERO_KEY)


def test_leave_market_not_in_market(kal: Kal, market_id: int, gen: str) -> None:
    kal.registry.leave_market(market_id, sender=gen)
    with boa.reverts("registry: not in market"):
        kal.registry.leave_market(market_id, sender=gen)


def test_leave_market_stops_assignment(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    kal.registry.leave_market(market_id, sender=gen)
    rid, req, _ = kal.request(alice, market_id)
    with boa.reverts("registry: not in market"):
        kal.assign(rid, req, gen)


def test_leave_market_rejoin(kal: Kal, market_id: int, gen: str) -> None:
    kal.registry.leave_market(market_id, sender=gen)
    kal.registry.join_market(market_id, 3 * UNIT, 60, 1, KEY, sender=gen)
    assert kal.registry.offers(gen, market_id).price == 3 * UNIT


def test_leave_market_live_task_still_settles(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, inputs = live(kal, alice, market_id, gen)
    kal.registry.leave_market(market_id, sender=gen)
    prove(kal, rid, req, inputs, gen)
    assert task(kal, rid).state == RequestState.FULFILLED
    assert kal.market.balance_of(gen) == PRICE
    info = kal.registry.generators(gen)
    assert (info.used_compute, info.locked_stake) == (0, 0)


# --------------------------------------------------------------- request_exit


def test_request_exit(kal: Kal, gen: str) -> None:
    now = boa.env.evm.patch.timestamp
    kal.registry.request_exit(sender=gen)
    (event,) = logs(kal.registry, "ExitRequested")
    info = kal.registry.generators(gen)
    assert info.status == GeneratorStatus.EXITING
    assert info.exit_requested_at == now
    assert event.generator == gen


def test_request_exit_stops_assignment_at_once(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, _ = kal.request(alice, market_id)
    kal.registry.request_exit(sender=gen)
    with boa.reverts("registry: generator exiting"):
        kal.assign(rid, req, gen)


def test_request_exit_twice(kal: Kal, gen: str) -> None:
    kal.registry.request_exit(sender=gen)
    with boa.reverts("registry: not active"):
        kal.registry.request_exit(sender=gen)


def test_request_exit_not_registered(kal: Kal) -> None:
    g = new_account(kal, "g")
    with boa.reverts("registry: not active"):
        kal.registry.request_exit(sender=g)


# ------------------------------------------------------------------- withdraw


def test_withdraw_returns_the_whole_stake(kal: Kal, gen: str) -> None:
    kal.registry.add_stake(5 * UNIT, sender=gen)
    wallet = kal.token.balanceOf(gen)
    held = vault(kal)
    kal.registry.request_exit(sender=gen)

    kal.registry.withdraw(sender=gen)
    (event,) = logs(kal.registry, "GeneratorWithdrawn")
    (transfer,) = logs(kal.registry, "Transfer")

    assert kal.token.balanceOf(gen) == wallet + STAKE + 5 * UNIT
    assert vault(kal) == held - STAKE - 5 * UNIT
    assert_registry_holds_nothing(kal)
    assert (transfer.sender, transfer.receiver, transfer.value) == (
        kal.market.address,
        gen,
        STAKE + 5 * UNIT,
    )
    assert (event.generator, event.amount) == (gen, STAKE + 5 * UNIT)
    info = kal.registry.generators(gen)
    assert info.status == GeneratorStatus.UNREGISTERED
    assert (info.stake, info.locked_stake) == (0, 0)
    assert kal.registry.free_stake(gen) == 0


def test_withdraw_zero_stake(kal: Kal) -> None:
    g = new_account(kal, "g")
    kal.registry.register(g, 1, 0, sender=g)
    held = vault(kal)
    exit_fully(kal, g)
    (event,) = logs(kal.registry, "GeneratorWithdrawn")
    assert event.amount == 0
    assert logs(kal.registry, "Transfer") == []  # nothing to release
    assert vault(kal) == held
    assert kal.registry.generators(g).status == GeneratorStatus.UNREGISTERED


def test_withdraw_not_exiting(kal: Kal, gen: str) -> None:
    with boa.reverts("registry: not exiting"):
        kal.registry.withdraw(sender=gen)
    stranger = new_account(kal, "stranger")
    with boa.reverts("registry: not exiting"):
        kal.registry.withdraw(sender=stranger)


def test_withdraw_twice(kal: Kal, gen: str) -> None:
    exit_fully(kal, gen)
    with boa.reverts("registry: not exiting"):
        kal.registry.withdraw(sender=gen)


def test_withdraw_right_after_exit(kal: Kal, gen: str) -> None:
    """No unbonding delay: with no live task there is no stake a slash could reach."""
    kal.registry.request_exit(sender=gen)
    kal.registry.withdraw(sender=gen)
    assert kal.registry.generators(gen).status == GeneratorStatus.UNREGISTERED


def test_withdraw_tasks_live(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, inputs = kal.request(alice, market_id, proof_time=86_400, expiry_in=0)
    kal.assign(rid, req, gen)
    kal.registry.request_exit(sender=gen)
    with boa.reverts("registry: tasks live"):
        kal.registry.withdraw(sender=gen)
    prove(kal, rid, req, inputs, gen)
    kal.registry.withdraw(sender=gen)
    assert kal.registry.generators(gen).status == GeneratorStatus.UNREGISTERED


def test_exiting_generator_can_still_be_slashed(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, _ = live(kal, alice, market_id, gen)
    kal.registry.request_exit(sender=gen)
    boa.env.time_travel(seconds=req.proof_time + 1)
    kal.market.slash(rid, req.as_tuple(), sender=alice)
    wallet = kal.token.balanceOf(gen)
    held = vault(kal)
    kal.registry.withdraw(sender=gen)
    assert kal.token.balanceOf(gen) == wallet + STAKE - PENALTY
    assert vault(kal) == held - (STAKE - PENALTY)
    assert_registry_holds_nothing(kal)


# -------------------------------------------------------- marketplace only


def test_lock_only_marketplace(kal: Kal, market_id: int, gen: str) -> None:
    for caller in (gen, kal.d.owner):
        with boa.reverts("registry: not the marketplace"):
            kal.registry.lock(
                gen, market_id, PRICE, 600, PENALTY, ZERO, b"\x00" * 32, 0, sender=caller
            )
    assert kal.registry.generators(gen).locked_stake == 0


def test_settle_only_marketplace(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    live(kal, alice, market_id, gen)
    index = kal.registry.generators(gen).index
    for caller in (gen, kal.d.owner):
        with boa.reverts("registry: not the marketplace"):
            kal.registry.settle(index, 1, PENALTY, PENALTY, True, sender=caller)
    assert kal.registry.generators(gen).locked_stake == PENALTY


# ------------------------------------------------------------ forfeit events


def test_slash_forfeits_the_penalty(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _ = live(kal, alice, market_id, gen)
    boa.env.time_travel(seconds=req.proof_time + 1)
    slasher = boa.env.generate_address("slasher")
    treasury = kal.d.treasury
    held = vault(kal)
    before = {a: kal.market.balance_of(a) for a in (alice, slasher, treasury, gen)}

    kal.market.slash(rid, req.as_tuple(), sender=slasher)
    (event,) = logs(kal.market, "StakeForfeited")

    assert event.address == kal.registry.address
    assert (event.generator, event.amount, event.missed) == (gen, PENALTY, True)
    info = kal.registry.generators(gen)
    assert (info.stake, info.locked_stake, info.used_compute) == (STAKE - PENALTY, 0, 0)
    assert info.missed_deadlines == 1
    # No token moves: the marketplace already holds the stake and credits it.
    assert logs(kal.market, "Transfer") == []
    assert vault(kal) == held
    assert_registry_holds_nothing(kal)
    bounty = PENALTY // 2
    assert kal.market.balance_of(slasher) == before[slasher] + bounty
    assert kal.market.balance_of(treasury) == before[treasury] + PENALTY - bounty
    assert kal.market.balance_of(alice) == before[alice] + req.max_price
    assert kal.market.balance_of(gen) == before[gen]


def test_discard_forfeits_a_fifth_without_a_miss(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, _ = live(kal, alice, market_id, gen)
    held = vault(kal)
    refund, treasury = kal.market.balance_of(alice), kal.market.balance_of(kal.d.treasury)
    kal.market.discard(rid, req.as_tuple(), sender=gen)
    (event,) = logs(kal.market, "StakeForfeited")
    assert event.address == kal.registry.address
    assert (event.generator, event.amount, event.missed) == (gen, PENALTY // 5, False)
    info = kal.registry.generators(gen)
    assert (info.stake, info.locked_stake, info.used_compute) == (STAKE - PENALTY // 5, 0, 0)
    assert info.missed_deadlines == 0
    # No token moves: the forfeit is credited to the treasury from the vault.
    assert logs(kal.market, "Transfer") == []
    assert vault(kal) == held
    assert_registry_holds_nothing(kal)
    assert kal.market.balance_of(alice) == refund
    assert kal.market.balance_of(kal.d.treasury) == treasury + PENALTY // 5


def test_proof_forfeits_nothing(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, inputs = live(kal, alice, market_id, gen)
    held = vault(kal)
    prove(kal, rid, req, inputs, gen)
    assert logs(kal.market, "StakeForfeited") == []
    assert logs(kal.market, "Transfer") == []
    assert kal.registry.generators(gen).stake == STAKE
    assert vault(kal) == held
    assert_registry_holds_nothing(kal)
