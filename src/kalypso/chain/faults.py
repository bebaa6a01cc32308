"""What a failed RPC call means, and how long to wait before the next try. No I/O.

Every part of Kalypso reads the chain through one transport (`kalypso.chain.transport`);
this module is its judgement, kept pure so each case is tested on its own. An answer is

- **transient** when the same call may succeed later: HTTP 429 (its `Retry-After`
  honoured), 408, 5xx, a timeout, a refused or reset connection, a body cut short, and
  the rate-limit or no-backend errors some providers send inside an HTTP 200;
- a **range refusal** when `eth_getLogs` asked for too many blocks or logs: not
  transient (the same query fails again) — the log reader shrinks its window;
- final otherwise (a revert, a bad argument): the caller gets it at once.

For `eth_sendRawTransaction` a transient failure is either *unsent* (the provider
refused before a node saw it: a refused connection, a 429) or *possibly sent* (a
timeout, a cut body, a 5xx from a load balancer): the transport then looks the
transaction up by hash before it sends the same bytes again. The messages nodes give
for a transaction they already have, or a nonce already used, are matched here
(geth, anvil, reth, nethermind, erigon, besu; see `docs/real-chains.md`).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any

import aiohttp
import requests

#: Texts of eth_getLogs refusals for a too-wide range or too many results (lowercase
#: fragments; the simulator's `kalypso.testing.shapes` cites each provider's).
RANGE_REFUSALS = (
    "block range",
    "blocks range",
    "range too large",
    "range too wide",
    "is limited to",
    "exceeds limit",
    "exceeds max",
    "exceed maximum",
    "max range",
    "maximum allowed number of requested blocks",
    "log response size exceeded",
    "more than 10000 results",
    "query returned more than",
    "too many logs",
    "returns too many",
    "ranges over",
    "response size",
)
#: JSON-RPC errors in an HTTP 200 that mean "later": rate limits, no healthy backend.
_TRANSIENT_RPC = (
    "rate limit",
    "request rate exceeded",
    "exceeded its compute units",
    "requests per second",
    "too many requests",
    "no backend is currently healthy",
    "temporarily unavailable",
    "try again",
    "timed out",
    "timeout",
    "busy",
)
#: A node already holds this very transaction (same bytes, same hash).
ALREADY_KNOWN = (
    "already known",
    "known transaction",
    "already imported",
    "alreadyknown",
    "already_exists",
)
#: The account's nonce moved past this transaction: ours was mined, or another was.
NONCE_USED = ("nonce too low", "oldnonce")


class Kind(Enum):
    OK = "ok"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"  # 5xx, no backend
    TIMEOUT = "timeout"
    CONNECTION = "connection"  # refused before anything was sent
    DROPPED = "dropped"  # reset or cut mid-answer
    RANGE = "range"
    FINAL = "final"


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    #: seconds the provider asked us to wait (Retry-After, or a body's backoff hint)
    retry_after: float | None = None

    @property
    def transient(self) -> bool:
        return self.kind not in (Kind.OK, Kind.RANGE, Kind.FINAL)

    @property
    def possibly_sent(self) -> bool:
        """For a send: the node may have the transaction although we got no answer."""
        return self.kind in (Kind.TIMEOUT, Kind.DROPPED, Kind.UNAVAILABLE)


def retry_after(headers: Any) -> float | None:
    """Seconds from a `Retry-After` header: delta-seconds or an HTTP date."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def rpc_error(body: Any) -> dict[str, Any] | None:
    """The JSON-RPC error object of a single answer, if it is one."""
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def is_range_refusal(message: str) -> bool:
    text = message.lower()
    return any(m in text for m in RANGE_REFUSALS)


def judge_answer(status: int, headers: Any, body: Any) -> Verdict:
    """An HTTP answer (`body`: its JSON, or None when it was not JSON)."""
    wait = retry_after(headers)
    error = rpc_error(body)
    message = str(error.get("message", "")) if error else ""
    if error is not None and is_range_refusal(message):
        return Verdict(Kind.RANGE)  # some providers send these with HTTP 400 or 413
    if status == 429:
        return Verdict(Kind.RATE_LIMITED, wait if wait is not None else _hinted(error))
    if status == 408 or status >= 500:
        return Verdict(Kind.UNAVAILABLE, wait)
    if status >= 400 and body is None:
        return Verdict(Kind.UNAVAILABLE, wait)  # a proxy's HTML page: not a node's answer
    if error is not None and _transient_error(error):
        return Verdict(Kind.RATE_LIMITED, wait if wait is not None else _hinted(error))
    if body is None:
        return Verdict(Kind.DROPPED)  # a 200 whose body is not JSON: cut short
    return Verdict(Kind.FINAL if status >= 400 or error is not None else Kind.OK)


def _transient_error(error: dict[str, Any]) -> bool:
    text = str(error.get("message", "")).lower()
    if error.get("code") == 3 or "revert" in text:
        return False  # a contract's answer, whatever its words
    if any(m in text for m in _TRANSIENT_RPC):
        return True
    return error.get("code") in (429, -32016, -32011) or (
        error.get("code") == -32005 and "limit" in text and "block" not in text
    )


def _hinted(error: dict[str, Any] | None) -> float | None:
    """Infura's rate-limit body carries `data.backoff_seconds`."""
    data = error.get("data") if error else None
    if isinstance(data, dict) and isinstance(data.get("backoff_seconds"), int | float):
        return float(data["backoff_seconds"])
    return None


def judge_exception(exc: BaseException) -> Verdict:
    """A call that raised instead of answering."""
    if isinstance(exc, requests.ConnectTimeout | aiohttp.ClientConnectorError):
        return Verdict(Kind.CONNECTION)  # nothing reached the provider
    if isinstance(exc, requests.Timeout | asyncio.TimeoutError | TimeoutError):
        return Verdict(Kind.TIMEOUT)
    if isinstance(
        exc,
        requests.exceptions.ChunkedEncodingError
        | requests.exceptions.ContentDecodingError
        | aiohttp.ClientPayloadError
        | aiohttp.ServerDisconnectedError
        | ConnectionResetError,
    ):
        return Verdict(Kind.DROPPED)
    if isinstance(exc, requests.ConnectionError):
        # refused (nothing sent) or aborted mid-exchange: only the cause tells
        reset = "reset" in str(exc).lower() or "aborted" in str(exc).lower()
        return Verdict(Kind.DROPPED if reset else Kind.CONNECTION)
    if isinstance(exc, aiohttp.ClientOSError | aiohttp.ClientConnectionError | ConnectionError):
        return Verdict(Kind.DROPPED)
    return Verdict(Kind.FINAL)


def send_outcome(message: str) -> str | None:
    """'known' (the node has these bytes), 'nonce' (the nonce is used) or None."""
    text = message.lower()
    if any(m in text for m in ALREADY_KNOWN):
        return "known"
    if any(m in text for m in NONCE_USED):
        return "nonce"
    return None


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter, capped; a provider's hint wins if longer."""

    first: float = 0.25
    cap: float = 8.0
    #: give up on a call after this many seconds of trying
    give_up: float = 60.0
    #: ... or after this many while no endpoint has ever answered (a wrong URL)
    unreachable: float = 3.0

    def delay(
        self, attempt: int, hint: float | None = None, rng: random.Random | None = None
    ) -> float:
        ceiling = min(self.cap, self.first * 2**attempt)
        jittered = (rng or random).uniform(ceiling / 2, ceiling)
        return max(jittered, hint or 0.0)
