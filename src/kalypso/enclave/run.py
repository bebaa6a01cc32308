"""Start an enclave image: build it, bind it to the deployment, register, serve."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from eth_account.signers.local import LocalAccount

from kalypso.circuits import load_circuit, plonk
from kalypso.contracts.client import MarketplaceClient
from kalypso.enclave.generator import GeneratorImage
from kalypso.enclave.matching_engine import MatchingEngineImage
from kalypso.enclave.nsm import NsmDevice
from kalypso.enclave.service import Enclave, Image
from kalypso.enclave.verdicts import InputVerificationImage, ProofVerificationImage
from kalypso.errors import ConfigError
from kalypso.logs import get_logger
from kalypso.market import catalog
from kalypso.provers.snarkjs import SnarkjsWorker

log = get_logger("kalypso.enclave")


def build_image(
    kind: str,
    circuit_name: str | None,
    prover_url: str | None = None,
    public_encoding: str = "fixed",
    solver: str | None = None,
) -> tuple[Image, SnarkjsWorker | None]:
    """One of the images by its CLI name, for a circuit where it needs one (a sample's
    name or a built folder), and its snarkjs worker where it proves or verifies: the
    matcher and the IVS need no Node.js (their Nitro images have none). `prover_url`:
    the Generator Image proves with the confidential template prover there
    (`kalypso.provers.legacy`); `solver`: the Input Verification Image decides with a
    creator's `solver.py:function`."""
    if prover_url is not None and kind != "generator":
        raise ConfigError("a prover URL goes with the generator image only")
    if solver is not None and kind != "ivs":
        raise ConfigError("a solver goes with the ivs image only")
    if kind == "matcher":
        return MatchingEngineImage(), None
    if circuit_name is None:
        raise ConfigError(f"the {kind} image needs --circuit")
    if kind == "ivs":
        c = load_circuit(circuit_name)
        return InputVerificationImage(c.name, c.public_signals, solver), None
    worker = SnarkjsWorker()
    if kind == "pvs":
        return ProofVerificationImage("plonk", plonk(circuit_name).vkey_json(), worker), worker
    image = GeneratorImage(
        circuit_name, worker, prover_url=prover_url, public_encoding=public_encoding
    )
    return image, worker


def open_enclave(
    image: Image,
    rpc_url: str,
    deployment_path: Path | None,
    operator: LocalAccount,
    market: str | None,
    attestation_service: str | None = None,
) -> Enclave:
    """The image bound to the deployment (and to `market`, by id or name, if given),
    attested with Nitro through `attestation_service` if given, else by the dev
    authority (devnet only)."""
    client = MarketplaceClient.connect(rpc_url, deployment_path)
    market_id = None if market is None else catalog.market_id(client, market)
    if attestation_service is None:
        return Enclave.dev(image, client.w3, client.deployment, operator, market_id=market_id)
    return Enclave.nitro(
        image, client.w3, client.deployment, operator, market_id=market_id,
        source=NsmDevice(), service_url=attestation_service,
    )  # fmt: skip


async def serve(enclave: Enclave, host: str, port: int, worker: SnarkjsWorker | None) -> None:
    """Run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await enclave.run(stop, host, port)
    finally:
        if worker is not None:
            await worker.close()
    log.info("enclave stopped; its keys are gone with it", image=enclave.image.kind.value)
