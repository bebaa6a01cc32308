"""Every market's metadata name, read from the chain: what `resolve_market` needs to
resolve a name the deployment file does not record (on a real chain it records none).

The names come from the MarketRegistry's own `MarketCreated` logs, all markets in one
paged log read (`kalypso.chain.logs`), so the operator commands and the generator node
resolve `square_root` as the SDK does, without reading each market's terms.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from eth_utils import event_abi_to_log_topic
from web3 import AsyncWeb3

from kalypso.chain.logs import aget_logs, get_logs
from kalypso.contracts import artifact
from kalypso.contracts.client import MarketplaceClient
from kalypso.market.events import marketplace_decoder
from kalypso.market.names import needs_metadata, resolve_market


@cache
def created_topic() -> str:
    """The topic of `MarketRegistry.MarketCreated`."""
    abi = next(
        e
        for e in artifact("MarketRegistry").abi
        if e.get("type") == "event" and e.get("name") == "MarketCreated"
    )
    return "0x" + event_abi_to_log_topic(abi).hex()  # type: ignore[arg-type]


def metadata_name(metadata: bytes) -> str | None:
    """The `name` a market's metadata JSON gives it (None: none, or not JSON)."""
    try:
        data = json.loads(metadata)
    except ValueError:
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return str(name) if name not in (None, "") else None


def names_from_logs(logs: Iterable[Any]) -> dict[int, str]:
    """Each market's metadata name, by id, from raw `MarketCreated` logs."""
    decoder = marketplace_decoder()
    names: dict[int, str] = {}
    for log in logs:
        event = decoder.decode(log)
        if (name := metadata_name(bytes(event["metadata"]))) is not None:
            names[int(event["market_id"])] = name
    return names


def onchain_names(client: MarketplaceClient) -> dict[int, str]:
    """Every market's metadata name, by id (markets without one are left out)."""
    query = {"address": client.markets.address, "topics": [created_topic()]}
    head = client.w3.eth.block_number
    return names_from_logs(get_logs(client.w3, query, client.deployment.deploy_block, head))


async def aonchain_names(w3: AsyncWeb3[Any], registry: str, deploy_block: int) -> dict[int, str]:
    """`onchain_names` for an `AsyncWeb3` and the MarketRegistry at `registry`."""
    query = {"address": registry, "topics": [created_topic()]}
    head = int(await w3.eth.block_number)
    return names_from_logs(await aget_logs(w3, query, deploy_block, head))


def resolver(client: MarketplaceClient) -> Callable[[int | str], int]:
    """A function from a market reference to its id: an id that exists, a name the
    deployment file records, or a name exactly one market's metadata carries
    (`kalypso.market.names`). The names are read once, on the first name not recorded."""
    recorded = client.deployment.markets
    count = client.market_count()
    read: list[dict[int, str]] = []

    def market_id(ref: int | str) -> int:
        if needs_metadata(ref, recorded) and not read:
            read.append(onchain_names(client))
        return resolve_market(ref, recorded, read[0] if read else None, count=count)

    return market_id


def market_id(client: MarketplaceClient, ref: int | str) -> int:
    """The market `ref` addresses (see `resolver`)."""
    return resolver(client)(ref)
