"""An enclave image as a child process (for `kalypso devnet`, the demo and tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractLogicError

from kalypso.contracts.web3tx import bind, reason_of
from kalypso.deployment import Deployment
from kalypso.enclave.authority import DEV_AUTHORITY, vouched_by
from kalypso.errors import ChainError, error_from_reason
from kalypso.logs import get_logger
from kalypso.process import DaemonProcess

log = get_logger("kalypso.enclave")


class EnclaveProcess(DaemonProcess):
    """`kalypso enclave <image>`; `operator` pays its on-chain registration."""

    def __init__(
        self,
        workdir: Path,
        image: str,
        *,
        rpc_url: str,
        deployment: Path,
        operator: LocalAccount,
        port: int,
        market: int | None = None,
        circuit: str | None = None,
    ) -> None:
        args = ["enclave", image, "--rpc-url", rpc_url, "--deployment", str(deployment)]
        args += ["--port", str(port)]
        if market is not None:
            args += ["--market", str(market)]
        if circuit is not None:
            args += ["--circuit", circuit]
        super().__init__(
            f"{image}-enclave",
            args,
            workdir=workdir,
            account=operator,
            key_env="KALYPSO_PRIVATE_KEY",
            api_port=port,
        )

    @property
    def signing_key(self) -> str:
        return str(httpx.get(f"{self.url}/health", timeout=5).json()["signing_key"])


def matching_engine_key(w3: Web3, deployment: Deployment, enclave: str) -> bytes:
    """The key to seal private inputs to, read from the enclave registry: the encryption
    key of the registered, unexpired Matching Engine enclave `enclave` (its signing
    address, as the matcher's /health names it). Never taken from an endpoint."""
    if deployment.enclave_registry is None:
        raise ChainError("the deployment has no enclave registry")
    registry = bind(w3, "EnclaveRegistry", deployment.enclave_registry)
    enclave = Web3.to_checksum_address(enclave)
    try:
        key = registry.functions.matching_engine_key(enclave).call()
    except ContractLogicError as exc:
        raise error_from_reason(reason_of(exc)) from None
    if vouched_by(registry.functions.enclaves(enclave).call()) == DEV_AUTHORITY:
        log.warning(
            "the matching engine's key is attested only by the public dev authority: "
            "anyone could have registered it, so sealed inputs are not confidential here",
            enclave=enclave,
        )
    return bytes(key)


def devnet_enclaves(
    workdir: Path, rpc_url: str, deployment_path: Path, markets: dict[str, int]
) -> dict[str, EnclaveProcess]:
    """The devnet's four images, not started: the Matching Engine, the Generator Image of
    the private Poseidon market, and the Proof and Input Verification Images of the PLONK market.
    Anvil's accounts 6 to 9 pay their registrations (gas only, no other role)."""
    from kalypso.devnet import ATTESTED_MARKET, PRIVATE_MARKET, dev_account, free_port

    def process(image: str, operator: int, **kw: Any) -> EnclaveProcess:
        return EnclaveProcess(
            workdir,
            image,
            rpc_url=rpc_url,
            deployment=deployment_path,
            operator=dev_account(operator),
            port=free_port(),
            **kw,
        )

    attested = markets[ATTESTED_MARKET]
    return {
        "matcher": process("matcher", 6),
        "generator": process(
            "generator", 7, market=markets[PRIVATE_MARKET], circuit="poseidon_preimage"
        ),
        "pvs": process("pvs", 8, market=attested, circuit="square_root"),
        "ivs": process("ivs", 9, market=attested, circuit="square_root"),
    }
