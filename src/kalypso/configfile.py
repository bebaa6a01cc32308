"""The daemons' TOML config files: read one, then let the environment name the chain
(`KALYPSO_RPC_URL`, `KALYPSO_DEPLOYMENT` win over the file, as everywhere else)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from kalypso.errors import ConfigError


def read_config(
    path: Path | None, env: dict[str, str] | None, *, what: str, example: str
) -> dict[str, Any]:
    """The file's tables (none for no `path`) with the environment's chain applied.
    `what` names the daemon and `example` the command that prints a commented file,
    both for the error when it is missing."""
    env = dict(os.environ) if env is None else env
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"no {what} config at {path}; `{example}` prints one") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    if "KALYPSO_RPC_URL" in env:
        raw["rpc_url"] = env["KALYPSO_RPC_URL"]
    if "KALYPSO_DEPLOYMENT" in env:
        raw["deployment"] = env["KALYPSO_DEPLOYMENT"]
    return raw
