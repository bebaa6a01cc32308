"""Connections to the chain, sync and async, through the resilient transport.

The transport (`kalypso.chain.transport`) retries every call a hosted provider refuses
for now, so callers await web3 directly: what reaches them is not worth retrying at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from web3 import AsyncWeb3, Web3
from web3.exceptions import BlockNotFound
from web3.types import BlockData

from kalypso.chain.faults import Backoff
from kalypso.chain.transport import AsyncResilientHTTPProvider, ResilientHTTPProvider
from kalypso.errors import ChainError


async def connect(
    rpc_url: str,
    *,
    expected_chain_id: int | None = None,
    timeout: float = 10.0,
    rate: float | None = None,
) -> AsyncWeb3[AsyncResilientHTTPProvider]:
    """An `AsyncWeb3` on `rpc_url` (comma-separated: fallbacks), checked to answer and
    to be the expected chain; `rate` caps its calls per second.

    Raises `ChainError` with what to do when the endpoint is unreachable or wrong.
    """
    provider = AsyncResilientHTTPProvider(rpc_url, timeout=timeout, rate=rate)
    w3 = AsyncWeb3(provider)
    try:
        chain_id = await w3.eth.chain_id
    except Exception as exc:
        await provider.disconnect()
        if isinstance(exc, ChainError) and not provider.stats.answered:
            raise ChainError(
                f"no Ethereum JSON-RPC endpoint answers at {rpc_url}: start one "
                "(`kalypso devnet`) or set --rpc-url / KALYPSO_RPC_URL"
            ) from None
        raise ChainError(f"{rpc_url} is not a usable JSON-RPC endpoint: {exc}") from None
    if expected_chain_id is not None and chain_id != expected_chain_id:
        await provider.disconnect()
        raise ChainError(
            f"{rpc_url} is chain {chain_id}, but the deployment is on chain "
            f"{expected_chain_id}: point at the right RPC or deployment file"
        )
    return w3


def sync_web3(url: str, timeout: float = 60, *, backoff: Backoff | None = None) -> Web3:
    """A blocking `Web3` on `url` (comma-separated: fallbacks) through the chain layer.

    It owns its HTTP session: web3.py guards its session cache with one lock for every
    provider in the process, which a blocking call made on an event loop could wait
    on forever.
    """
    return Web3(ResilientHTTPProvider(url, timeout=timeout, backoff=backoff))


async def known_block(w3: AsyncWeb3[Any], number: int, tries: int = 5) -> BlockData:
    """Block `number`, which an earlier answer showed exists (its logs, a newer head).
    Behind a load balancer the node asked may lag and not have it yet (web3 raises
    `BlockNotFound`): it is asked again, 0.25 s later and doubling."""
    for attempt in range(tries):
        try:
            return await w3.eth.get_block(number)
        except BlockNotFound:
            if attempt == tries - 1:
                raise ChainError(
                    f"block {number} is still missing at the RPC endpoint that showed it "
                    "exists: the endpoint's nodes disagree; try again or add a fallback URL"
                ) from None
            await asyncio.sleep(0.25 * 2**attempt)
    raise AssertionError("unreachable")
