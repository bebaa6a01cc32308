"""Start an enclave image: build it, bind it to the deployment, register, serve."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from eth_account.signers.local import LocalAccount

from kalypso.chain.rpc import sync_web3
from kalypso.circuits import circuit, plonk
from kalypso.deployment import Deployment, default_path
from kalypso.enclave.generator import GeneratorImage
from kalypso.enclave.matching_engine import MatchingEngineImage
from kalypso.enclave.service import Enclave, Image
from kalypso.enclave.verdicts import InputVerificationImage, ProofVerificationImage
from kalypso.errors import ChainError, ConfigError
from kalypso.logs import get_logger
from kalypso.provers.snarkjs import SnarkjsWorker

log = get_logger("kalypso.enclave")


def build_image(kind: str, circuit_name: str | None, worker: SnarkjsWorker) -> Image:
    """One of the images by its CLI name, for a sample circuit where it needs one."""
    if kind == "matcher":
        return MatchingEngineImage()
    if circuit_name is None:
        raise ConfigError(f"the {kind} image needs --circuit")
    if kind == "pvs":
        return ProofVerificationImage("plonk", plonk(circuit_name).vkey_json(), worker)
    if kind == "generator":
        return GeneratorImage(circuit_name, worker)
    return InputVerificationImage(circuit_name, circuit(circuit_name).public_signals)


def open_enclave(
    image: Image,
    rpc_url: str,
    deployment_path: Path | None,
    operator: LocalAccount,
    market_id: int | None,
) -> Enclave:
    w3 = sync_web3(rpc_url)
    try:
        chain_id = w3.eth.chain_id
    except Exception as exc:
        raise ChainError(f"cannot reach {rpc_url}: {exc}") from None
    deployment = Deployment.load(deployment_path or default_path(chain_id))
    return Enclave.dev(image, w3, deployment, operator, market_id=market_id)


async def serve(enclave: Enclave, host: str, port: int, worker: SnarkjsWorker) -> None:
    """Run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await enclave.run(stop, host, port)
    finally:
        await worker.close()
    log.info("enclave stopped; its keys are gone with it", image=enclave.image.kind.value)
