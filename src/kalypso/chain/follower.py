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

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3.exceptions import BlockNotFound, Web3RPCError
from web3.types import RPCEndpoint

from kalypso.chain.faults import is_range_refusal, judge_answer
from kalypso.chain.logs import LogWindow
from kalypso.contracts.web3tx import lacks_block
from kalypso.errors import ChainError
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
        self._top = BlockRef(-1, b"")  # the newest block the last step saw
        #: the newest block as the last step read it (a daemon's clock reads it too)
        self.latest: Any = None
        self.latest_at = 0.0
        self.block_time = 1.0  # seconds between blocks, from the last heads' timestamps
        self._new_block_seen = time.monotonic()
        self._heads: list[tuple[int, int]] = []  # (number, timestamp) of recent new heads
        self.keep = keep

    async def head(self) -> int:
        return int(await self.w3.eth.block_number)

    def fresh_latest(self, max_age: float) -> Any:
        """The newest block the last step read, if it read it within `max_age` seconds
        (a daemon's clock needs no call of its own then)."""
        return self.latest if time.monotonic() - self.latest_at <= max_age else None

    def pause(self, poll_interval: float) -> float:
        """Seconds to wait before the next `step` when it had nothing: until the next
        block is due (blocks come every `block_time`), at least `poll_interval`. So a
        daemon polls about once per block, whatever the chain's block time."""
        if not self._regular():
            return poll_interval  # blocks on demand (a devnet's automine): keep polling
        due = self._new_block_seen + 1.1 * self.block_time - time.monotonic()
        return max(poll_interval, min(due, 30.0))

    def fresh_for(self, poll_interval: float) -> float:
        """How old the last head read may be for a daemon's clock: until the next block
        is due (and a poll past it), so the clock never costs a call of its own."""
        return max(poll_interval, 1.1 * self.block_time + poll_interval)

    async def step(self, state: FollowerState) -> LogBatch | Rollback | None:
        """The next thing the consumer must apply (see the module docstring)."""
        if self._not_due(state):
            return None  # caught up, and the next block is not due: no call at all
        self.latest = await self.w3.eth.get_block("latest")
        self.latest_at = time.monotonic()
        top = BlockRef(int(self.latest["number"]), bytes(self.latest["hash"]))
        head = top.number
        if head < self._top.number or (
            top == self._top and head - self.confirmations < state.next_block
        ):
            return None  # no new block (or a lagging node's older one): one call per poll
        if top.number > self._top.number >= 0:
            self._saw_new_block(top.number, int(self.latest["timestamp"]))
        extends = bytes(self.latest.get("parentHash", b"")) == self._top.hash
        if not (extends and state.recent and state.recent[-1] == self._top):
            check = await self._check_reorg(state)  # skipped when the head extends our tip
            if isinstance(check, Rollback):
                return check
            if check is _UNSURE:
                return None
        self._top = top
        safe = head - self.confirmations
        if safe < state.next_block:
            return None
        to_block = min(safe, state.next_block + self.window.size - 1)
        if state.next_block == to_block == top.number:  # one new block: its hash is known
            read = await self._read_block(top)
        else:
            read = await self._read(state.next_block, to_block)
        if read is None:  # a lagging node, a shrunk range, a refusal: the next step reads
            return None
        tip, logs = read
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

    def _saw_new_block(self, number: int, timestamp: int) -> None:
        self._new_block_seen = time.monotonic()
        self._heads = [*self._heads[-4:], (number, timestamp)]
        if len(self._heads) >= 2:
            (n0, t0), (n1, t1) = self._heads[-2], self._heads[-1]
            self.block_time = max(0.0, (t1 - t0) / max(1, n1 - n0))

    def _not_due(self, state: FollowerState) -> bool:
        """Whether every known block is read and, blocks coming on a clock, the next one
        is not due yet (so the step right after a batch asks nothing)."""
        caught_up = state.next_block > self._top.number - self.confirmations
        due = self._new_block_seen + 0.9 * self.block_time
        return caught_up and self._regular() and time.monotonic() < due

    def _regular(self) -> bool:
        """Whether the chain makes blocks on a clock: the last intervals (per block, from
        the blocks' own timestamps) agree within a second."""
        if len(self._heads) < 4:
            return False
        spans = [
            (t1 - t0) / max(1, n1 - n0)
            for (n0, t0), (n1, t1) in zip(self._heads, self._heads[1:], strict=False)
        ]
        return min(spans) > 0 and max(spans) - min(spans) <= 1.0

    def advance(self, state: FollowerState, item: LogBatch | Rollback) -> FollowerState:
        """The state after the consumer applied `item`."""
        if isinstance(item, Rollback):
            kept = tuple(ref for ref in state.recent if ref.number <= item.to_block)
            return FollowerState(item.to_block + 1, kept)
        refs = {e.block_number: BlockRef(e.block_number, e.block_hash) for e in item.events}
        refs[item.tip.number] = item.tip
        recent = state.recent + tuple(refs[n] for n in sorted(refs))
        return replace(state, next_block=item.to_block + 1, recent=recent[-self.keep :])

    async def _check_reorg(self, state: FollowerState) -> Rollback | object | None:
        """A `Rollback` when a processed block changed hash, `_UNSURE` when the node does
        not have it (behind a load balancer, a lagging backend: not a reorg), else None."""
        if not state.recent:
            return None
        last = await self._still_there(state.recent[-1])
        if last is not False:
            return None if last else _UNSURE
        for ref in reversed(state.recent[:-1]):
            there = await self._still_there(ref)
            if there is None:
                return _UNSURE
            if there:
                return Rollback(ref.number)
        # Deeper than what we remember: replay everything we remember.
        return Rollback(state.recent[0].number - 1)

    async def _still_there(self, ref: BlockRef) -> bool | None:
        """Whether block `ref.number` still has its hash; None when the node lacks it."""
        block = await self._block(ref.number)
        return None if block is None else block.hash == ref.hash

    async def _block(self, number: int) -> BlockRef | None:
        try:
            block = await self.w3.eth.get_block(number)
        except BlockNotFound:
            return None
        return BlockRef(number, bytes(block["hash"]))

    async def _read(self, from_block: int, to_block: int) -> tuple[BlockRef, list[Any]] | None:
        """The block `to_block` and the logs up to it, answered by one node: in one JSON-RPC
        batch, so a lagging backend cannot serve fewer logs than the block says exist.
        Endpoints without batches get two calls (and the tip read again after)."""
        query = self._query()
        try:
            answers = await self.w3.provider.make_batch_request(
                [
                    (RPCEndpoint("eth_getBlockByNumber"), [hex(to_block), False]),
                    (
                        RPCEndpoint("eth_getLogs"),
                        [{**query, "fromBlock": hex(from_block), "toBlock": hex(to_block)}],
                    ),
                ]
            )
        except (AttributeError, NotImplementedError):
            answers = None
        if not isinstance(answers, list) or len(answers) != 2:
            return await self._read_apart(from_block, to_block)
        block, logs = answers
        for answer in answers:
            if "error" in answer:
                message = str(answer["error"].get("message", ""))
                if is_range_refusal(message) and to_block > from_block:
                    self.window.refused(to_block - from_block + 1)
                    return None
                if judge_answer(200, {}, dict(answer)).transient:
                    return None
                raise ChainError(f"eth_getLogs / eth_getBlockByNumber: {message}")
        if not block.get("result"):
            return None  # this node does not have the block yet
        self.window.served()
        tip = BlockRef(to_block, bytes(HexBytes(block["result"]["hash"])))
        return tip, [_formatted(raw) for raw in logs.get("result") or []]

    async def _read_block(self, top: BlockRef) -> tuple[BlockRef, list[Any]] | None:
        """The logs of the block `top` names, by its hash (EIP-234): one call a block
        when following the head. A node that lacks the block answers an error ("unknown
        block"), never an empty list, so a lagging backend cannot hide logs."""
        query: Any = {"blockHash": "0x" + top.hash.hex(), "address": self.addresses}
        if self.topics is not None:
            query["topics"] = self.topics
        try:
            logs = list(await self.w3.eth.get_logs(query))
        except Web3RPCError as exc:
            if lacks_block(str(exc)):
                return None  # not there yet (or replaced): the next step looks again
            raise
        return top, logs

    async def _read_apart(
        self, from_block: int, to_block: int
    ) -> tuple[BlockRef, list[Any]] | None:
        tip = await self._block(to_block)
        if tip is None:
            return None
        logs = await self._logs(from_block, to_block)
        if logs is None or await self._block(to_block) != tip:
            return None  # shrunk, or replaced (or a lagging node answered) while we read
        return tip, logs

    def _query(self) -> dict[str, Any]:
        query: dict[str, Any] = {"address": self.addresses}
        if self.topics is not None:
            query["topics"] = [_hex(t) for t in self.topics]
        return query

    async def _logs(self, from_block: int, to_block: int) -> list[Any] | None:
        query: Any = {"fromBlock": from_block, "toBlock": to_block, "address": self.addresses}
        if self.topics is not None:
            query["topics"] = self.topics
        try:
            logs = list(await self.w3.eth.get_logs(query))
        except Web3RPCError as exc:
            if to_block > from_block and is_range_refusal(str(exc)):
                self.window.refused(to_block - from_block + 1)
                return None
            raise
        self.window.served()
        return logs


#: `_check_reorg`'s answer when the node lacks a block it had: look again later.
_UNSURE = object()


def _hex(value: Any) -> Any:
    """A topic filter entry as JSON: bytes as 0x-hex, lists element-wise, None as is."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_hex(v) for v in value]
    return value


def _formatted(raw: dict[str, Any]) -> dict[str, Any]:
    """A raw JSON log with web3's types (ints, bytes), as `get_logs` returns them."""
    try:
        return {
            **raw,
            "blockNumber": int(raw["blockNumber"], 16),
            "logIndex": int(raw["logIndex"], 16),
            "blockHash": HexBytes(raw["blockHash"]),
            "transactionHash": HexBytes(raw["transactionHash"]),
            "topics": [HexBytes(t) for t in raw["topics"]],
            "data": HexBytes(raw["data"]),
        }
    except (KeyError, TypeError, ValueError):
        return raw  # the decoder reports it as malformed
