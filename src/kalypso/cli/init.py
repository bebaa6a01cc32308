"""`kalypso init`: starting points for an app, a generator node and a matcher: commented
examples, or, given a deployment, files filled for it (`kalypso.init_files`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kalypso.cli.options import DeploymentPath, client, console
from kalypso.deployment import default_path
from kalypso.errors import ConfigError
from kalypso.init_files import EXAMPLES, FILES, Deployed, filled
from kalypso.sdk import AsyncKalypso


def init(
    roles: Annotated[
        list[str] | None,
        typer.Argument(help="Which files: app, generator, matcher (default: all three)."),
    ] = None,
    directory: Annotated[Path, typer.Option("--dir", help="Where to write them.")] = Path("."),
    force: Annotated[bool, typer.Option(help="Overwrite files that exist.")] = False,
    deployment: DeploymentPath = None,
    rpc_url: Annotated[
        str | None,
        typer.Option(
            envvar="KALYPSO_RPC_URL",
            help="JSON-RPC endpoint of the deployment's chain: its markets are read there.",
        ),
    ] = None,
    markets: Annotated[
        list[str] | None,
        typer.Option(
            "--market",
            help="A market, by id or name, to give a generator table (and the matcher's "
            "shard); repeat for more (default: every market on-chain).",
        ),
    ] = None,
) -> None:
    """Write configuration files to edit: kalypso.env, generator.toml, matcher.toml.

    Given a deployment (--deployment or KALYPSO_DEPLOYMENT; --rpc-url or KALYPSO_RPC_URL
    alone finds it by chain id), they are filled for it: its RPC URL and deployment file,
    keystore lines with placeholder paths, and a generator table for each market
    on-chain, keyed by id. Otherwise they are commented examples for the devnet.
    """
    chosen = roles or list(FILES)
    unknown = [r for r in chosen if r not in FILES]
    if unknown:
        raise ConfigError(f"unknown role(s) {', '.join(unknown)}: choose from {', '.join(FILES)}")
    targets = {r: directory / FILES[r] for r in chosen}
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not force:
        raise ConfigError(f"{', '.join(existing)} exist(s): nothing written (--force overwrites)")
    if deployment is None and rpc_url is None:
        if markets:
            raise ConfigError("--market needs a deployment: give --deployment or --rpc-url")
        texts = EXAMPLES
    else:
        texts = filled(_deployed(rpc_url, deployment, markets or [], directory))
    directory.mkdir(parents=True, exist_ok=True)
    for role, path in targets.items():
        path.write_text(texts[role])
        console.print(f"wrote {path}")


def _deployed(
    rpc_url: str | None, deployment: Path | None, refs: list[str], directory: Path
) -> Deployed:
    """The deployment and its markets, read from the chain as `kalypso market list` does."""
    if rpc_url is None:
        raise ConfigError(
            f"give --rpc-url (or KALYPSO_RPC_URL): the markets of {deployment} are read "
            "from its chain"
        )
    with client(rpc_url, deployment, None, None) as k:
        chain = k.aio
        assert isinstance(chain, AsyncKalypso)  # a chain's client, never the local backend
        found = chain.deployment
        on_chain = k.markets()
        chosen = list({m.id: m for m in map(k.market, refs)}.values()) if refs else on_chain
    path = (deployment or default_path(found.chain_id)).expanduser().resolve()
    return Deployed(rpc_url, path, found, chosen, not refs, directory.expanduser().resolve())
