"""How a backend that is behind the chain's head answers: as of its own, older head.

Behind a load balancer, consecutive requests can land on backends at different heights.
One that is `k` blocks behind reports a lower eth_blockNumber, reads "latest" state at its
head, knows no block, transaction or receipt above it, and serves logs up to its head. A
read pinned to a block above its head fails as geth's does when it lacks the header:
-32000 "header not found" (quicknode.com/docs/*/error-references: "The requested block
doesn't exist on the node ... the node you're hitting is not synced").

These are pure functions of a call and a head; the simulator forwards what they return.
"""

from __future__ import annotations

from typing import Any

from kalypso.testing.shapes import Refusal

HEADER_NOT_FOUND = Refusal(200, -32000, "header not found")
#: eth_getLogs by `blockHash` for a block the backend lacks (go-ethereum eth/filters/api.go,
#: errUnknownBlock): an error, never an empty list, so a reader cannot miss logs.
UNKNOWN_BLOCK = Refusal(200, -32000, "unknown block")

#: Methods that read state at a block, and the index of their block parameter.
BLOCK_PARAM: dict[str, int] = {
    "eth_call": 1,
    "eth_estimateGas": 1,
    "eth_getBalance": 1,
    "eth_getCode": 1,
    "eth_getTransactionCount": 1,
    "eth_getStorageAt": 2,
    "eth_getProof": 2,
}

#: Methods whose result names the block it is in; above the head the backend has none.
IN_BLOCK = frozenset(
    {
        "eth_getBlockByHash",
        "eth_getBlockByNumber",
        "eth_getTransactionByHash",
        "eth_getTransactionReceipt",
        "eth_getTransactionByBlockHashAndIndex",
        "eth_getTransactionByBlockNumberAndIndex",
    }
)

_HEAD_TAGS = frozenset({"latest", "pending", "safe", "finalized"})


def block_number(tag: Any, head: int) -> int | None:
    """The number a block parameter means at `head`; None for a block hash or nonsense.

    "safe" and "finalized" are taken as the head: anvil finalizes at once.
    """
    if isinstance(tag, dict):
        tag = tag.get("blockNumber")
    if tag is None:
        return None
    if isinstance(tag, int):
        return tag
    if not isinstance(tag, str):
        return None
    if tag in _HEAD_TAGS:
        return head
    if tag == "earliest":
        return 0
    try:
        return int(tag, 16)
    except ValueError:
        return None


def log_range(log_filter: dict[str, Any], head: int) -> tuple[int, int] | None:
    """(from, to) of an eth_getLogs filter at `head`; None for a blockHash filter."""
    if "blockHash" in log_filter:
        return None
    start = block_number(log_filter.get("fromBlock", "latest"), head)
    end = block_number(log_filter.get("toBlock", "latest"), head)
    if start is None or end is None:
        return None
    return start, end


def state_params(method: str, params: list[Any], head: int) -> list[Any] | Refusal:
    """`params` of a state read pinned to `head` (a tag) or refused above it."""
    index = BLOCK_PARAM[method]
    if len(params) < index:
        return params  # malformed: the node says so
    if len(params) == index:
        return [*params, hex(head)]
    tag = params[index]
    if isinstance(tag, dict) and "blockHash" in tag:
        return params
    number = block_number(tag, head)
    if number is not None and number > head:
        return HEADER_NOT_FOUND
    if isinstance(tag, str) and tag in _HEAD_TAGS:
        return [*params[:index], hex(head), *params[index + 1 :]]
    return params


def block_params(params: list[Any], head: int) -> list[Any] | None:
    """eth_getBlockByNumber's params at `head`: head tags pinned; None above the head."""
    if not params:
        return params
    number = block_number(params[0], head)
    if number is not None and number > head:
        return None
    if isinstance(params[0], str) and params[0] in _HEAD_TAGS:
        return [hex(head), *params[1:]]
    return params


def in_view(result: Any, head: int) -> Any:
    """`result` if its block is at or below `head`, else None (the backend has not seen it)."""
    if isinstance(result, dict):
        number = result.get("blockNumber", result.get("number"))
        if isinstance(number, str) and int(number, 16) > head:
            return None
    return result
