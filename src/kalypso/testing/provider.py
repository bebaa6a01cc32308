"""A hosted-RPC-provider simulator: an HTTP JSON-RPC proxy in front of a node (anvil).

It answers like Alchemy, Infura, QuickNode and the public endpoints do on a bad day
(`kalypso.testing.shapes` holds their error texts and cites them): eth_getLogs refused over
too many blocks or logs, HTTP 429 with `Retry-After`, 503 and 502, latency, a load
balancer whose backends lag, connections dropped mid-response, requests that hang, and
eth_sendRawTransaction answered with a failure after the node took the transaction.

    with ProviderSimulator(anvil_url, profile("hosted", seed=7)) as sim:
        rpc_url = sim.url_for("matcher")     # http://127.0.0.1:PORT/matcher
        ...
        sim.stats.calls(label="matcher")     # or GET /_stats
        sim.configure(faults_enabled=False)  # or POST /_control {"faults_enabled": false}

`async with ProviderSimulator(...)` runs it on the current event loop instead of a thread.
`python -m kalypso.testing.provider --help` runs it from a shell (`kalypso.testing.cli`).

Requests go to `/` or `/<label>`; the label names the client in the stats and keys its
rate budget, burst state and random stream (`random.Random(f"{seed}:{label}")`), so each
client's faults repeat for a seed whatever the other clients do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import re
import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiohttp import web

from kalypso.testing import responses
from kalypso.testing.backend import Answer, Backend, error
from kalypso.testing.config import PROFILES, SimulatorConfig
from kalypso.testing.shapes import (
    PERSONALITIES,
    UNAVAILABLE,
    Refusal,
    Voice,
    rate_limited,
)
from kalypso.testing.stats import ProviderStats

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SEND = "eth_sendRawTransaction"
_PARSE_ERROR = {"code": -32700, "message": "parse error"}
_INVALID = {"code": -32600, "message": "empty batch"}


class ProviderSimulator:
    """The simulator on `host:port` (0: a free port) in front of `upstream`."""

    def __init__(
        self,
        upstream: str,
        config: SimulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        upstream_timeout: float = 30.0,
    ) -> None:
        self.upstream = upstream
        self.config = config or SimulatorConfig()
        self.stats = ProviderStats()
        self.host = host
        self.port = port
        self.upstream_timeout = upstream_timeout
        self._rngs: dict[str, random.Random] = {}
        self._bursts: dict[str, int] = {}
        self._buckets: dict[str, tuple[float, float]] = {}
        self._voice = Voice()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._backend: Backend | None = None
        self._closing: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- addresses and control ------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url_for(self, label: str) -> str:
        """The URL a client named `label` uses (its calls are counted under that name)."""
        if not _LABEL.match(label):
            raise ValueError(f"a label is letters, digits, '_', '.', '-': {label!r}")
        return f"{self.url}/{label}"

    def configure(self, **changes: Any) -> SimulatorConfig:
        """Change settings from the next request on (a new seed restarts the streams)."""
        self.config = self.config.with_changes(changes)
        if "seed" in changes:
            self._rngs.clear()
        return self.config

    def reset_stats(self) -> None:
        self.stats.reset()

    def reset(self, config: SimulatorConfig | None = None) -> None:
        """As if just started with `config` (default: the current one): counters, random
        streams, 429 bursts and budgets all fresh. Call it between requests, not during."""
        if config is not None:
            self.config = config
        self.stats.reset()
        self._rngs.clear()
        self._bursts.clear()
        self._buckets.clear()
        self._voice = Voice()
        if self._backend is not None:
            self._backend.voice = self._voice

    # -- lifecycle on the caller's event loop ----------------------------------------

    async def start_async(self) -> str:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_get("/_stats", self._get_stats)
        app.router.add_get("/_control", self._get_control)
        app.router.add_post("/_control", self._post_control)
        app.router.add_post("/", self._rpc)
        app.router.add_post("/{label}", self._rpc)
        self._closing = asyncio.Event()
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.upstream_timeout)
        )
        self._backend = Backend(self.upstream, self._session, self.stats, self._voice)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self.url

    async def stop_async(self) -> None:
        if self._closing is not None:
            self._closing.set()  # hanging requests end now
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        await self.start_async()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop_async()

    # -- lifecycle on a thread of its own --------------------------------------------

    def start(self) -> str:
        """Serve from a background thread with its own event loop; returns the URL."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name="provider-simulator", daemon=True
        )
        self._thread.start()
        try:
            return asyncio.run_coroutine_threadsafe(self.start_async(), loop).result(timeout=15)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop_async(), loop).result(timeout=15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=15)
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- HTTP endpoints ---------------------------------------------------------------

    async def _get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.snapshot())

    async def _get_control(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "config": self.config.to_json(),
                "profiles": {name: p.summary for name, p in PROFILES.items()},
                "personalities": [*PERSONALITIES, "rotate"],
            }
        )

    async def _post_control(self, request: web.Request) -> web.Response:
        """Body: the settings to change, and optionally "profile" (a name to start from),
        "reset_stats": true (zero the counters) or "reset": true (as `reset`)."""
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("the body is a JSON object of settings")
            reset, reset_stats = changes.pop("reset", False), changes.pop("reset_stats", False)
            name = changes.pop("profile", None)
            if name is not None and name not in PROFILES:
                raise ValueError(f"unknown profile {name!r}: one of {', '.join(PROFILES)}")
            base = PROFILES[name].config if name is not None else self.config
            config = base.with_changes(changes)
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if reset:
            self.reset(config)
        else:
            self.config = config
            if name is not None or "seed" in changes:
                self._rngs.clear()
            if reset_stats:
                self.reset_stats()
        return web.json_response({"config": self.config.to_json()})

    async def _rpc(self, request: web.Request) -> web.StreamResponse:
        backend = self._backend
        assert backend is not None, "start the simulator first"
        label = request.match_info.get("label", "default")
        if not _LABEL.match(label):
            return web.json_response({"error": f"bad label {label!r}"}, status=404)
        cfg = self.config
        try:
            body = json.loads(await request.read())
        except ValueError:
            return responses.json_body({"jsonrpc": "2.0", "id": None, "error": _PARSE_ERROR})
        batch = isinstance(body, list)
        if batch and not body:
            return responses.json_body({"jsonrpc": "2.0", "id": None, "error": _INVALID})
        calls: list[Any] = body if batch else [body]
        methods = [c.get("method", "") if isinstance(c, dict) else "" for c in calls]
        self.stats.request(label, methods)
        rng = self._rngs.setdefault(label, random.Random(f"{cfg.seed}:{label}"))
        if cfg.latency_ms:
            spread = cfg.latency_ms * cfg.latency_jitter
            await asyncio.sleep(max(0.0, cfg.latency_ms + rng.uniform(-spread, spread)) / 1000)

        admitted = [self._take_budget(label, cfg) for _ in calls]
        if not batch and not admitted[0][0]:
            self.stats.fault(label, "budget")
            return self._rate_limited(cfg, calls, batch, admitted[0][1])

        faulty = cfg.faults_enabled and any(m not in cfg.exempt_methods for m in methods)
        if faulty:
            early = await self._early_fault(request, label, cfg, rng, calls, batch)
            if early is not None:
                return early
        after: str | None = None
        if (
            faulty
            and _SEND in methods
            and _SEND not in cfg.exempt_methods
            and cfg.rate_send_after_forward
            and rng.random() < cfg.rate_send_after_forward
        ):
            after = rng.choice(cfg.send_after_forward_kinds)
        lag = rng.randint(1, cfg.lag_blocks) if faulty and rng.random() < cfg.rate_lag else 0
        answers: list[Answer] = []  # in order, as a node runs a batch
        try:
            view = max(0, await backend.head() - lag) if lag else None
            if lag:
                self.stats.fault(label, "lagged")
            for call, (ok, wait) in zip(calls, admitted, strict=True):
                if ok:
                    answers.append(await backend.answer(call, label, cfg, view))
                else:
                    self.stats.fault(label, "budget")
                    answers.append((error(call, self._rate_refusal(cfg, wait)), 200))
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
            self.stats.fault(label, "upstream_error")  # the node is down or answered garbage
            return responses.bad_gateway()
        if after is not None:
            self.stats.fault(label, "send_after_forward")
            return await self._after_forward(request, cfg, after, calls, batch, answers)
        if batch:
            return responses.json_body([a for a, _ in answers])
        return responses.json_body(answers[0][0], status=answers[0][1])

    # -- faults ---------------------------------------------------------------------------

    async def _early_fault(
        self,
        request: web.Request,
        label: str,
        cfg: SimulatorConfig,
        rng: random.Random,
        calls: list[Any],
        batch: bool,
    ) -> web.StreamResponse | None:
        """A fault answered before the node sees the request, or None."""
        if self._bursts.get(label, 0) > 0:
            self._bursts[label] -= 1
            self.stats.fault(label, "rate_limited")
            return self._rate_limited(cfg, calls, batch, cfg.retry_after_s)
        draw = rng.random()
        edge = cfg.rate_429
        if draw < edge:
            self._bursts[label] = cfg.rate_limit_burst - 1
            self.stats.fault(label, "rate_limited")
            return self._rate_limited(cfg, calls, batch, cfg.retry_after_s)
        for kind, rate in (
            ("unavailable", cfg.rate_503),
            ("bad_gateway", cfg.rate_502),
            ("drop", cfg.rate_drop),
            ("timeout", cfg.rate_timeout),
        ):
            edge += rate
            if draw < edge:
                self.stats.fault(label, kind)
                if kind == "unavailable":
                    return responses.refused(calls, batch, UNAVAILABLE)
                if kind == "bad_gateway":
                    return responses.bad_gateway()
                if kind == "drop":
                    return await responses.drop(request, responses.placeholder(calls, batch))
                return await self._hang(request, cfg)
        return None

    def _rate_limited(
        self, cfg: SimulatorConfig, calls: list[Any], batch: bool, retry_after: int
    ) -> web.Response:
        refusal = self._rate_refusal(cfg, retry_after)
        status = refusal.http_status if cfg.rate_limit_http else 200
        headers = {"Retry-After": str(retry_after)} if status == 429 and retry_after else {}
        return responses.refused(calls, batch, refusal, status=status, headers=headers)

    def _rate_refusal(self, cfg: SimulatorConfig, retry_after: int) -> Refusal:
        allowed = cfg.requests_per_second or 10.0
        return rate_limited(self._voice.pick(cfg.personality), retry_after, allowed * 1.5, allowed)

    def _take_budget(self, label: str, cfg: SimulatorConfig) -> tuple[bool, int]:
        """A token from `label`'s bucket (capacity and refill: requests_per_second);
        (False, seconds until one is back) when it is empty."""
        rate = cfg.requests_per_second
        if rate is None:
            return True, 0
        now = time.monotonic()
        tokens, then = self._buckets.get(label, (max(1.0, rate), now))
        tokens = min(max(1.0, rate), tokens + (now - then) * rate)
        if tokens >= 1.0:
            self._buckets[label] = (tokens - 1.0, now)
            return True, 0
        self._buckets[label] = (tokens, now)
        return False, max(1, math.ceil((1.0 - tokens) / rate))

    async def _hang(self, request: web.Request, cfg: SimulatorConfig) -> web.StreamResponse:
        """No answer for `hang_s` (or until the simulator stops), then the connection closes."""
        assert self._closing is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=cfg.hang_s)
        if request.transport is not None:
            request.transport.close()
        return web.Response()

    async def _after_forward(
        self,
        request: web.Request,
        cfg: SimulatorConfig,
        kind: str,
        calls: list[Any],
        batch: bool,
        answers: list[Answer],
    ) -> web.StreamResponse:
        """The node has the transaction; the client sees `kind` instead of its answer."""
        if kind == "503":
            return responses.refused(calls, batch, UNAVAILABLE)
        if kind == "drop":
            body = [a for a, _ in answers] if batch else answers[0][0]
            return await responses.drop(request, json.dumps(body).encode())
        return await self._hang(request, cfg)


if __name__ == "__main__":
    from kalypso.testing.cli import main

    main()
