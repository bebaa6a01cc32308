"""Synchronous web3 transactions for one-shot tools (deploy, devnet, demo, tests).

Daemons use the async sender of `kalypso.chain`; this is the small blocking
counterpart: build, sign, send, wait, and turn a revert into a typed error.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError
from web3.types import TxReceipt

from kalypso.contracts import artifact
from kalypso.errors import ChainError, ContractError, error_from_reason

REVERTED = "execution reverted: "


def reason_of(exc: ContractLogicError) -> str:
    message = str(exc.message or exc)
    return message.split(REVERTED, 1)[1] if REVERTED in message else message


#: tries of one transaction while the node that answers is behind (see `send`)
STALE_TRIES = 5
#: seconds after one of our transactions is mined in which a revert may be a lagging node's
LAG_GRACE = 30.0
#: per sender: (when its last transaction was mined, in which block)
_mined: dict[str, tuple[float, int]] = {}
#: gas asked for above the estimate (state may change between estimate and inclusion)
GAS_MARGIN_PERCENT = 20


class NodeBehind(Exception):
    """The node that answered had not seen our last transaction yet: try again."""

    def gave_up(self) -> ChainError:
        """The error once the tries are spent."""
        return ChainError(
            f"the RPC endpoint stayed behind this account's last transaction: {self}; try again"
        )


def send(
    w3: Web3,
    account: LocalAccount,
    call: Any,
    *,
    gas: int | None = None,
    on_sent: Callable[[bytes, int, str], None] | None = None,
) -> TxReceipt:
    """Send `call` (a bound contract function or constructor) from `account` and wait.

    `on_sent(hash, nonce, function)` runs once the transaction is signed, before it is
    broadcast: a send that fails after reaching the node is still on record. Raises the
    typed error for the contract's reason when it reverts.

    Behind a load balancer, the node asked may be a block or two behind. It counts an
    old nonce: the send is refused ("nonce too low": nothing was sent) and tried again.
    Or it estimates against state without our last transaction: a revert shortly after
    one of ours was mined is estimated again at that transaction's block, whose answer
    decides (a node without that block says so, and the send is tried again).
    """
    for attempt in range(STALE_TRIES):
        try:
            return _send(w3, account, call, gas, on_sent)
        except NodeBehind as exc:
            if attempt == STALE_TRIES - 1:
                raise exc.gave_up() from None
            time.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")


def _send(
    w3: Web3,
    account: LocalAccount,
    call: Any,
    gas: int | None,
    on_sent: Callable[[bytes, int, str], None] | None,
) -> TxReceipt:
    nonce = int(w3.eth.get_transaction_count(account.address, "pending"))
    params: dict[str, Any] = {"from": account.address, "nonce": nonce, "chainId": w3.eth.chain_id}
    params["gas"] = gas or _estimate(call, account.address)
    try:
        tx = call.build_transaction(params)
    except ContractLogicError as exc:
        raise error_from_reason(reason_of(exc)) from None
    signed = account.sign_transaction(tx)
    if on_sent is not None:
        on_sent(bytes(signed.hash), nonce, str(getattr(call, "fn_name", "")))
    try:
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    except Web3RPCError as exc:
        if "nonce too low" in str(exc).lower():  # another of ours used it: not sent
            raise NodeBehind(str(exc)) from None
        raise
    receipt = wait_for_receipt(w3, bytes(tx_hash))
    _mined[account.address] = (time.monotonic(), int(receipt["blockNumber"]))
    if receipt["status"] != 1:
        raise ContractError("transaction reverted", f"tx {tx_hash.hex()}")
    return receipt


def _estimate(call: Any, sender: str) -> int:
    """Gas for `call` with the margin; the typed error when it reverts.

    Shortly after one of our transactions was mined, the node answering may be behind
    it. A revert there is asked again at our transaction's block, whose answer decides.
    A passing estimate is asked there too and the larger kept: an older state can price
    the same call far cheaper (an allowance we spent back to zero still set there makes
    approving again a cheap overwrite, where on-chain it is a new slot, four times the
    gas), and the transaction would run out of gas."""
    mined_at, block = _mined.get(sender, (0.0, 0))
    recent = time.monotonic() - mined_at <= LAG_GRACE
    try:
        gas = int(call.estimate_gas({"from": sender}))
    except ContractLogicError as exc:
        if not recent:
            raise error_from_reason(reason_of(exc)) from None
        try:
            gas = _estimate_at(call, sender, block)
        except (ContractLogicError, Web3RPCError):
            raise error_from_reason(reason_of(exc)) from None
    else:
        if recent:  # where it reverts (it needs another's newer state), or where that
            # block is gone (a devnet reverted to a snapshot), latest's estimate stands
            with contextlib.suppress(ContractLogicError, Web3RPCError):
                gas = max(gas, _estimate_at(call, sender, block))
    return gas * (100 + GAS_MARGIN_PERCENT) // 100


def _estimate_at(call: Any, sender: str, block: int) -> int:
    """Gas as of `block`; `NodeBehind` when the node answering does not have it yet."""
    try:
        return int(call.estimate_gas({"from": sender}, block_identifier=block))
    except Web3RPCError as exc:
        if lacks_block(str(exc)):
            raise NodeBehind(str(exc)) from None
        raise


def wait_for_receipt(w3: Web3, tx_hash: bytes, timeout: float = 60) -> TxReceipt:
    """The receipt of `tx_hash`, asked for at once, then after 50 ms doubling to 1 s: a
    devnet that mines on demand answers the first time, and a chain with blocks every
    few seconds costs a few calls a transaction, not twenty a second."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            return w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            if time.monotonic() > deadline:
                raise ChainError(
                    f"transaction 0x{tx_hash.hex()} not mined within {timeout:.0f} s: it may "
                    "still be; look it up before sending again"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def lacks_block(message: str) -> bool:
    """Whether a node's error says it lacks the block asked for: geth "header not found",
    its log filters "unknown block" (eth/filters/api.go), others "block not found"."""
    text = message.lower()
    return "unknown block" in text or "not found" in text


def deploy(
    w3: Web3,
    account: LocalAccount,
    name: str,
    *args: Any,
    on_sent: Callable[[bytes, int, str], None] | None = None,
) -> tuple[Any, TxReceipt]:
    """Deploy the compiled contract `name`; returns the bound contract and the receipt.
    `on_sent` (as `send`'s) gets the function `deploy NAME`."""
    art = artifact(name)
    factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    named = None
    if on_sent is not None:
        report = on_sent

        def named(tx: bytes, nonce: int, _: str) -> None:
            report(tx, nonce, f"deploy {name}")

    receipt = send(w3, account, factory.constructor(*args), on_sent=named)
    address = receipt["contractAddress"]
    if address is None:
        raise ChainError(f"deploying {name} returned no contract address")
    return w3.eth.contract(address=address, abi=art.abi), receipt


def bind(w3: Web3, name: str, address: str) -> Any:
    """The deployed contract `name` at `address`."""
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact(name).abi)


def landed(w3: Web3, hashes: list[bytes]) -> TxReceipt | None:
    """The receipt of the first of `hashes` the node knows (waiting while it is pending);
    None when it knows none of them."""
    for tx_hash in hashes:
        try:
            w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            continue
        return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=300)  # type: ignore[arg-type]
    return None


class Signing:
    """`account` sending on the chain `chain_id` through this module: the `Signer` that
    `kalypso.cli.once` needs, for commands that send with `send(..., on_sent=on_sent)`."""

    def __init__(self, w3: Web3, account: LocalAccount, chain_id: int) -> None:
        self.w3 = w3
        self.account = account
        self.chain_id = chain_id
        #: where each transaction signed is reported while `once` records the action
        self.on_sent: Callable[[bytes, int, str], None] | None = None

    @property
    def address(self) -> str:
        return str(self.account.address)

    def record(self, on_sent: Callable[[bytes, int, str], None] | None) -> None:
        self.on_sent = on_sent

    def landed(self, hashes: list[bytes]) -> TxReceipt | None:
        return landed(self.w3, hashes)
