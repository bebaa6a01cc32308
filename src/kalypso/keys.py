"""Signing keys for the CLI and the daemons: an encrypted keystore, or a key in the environment."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from kalypso.errors import ConfigError


def load_account(
    private_key: str | None,
    keystore: Path | None,
    *,
    password: str | None = None,
    env_name: str = "KALYPSO_PRIVATE_KEY",
) -> LocalAccount:
    """The account of `keystore` (asking its password unless given), else of `private_key`."""
    if keystore is not None:
        try:
            encrypted = json.loads(Path(keystore).expanduser().read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read keystore {keystore}: {exc}") from None
        if password is None:
            try:
                password = getpass.getpass(f"password for {keystore}: ")
            except EOFError:
                raise ConfigError(
                    f"no password for {keystore}: run in a terminal, or set it in the environment"
                ) from None
        try:
            account: LocalAccount = Account.from_key(Account.decrypt(encrypted, password))
        except ValueError:
            raise ConfigError(f"wrong password for {keystore}") from None
        return account
    if private_key:
        try:
            account = Account.from_key(private_key)
        except (ValueError, TypeError):
            raise ConfigError(f"{env_name} is not a valid private key") from None
        return account
    raise ConfigError(f"give a key: a keystore file, or {env_name} in the environment")
