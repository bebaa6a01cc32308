"""`kalypso enclave matcher|generator|pvs|ivs`: run an enclave image as a service."""

from __future__ import annotations

import asyncio
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from kalypso.cli.output import HelpGroup
from kalypso.keys import load_account
from kalypso.logs import configure

app = typer.Typer(
    help="Run an enclave image: its keys are made at start and never written; they are "
    "attested (by the dev authority on the devnet, else with Nitro through the attestation "
    "verifier) and registered on-chain.",
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
Circuit = Annotated[
    str,
    typer.Option(
        help="The circuit: a sample's name, or the folder `kalypso circuit build` wrote (./build)."
    ),
]


class Attestation(StrEnum):
    dev = "dev"
    nitro = "nitro"


AttestationOpt = Annotated[
    Attestation,
    typer.Option(
        help="Who attests its keys: the devnet's dev authority (devnet only), or nitro: a "
        "document from the NSM (/dev/nsm, inside a Nitro enclave) checked by the "
        "--attestation-service."
    ),
]
Service = Annotated[
    str | None,
    typer.Option(
        envvar="KALYPSO_ATTESTATION_SERVICE",
        help="URL of the attestation verifier (`kalypso attest serve`), with --attestation nitro.",
    ),
]


def _run(
    kind: str,
    rpc_url: str,
    deployment: Path | None,
    keystore: Path | None,
    market: str | None,
    circuit: str | None,
    host: str,
    port: int,
    attestation: Attestation,
    service: str | None,
    **options: str,
) -> None:
    from kalypso.enclave.run import build_image, open_enclave, serve
    from kalypso.errors import ConfigError

    if (attestation == Attestation.nitro) != (service is not None):
        raise ConfigError("--attestation nitro goes with --attestation-service URL, dev without")
    configure()
    operator = load_account(os.environ.get("KALYPSO_PRIVATE_KEY"), keystore)
    image, worker = build_image(kind, circuit, **options)
    enclave = open_enclave(image, rpc_url, deployment, operator, market, service)
    asyncio.run(serve(enclave, host, port, worker))


@app.command("matcher")
def matcher(
    rpc_url: RpcUrl,
    deployment: DeploymentOpt = None,
    keystore: Keystore = None,
    host: Host = "127.0.0.1",
    port: Port = 7310,
    attestation: AttestationOpt = Attestation.dev,
    attestation_service: Service = None,
) -> None:
    """Matching Engine Image: the key private inputs are sealed to.

    It re-wraps content keys to the generators the matcher chooses, after checking on
    the chain that the request and the generator's key are what the matcher says."""
    _run(
        "matcher", rpc_url, deployment, keystore, None, None, host, port,
        attestation, attestation_service,
    )  # fmt: skip


@app.command("pvs")
def pvs(
    rpc_url: RpcUrl,
    market: Market,
    circuit: Circuit = "square_root",
    deployment: DeploymentOpt = None,
    keystore: Keystore = None,
    host: Host = "127.0.0.1",
    port: Port = 7301,
    attestation: AttestationOpt = Attestation.dev,
    attestation_service: Service = None,
) -> None:
    """Proof Verification Image: verifies proofs off-chain.

    It checks PLONK proofs of the circuit with snarkjs and signs ProofValid attestations
    for the market's tasks (POST /verify)."""
    _run(
        "pvs", rpc_url, deployment, keystore, market, circuit, host, port,
        attestation, attestation_service,
    )  # fmt: skip


@app.command("ivs")
def ivs(
    rpc_url: RpcUrl,
    market: Market,
    circuit: Circuit = "square_root",
    deployment: DeploymentOpt = None,
    keystore: Keystore = None,
    host: Host = "127.0.0.1",
    port: Port = 7302,
    attestation: AttestationOpt = Attestation.dev,
    attestation_service: Service = None,
    solver: Annotated[
        str | None,
        typer.Option(
            help="Your circuit's solver, PATH.py:FUNCTION: it gets the public inputs by name "
            "and returns the private ones or InvalidInputs. Its SHA-256 is part of the image "
            "id. Default: the sample circuit's built-in one."
        ),
    ] = None,
) -> None:
    """Input Verification Image: attests unprovable public inputs.

    It decides with the circuit's solver whether a task's public inputs can be proven
    and signs InputsInvalid attestations when not (POST /check)."""
    _run(
        "ivs", rpc_url, deployment, keystore, market, circuit, host, port,
        attestation, attestation_service, **({"solver": solver} if solver else {}),
    )  # fmt: skip


@app.command("generator")
def generator(
    rpc_url: RpcUrl,
    market: Market,
    circuit: Circuit = "poseidon_preimage",
    deployment: DeploymentOpt = None,
    keystore: Keystore = None,
    host: Host = "127.0.0.1",
    port: Port = 7303,
    attestation: AttestationOpt = Attestation.dev,
    attestation_service: Service = None,
    prover_url: Annotated[
        str | None,
        typer.Option(
            help="Prove with the confidential prover built on Marlin's prover template at "
            "this loopback URL (beside the image, in its enclave) instead of snarkjs; it "
            "gets the private inputs as PlainSecrets. Part of the image id."
        ),
    ] = None,
    public_encoding: Annotated[
        str,
        typer.Option(
            help="How --prover-url gets the public inputs: fixed (uint256[N], as Marlin's "
            "circom markets) or verbatim (the request's bytes). Part of the image id."
        ),
    ] = "fixed",
) -> None:
    """Generator Image: proves private-input tasks.

    Its encryption key is the generator's offer key in the market; it opens the secret,
    proves with snarkjs (or --prover-url), and signs InputsInvalid when no proof exists
    (POST /prove)."""
    _run(
        "generator", rpc_url, deployment, keystore, market, circuit, host, port,
        attestation, attestation_service,
        **({"prover_url": prover_url, "public_encoding": public_encoding} if prover_url else {}),
    )  # fmt: skip


# ---- running an image in AWS Nitro (docs/nitro-images.md)


class ImageName(StrEnum):
    matcher = "matcher"
    generator = "generator"
    pvs = "pvs"
    ivs = "ivs"


ImageArg = Annotated[ImageName, typer.Argument(help="The enclave image.")]
NitroService = Annotated[
    str,
    typer.Option(
        envvar="KALYPSO_ATTESTATION_SERVICE",
        help="URL of the attestation verifier (`kalypso attest serve`).",
    ),
]
Cid = Annotated[
    int, typer.Option(help="The enclave's CID (`nitro-cli run-enclave` prints it; the first: 16).")
]


@app.command("parent-plan")
def parent_plan(
    image: ImageArg, rpc_url: RpcUrl, attestation_service: NitroService, cid: Cid = 16
) -> None:
    """Print the shell script the parent instance runs beside a Nitro enclave image.

    A Nitro enclave has no network: the script allows and starts `vsock-proxy` to the
    RPC endpoint and to the attestation verifier (their names resolve to loopback
    addresses inside the enclave, so TLS stays end to end) and forwards the image's HTTP
    port into the enclave with socat."""
    from kalypso.enclave.vsock import DEFAULT_PLAN, load_plan
    from kalypso.enclave.vsock import parent_plan as plan_text

    plan = load_plan(DEFAULT_PLAN)
    print(plan_text(plan, image.value, rpc_url, attestation_service, cid), end="")


@app.command("boot")
def boot(
    image: ImageArg,
    rpc_url: RpcUrl,
    deployment: Annotated[
        Path, typer.Option(envvar="KALYPSO_DEPLOYMENT", help="The deployment file to send.")
    ],
    attestation_service: NitroService,
    market: Annotated[
        str | None, typer.Option(help="The market it serves, by id or name (not the matcher).")
    ] = None,
    keystore: Keystore = None,
    cid: Cid = 16,
) -> None:
    """Send a Nitro enclave image its boot config over vsock, and print its answer.

    An enclave gets no arguments or environment: it waits on vsock port 7000 for the RPC
    URL, the deployment, its market, the attestation verifier's URL and the key that pays
    its registrations (gas only: it signs nothing else). Its circuit is not sent: it is
    part of the measured image."""
    import json
    import socket

    from kalypso.cli.options import read_json
    from kalypso.enclave.boot import BOOT_PORT, READ_TIMEOUT, BootConfig, send_config
    from kalypso.errors import ConfigError

    operator = load_account(os.environ.get("KALYPSO_PRIVATE_KEY"), keystore)
    content = read_json(deployment, "deployment")
    raw = json.dumps({
        "rpc_url": rpc_url, "deployment": content, "market": market,
        "attestation_service": attestation_service, "operator_key": "0x" + operator.key.hex(),
    }).encode()  # fmt: skip
    BootConfig.from_json(raw, image.value)  # what the enclave would refuse, refused here
    try:
        with socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM) as sock:
            sock.settimeout(READ_TIMEOUT)
            sock.connect((cid, BOOT_PORT))
            answer = send_config(sock, raw)
    except OSError as exc:
        raise ConfigError(
            f"cannot reach enclave CID {cid} on vsock port {BOOT_PORT}: {exc} "
            "(is it running? `nitro-cli describe-enclaves` shows its CID)"
        ) from None
    if answer != "ok":
        raise ConfigError(f"the enclave refused its boot config: {answer or 'no answer'}")
    print(f"enclave {cid} took its boot config: it registers, then serves")
