"""Find one request's committed fields on chain by its id (an indexed topic), no scanning.

Every call after `create_request` passes the `Request` back and the contract checks it
against the stored hash, so whoever acts on a request (a generator, the SDK re-attaching
after a crash) rebuilds it from `RequestCreated` and any later `MaxPriceIncreased`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hexbytes import HexBytes
from web3 import AsyncWeb3

from kalypso.chain.logs import LogWindow, aget_logs
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
    window: LogWindow | None = None,
) -> RequestRecord | None:
    """The request `request_id` of `marketplace`, or None if no `RequestCreated` names it
    between `from_block` and `to_block` (default: the head).

    The logs are read backwards from `to_block` in windows the provider accepts
    (`kalypso.chain.logs`), stopping at the window that holds the creation: a recent
    request costs one call however old the deployment is.
    """
    if to_block is None:
        to_block = int(await w3.eth.block_number)
    query: Any = {"address": marketplace, "topics": [None, "0x" + request_id.hex()]}
    creation = decoder.topic("RequestCreated")
    logs = await aget_logs(
        w3,
        query,
        from_block,
        to_block,
        window=window,
        backwards=True,
        enough=lambda found: any(_topic0(log) == creation for log in found),
    )
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


def _topic0(log: Any) -> bytes | None:
    try:
        return bytes(HexBytes(log["topics"][0]))
    except (KeyError, IndexError, TypeError, ValueError):
        return None  # garbage from the endpoint
