"""The log follower against a scripted endpoint: malformed logs, range limits, reorgs."""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils import event_abi_to_log_topic
from web3.exceptions import BlockNotFound, Web3RPCError

from kalypso.chain import BlockRef, FollowerState, LogBatch, LogFollower, Rollback
from kalypso.contracts import artifact
from kalypso.market.events import marketplace_decoder

MARKET = "0x" + "11" * 20


def block_hash(number: int, fork: int = 0) -> bytes:
    return bytes([fork]) + number.to_bytes(31, "big")


def deposited(
    block: int, index: int, *, data: bytes | None = None, fork: int = 0
) -> dict[str, Any]:
    abi = next(e for e in artifact("ProofMarketplace").abi if e.get("name") == "Deposited")
    return {
        "address": MARKET,
        "topics": [event_abi_to_log_topic(abi), b"\x00" * 12 + b"\x22" * 20],
        "data": (7).to_bytes(32, "big") if data is None else data,
        "blockNumber": block,
        "blockHash": block_hash(block, fork),
        "transactionHash": b"\x33" * 32,
        "logIndex": index,
    }


class FakeEth:
    def __init__(self) -> None:
        self.head = 10
        self.fork = 0
        self.logs: list[dict[str, Any]] = []
        self.max_span: int | None = None
        self.queries: list[tuple[int, int]] = []
        self.lagging = False  # the node answering logs lacks the newest block

    @property
    async def block_number(self) -> int:
        return self.head

    async def get_block(self, number: int | str) -> dict[str, Any]:
        number = self.head if number == "latest" else number
        assert isinstance(number, int)
        if number > self.head:
            raise BlockNotFound(f"block {number}")
        fork = self.fork if number > 5 else 0
        parent = block_hash(number - 1, self.fork if number > 6 else 0)
        block = {"number": number, "hash": block_hash(number, fork), "parentHash": parent}
        return {**block, "timestamp": 1_000 + 2 * number}

    async def get_logs(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        if "blockHash" in query:  # EIP-234: one block by its hash
            number = int.from_bytes(bytes.fromhex(query["blockHash"][2:])[1:], "big")
            if self.lagging and number == self.head:
                raise Web3RPCError("unknown block")
            self.queries.append((number, number))
            return [log for log in self.logs if log["blockHash"].hex() == query["blockHash"][2:]]
        start, end = query["fromBlock"], query["toBlock"]
        self.queries.append((start, end))
        if self.max_span is not None and end - start + 1 > self.max_span:
            raise Web3RPCError("query exceeds max block range 3")
        return [log for log in self.logs if start <= log["blockNumber"] <= end]


class FakeWeb3:
    def __init__(self) -> None:
        self.eth = FakeEth()


def follower(w3: FakeWeb3, **kwargs: Any) -> LogFollower:
    return LogFollower(w3, [MARKET], marketplace_decoder(), **kwargs)  # type: ignore[arg-type]


async def test_a_malformed_log_is_returned_apart_and_the_rest_decoded() -> None:
    w3 = FakeWeb3()
    w3.eth.logs = [deposited(2, 0), deposited(3, 0, data=b"\x01"), deposited(4, 1)]
    item = await follower(w3).step(FollowerState(1))
    assert isinstance(item, LogBatch)
    assert [e.block_number for e in item.events] == [2, 4]
    assert len(item.malformed) == 1 and "undecodable" in item.malformed[0][1]


async def test_a_range_the_endpoint_refuses_is_halved_until_it_passes() -> None:
    w3 = FakeWeb3()
    w3.eth.max_span = 3
    f = follower(w3)
    state = FollowerState(1)
    while (item := await f.step(state)) is not None or state.next_block <= 10:
        if item is not None:
            state = f.advance(state, item)
    assert state.next_block == 11
    assert f.window.size <= f.window.largest <= 4 and w3.eth.queries[0] == (1, 10)


async def test_a_changed_block_hash_rolls_back_to_the_last_block_still_there() -> None:
    w3 = FakeWeb3()
    w3.eth.logs = [deposited(4, 0), deposited(8, 0)]
    f = follower(w3)
    state = f.advance(FollowerState(1), await f.step(FollowerState(1)))  # type: ignore[arg-type]
    assert [r.number for r in state.recent] == [4, 8, 10]
    w3.eth.fork = 1  # blocks above 5 change
    item = await f.step(state)
    assert item == Rollback(4)
    state = f.advance(state, item)
    assert state == FollowerState(5, (BlockRef(4, block_hash(4)),))


@pytest.mark.parametrize("head", [3, 10])
async def test_nothing_new_is_none(head: int) -> None:
    w3 = FakeWeb3()
    w3.eth.head = head
    f = follower(w3, confirmations=2)
    assert await f.step(FollowerState(head - 1)) is None


async def test_a_new_head_block_is_read_by_hash_and_a_lagging_node_hides_nothing() -> None:
    """Following the head: the newest block, then its logs by hash (EIP-234). A node
    that lacks that block answers an error, and the next step reads the block again."""
    w3 = FakeWeb3()
    w3.eth.logs = [deposited(11, 0)]
    f = follower(w3)
    state = f.advance(FollowerState(1), await f.step(FollowerState(1)))  # type: ignore[arg-type]
    w3.eth.head, w3.eth.lagging = 11, True
    assert await f.step(state) is None
    w3.eth.lagging = False
    item = await f.step(state)
    assert isinstance(item, LogBatch) and [e.block_number for e in item.events] == [11]
    assert w3.eth.queries[-1] == (11, 11)
