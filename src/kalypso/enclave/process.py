"""An enclave image as a child process (for `kalypso devnet`, the demo and tests)."""

from __future__ import annotations

from pathlib import Path

import httpx
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractLogicError

from kalypso.contracts.web3tx import bind, reason_of
from kalypso.deployment import Deployment
from kalypso.errors import ChainError, error_from_reason
from kalypso.process import DaemonProcess


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
    try:
        key = registry.functions.matching_engine_key(Web3.to_checksum_address(enclave)).call()
    except ContractLogicError as exc:
        raise error_from_reason(reason_of(exc)) from None
    return bytes(key)
