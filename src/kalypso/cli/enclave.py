"""`kalypso enclave matcher|generator|pvs|ivs`: run an enclave image as a service."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

from kalypso.cli.output import HelpGroup
from kalypso.keys import load_account
from kalypso.logs import configure

app = typer.Typer(
    help="Run an enclave image: its keys are made at start and never written; the dev "
    "attestation authority attests them (devnet only) and they are registered on-chain.",
    no_args_is_help=True,
    cls=HelpGroup,
)

RpcUrl = Annotated[str, typer.Option(envvar="KALYPSO_RPC_URL", help="JSON-RPC endpoint.")]
DeploymentOpt = Annotated[
    Path | None,
    typer.Option(
        envvar="KALYPSO_DEPLOYMENT",
        help="Deployment file (default: ~/.kalypso/deployments/<chain id>.json).",
    ),
]
Host = Annotated[str, typer.Option(help="Interface to serve on.")]
Port = Annotated[int, typer.Option(help="Port to serve on.")]
Keystore = Annotated[
    Path | None,
    typer.Option(
        help="Keystore of the operator who pays the registration (else KALYPSO_PRIVATE_KEY)."
    ),
]
Market = Annotated[str, typer.Option(help="The market whose image this is, by id or name.")]
Circuit = Annotated[str, typer.Option(help="The sample circuit it checks.")]


def _run(
    kind: str,
    rpc_url: str,
    deployment: Path | None,
    keystore: Path | None,
    market: str | None,
    circuit: str | None,
    host: str,
    port: int,
) -> None:
    from kalypso.enclave.run import build_image, open_enclave, serve
    from kalypso.provers.snarkjs import SnarkjsWorker

    configure()
    operator = load_account(os.environ.get("KALYPSO_PRIVATE_KEY"), keystore)
    worker = SnarkjsWorker()
    image = build_image(kind, circuit, worker)
    enclave = open_enclave(image, rpc_url, deployment, operator, market)
    asyncio.run(serve(enclave, host, port, worker))


@app.command("matcher")
def matcher(
    rpc_url: RpcUrl,
    deployment: DeploymentOpt = None,
    keystore: Keystore = None,
    host: Host = "127.0.0.1",
    port: Port = 7310,
) -> None:
    """Matching Engine Image: the key private inputs are sealed to.

    It re-wraps content keys to the generators the matcher chooses, after checking on
    the chain that the request and the generator's key are what the matcher says."""
    _run("matcher", rpc_url, deployment, keystore, None, None, host, port)


@app.command("pvs")
def pvs(
    rpc_url: RpcUrl,
    market: Market,
    circuit: Circuit = "square_root",
    deployment: DeploymentOpt = None,
    keystore: Keystore = None,
    host: Host = "127.0.0.1",
    port: Port = 7301,
) -> None:
    """Proof Verification Image: verifies proofs off-chain.

    It checks PLONK proofs of the circuit with snarkjs and signs ProofValid attestations
    for the market's tasks (POST /verify)."""
    _run("pvs", rpc_url, deployment, keystore, market, circuit, host, port)


@app.command("ivs")
def ivs(
    rpc_url: RpcUrl,
    market: Market,
    circuit: Circuit = "square_root",
    deployment: DeploymentOpt = None,
    keystore: Keystore = None,
    host: Host = "127.0.0.1",
    port: Port = 7302,
) -> None:
    """Input Verification Image: attests unprovable public inputs.

    It decides with the circuit's solver whether a task's public inputs can be proven
    and signs InputsInvalid attestations when not (POST /check)."""
    _run("ivs", rpc_url, deployment, keystore, market, circuit, host, port)


@app.command("generator")
def generator(
    rpc_url: RpcUrl,
    market: Market,
    circuit: Circuit = "poseidon_preimage",
    deployment: DeploymentOpt = None,
    keystore: Keystore = None,
    host: Host = "127.0.0.1",
    port: Port = 7303,
) -> None:
    """Generator Image: proves private-input tasks.

    Its encryption key is the generator's offer key in the market; it opens the secret,
    proves with snarkjs, and signs InputsInvalid when no proof exists (POST /prove)."""
    _run("generator", rpc_url, deployment, keystore, market, circuit, host, port)
