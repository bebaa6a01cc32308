"""`kalypso balance|deposit|withdraw`: your internal marketplace balance (refunds and
earnings land there) and your wallet."""

from __future__ import annotations

from typing import Annotated

import typer

from kalypso.cli.once import New, once
from kalypso.cli.options import (
    DEFAULT_RPC,
    DeploymentPath,
    Json,
    Keystore,
    PrivateKey,
    RpcUrl,
    client,
    console,
    print_json,
)

AmountArg = Annotated[
    str, typer.Argument(help='Token units ("1.5" or "1.5 KAL"), or base units ("15 base").')
]


def balance(
    address: Annotated[str | None, typer.Argument(help="Whose (default: your key's).")] = None,
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    as_json: Json = False,
) -> None:
    """Show the internal marketplace balance and the wallet's tokens."""
    with client(rpc_url, deployment, private_key if address is None else None, keystore) as k:
        who = address or k.address
        internal, wallet = k.balance(who), k.wallet_balance(who)
        if as_json:
            print_json({"address": who, "internal": internal, "wallet": wallet})
            return
        console.print(f"{who}")
        console.print(f"  internal  {k.show(internal)}  ({internal} base units)")
        console.print(f"  wallet    {k.show(wallet)}  ({wallet} base units)")


def deposit(
    amount: AmountArg,
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    new: New = False,
) -> None:
    """Move tokens from your wallet into the marketplace (approving exactly that much).

    Run it again after a crash and it reports the deposit already mined instead of
    depositing twice."""
    with client(rpc_url, deployment, private_key, keystore) as k:
        base = k.amount(amount)
        with console.status(f"depositing {k.show(base)}…"):
            done = once(
                k,
                "deposit",
                {"amount": base},
                function="deposit",
                new=new,
                run=lambda *_: k.deposit(base),
            )
        if done is not None:
            console.print(f"deposited {k.show(base)}; internal balance {k.show(k.balance())}")


def withdraw(
    amount: Annotated[str | None, typer.Argument(help="How much (default: all of it).")] = None,
    to: Annotated[str | None, typer.Option(help="Where to (default: your address).")] = None,
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    new: New = False,
) -> None:
    """Take tokens out of your internal balance into a wallet.

    Run it again after a crash and it reports the withdrawal already mined instead of
    withdrawing twice."""
    with client(rpc_url, deployment, private_key, keystore) as k:
        base = k.balance() if amount is None else k.amount(amount)
        args = {"amount": "all" if amount is None else base, "to": to}
        with console.status(f"withdrawing {k.show(base)}…"):
            done = once(
                k,
                "withdraw",
                args,
                function="withdraw",
                new=new,
                run=lambda *_: k.withdraw(base, to),
            )
        if done is not None:
            console.print(f"withdrew {k.show(base)}; internal balance {k.show(k.balance())}")
