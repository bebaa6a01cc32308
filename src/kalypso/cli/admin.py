"""`kalypso admin …`: the deployment owner's actions (and a market creator's revocation).

Each command shows the transaction (chain, contract, function, arguments) on stderr and
asks before signing; `--yes` skips the question, and without a terminal nothing is sent
unless `--yes` is given. Like every command that signs, a re-run after a crash reports
the transaction already mined instead of sending another (`kalypso.cli.once`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated

import typer
from web3.types import TxReceipt

from kalypso.amounts import format_amount, parse_amount
from kalypso.cli import token
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
from kalypso.contracts.admin import AdminClient, OwnerCall, bytes32
from kalypso.contracts.admin_state import read_state
from kalypso.daemon import jsonable
from kalypso.errors import ConfigError
from kalypso.keys import load_account

app = typer.Typer(
    help="The owner's actions on a deployment: settings, engines, the attestation authority, "
    "ownership.",
    no_args_is_help=True,
    cls=HelpGroup,
)

Yes = Annotated[
    bool, typer.Option("--yes", "-y", help="Send without asking (needed without a terminal).")
]
Address = Annotated[str, typer.Argument(help="An address (0x + 40 hex digits).")]
Allow = Annotated[bool, typer.Option("--allow/--disallow", help="Allow it, or take it back.")]


class Owned(StrEnum):
    marketplace = "marketplace"
    registry = "registry"
    enclaves = "enclaves"
    token = "token"


class TwoStep(StrEnum):
    marketplace = "marketplace"
    registry = "registry"
    enclaves = "enclaves"


def register(root: typer.Typer) -> None:
    """Add `admin`, `token` and `keystore` to the `kalypso` app."""
    root.add_typer(app, name="admin")
    root.add_typer(token.app, name="token")
    root.add_typer(token.keystore_app, name="keystore")


def confirm(call: OwnerCall, sender: str, yes: bool) -> None:
    """Show `call` on stderr; unless `yes`, send only when a person at a terminal agrees
    (without one, refuse in one line before showing anything)."""
    if not yes and (sys.stdin is None or not sys.stdin.isatty()):
        raise ConfigError(
            f"not sent: no terminal to confirm {call.function} on chain {call.chain_id}; "
            "pass --yes to send it unasked"
        )
    typer.echo(f"{call.describe()}\n  from {sender}", err=True)
    if not yes:
        typer.confirm("send it?", default=False, err=True, abort=True)


def act(
    command: str,
    build: Callable[[AdminClient], OwnerCall],
    rpc_url: str,
    deployment: DeploymentPath,
    keystore: Keystore,
    private_key: PrivateKey,
    yes: bool,
    new: bool,
    *,
    role: str = "the owner",
) -> None:
    """Load the key, build the call, confirm it and send it once."""
    account = load_account(private_key, keystore)
    client = AdminClient.connect(rpc_url, deployment, account, role=role)
    call = build(client)
    confirm(call, client.address, yes)

    def send(*_: object) -> TxReceipt:
        return client.send(call)

    receipt = once(client, command, call.key(), function=call.function, new=new, run=send)
    if receipt is not None:
        tx = "0x" + bytes(receipt["transactionHash"]).hex()
        typer.echo(f"{call.function}: sent {tx}, mined in block {receipt['blockNumber']}")


@app.command("show")
def show(
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    engines: Annotated[
        bool,
        typer.Option(
            "--engines/--no-engines",
            help="Read the engine events from the deploy block (many log queries on an old "
            "deployment).",
        ),
    ] = True,
    as_json: Json = False,
) -> None:
    """Show the owners, pending owners, treasury, fee, engines and attestation authority."""
    client = AdminClient.connect(rpc_url, deployment)
    state = read_state(client, engines=engines)
    if as_json:
        applies = {"applies_from": state.applies_from, "applies_until": state.applies_until}
        print_json({**jsonable(state), **(applies if state.pending_since else {})})
        return
    d = client.deployment
    console.print(f"chain {state.chain_id}", highlight=False)
    for name, value in state.rows(lambda n: format_amount(n, d.token_decimals, d.token_symbol)):
        console.print(f"  {name:<22} {value}", highlight=False)


@app.command("set-treasury")
def set_treasury(
    treasury: Address,
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    yes: Yes = False,
    new: New = False,
) -> None:
    """Set where creation fees and the treasury's share of slashes are credited."""
    act("admin set-treasury", lambda c: c.set_treasury(treasury),
        rpc_url, deployment, keystore, private_key, yes, new)  # fmt: skip


@app.command("set-market-creation-fee")
def set_market_creation_fee(
    fee: Annotated[
        str, typer.Argument(help='Token units ("1.5" or "1.5 KAL"), or base units ("15 base").')
    ],
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    yes: Yes = False,
    new: New = False,
) -> None:
    """Set the fee `market create` pays to the treasury."""

    def build(c: AdminClient) -> OwnerCall:
        d = c.deployment
        return c.set_market_creation_fee(parse_amount(fee, d.token_decimals, d.token_symbol))

    act("admin set-market-creation-fee", build,
        rpc_url, deployment, keystore, private_key, yes, new)  # fmt: skip


@app.command("set-matching-engine")
def set_matching_engine(
    engine: Annotated[str, typer.Argument(help="The engine's signing address.")],
    allow: Allow = True,
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    yes: Yes = False,
    new: New = False,
) -> None:
    """Allow (or disallow) a matching engine to assign the requests of every market."""
    act("admin set-matching-engine", lambda c: c.set_matching_engine(engine, allow),
        rpc_url, deployment, keystore, private_key, yes, new)  # fmt: skip


@app.command("set-market-matching-engine")
def set_market_matching_engine(
    market_id: Annotated[int, typer.Argument(help="The market's id.")],
    engine: Annotated[str, typer.Argument(help="The engine's signing address.")],
    allow: Allow = True,
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    yes: Yes = False,
    new: New = False,
) -> None:
    """Allow (or disallow) a matching engine to assign the requests of one market."""
    act("admin set-market-matching-engine",
        lambda c: c.set_market_matching_engine(market_id, engine, allow),
        rpc_url, deployment, keystore, private_key, yes, new)  # fmt: skip


@app.command("set-enclave-registry")
def set_enclave_registry(
    registry: Address,
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    yes: Yes = False,
    new: New = False,
) -> None:
    """Set, once, the marketplace's EnclaveRegistry (`kalypso deploy` does it)."""
    act("admin set-enclave-registry", lambda c: c.set_enclave_registry(registry),
        rpc_url, deployment, keystore, private_key, yes, new)  # fmt: skip


@app.command("set-market-registry")
def set_market_registry(
    registry: Address,
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    yes: Yes = False,
    new: New = False,
) -> None:
    """Set, once, the marketplace's MarketRegistry (`kalypso deploy` does it)."""
    act("admin set-market-registry", lambda c: c.set_market_registry(registry),
        rpc_url, deployment, keystore, private_key, yes, new)  # fmt: skip


@app.command("set-marketplace")
def set_marketplace(
    marketplace: Address,
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    yes: Yes = False,
    new: New = False,
) -> None:
    """Set, once, the GeneratorRegistry's marketplace (`kalypso deploy` does it)."""
    act("admin set-marketplace", lambda c: c.set_marketplace(marketplace),
        rpc_url, deployment, keystore, private_key, yes, new)  # fmt: skip


@app.command("propose-authority")
def propose_authority(
    authority: Annotated[str, typer.Argument(help="The new attestation authority's address.")],
    matching_engine_image: Annotated[
        str | None,
        typer.Option(help="The new Matching Engine image id (default: the current one)."),
    ] = None,
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    yes: Yes = False,
    new: New = False,
) -> None:
    """Propose adding an attestation authority (or, naming one already there, only a new
    Matching Engine image): it applies after the registry's delay (`apply-authority`),
    and lapses if not applied within a week after that. The others stay."""
    image = None if matching_engine_image is None else bytes32(matching_engine_image, "an image id")
    act("admin propose-authority", lambda c: c.propose_authority(authority, image),
        rpc_url, deployment, keystore, private_key, yes, new)  # fmt: skip


@app.command("cancel-authority")
def cancel_authority(
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    yes: Yes = False,
    new: New = False,
) -> None:
    """Withdraw the proposed attestation authority."""
    act("admin cancel-authority", lambda c: c.call("enclaves", "cancel_authority"),
        rpc_url, deployment, keystore, private_key, yes, new)  # fmt: skip


@app.command("apply-authority")
def apply_authority(
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    yes: Yes = False,
    new: New = False,
) -> None:
    """Apply the proposed attestation authority once its delay has passed."""
    act("admin apply-authority", lambda c: c.call("enclaves", "apply_authority"),
        rpc_url, deployment, keystore, private_key, yes, new)  # fmt: skip


@app.command("remove-authority")
def remove_authority(
    authority: Annotated[str, typer.Argument(help="The attestation authority to cut off.")],
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    yes: Yes = False,
    new: New = False,
) -> None:
    """Remove an attestation authority at once, with every enclave key it vouched for
    (use it when a verifier's key may have leaked). It is retired for good; removing the
    last one halts private markets until a new authority applies."""
    act("admin remove-authority", lambda c: c.remove_authority(authority),
        rpc_url, deployment, keystore, private_key, yes, new)  # fmt: skip


@app.command("revoke-image")
def revoke_image(
    market_id: Annotated[int, typer.Argument(help="The market's id.")],
    image: Annotated[
        str, typer.Argument(help="An image id (0x…), or the market's generator|ivs|pvs image.")
    ],
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    yes: Yes = False,
    new: New = False,
) -> None:
    """As a market's creator, stop trusting one of its enclave images for tasks assigned
    from now on (tasks assigned before still settle)."""
    act("admin revoke-image", lambda c: c.revoke_image(market_id, image), rpc_url,
        deployment, keystore, private_key, yes, new, role="the market creator")  # fmt: skip


@app.command("transfer-ownership")
def transfer_ownership(
    contract: Annotated[Owned, typer.Argument(help="Whose ownership.")],
    new_owner: Address,
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    yes: Yes = False,
    new: New = False,
) -> None:
    """Offer a contract's ownership to a new owner, who then runs `accept-ownership`.

    The zero address withdraws a pending offer. The token's ownership (and its minting)
    moves at once: there is no accepting step."""
    act(f"admin transfer-ownership {contract.value}",
        lambda c: c.transfer_ownership(contract.value, new_owner),
        rpc_url, deployment, keystore, private_key, yes, new)  # fmt: skip


@app.command("accept-ownership")
def accept_ownership(
    contract: Annotated[TwoStep, typer.Argument(help="Whose ownership.")],
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    yes: Yes = False,
    new: New = False,
) -> None:
    """As the pending owner, take a contract's ownership."""
    act(f"admin accept-ownership {contract.value}",
        lambda c: c.accept_ownership(contract.value),
        rpc_url, deployment, keystore, private_key, yes, new, role="the new owner")  # fmt: skip


@app.command("set-minter")
def set_minter(
    minter: Address,
    allow: Allow = True,
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    yes: Yes = False,
    new: New = False,
) -> None:
    """Let an address mint the token (a testnet faucet), or stop it: for the token's owner,
    when `kalypso deploy` made the token."""
    act("admin set-minter", lambda c: c.set_minter(minter, allow),
        rpc_url, deployment, keystore, private_key, yes, new)  # fmt: skip
