"""`kalypso matcher`: run the matching engine daemon."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

from kalypso.keys import load_account
from kalypso.logs import configure
from kalypso.matching.config import EXAMPLE, MatcherConfig


def matcher(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="The matcher's TOML file (see --example)."),
    ] = None,
    example: Annotated[
        bool, typer.Option("--example", help="Print a commented example config and exit.")
    ] = False,
    json_logs: Annotated[bool, typer.Option("--json-logs", help="Log JSON lines.")] = False,
) -> None:
    """Run the matching engine: follow every market, keep the orderbook, assign tasks.

    Key: the config's `keystore` (password: KALYPSO_MATCHER_PASSWORD, or a file named by
    KALYPSO_MATCHER_PASSWORD_FILE) or KALYPSO_MATCHER_KEY.

    The marketplace owner must have authorized its address (set_matching_engine).

    State lives in SQLite: stop it (Ctrl-C, SIGTERM) and restart it at any time.

    Status, explanations and Prometheus metrics are served on the config's `api_port`.
    """
    if example:
        typer.echo(EXAMPLE, nl=False)
        return
    from kalypso.matching.service import serve

    settings = MatcherConfig.load(config)
    configure(json=json_logs)
    account = load_account(
        os.environ.get("KALYPSO_MATCHER_KEY"),
        settings.keystore,
        password_env="KALYPSO_MATCHER_PASSWORD",
        env_name="KALYPSO_MATCHER_KEY",
    )
    asyncio.run(serve(settings, account))
