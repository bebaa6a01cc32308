"""Find one request's committed fields on chain by its id (an indexed topic), no scanning.

Every call after `create_request` passes the `Request` back and the contract checks it
against the stored hash, so whoever acts on a request (a generator, the SDK re-attaching
after a crash) rebuilds it from `RequestCreated` and any later `MaxPriceIncreased`.
"""

from __future__ import annotations

from dataclasses import dataclass
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
) -> RequestRecord | None:
    """The request `request_id` of `marketplace`, or None if no `RequestCreated` names it."""
    query: Any = {
        "fromBlock": from_block,
        "toBlock": "latest",
        "address": marketplace,
        "topics": [None, "0x" + request_id.hex()],
    }
    logs = await retrying(lambda: w3.eth.get_logs(query), what="eth_getLogs")
    events: list[DecodedEvent] = []
    for log in logs:
        try:
            events.append(decoder.decode(log))
        except MalformedLogError:
            continue  # not one of ours (or garbage from the endpoint): the id decides below
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
