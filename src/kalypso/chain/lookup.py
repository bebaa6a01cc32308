"""Find one request's committed fields on chain by its id (an indexed topic), no scanning.

Every call after `create_request` passes the `Request` back and the contract checks it
against the stored hash, so whoever acts on a request (a generator, the SDK re-attaching
after a crash) rebuilds it from `RequestCreated` and any later `MaxPriceIncreased`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from web3 import AsyncWeb3

from kalypso.chain.rpc import retrying
from kalypso.errors import ChainError
from kalypso.market import Request
from kalypso.market.events import (
    DecodedEvent,
    EventDecoder,
    MalformedLogError,
    created_request,
)


@dataclass(frozen=True)
class RequestRecord:
    """A request as committed now, with what travels beside it in `RequestCreated`."""

    id: bytes
    request: Request
    public_inputs: bytes
    encrypted_secret: bytes
    created_block: int


async def find_request(
    w3: AsyncWeb3[Any],
    marketplace: str,
    decoder: EventDecoder,
    request_id: bytes,
    *,
    from_block: int,
    to_block: int | None = None,
    max_range: int | None = None,
) -> RequestRecord | None:
    """The request `request_id` of `marketplace`, or None if no `RequestCreated` names it
    between `from_block` and `to_block` (default: the head).

    With `max_range` the logs are read backwards from `to_block` in windows of that many
    blocks (endpoints cap `eth_getLogs` ranges), stopping at the window that holds the
    creation: a recent request costs one call however old the deployment is.
    """
    if max_range is None or to_block is None:
        windows = [(from_block, to_block)]
    else:
        windows = [
            (max(from_block, end - max_range + 1), end)
            for end in range(to_block, from_block - 1, -max_range)
        ]
    events: list[DecodedEvent] = []
    for start, end in windows:
        query: Any = {
            "fromBlock": start,
            "toBlock": "latest" if end is None else end,
            "address": marketplace,
            "topics": [None, "0x" + request_id.hex()],
        }
        logs = await retrying(partial(w3.eth.get_logs, query), what="eth_getLogs")
        for log in logs:
            try:
                events.append(decoder.decode(log))
            except MalformedLogError:
                continue  # not one of ours (or garbage from the endpoint): the id decides below
        if any(e.name == "RequestCreated" for e in events):
            break
    events.sort(key=lambda e: (e.block_number, e.log_index))
    created = [e for e in events if e.name == "RequestCreated" and e["request_id"] == request_id]
    if not created:
        return None
    if len(created) > 1:
        raise ChainError(f"two RequestCreated events for request 0x{request_id.hex()}")
    first = created[0]
    request = created_request(first)
    for event in events:
        if event.name == "MaxPriceIncreased" and event["request_id"] == request_id:
            request = request.with_max_price(event["max_price"])
    return RequestRecord(
        request_id,
        request,
        first["public_inputs"],
        first["encrypted_secret"],
        first.block_number,
    )
