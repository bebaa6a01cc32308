"""`kalypso key`: encryption keys for private inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kalypso.crypto import EncryptionKey
from kalypso.errors import ConfigError

app = typer.Typer(help="X25519 encryption keys for private inputs (never used to sign).")


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
