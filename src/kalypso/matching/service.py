"""Run the matcher with its HTTP API until a signal: the entry point of `kalypso matcher`."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

import uvicorn
from eth_account.signers.local import LocalAccount

from kalypso.logs import get_logger
from kalypso.matching.config import MatcherConfig
from kalypso.matching.daemon import Matcher

log = get_logger("kalypso.matcher")


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon's stop event rules."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(
    config: MatcherConfig, account: LocalAccount, *, stop: asyncio.Event | None = None
) -> None:
    """Run the matcher (and its HTTP API) until SIGINT/SIGTERM or `stop` is set."""
    from kalypso.matching.api import create_app

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    matcher = await Matcher.open(config, account)
    server: _ApiServer | None = None
    api: asyncio.Task[None] | None = None
    try:
        if config.api_port:
            app = create_app(matcher)
            server = _ApiServer(
                uvicorn.Config(app, host=config.api_host, port=config.api_port, log_level="warning")
            )
            api = asyncio.create_task(server.serve())
            log.info("api listening", url=f"http://{config.api_host}:{config.api_port}")
        await matcher.run(stop)
    finally:
        if server is not None and api is not None:
            server.should_exit = True
            await asyncio.gather(api, return_exceptions=True)
        await matcher.close()
        log.info("matcher stopped")
