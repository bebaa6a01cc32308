"""Connections to the chain, sync and async, through the resilient transport.

The transport (`kalypso.chain.transport`) retries every call a hosted provider refuses
for now; `retrying` remains for the few errors that surface above it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
from web3 import AsyncWeb3, Web3
from web3.exceptions import (
    ProviderConnectionError,
    RequestTimedOut,
    TooManyRequests,
    Web3RPCError,
)

from kalypso.chain.faults import Backoff
from kalypso.chain.transport import AsyncResilientHTTPProvider, ResilientHTTPProvider
from kalypso.errors import ChainError, KalypsoError

T = TypeVar("T")

#: JSON-RPC messages of errors worth retrying (rate limits, overloaded nodes).
_TRANSIENT_MESSAGES = ("rate limit", "too many requests", "timeout", "temporarily", "busy")


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same RPC call later may succeed."""
    if isinstance(exc, KalypsoError):  # already judged (a ChainError is a ConnectionError)
        return False
    if isinstance(
        exc,
        aiohttp.ClientError
        | asyncio.TimeoutError
        | ConnectionError
        | ProviderConnectionError
        | RequestTimedOut
        | TooManyRequests,
    ):
        return True
    if isinstance(exc, Web3RPCError):
        return any(m in str(exc).lower() for m in _TRANSIENT_MESSAGES)
    return False


async def retrying(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int = 6,
    first_delay: float = 0.2,
    what: str = "RPC call",
) -> T:
    """`await call()`, retried with exponential backoff on transient errors.

    Raises `ChainError` after the last attempt; non-transient errors pass through.
    """
    delay = first_delay
    for attempt in range(attempts):
        try:
            return await call()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt == attempts - 1:
                raise ChainError(f"{what} failed {attempts} times: {exc}") from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
    raise AssertionError("unreachable")


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
