# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Internal balances of the marketplace
@license Apache-2.0
@notice Every token the system holds: deposits, earnings and refunds as
        internal balances, escrows of open requests, and generators'
        stakes (accounted by the registry). Payouts only credit balances;
        tokens leave only through `withdraw` and stake released by the
        registry.
@custom:security Fee-on-transfer and callback tokens are unsupported.
        Incoming tokens are credited by the measured balance change, so a
        fee-on-transfer token cannot inflate a balance, only fail.
"""

from ethereum.ercs import IERC20


TOKEN: public(immutable(IERC20))

balance_of: public(HashMap[address, uint256])


event Deposited:
    account: indexed(address)
    amount: uint256


event Withdrawn:
    account: indexed(address)
    to: indexed(address)
    amount: uint256


@deploy
def __init__(token: IERC20):
    assert token.address != empty(address), "escrow: zero token"
    TOKEN = token


@external
def deposit(amount: uint256):
    """
    @notice Move `amount` tokens from the caller (approval needed) into
            the caller's internal balance.
    @param amount Amount in the token's base unit.
    """
    assert amount > 0, "escrow: zero amount"
    self._pull(msg.sender, amount)
    self.balance_of[msg.sender] += amount
    log Deposited(account=msg.sender, amount=amount)


@external
def withdraw(amount: uint256, to: address):
    """
    @notice Send `amount` of the caller's internal balance to `to`.
    @param amount Amount in the token's base unit.
    @param to Receiver of the tokens.
    """
    assert amount > 0, "escrow: zero amount"
    assert to != empty(address), "escrow: zero address"
    assert self.balance_of[msg.sender] >= amount, "escrow: insufficient balance"
    self.balance_of[msg.sender] -= amount
    self._send(to, amount)
    log Withdrawn(account=msg.sender, to=to, amount=amount)


@internal
def _pull(payer: address, amount: uint256):
    before: uint256 = staticcall TOKEN.balanceOf(self)
    assert extcall TOKEN.transferFrom(payer, self, amount, default_return_value=True), "escrow: transfer failed"
    assert staticcall TOKEN.balanceOf(self) - before == amount, "escrow: transfer failed"


@internal
def _send(to: address, amount: uint256):
    assert extcall TOKEN.transfer(to, amount, default_return_value=True), "escrow: transfer failed"


@internal
def _charge(payer: address, amount: uint256):
    """
    @dev Take `amount` from the payer's internal balance when it suffices,
         otherwise pull all of it with `transferFrom`.
    """
    if amount == 0:
        return
    balance: uint256 = self.balance_of[payer]
    if balance >= amount:
        self.balance_of[payer] = balance - amount
    else:
        self._pull(payer, amount)


@internal
def _credit(account: address, amount: uint256):
    if amount > 0:
        self.balance_of[account] += amount
