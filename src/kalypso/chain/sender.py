"""Send transactions from one account: own nonces, estimated gas, bumped fees, retries.

One `TxSender` per signing key, used by one task at a time (a lock serializes
sends). A revert found while estimating gas raises the typed error of the
contract's reason and sends nothing. A transaction not mined within `bump_after`
seconds is replaced (same nonce) with fees raised by `bump_percent`, so a spike
in the base fee never leaves a daemon stuck.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError
from web3.types import TxReceipt

from kalypso.contracts.web3tx import (
    GAS_MARGIN_PERCENT,
    LAG_GRACE,
    NodeBehind,
    lacks_block,
    reason_of,
)
from kalypso.errors import ChainError, ContractError, TransactionDroppedError, error_from_reason

GWEI = 10**9
FEE_CACHE_SECONDS = 1.0
#: How often a transaction being waited for is checked for a nonce taken by another.
NONCE_CHECK_SECONDS = 2.0
#: For LAG_GRACE (the sync sender's, shared) after one of ours is mined, a revert in
#: estimation may be a lagging node's: estimate again, up to LAG_RETRIES times
#: (0.5 s, 1 s, 2 s apart).
LAG_RETRIES = 3


@dataclass(frozen=True)
class SentTx:
    """A signed transaction the node accepted (persist it to know what is in flight)."""

    hash: bytes
    nonce: int
    max_fee: int
    priority_fee: int


@dataclass
class PendingTx:
    """A submitted transaction: every signed version of it (fee bumps append)."""

    call: Any
    gas: int
    sent: list[SentTx]
    on_sent: Callable[[SentTx], Awaitable[None]] | None

    @property
    def nonce(self) -> int:
        return self.sent[0].nonce


@dataclass(frozen=True)
class SenderPolicy:
    gas_margin_percent: int = GAS_MARGIN_PERCENT
    #: the tip paid, in percent of the node's suggestion (more lands first under congestion)
    priority_fee_percent: int = 100
    bump_after: float = 12.0
    bump_percent: int = 15
    max_fee_cap: int = 500 * GWEI
    receipt_timeout: float = 180.0
    poll_interval: float = 0.2


class TxSender:
    def __init__(
        self, w3: AsyncWeb3[Any], account: LocalAccount, policy: SenderPolicy | None = None
    ) -> None:
        self.w3 = w3
        self.account = account
        self.address = account.address
        self.policy = policy or SenderPolicy()
        self._nonce: int | None = None
        self._mined_at = -LAG_GRACE  # when one of ours was last mined (monotonic)
        self._mined_block = 0  # and in which block
        self._chain_id: int | None = None
        self._lock = asyncio.Lock()
        self._fee_cache: tuple[float, tuple[int, int]] | None = None

    async def send(
        self, call: Any, *, on_sent: Callable[[SentTx], Awaitable[None]] | None = None
    ) -> TxReceipt:
        """Send a bound contract call and wait for its receipt.

        `on_sent` runs after each signed version (first send and every fee bump) is
        accepted. Raises the typed `ContractError` when the call would revert or
        reverted, `TransactionDroppedError` when its nonce was used by another.
        """
        return await self.wait(await self.submit(call, on_sent=on_sent))

    async def submit(
        self,
        call: Any,
        *,
        gas: int | None = None,
        on_sent: Callable[[SentTx], Awaitable[None]] | None = None,
    ) -> PendingTx:
        """Estimate (unless `gas` is given), sign and send `call` with the next nonce.

        `wait` for it later: several submitted transactions may be in flight at once
        (pipelined nonces).
        """
        if gas is None:
            gas = await self.estimate(call)  # outside the lock: estimates run side by side
        async with self._lock:
            nonce = await self._next_nonce()
            priority, max_fee = await self._fees()
            try:
                tx = await self._submit(call, gas, nonce, priority, max_fee, on_sent)
            except BaseException:
                self._nonce = None  # resync from the chain on the next send
                raise
            self._nonce = nonce + 1
            return PendingTx(call, gas, [tx], on_sent)

    async def wait(self, pending: PendingTx) -> TxReceipt:
        """The receipt of a submitted transaction, bumping its fees while it is stuck."""
        try:
            receipt = await self._wait(pending.call, pending.gas, pending.sent, pending.on_sent)
        except BaseException:
            self._nonce = None
            raise
        if receipt["status"] != 1:
            raise ContractError(
                "transaction reverted",
                f"{getattr(pending.call, 'fn_name', 'a call')} in block "
                f"{receipt['blockNumber']}, tx 0x{bytes(receipt['transactionHash']).hex()}",
            )
        self._mined_at, self._mined_block = time.monotonic(), int(receipt["blockNumber"])
        return receipt

    def recent_block(self) -> int | None:
        """The block of our last mined transaction while a node behind it may still
        answer (`LAG_GRACE`); None after that."""
        return self._mined_block if time.monotonic() - self._mined_at < LAG_GRACE else None

    async def nonces(self) -> tuple[int, int]:
        """(transactions mined, transactions mined or pooled) of this account."""
        return await self._count("latest"), await self._count("pending")

    async def receipt(self, tx_hash: bytes) -> TxReceipt | None:
        """The receipt of `tx_hash`, or None while it is not mined."""
        try:
            return await self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None

    def resync(self) -> None:
        """Take the next nonce from the chain again (after a reorg undid some of ours)."""
        self._nonce = None

    async def estimate(self, call: Any) -> int:
        """Gas for `call` with the policy's margin; raises the typed error of a revert.

        Behind a load balancer, the node answering may not have our last transaction yet.
        A step that needs it (joining a market after registering) then reverts there:
        shortly after one of ours was mined, a revert is estimated again a few times
        before it counts. A passing estimate is also asked as of our last transaction's
        block and the larger kept: older state can price the same call far cheaper (an
        allowance we spent back to zero, still set there, makes approving again a cheap
        overwrite instead of a new slot), and the transaction would run out of gas. Any
        other revert is asked once more, 0.5 s later: the state read before it (a
        balance, a refund just credited) may have come from a newer node."""
        for attempt in range(LAG_RETRIES + 1):
            recent = time.monotonic() - self._mined_at < LAG_GRACE
            try:
                estimate = int(await call.estimate_gas({"from": self.address}))
                if recent:
                    estimate = max(estimate, await self._estimate_at_own_block(call))
            except ContractLogicError as exc:
                if attempt >= (LAG_RETRIES if recent else 1):
                    raise error_from_reason(reason_of(exc)) from None
            except NodeBehind as exc:
                if attempt >= LAG_RETRIES:
                    raise exc.gave_up() from None
            else:
                return estimate * (100 + self.policy.gas_margin_percent) // 100
            await asyncio.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    async def _estimate_at_own_block(self, call: Any) -> int:
        """Gas as of our last transaction's block; `NodeBehind` when the node lacks it.
        0 where the call reverts there (it needs another's newer state) or the block is
        gone (a devnet reverted to a snapshot): latest's estimate stands."""
        try:
            return int(await call.estimate_gas({"from": self.address}, self._mined_block))
        except ContractLogicError:
            return 0
        except Web3RPCError as exc:
            if lacks_block(str(exc)):
                raise NodeBehind(str(exc)) from None
            return 0

    async def _next_nonce(self) -> int:
        if self._nonce is None:
            self._nonce = await self._count("pending")
        return self._nonce

    async def _count(self, block: Literal["latest", "pending"]) -> int:
        """This account's transaction count at `block` (mined, or mined and pooled)."""
        count = await self.w3.eth.get_transaction_count(self.address, block)
        return int(count)

    async def _chain(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(await self.w3.eth.chain_id)
        return self._chain_id

    async def _fees(self) -> tuple[int, int]:
        """(priority fee, max fee): twice the base fee plus the tip; cached for a second."""
        if self._fee_cache and time.monotonic() - self._fee_cache[0] < FEE_CACHE_SECONDS:
            return self._fee_cache[1]
        block = await self.w3.eth.get_block("latest")
        base = int(block.get("baseFeePerGas", 0) or 0)
        try:
            priority = int(await self.w3.eth.max_priority_fee)
        except (Web3RPCError, ValueError):
            priority = GWEI
        priority = priority * self.policy.priority_fee_percent // 100
        fees = priority, min(2 * base + priority, self.policy.max_fee_cap)
        self._fee_cache = (time.monotonic(), fees)
        return fees

    async def _submit(
        self,
        call: Any,
        gas: int,
        nonce: int,
        priority: int,
        max_fee: int,
        on_sent: Callable[[SentTx], Awaitable[None]] | None,
    ) -> SentTx:
        params: Any = {
            "from": self.address,
            "nonce": nonce,
            "gas": gas,
            "chainId": await self._chain(),
            "maxFeePerGas": max(max_fee, priority),
            "maxPriorityFeePerGas": priority,
        }
        tx = await call.build_transaction(params)
        signed = self.account.sign_transaction(tx)
        try:
            tx_hash = await self.w3.eth.send_raw_transaction(signed.raw_transaction)
        except Web3RPCError as exc:
            message = str(exc).lower()
            if "already known" not in message:
                if "underpriced" in message or "nonce" in message:
                    raise  # the fee bump and the nonce resync handle these
                raise ChainError(f"the node refused the transaction: {exc}") from None
            tx_hash = signed.hash
        sent = SentTx(bytes(tx_hash), nonce, params["maxFeePerGas"], priority)
        if on_sent is not None:
            await on_sent(sent)
        return sent

    async def _wait(
        self,
        call: Any,
        gas: int,
        sent: list[SentTx],
        on_sent: Callable[[SentTx], Awaitable[None]] | None,
    ) -> TxReceipt:
        start = last_bump = last_nonce_check = time.monotonic()
        while True:
            for tx in reversed(sent):
                if receipt := await self.receipt(tx.hash):
                    return receipt
            now = time.monotonic()
            if now - start > self.policy.receipt_timeout:
                raise TransactionDroppedError(
                    f"nonce {sent[0].nonce}: not mined within {self.policy.receipt_timeout:.0f} s"
                )
            if now - last_nonce_check < NONCE_CHECK_SECONDS:
                await asyncio.sleep(self.policy.poll_interval)
                continue
            last_nonce_check = now
            if await self._nonce_used_elsewhere(sent):
                raise TransactionDroppedError(
                    f"nonce {sent[0].nonce} was used by another transaction of {self.address}"
                )
            if now - last_bump > self.policy.bump_after:
                if await self._not_in_pool(sent[0].nonce):
                    raise TransactionDroppedError(
                        f"nonce {sent[0].nonce} is not in the node's pool (dropped, or a "
                        "nonce gap after a reorg)"
                    )
                last = sent[-1]
                factor = 100 + self.policy.bump_percent
                priority = last.priority_fee * factor // 100 + 1
                max_fee = min(last.max_fee * factor // 100 + 1, self.policy.max_fee_cap)
                try:
                    sent.append(
                        await self._submit(call, gas, last.nonce, priority, max_fee, on_sent)
                    )
                except Web3RPCError as exc:
                    if "underpriced" not in str(exc).lower() and "nonce" not in str(exc).lower():
                        raise
                last_bump = now
            await asyncio.sleep(self.policy.poll_interval)

    async def _not_in_pool(self, nonce: int) -> bool:
        return await self._count("pending") <= nonce

    async def _nonce_used_elsewhere(self, sent: list[SentTx]) -> bool:
        if await self._count("latest") <= sent[0].nonce:
            return False
        # The nonce is taken; one of ours may just have been mined since we looked.
        for tx in sent:
            if await self.receipt(tx.hash) is not None:
                return False
        return True
