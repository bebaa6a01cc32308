"""Options several commands share, and how the app-facing commands connect and print.

Exit codes of the app-facing commands: 0 done; 1 an error (one line, no traceback);
2 bad usage; 3 `request wait` timed out (the request is still live); 4 the request
ended without a proof (inputs shown invalid, expired or cancelled, or slashed).
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from kalypso.cli.output import plain_console
from kalypso.daemon import jsonable
from kalypso.errors import ConfigError
from kalypso.sdk import DevAuthorityWarning, Kalypso

EXIT_TIMEOUT = 3
EXIT_NO_PROOF = 4

RpcUrl = Annotated[
    str, typer.Option(envvar="KALYPSO_RPC_URL", help="JSON-RPC endpoint.", show_default=True)
]
DeploymentPath = Annotated[
    Path | None,
    typer.Option(
        envvar="KALYPSO_DEPLOYMENT",
        help="Deployment file (default: ~/.kalypso/deployments/<chain id>.json).",
    ),
]
Keystore = Annotated[
    Path | None,
    typer.Option(
        envvar="KALYPSO_KEYSTORE",
        help="Encrypted keystore of your key (password: KALYPSO_KEYSTORE_PASSWORD, or "
        "a file named by KALYPSO_KEYSTORE_PASSWORD_FILE, else asked).",
    ),
]
PrivateKey = Annotated[
    str | None,
    typer.Option(envvar="KALYPSO_PRIVATE_KEY", hidden=True, help="Your key (env var only)."),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

DEFAULT_RPC = "http://127.0.0.1:8545"
console = plain_console()


def client(
    rpc_url: str, deployment: Path | None, private_key: str | None, keystore: Path | None
) -> Kalypso:
    """The SDK client the command runs on; the SDK's progress lines (and its warning of a
    dev-attested matching engine, as one line) go to stderr."""
    sdk = logging.getLogger("kalypso.sdk")
    if not any(isinstance(h, logging.StreamHandler) for h in sdk.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        sdk.addHandler(handler)
        sdk.setLevel(logging.INFO)
    warnings.filterwarnings("ignore", category=DevAuthorityWarning)  # logged instead
    return Kalypso(rpc_url, deployment, private_key, keystore=keystore)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(jsonable(value), indent=2, default=str))


def read_json(path: Path, what: str) -> Any:
    """A JSON file the user named; a missing, unreadable or invalid one is a ConfigError."""
    if not path.is_file():
        raise ConfigError(f"no {what} file at {path}")
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError
        raise ConfigError(f"the {what} {path} is not valid JSON: {exc}") from None
