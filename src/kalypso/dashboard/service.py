"""Run the dashboard until a signal: the entry point of `kalypso dashboard`."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from kalypso.daemon import api_server
from kalypso.dashboard.app import create_app
from kalypso.dashboard.indexer import Indexer
from kalypso.logs import get_logger

log = get_logger("kalypso.dashboard")


async def serve(
    rpc_url: str,
    deployment: Path | None,
    *,
    state: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8300,
    poll_interval: float = 1.0,
    confirmations: int = 0,
    stop: asyncio.Event | None = None,
) -> None:
    """Follow the chain into the cache and serve the pages until SIGINT/SIGTERM or `stop`."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    indexer = await Indexer.open(rpc_url, deployment, state, confirmations=confirmations)
    log.info("dashboard", url=f"http://{host}:{port}/", cache=str(indexer.store.path))
    try:
        async with api_server(create_app(indexer), host, port, log):
            await indexer.run(stop, poll_interval)
    finally:
        await indexer.close()
        log.info("dashboard stopped")
