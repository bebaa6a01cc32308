"""`kalypso token …` (funding accounts on a testnet) and `kalypso keystore …` (making the
encrypted keys every signing command takes)."""

from __future__ import annotations

import getpass
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from web3.types import TxReceipt

from kalypso.amounts import format_amount, parse_positive
from kalypso.cli.once import New, once
from kalypso.cli.options import (
    DEFAULT_RPC,
    DeploymentPath,
    Json,
    Keystore,
    PrivateKey,
    RpcUrl,
    console,
    print_json,
)
from kalypso.cli.output import HelpGroup
from kalypso.contracts.admin import AdminClient
from kalypso.errors import ConfigError
from kalypso.keys import PASSWORD_ENV, keystore_password, load_account, new_keystore

app = typer.Typer(
    help="The payment token: mint (its minters), transfer, balances.",
    no_args_is_help=True,
    cls=HelpGroup,
)
keystore_app = typer.Typer(
    help="Encrypted Ethereum keystores (V3 JSON) for the commands and daemons that sign.",
    no_args_is_help=True,
    cls=HelpGroup,
)

To = Annotated[str, typer.Argument(help="Whose wallet (an address).")]
AmountArg = Annotated[
    str, typer.Argument(help='Token units ("1.5" or "1.5 KAL"), or base units ("15 base").')
]
PAST = {"mint": "minted", "transfer": "transferred"}
Out = Annotated[Path, typer.Option("--out", help="The keystore file to write (mode 0600).")]


def _send(
    command: str,
    to: str,
    amount: str,
    key: tuple[Path | None, str | None],
    rpc_url: str,
    deployment: Path | None,
    new: bool,
) -> None:
    """`mint` or `transfer` `amount` to `to`, once, and print the wallet it lands in."""
    account = load_account(key[1], key[0])
    client = AdminClient.connect(rpc_url, deployment, account, role=f"the {command} sender")
    d = client.deployment
    base = parse_positive(amount, "token amount", d.token_decimals, d.token_symbol)
    call = client.mint(to, base) if command == "mint" else client.transfer(to, base)

    def send(*_: object) -> TxReceipt:
        return client.send(call)

    done = once(client, f"token {command}", call.key(), function=call.function, new=new, run=send)
    if done is not None:
        held = format_amount(client.balances(to)[0], d.token_decimals, d.token_symbol)
        sent = format_amount(base, d.token_decimals, d.token_symbol)
        typer.echo(f"{PAST[command]} {sent} to {call.args[0][1]}; its wallet holds {held}")


@app.command("mint")
def mint(
    to: To,
    amount: AmountArg,
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    new: New = False,
) -> None:
    """Mint new tokens to a wallet: for the token's owner and minters (the deployer, when
    `kalypso deploy` made the token)."""
    _send("mint", to, amount, (keystore, private_key), rpc_url, deployment, new)


@app.command("transfer")
def transfer(
    to: To,
    amount: AmountArg,
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    new: New = False,
) -> None:
    """Send tokens from your wallet to another."""
    _send("transfer", to, amount, (keystore, private_key), rpc_url, deployment, new)


@app.command("balance")
def balance(
    address: Annotated[str | None, typer.Argument(help="Whose (default: your key's).")] = None,
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    as_json: Json = False,
) -> None:
    """Show a wallet's tokens and ETH (gas)."""
    account = None if address is not None else load_account(private_key, keystore)
    client = AdminClient.connect(rpc_url, deployment, account, role="your account")
    who = address or client.address
    tokens, wei = client.balances(who)
    if as_json:
        print_json({"address": who, "tokens": tokens, "wei": wei})
        return
    d = client.deployment
    console.print(who, highlight=False)
    shown = format_amount(tokens, d.token_decimals, d.token_symbol)
    console.print(f"  tokens  {shown}  ({tokens} base units)", highlight=False)
    console.print(f"  ETH     {Decimal(wei) / 10**18:f}  ({wei} wei)", highlight=False)


@keystore_app.command("new")
def new(out: Out) -> None:
    """Make a new key, write it encrypted to a keystore file and print its address.

    The password: KALYPSO_KEYSTORE_PASSWORD, or the first line of the file that
    KALYPSO_KEYSTORE_PASSWORD_FILE names, else asked twice at the terminal."""
    _refuse_existing(out)
    typer.echo(new_keystore(out, _new_password(out)))


@keystore_app.command("import")
def import_(out: Out, private_key: PrivateKey = None) -> None:
    """Encrypt a key you already have into a keystore file and print its address.

    The key: KALYPSO_PRIVATE_KEY, else asked at the terminal (hidden). The password as
    for `keystore new`."""
    _refuse_existing(out)
    if not private_key:
        if sys.stdin is None or not sys.stdin.isatty():
            raise ConfigError("no key to import: set KALYPSO_PRIVATE_KEY, or run in a terminal")
        private_key = getpass.getpass("private key (0x…): ")
    key = load_account(private_key, None).key
    typer.echo(new_keystore(out, _new_password(out), key=bytes(key)))


def _refuse_existing(out: Path) -> None:
    """Before asking any password: a keystore is never overwritten."""
    if os.path.lexists(out.expanduser()):
        raise ConfigError(f"{out} exists: a keystore is never overwritten")


def _new_password(out: Path) -> str:
    password = keystore_password(f"password for the new keystore {out}", PASSWORD_ENV, confirm=True)
    if not password:
        raise ConfigError("an empty password leaves the key readable to anyone with the file")
    return password
