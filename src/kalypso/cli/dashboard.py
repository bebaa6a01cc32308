"""`kalypso dashboard`: serve the live explorer of a deployment."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from kalypso.cli.options import DEFAULT_RPC, DeploymentPath, RpcUrl
from kalypso.logs import configure


def dashboard(
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    state: Annotated[
        Path | None,
        typer.Option(help="Its SQLite cache (default: ~/.kalypso/dashboard/<chain id>.sqlite)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8300,
    poll_interval: Annotated[
        float, typer.Option(min=0.05, help="Seconds between looks at the chain.")
    ] = 1.0,
    confirmations: Annotated[
        int, typer.Option(min=0, help="Blocks an event waits before it is shown.")
    ] = 0,
    json_logs: Annotated[bool, typer.Option("--json-logs", help="Log JSON lines.")] = False,
) -> None:
    """Serve the explorer: markets, requests, generators, slashes and a live feed.

    It follows the deployment's events into its own SQLite cache (a restart resumes where it stopped) and needs no key.

    Open http://HOST:PORT/ in a browser; every page has a JSON twin under /api/ (docs/dashboard.md).
    """  # noqa: E501 (typer shows a paragraph as its lines)
    from kalypso.dashboard.service import serve

    configure(json=json_logs)
    asyncio.run(
        serve(
            rpc_url,
            deployment,
            state=state,
            host=host,
            port=port,
            poll_interval=poll_interval,
            confirmations=confirmations,
        )
    )
