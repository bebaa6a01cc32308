"""`kalypso init`: commented starting points for an app, a generator node and a matcher."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kalypso.cli.options import console
from kalypso.errors import ConfigError
from kalypso.generator.config import EXAMPLE as GENERATOR_EXAMPLE
from kalypso.matching.config import EXAMPLE as MATCHER_EXAMPLE

APP_EXAMPLE = """\
# Kalypso for an app: `set -a; . ./kalypso.env; set +a`, then `Kalypso.from_env()` in
# Python or any `kalypso request …` command reads these.

# The chain's JSON-RPC endpoint (`kalypso devnet` serves one on 8545).
KALYPSO_RPC_URL=http://127.0.0.1:8545

# The deployment file; by default ~/.kalypso/deployments/<chain id>.json, which
# `kalypso devnet` and `kalypso deploy` write.
# KALYPSO_DEPLOYMENT=/path/to/deployment.json

# Your key: an encrypted Ethereum keystore (V3 JSON; `kalypso keystore new --out FILE`
# makes one). Its password: KALYPSO_KEYSTORE_PASSWORD, else the first line of the file
# KALYPSO_KEYSTORE_PASSWORD_FILE names, else the CLI asks at the terminal …
# KALYPSO_KEYSTORE=/path/to/keystore.json
# KALYPSO_KEYSTORE_PASSWORD_FILE=/path/to/password.txt
# … or a raw key (the devnet prints funded ones; never a real key in a file).
# KALYPSO_PRIVATE_KEY=0x…
"""

FILES = {
    "app": ("kalypso.env", APP_EXAMPLE),
    "generator": ("generator.toml", GENERATOR_EXAMPLE),
    "matcher": ("matcher.toml", MATCHER_EXAMPLE),
}


def init(
    roles: Annotated[
        list[str] | None,
        typer.Argument(help="Which files: app, generator, matcher (default: all three)."),
    ] = None,
    directory: Annotated[Path, typer.Option("--dir", help="Where to write them.")] = Path("."),
    force: Annotated[bool, typer.Option(help="Overwrite files that exist.")] = False,
) -> None:
    """Write commented example configuration files to edit."""
    chosen = roles or list(FILES)
    unknown = [r for r in chosen if r not in FILES]
    if unknown:
        raise ConfigError(f"unknown role(s) {', '.join(unknown)}: choose from {', '.join(FILES)}")
    targets = {directory / FILES[r][0]: FILES[r][1] for r in chosen}
    existing = [str(p) for p in targets if p.exists()]
    if existing and not force:
        raise ConfigError(f"{', '.join(existing)} exist(s): nothing written (--force overwrites)")
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in targets.items():
        path.write_text(text)
        console.print(f"wrote {path}")
