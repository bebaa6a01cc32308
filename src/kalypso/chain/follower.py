"""Follow contract logs block range by block range, surviving reorgs.

The follower is stateless: the consumer keeps a `FollowerState` beside what it
derived from the events and persists both in one transaction, so a crash at any
point resumes exactly where the last committed step ended. Each `step` returns

- `None` when there is nothing new (the head is not `confirmations` past the cursor);
- a `LogBatch` of the decoded events of one bounded block range, in log order;
- a `Rollback` when a block the consumer already processed changed hash: the consumer
  undoes every block above `to_block`, and the next steps replay the new chain.

Logs come from an untrusted endpoint: a log that does not decode is returned in
`LogBatch.malformed` (to be recorded) and never stops the follower.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from web3 import AsyncWeb3
from web3.exceptions import BlockNotFound, Web3RPCError

from kalypso.chain.faults import is_range_refusal
from kalypso.chain.logs import LogWindow
from kalypso.chain.rpc import retrying
from kalypso.market.events import DecodedEvent, EventDecoder, MalformedLogError


@dataclass(frozen=True)
class BlockRef:
    number: int
    hash: bytes


@dataclass(frozen=True)
class FollowerState:
    """Where a consumer stands: the next block to read and hashes of recent ones."""

    next_block: int
    #: processed blocks (each range's last block and every block with a log), oldest first
    recent: tuple[BlockRef, ...] = ()


@dataclass(frozen=True)
class LogBatch:
    from_block: int
    to_block: int
    tip: BlockRef
    events: list[DecodedEvent]
    malformed: list[tuple[dict[str, Any], str]] = field(default_factory=list)


@dataclass(frozen=True)
class Rollback:
    """Blocks above `to_block` changed: undo them."""

    to_block: int


class LogFollower:
    def __init__(
        self,
        w3: AsyncWeb3[Any],
        addresses: Sequence[str],
        decoder: EventDecoder,
        *,
        confirmations: int = 0,
        max_range: int = 2_000,
        keep: int = 128,
        topics: Sequence[Any] | None = None,
    ) -> None:
        """`topics` is an `eth_getLogs` topic filter (e.g. only the events naming one
        generator); by default every log of `addresses`."""
        self.w3 = w3
        self.addresses = list(addresses)
        self.topics = list(topics) if topics is not None else None
        self.decoder = decoder
        self.confirmations = confirmations
        #: blocks per eth_getLogs: `max_range` at most, less while the provider refuses it
        self.window = LogWindow(size=max_range, largest=max_range)
        self.keep = keep

    async def head(self) -> int:
        return int(await retrying(lambda: self.w3.eth.block_number, what="eth_blockNumber"))

    async def step(self, state: FollowerState) -> LogBatch | Rollback | None:
        """The next thing the consumer must apply (see the module docstring)."""
        if rollback := await self._check_reorg(state):
            return rollback
        safe = await self.head() - self.confirmations
        if safe < state.next_block:
            return None
        to_block = min(safe, state.next_block + self.window.size - 1)
        tip = await self._block(to_block)
        if tip is None:
            return None
        logs = await self._logs(state.next_block, to_block)
        if logs is None:  # the range shrank; the next step reads a smaller one
            return None
        if await self._block(to_block) != tip:
            return None  # replaced while we read, or a lagging node answered: read again
        events: list[DecodedEvent] = []
        malformed: list[tuple[dict[str, Any], str]] = []
        for log in logs:
            try:
                event = self.decoder.decode(log)
            except MalformedLogError as exc:
                malformed.append((dict(log), str(exc)))
                continue
            if event.block_number == tip.number and event.block_hash != tip.hash:
                return None  # the tip was replaced while we read: read again
            events.append(event)
        events.sort(key=lambda e: (e.block_number, e.log_index))
        return LogBatch(state.next_block, to_block, tip, events, malformed)

    def advance(self, state: FollowerState, item: LogBatch | Rollback) -> FollowerState:
        """The state after the consumer applied `item`."""
        if isinstance(item, Rollback):
            kept = tuple(ref for ref in state.recent if ref.number <= item.to_block)
            return FollowerState(item.to_block + 1, kept)
        refs = {e.block_number: BlockRef(e.block_number, e.block_hash) for e in item.events}
        refs[item.tip.number] = item.tip
        recent = state.recent + tuple(refs[n] for n in sorted(refs))
        return replace(state, next_block=item.to_block + 1, recent=recent[-self.keep :])

    async def _check_reorg(self, state: FollowerState) -> Rollback | None:
        if not state.recent or await self._still_there(state.recent[-1]):
            return None
        for ref in reversed(state.recent[:-1]):
            if await self._still_there(ref):
                return Rollback(ref.number)
        # Deeper than what we remember: replay everything we remember.
        return Rollback(state.recent[0].number - 1)

    async def _still_there(self, ref: BlockRef) -> bool:
        block = await self._block(ref.number)
        return block is not None and block.hash == ref.hash

    async def _block(self, number: int) -> BlockRef | None:
        try:
            block = await retrying(lambda: self.w3.eth.get_block(number), what="eth_getBlock")
        except BlockNotFound:
            return None
        return BlockRef(number, bytes(block["hash"]))

    async def _logs(self, from_block: int, to_block: int) -> list[Any] | None:
        query: Any = {"fromBlock": from_block, "toBlock": to_block, "address": self.addresses}
        if self.topics is not None:
            query["topics"] = self.topics
        try:
            logs = list(await retrying(lambda: self.w3.eth.get_logs(query), what="eth_getLogs"))
        except Web3RPCError as exc:
            if to_block > from_block and is_range_refusal(str(exc)):
                self.window.refused(to_block - from_block + 1)
                return None
            raise
        self.window.served()
        return logs
