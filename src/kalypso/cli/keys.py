"""`kalypso key`: encryption keys for private inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kalypso.cli.output import HelpGroup
from kalypso.crypto import EncryptionKey, rotate
from kalypso.crypto.keys import retired_paths
from kalypso.errors import ConfigError

app = typer.Typer(
    help="X25519 encryption keys for private inputs (never used to sign).", cls=HelpGroup
)


@app.command("new")
def new(
    path: Annotated[Path, typer.Argument(help="Where to write the key (mode 0600).")],
    force: Annotated[bool, typer.Option(help="Overwrite an existing key file.")] = False,
) -> None:
    """Make a key file (e.g. a matcher's `encryption_key`) and print its public key."""
    key = EncryptionKey.generate()
    try:
        key.save(path, overwrite=force)
    except ConfigError:
        raise ConfigError(
            f"{path} exists; --force replaces it (and what was sealed to it)"
        ) from None
    typer.echo(f"0x{key.public_bytes.hex()}  (public key; {path} holds the private key)")


@app.command("show")
def show(path: Annotated[Path, typer.Argument(help="A key file.")]) -> None:
    """Print the public key of a key file."""
    typer.echo(f"0x{EncryptionKey.load(path).public_bytes.hex()}")


@app.command("rotate")
def rotate_key(
    path: Annotated[Path, typer.Argument(help="The key file to replace.")],
    keep: Annotated[
        int, typer.Option(help="Retired keys kept beside it (PATH.1 the newest), at least 1.")
    ] = 3,
) -> None:
    """Replace a key file's key with a new one and print the new public key.

    The old key is kept as PATH.1 (older ones shift to PATH.2, …): requests sealed to it
    before the rotation still open. Restart the matcher (or generator) to use the new
    key; generators re-announce it in their offers when they start."""
    fresh = rotate(path, keep=keep)
    retired = len(retired_paths(path))
    typer.echo(f"0x{fresh.public_bytes.hex()}  (new public key; {retired} retired key(s) kept)")
