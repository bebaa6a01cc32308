"""Signing keys for the CLI and the daemons: an encrypted keystore, or a key in the environment.

A keystore's password comes from the caller, else from the environment (`NAME`, or a
file named by `NAME_FILE`, so a service manager's secret file works), else from the
terminal. Without a terminal the error says which variable to set: a command run from
cron or CI never hangs on a prompt.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from kalypso.errors import ConfigError

#: The password of `--keystore` / `KALYPSO_KEYSTORE` (the daemons have their own names).
PASSWORD_ENV = "KALYPSO_KEYSTORE_PASSWORD"


def load_account(
    private_key: str | None,
    keystore: Path | None,
    *,
    password: str | None = None,
    env_name: str = "KALYPSO_PRIVATE_KEY",
    password_env: str = PASSWORD_ENV,
) -> LocalAccount:
    """The account of `keystore` (its password given, else `keystore_password`), else
    of `private_key`."""
    if keystore is not None:
        try:
            encrypted = json.loads(Path(keystore).expanduser().read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read keystore {keystore}: {exc}") from None
        if password is None:
            password = keystore_password(f"password for {keystore}", password_env)
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


def keystore_password(prompt: str, name: str = PASSWORD_ENV, *, confirm: bool = False) -> str:
    """The password in env var `name`, else the first line of the file `name`_FILE
    names, else asked at the terminal (twice with `confirm`)."""
    if name in os.environ:
        return os.environ[name]
    if path := os.environ.get(f"{name}_FILE"):
        try:
            text = Path(path).expanduser().read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the password file {name}_FILE={path}: {exc}") from None
        return text.split("\n", 1)[0].removesuffix("\r")
    if sys.stdin is None or not sys.stdin.isatty():
        raise ConfigError(
            f"no terminal to ask the {prompt}: set {name}, or {name}_FILE to a file whose "
            "first line is the password"
        )
    try:
        password = getpass.getpass(f"{prompt}: ")
        if confirm and getpass.getpass("again: ") != password:
            raise ConfigError("the two passwords differ")
    except EOFError:
        raise ConfigError(f"no {prompt}: set {name} or {name}_FILE") from None
    return password


def new_keystore(path: Path, password: str, *, key: bytes | None = None) -> str:
    """Write `key` (by default a new one) to `path` as an encrypted V3 keystore (mode
    0600, never over an existing file); its address."""
    account = Account.from_key(key) if key is not None else Account.create()
    encrypted = json.dumps(Account.encrypt(account.key, password))
    target = Path(path).expanduser()
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists: a keystore is never overwritten") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc}") from None
    with os.fdopen(fd, "w") as out:
        out.write(encrypted)
    return str(account.address)
