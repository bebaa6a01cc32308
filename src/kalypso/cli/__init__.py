"""`kalypso`: the command line. Thin: each command calls a library entry point."""

from __future__ import annotations

import sys

import typer

from kalypso.cli import (
    account,
    admin,
    attest,
    chain,
    circuit,
    dashboard,
    enclave,
    generator,
    init,
    keys,
    market,
    matcher,
    request,
)
from kalypso.cli.output import HelpGroup, plain_console, styled
from kalypso.errors import KalypsoError

app = typer.Typer(
    name="kalypso",
    help="Kalypso: an open, decentralized marketplace for zero-knowledge proofs.\n\n"
    "Exit codes: 0 done, 1 error, 2 bad usage, 3 `request wait` timed out, 4 the request "
    "ended without a proof.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=HelpGroup,
    rich_markup_mode=None,  # click's help: it wraps at any width, where Rich's cuts with "…"
)
app.command("devnet")(chain.devnet)
app.command("deploy")(chain.deploy)
app.command("demo")(chain.demo)
app.command("init")(init.init)
app.add_typer(circuit.app, name="circuit")
app.add_typer(market.app, name="market")
app.command("balance")(account.balance)
app.command("deposit")(account.deposit)
app.command("withdraw")(account.withdraw)
app.add_typer(request.app, name="request")
app.command("matcher")(matcher.matcher)
app.add_typer(generator.app, name="generator")
app.add_typer(keys.app, name="key")
app.add_typer(enclave.app, name="enclave")
app.add_typer(attest.app, name="attest")
app.command("dashboard")(dashboard.dashboard)
admin.register(app)  # admin, token, keystore


def main() -> None:
    """Entry point: Kalypso's errors print as one line and exit 1, without a traceback."""
    try:
        app()
    except KalypsoError as exc:
        plain_console(stderr=True).print(styled(("error:", "bold red"), f" {exc}"))
        sys.exit(1)
