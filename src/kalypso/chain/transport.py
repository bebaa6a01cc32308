"""One way to the chain for every part of Kalypso: web3 providers that ride out a
hosted RPC provider's limits.

`ResilientHTTPProvider` (blocking) and `AsyncResilientHTTPProvider` replace web3's HTTP
providers. Each takes one or more endpoint URLs (a comma-separated `--rpc-url`: the
next is tried when one fails) and, for every call:

- waits for the endpoint budget (`rate` calls per second, shared by the process's
  calls through that provider) so a daemon stays inside a provider's quota;
- retries what `kalypso.chain.faults` judges transient, with capped exponential
  backoff and jitter, honouring `Retry-After`, until `Backoff.give_up` seconds have
  passed; then raises `ChainError` naming the call and the last fault;
- hands any other answer to web3 as is (a revert, a range refusal: web3 raises it).

web3's own retry is off: it resends transactions blindly and ignores `Retry-After`.
`eth_sendRawTransaction` is never sent twice on a guess: after a failure that may
have reached a node (a timeout, a cut answer, a 5xx) the transaction is looked up by
hash first, and only sent again (the same bytes, so the same hash and nonce) when no
node has it. A node saying it already has those bytes, or that their nonce is used
when they are what used it, answers with their hash.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import requests
from eth_utils import keccak
from web3 import AsyncHTTPProvider, HTTPProvider
from web3.types import RPCEndpoint, RPCResponse

from kalypso.chain.faults import (
    Backoff,
    Kind,
    Verdict,
    judge_answer,
    judge_exception,
    send_outcome,
)
from kalypso.errors import ChainError

SEND = "eth_sendRawTransaction"


def endpoints(rpc_url: str) -> tuple[str, ...]:
    """The URLs of a comma-separated `--rpc-url`, in the order they are tried."""
    urls = tuple(u.strip() for u in rpc_url.split(",") if u.strip())
    if not urls:
        raise ChainError("no RPC URL given: set --rpc-url (several: comma-separated)")
    return urls


@dataclass
class RpcStats:
    """What one provider did: calls by method, retries by fault, give-ups."""

    calls: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    range_refusals: int = 0
    gave_up: int = 0
    answered: int = 0  # HTTP answers of any kind: until one, a wrong URL fails fast

    def snapshot(self) -> dict[str, Any]:
        return {
            "calls": sum(self.calls.values()),
            "methods": dict(self.calls),
            "retries": dict(self.retries),
            "range_refusals": self.range_refusals,
            "gave_up": self.gave_up,
        }


class Budget:
    """A token bucket: at most `rate` calls a second on average, bursts of `burst`."""

    def __init__(self, rate: float | None, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate or 1.0)
        self.tokens = self.burst
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def reserve(self) -> float:
        """Take a token; the seconds to wait before using it."""
        if not self.rate:
            return 0.0
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            self.tokens -= 1
            return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


@dataclass
class _Attempts:
    """The retry state of one call: which endpoint, how long, the last fault."""

    method: str
    urls: tuple[str, ...]
    backoff: Backoff
    index: int = 0
    attempt: int = 0
    started: float = field(default_factory=time.monotonic)
    tx_hash: str = ""  # for a send
    last: str = ""
    maybe_sent: bool = False

    @property
    def url(self) -> str:
        return self.urls[self.index % len(self.urls)]

    def failed(self, verdict: Verdict, detail: str, stats: RpcStats) -> float:
        """Seconds to wait before the next try; raises `ChainError` once it is time to
        give up. The next try goes to the next endpoint."""
        self.last = f"{verdict.kind.value} from {self.url} ({detail})"
        self.maybe_sent = self.maybe_sent or verdict.possibly_sent
        delay = self.backoff.delay(self.attempt, verdict.retry_after)
        limit = self.backoff.give_up if stats.answered else self.backoff.unreachable
        if time.monotonic() - self.started + delay > limit:
            stats.gave_up += 1
            sent = (
                f"; transaction {self.tx_hash} may have been sent: look it up before sending again"
                if self.maybe_sent and self.tx_hash
                else ""
            )
            raise ChainError(
                f"{self.method} failed {self.attempt + 1} times in "
                f"{time.monotonic() - self.started:.0f} s, last: {self.last}{sent}; the "
                "RPC endpoint is down or over its limits: retry later, lower the call "
                "rate or add a fallback URL (comma-separated --rpc-url)"
            )
        stats.retries[verdict.kind.value] += 1
        self.attempt += 1
        self.index += 1
        return delay


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _raw_tx_hash(request_data: bytes) -> str:
    params = json.loads(request_data)["params"]
    return "0x" + keccak(hexstr=params[0]).hex()


def _answer(request_data: bytes, result: Any) -> bytes:
    request_id = json.loads(request_data).get("id")
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}).encode()


def _outcome(body: bytes) -> str | None:
    """For a send's answer: 'known', 'nonce' or None (see `faults.send_outcome`)."""
    answer = _json(body)
    error = answer.get("error") if isinstance(answer, dict) else None
    return send_outcome(str(error.get("message", ""))) if isinstance(error, dict) else None


def _lookup_data(tx_hash: str) -> bytes:
    payload = {"jsonrpc": "2.0", "id": 0, "method": "eth_getTransactionByHash"}
    return json.dumps({**payload, "params": [tx_hash]}).encode()


class ResilientHTTPProvider(HTTPProvider):
    """A blocking provider with Kalypso's retry, budget and fallback rules."""

    def __init__(
        self,
        rpc_url: str,
        *,
        timeout: float = 30.0,
        backoff: Backoff | None = None,
        rate: float | None = None,
    ) -> None:
        self.urls = endpoints(rpc_url)
        super().__init__(self.urls[0], exception_retry_configuration=None)
        self.session = requests.Session()  # also keeps web3's process-wide lock away
        self.timeout = timeout
        self.backoff = backoff or Backoff()
        self.budget = Budget(rate)
        self.stats = RpcStats()

    def __str__(self) -> str:
        return f"RPC connection {', '.join(self.urls)}"

    def _make_request(self, method: RPCEndpoint, request_data: bytes) -> bytes:
        self.stats.calls[method] += 1
        if method == SEND:
            return self._send(request_data)
        return self._post(method, request_data)

    def make_batch_request(
        self, batch_requests: list[tuple[RPCEndpoint, Any]]
    ) -> list[RPCResponse] | RPCResponse:
        self.stats.calls["batch"] += 1
        raw = self._post("batch", self.encode_batch_rpc_request(batch_requests))
        return _sorted(self.decode_rpc_response(raw))

    def _exchange(self, url: str, request_data: bytes) -> tuple[Verdict, str, bytes]:
        time.sleep(self.budget.reserve())
        try:
            reply = self.session.post(
                url, data=request_data, headers=self.get_request_headers(), timeout=self.timeout
            )
        except Exception as exc:
            return _raised(exc)
        return _judged(reply.status_code, reply.headers, reply.content, self.stats)

    def _post(self, method: str, request_data: bytes) -> bytes:
        tries = _Attempts(method, self.urls, self.backoff)
        while True:
            verdict, detail, body = self._exchange(tries.url, request_data)
            if not verdict.transient:
                return body
            time.sleep(tries.failed(verdict, detail, self.stats))

    def _send(self, request_data: bytes) -> bytes:
        tx_hash = _raw_tx_hash(request_data)
        tries = _Attempts(SEND, self.urls, self.backoff, tx_hash=tx_hash)
        while True:
            verdict, detail, body = self._exchange(tries.url, request_data)
            if not verdict.transient:
                outcome = _outcome(body)
                if outcome == "known" or (outcome == "nonce" and self._known(tx_hash)):
                    return _answer(request_data, tx_hash)
                return body
            if verdict.possibly_sent and self._known(tx_hash):
                return _answer(request_data, tx_hash)
            time.sleep(tries.failed(verdict, detail, self.stats))

    def _known(self, tx_hash: str) -> bool:
        """Whether a node has the transaction (pending or mined)."""
        return _found(self._post("eth_getTransactionByHash", _lookup_data(tx_hash)))


class AsyncResilientHTTPProvider(AsyncHTTPProvider):
    """The asyncio twin of `ResilientHTTPProvider`, for the daemons and the SDK."""

    def __init__(
        self,
        rpc_url: str,
        *,
        timeout: float = 30.0,
        backoff: Backoff | None = None,
        rate: float | None = None,
    ) -> None:
        self.urls = endpoints(rpc_url)
        super().__init__(self.urls[0], exception_retry_configuration=None)
        self.timeout = timeout
        self.backoff = backoff or Backoff()
        self.budget = Budget(rate)
        self.stats = RpcStats()
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __str__(self) -> str:
        return f"RPC connection {', '.join(self.urls)}"

    async def disconnect(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        await super().disconnect()

    async def _make_request(self, method: RPCEndpoint, request_data: bytes) -> bytes:
        self.stats.calls[method] += 1
        if method == SEND:
            return await self._send(request_data)
        return await self._post(method, request_data)

    async def make_batch_request(
        self, batch_requests: list[tuple[RPCEndpoint, Any]]
    ) -> list[RPCResponse] | RPCResponse:
        self.stats.calls["batch"] += 1
        raw = await self._post("batch", self.encode_batch_rpc_request(batch_requests))
        return _sorted(self.decode_rpc_response(raw))

    def _client(self) -> aiohttp.ClientSession:
        """One keep-alive session, made on the loop that uses it (a provider reused from
        another event loop gets a new one)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._loop = loop
        return self._session

    async def _exchange(self, url: str, request_data: bytes) -> tuple[Verdict, str, bytes]:
        await asyncio.sleep(self.budget.reserve())
        try:
            async with self._client().post(
                url, data=request_data, headers=self.get_request_headers()
            ) as reply:
                body = await reply.read()
        except Exception as exc:
            return _raised(exc)
        return _judged(reply.status, reply.headers, body, self.stats)

    async def _post(self, method: str, request_data: bytes) -> bytes:
        tries = _Attempts(method, self.urls, self.backoff)
        while True:
            verdict, detail, body = await self._exchange(tries.url, request_data)
            if not verdict.transient:
                return body
            await asyncio.sleep(tries.failed(verdict, detail, self.stats))

    async def _send(self, request_data: bytes) -> bytes:
        tx_hash = _raw_tx_hash(request_data)
        tries = _Attempts(SEND, self.urls, self.backoff, tx_hash=tx_hash)
        while True:
            verdict, detail, body = await self._exchange(tries.url, request_data)
            if not verdict.transient:
                outcome = _outcome(body)
                if outcome == "known" or (outcome == "nonce" and await self._known(tx_hash)):
                    return _answer(request_data, tx_hash)
                return body
            if verdict.possibly_sent and await self._known(tx_hash):
                return _answer(request_data, tx_hash)
            await asyncio.sleep(tries.failed(verdict, detail, self.stats))

    async def _known(self, tx_hash: str) -> bool:
        return _found(await self._post("eth_getTransactionByHash", _lookup_data(tx_hash)))


def _raised(exc: Exception) -> tuple[Verdict, str, bytes]:
    verdict = judge_exception(exc)
    if not verdict.transient:
        raise exc
    return verdict, type(exc).__name__, b""


def _judged(status: int, headers: Any, body: bytes, stats: RpcStats) -> tuple[Verdict, str, bytes]:
    verdict = judge_answer(status, headers, _json(body))
    stats.answered += 1
    if verdict.kind == Kind.RANGE:
        stats.range_refusals += 1
    return verdict, f"HTTP {status}", body


def _found(body: bytes) -> bool:
    answer = _json(body)
    return isinstance(answer, dict) and bool(answer.get("result"))


def _sorted(response: RPCResponse | list[RPCResponse]) -> RPCResponse | list[RPCResponse]:
    if isinstance(response, list):
        response.sort(key=lambda r: int(r.get("id") or 0))
    return response
