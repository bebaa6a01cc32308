"""Run the generator with its HTTP API until a signal: the entry point of `kalypso generator`.

The first SIGTERM or SIGINT drains (leave the markets, finish live tasks, exit); a
second one stops at once: what was cut short is in the journal and resumes at the
next start.
"""

from __future__ import annotations

import asyncio
import signal

from eth_account.signers.local import LocalAccount

from kalypso.daemon import api_server, until_ready
from kalypso.generator.config import GeneratorConfig
from kalypso.generator.daemon import GeneratorNode
from kalypso.logs import get_logger

log = get_logger("kalypso.generator")


async def serve(
    config: GeneratorConfig, account: LocalAccount, *, stop: asyncio.Event | None = None
) -> None:
    """Run the node (and its HTTP API) until it is drained or `stop` is set."""
    from kalypso.generator.api import create_app

    stop = stop or asyncio.Event()
    node = await until_ready(
        "connecting",
        lambda: GeneratorNode.open(config, account),
        give_up=config.startup_timeout,
        logger=log,
        stop=stop,
    )
    draining: list[asyncio.Task[None]] = []

    def on_signal() -> None:
        if draining or not node.ready:
            stop.set()
        else:
            draining.append(asyncio.create_task(node.drain(stop)))

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    try:
        async with api_server(create_app(node), config.api_host, config.api_port, log):
            await node.run(stop)
    finally:
        for task in draining:
            task.cancel()
        await node.close()
        log.info("generator stopped")
