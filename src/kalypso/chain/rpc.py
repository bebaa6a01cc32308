"""The async RPC connection and the retry rule every daemon shares.

A public endpoint drops connections, rate-limits and times out; those errors are
*transient* and retried with exponential backoff. Anything else (a revert, a bad
argument) is raised at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
import requests
from web3 import AsyncHTTPProvider, AsyncWeb3, Web3
from web3.exceptions import (
    ProviderConnectionError,
    RequestTimedOut,
    TooManyRequests,
    Web3RPCError,
)

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
    rpc_url: str, *, expected_chain_id: int | None = None, timeout: float = 10.0
) -> AsyncWeb3[AsyncHTTPProvider]:
    """An `AsyncWeb3` on `rpc_url`, checked to answer (and to be the expected chain).

    Raises `ChainError` with what to do when the endpoint is unreachable or wrong.
    """
    provider = AsyncHTTPProvider(
        rpc_url,
        request_kwargs={"timeout": aiohttp.ClientTimeout(total=timeout)},
        exception_retry_configuration=None,
    )
    w3 = AsyncWeb3(provider)
    try:
        chain_id = await retrying(lambda: w3.eth.chain_id, attempts=3, what="eth_chainId")
    except Exception as exc:
        await provider.disconnect()
        if isinstance(exc, ChainError):
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


def sync_web3(url: str, timeout: float = 60) -> Web3:
    """A blocking `Web3` with its own HTTP session.

    web3.py guards its session cache with one lock for every provider, sync and async,
    in the process; an `AsyncWeb3` takes it from a thread and gives it back on the event
    loop. A blocking call made on that loop (a test, a CLI command beside a daemon) that
    needs the lock would then wait forever. An explicit session never takes it.
    """
    provider = Web3.HTTPProvider(
        url, request_kwargs={"timeout": timeout}, session=requests.Session()
    )
    return Web3(provider)
