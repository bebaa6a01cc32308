"""Synchronous web3 transactions for one-shot tools (deploy, devnet, demo, tests).

Daemons use the async sender of `kalypso.chain`; this is the small blocking
counterpart: build, sign, send, wait, and turn a revert into a typed error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.types import TxReceipt

from kalypso.contracts import artifact
from kalypso.errors import ChainError, ContractError, error_from_reason

REVERTED = "execution reverted: "


def reason_of(exc: ContractLogicError) -> str:
    message = str(exc.message or exc)
    return message.split(REVERTED, 1)[1] if REVERTED in message else message


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
    """
    params: dict[str, Any] = {
        "from": account.address,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "chainId": w3.eth.chain_id,
    }
    try:
        if gas is not None:
            params["gas"] = gas
        tx = call.build_transaction(params)
    except ContractLogicError as exc:
        raise error_from_reason(reason_of(exc)) from None
    signed = account.sign_transaction(tx)
    if on_sent is not None:
        on_sent(bytes(signed.hash), int(params["nonce"]), str(getattr(call, "fn_name", "")))
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.05)
    if receipt["status"] != 1:
        raise ContractError("transaction reverted", f"tx {tx_hash.hex()}")
    return receipt


def deploy(w3: Web3, account: LocalAccount, name: str, *args: Any) -> tuple[Any, TxReceipt]:
    """Deploy the compiled contract `name`; returns the bound contract and the receipt."""
    art = artifact(name)
    factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    receipt = send(w3, account, factory.constructor(*args))
    address = receipt["contractAddress"]
    if address is None:
        raise ChainError(f"deploying {name} returned no contract address")
    return w3.eth.contract(address=address, abi=art.abi), receipt


def bind(w3: Web3, name: str, address: str) -> Any:
    """The deployed contract `name` at `address`."""
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact(name).abi)
