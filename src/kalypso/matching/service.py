"""Run the matcher with its HTTP API until a signal: the entry point of `kalypso matcher`."""

from __future__ import annotations

import asyncio
import signal

from eth_account.signers.local import LocalAccount

from kalypso.daemon import api_server, until_ready
from kalypso.logs import get_logger
from kalypso.matching.config import MatcherConfig
from kalypso.matching.daemon import Matcher

log = get_logger("kalypso.matcher")


async def serve(
    config: MatcherConfig, account: LocalAccount, *, stop: asyncio.Event | None = None
) -> None:
    """Run the matcher (and its HTTP API) until SIGINT/SIGTERM or `stop` is set."""
    from kalypso.matching.api import create_app

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    matcher = await until_ready(
        "connecting",
        lambda: Matcher.open(config, account),
        give_up=config.startup_timeout,
        logger=log,
        stop=stop,
    )
    try:
        async with api_server(create_app(matcher), config.api_host, config.api_port, log):
            await matcher.run(stop)
    finally:
        await matcher.close()
        log.info("matcher stopped")
