"""Internal balances: deposit, withdraw, and how create_request draws its escrow."""

from typing import Any

import boa
import pytest

from kalypso.contracts import source_path
from tests.unit.helpers import UNIT, ZERO, Kal, events

# An ERC20 that can return False instead of moving tokens, or keep a fee on transfer.
ODD_TOKEN = """
# pragma version ~=0.4.3
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
fail: public(bool)
fee_bps: public(uint256)

@external
def mint(to: address, amount: uint256):
    self.balanceOf[to] += amount

@external
def set_mode(fail: bool, fee_bps: uint256):
    self.fail = fail
    self.fee_bps = fee_bps

@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    return True

@internal
def _move(src: address, dst: address, amount: uint256):
    self.balanceOf[src] -= amount
    self.balanceOf[dst] += amount - amount * self.fee_bps // 10000

@external
def transfer(to: address, amount: uint256) -> bool:
    if self.fail:
        return False
    self._move(msg.sender, to, amount)
    return True

@external
def transferFrom(src: address, dst: address, amount: uint256) -> bool:
    if self.fail:
        return False
    self.allowance[src][msg.sender] -= amount
    self._move(src, dst, amount)
    return True
"""


@pytest.fixture(scope="module")
def odd(kal: Kal) -> tuple[Any, Any]:
    """A marketplace over ODD_TOKEN, and that token."""
    token = boa.loads(ODD_TOKEN)
    marketplace = boa.load_partial(str(source_path("ProofMarketplace"))).deploy(
        token.address, kal.registry.address, kal.d.treasury, 0
    )
    return marketplace, token


@pytest.fixture
def odd_holder(odd: tuple[Any, Any]) -> str:
    marketplace, token = odd
    who = boa.env.generate_address("odd-holder")
    token.mint(who, 1_000)
    token.approve(marketplace.address, 2**256 - 1, sender=who)
    return str(who)


def test_deposit_credits_balance_and_pulls_tokens(kal: Kal, alice: str) -> None:
    before = kal.token.balanceOf(alice)
    kal.market.deposit(100 * UNIT, sender=alice)
    (log,) = events(kal.market, "Deposited")
    assert (log.account, log.amount) == (alice, 100 * UNIT)
    assert kal.market.balance_of(alice) == 100 * UNIT
    assert kal.token.balanceOf(alice) == before - 100 * UNIT


def test_deposit_zero_reverts(kal: Kal, alice: str) -> None:
    with boa.reverts("escrow: zero amount"):
        kal.market.deposit(0, sender=alice)


def test_deposit_without_approval_reverts_with_the_token_reason(kal: Kal) -> None:
    # Vyper bubbles up the token's own revert; "escrow: transfer failed" is for
    # tokens that return False (below).
    bob = boa.env.generate_address("bob")
    kal.fund(bob, approve=False)
    with boa.reverts("erc20: insufficient allowance"):
        kal.market.deposit(UNIT, sender=bob)


def test_deposit_when_token_returns_false_reverts(odd: tuple[Any, Any], odd_holder: str) -> None:
    marketplace, token = odd
    token.set_mode(True, 0)
    with boa.reverts("escrow: transfer failed"):
        marketplace.deposit(10, sender=odd_holder)


def test_deposit_of_fee_on_transfer_token_reverts(odd: tuple[Any, Any], odd_holder: str) -> None:
    marketplace, token = odd
    token.set_mode(False, 100)
    with boa.reverts("escrow: transfer failed"):
        marketplace.deposit(1_000, sender=odd_holder)


def test_withdraw_sends_tokens_and_debits_balance(kal: Kal, alice: str) -> None:
    kal.market.deposit(100 * UNIT, sender=alice)
    to = boa.env.generate_address("receiver")
    kal.market.withdraw(40 * UNIT, to, sender=alice)
    (log,) = events(kal.market, "Withdrawn")
    assert (log.account, log.to, log.amount) == (alice, to, 40 * UNIT)
    assert kal.market.balance_of(alice) == 60 * UNIT
    assert kal.token.balanceOf(to) == 40 * UNIT


def test_withdraw_whole_balance(kal: Kal, alice: str) -> None:
    kal.market.deposit(100 * UNIT, sender=alice)
    kal.market.withdraw(100 * UNIT, alice, sender=alice)
    assert kal.market.balance_of(alice) == 0


def test_withdraw_zero_reverts(kal: Kal, alice: str) -> None:
    kal.market.deposit(UNIT, sender=alice)
    with boa.reverts("escrow: zero amount"):
        kal.market.withdraw(0, alice, sender=alice)


def test_withdraw_to_zero_address_reverts(kal: Kal, alice: str) -> None:
    kal.market.deposit(UNIT, sender=alice)
    with boa.reverts("escrow: zero address"):
        kal.market.withdraw(UNIT, ZERO, sender=alice)


def test_withdraw_above_balance_reverts(kal: Kal, alice: str) -> None:
    kal.market.deposit(UNIT, sender=alice)
    with boa.reverts("escrow: insufficient balance"):
        kal.market.withdraw(UNIT + 1, alice, sender=alice)


def test_withdraw_of_another_accounts_balance_reverts(kal: Kal, alice: str) -> None:
    kal.market.deposit(UNIT, sender=alice)
    with boa.reverts("escrow: insufficient balance"):
        kal.market.withdraw(1, alice, sender=boa.env.generate_address("thief"))


def test_withdraw_when_token_returns_false_reverts(odd: tuple[Any, Any], odd_holder: str) -> None:
    marketplace, token = odd
    marketplace.deposit(10, sender=odd_holder)
    token.set_mode(True, 0)
    with boa.reverts("escrow: transfer failed"):
        marketplace.withdraw(10, odd_holder, sender=odd_holder)


def test_balance_of_unknown_account_is_zero(kal: Kal) -> None:
    assert kal.market.balance_of(boa.env.generate_address("nobody")) == 0


def test_create_request_draws_escrow_from_a_sufficient_balance(
    kal: Kal, market_id: int, alice: str
) -> None:
    kal.market.deposit(80 * UNIT, sender=alice)
    tokens = kal.token.balanceOf(alice)
    held = kal.token.balanceOf(kal.market.address)
    kal.request(alice, market_id, max_price=50 * UNIT)
    assert kal.market.balance_of(alice) == 30 * UNIT
    assert kal.token.balanceOf(alice) == tokens
    assert kal.token.balanceOf(kal.market.address) == held


def test_create_request_draws_escrow_from_an_exact_balance(
    kal: Kal, market_id: int, alice: str
) -> None:
    kal.market.deposit(50 * UNIT, sender=alice)
    tokens = kal.token.balanceOf(alice)
    kal.request(alice, market_id, max_price=50 * UNIT)
    assert kal.market.balance_of(alice) == 0
    assert kal.token.balanceOf(alice) == tokens


def test_create_request_pulls_the_whole_escrow_when_balance_is_short(
    kal: Kal, market_id: int, alice: str
) -> None:
    kal.market.deposit(10 * UNIT, sender=alice)
    tokens = kal.token.balanceOf(alice)
    held = kal.token.balanceOf(kal.market.address)
    kal.request(alice, market_id, max_price=50 * UNIT)
    assert kal.market.balance_of(alice) == 10 * UNIT
    assert kal.token.balanceOf(alice) == tokens - 50 * UNIT
    assert kal.token.balanceOf(kal.market.address) == held + 50 * UNIT


def test_create_request_without_balance_or_approval_reverts(kal: Kal, market_id: int) -> None:
    bob = boa.env.generate_address("bob")
    kal.fund(bob, approve=False)
    with boa.reverts("erc20: insufficient allowance"):
        kal.request(bob, market_id, max_price=50 * UNIT)
