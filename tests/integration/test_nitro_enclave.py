"""An enclave attested with Nitro registers on a chain that is not the devnet.

Chain 4242, no development key signing for Kalypso (anvil's first account only pays
gas). The attestation verifier runs as an operator runs it (`kalypso attest serve`, its
key in a keystore); the enclave's documents come from a simulated NSM whose test CA is
the one thing swapped for AWS's root (`--test-root`, allowed on this chain by name)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from eth_account import Account
from web3 import Web3

from kalypso.contracts.deploy import DeployParams, deploy_web3
from kalypso.contracts.web3tx import bind
from kalypso.deployment import Deployment
from kalypso.devnet import Anvil, dev_account, free_port
from kalypso.enclave.images import nitro_image_id
from kalypso.enclave.matching_engine import MatchingEngineImage
from kalypso.enclave.service import Enclave
from kalypso.process import DaemonProcess
from kalypso.testing.nitro_ca import NitroTestCA, SimulatedNsm, pcrs_of

CHAIN_ID = 4242
PASSWORD = "a long password for the verifier"
PCRS = pcrs_of(11)


def funded(chain: Anvil) -> Account:
    account = Account.create()
    chain.web3().eth.send_transaction({
        "from": dev_account(0).address, "to": account.address, "value": Web3.to_wei(10, "ether")
    })  # fmt: skip
    return account


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Anvil, Deployment, Path]]:
    """Chain 4242 with a deployment whose authority is the verifier's key; the folder
    with that key's keystore, the test root and the deployment file."""
    folder = tmp_path_factory.mktemp("nitro")
    authority = Account.create()
    (folder / "authority.json").write_text(json.dumps(Account.encrypt(authority.key, PASSWORD)))
    with Anvil(chain_id=CHAIN_ID) as chain:
        deployer = funded(chain)
        params = DeployParams(
            treasury=deployer.address,
            test_verifiers=False,
            attestation_authority=authority.address,
            matching_engine_image=nitro_image_id(PCRS),
        )
        deployment = deploy_web3(chain.web3(), deployer, params)
        deployment.save(folder / "deployment.json")
        yield chain, deployment, folder


def serve_args(folder: Path, port: int, *more: str) -> list[str]:
    return ["attest", "serve", "--deployment", str(folder / "deployment.json"),
            "--keystore", str(folder / "authority.json"), "--port", str(port), *more]  # fmt: skip


def test_an_enclave_attested_through_the_verifier_registers_on_chain_4242(
    world: tuple[Anvil, Deployment, Path],
) -> None:
    chain, deployment, folder = world
    ca = NitroTestCA()
    (folder / "root.pem").write_bytes(ca.root.public_bytes(serialization.Encoding.PEM))
    port = free_port()
    test_root = ["--test-root", str(folder / "root.pem"), "--allow-test-root-on", str(CHAIN_ID)]
    verifier = DaemonProcess(
        "verifier", serve_args(folder, port, *test_root), workdir=folder, account=None,
        key_env=None, api_port=port, env={"KALYPSO_KEYSTORE_PASSWORD": PASSWORD},
    )  # fmt: skip
    verifier.start(timeout=60)
    try:
        operator = funded(chain)
        enclave = Enclave.nitro(
            MatchingEngineImage(), chain.web3(), deployment, operator, market_id=None,
            source=SimulatedNsm(ca, PCRS), service_url=verifier.url,
        )  # fmt: skip
        enclave.register()
    finally:
        verifier.stop(timeout=30)
    registry = bind(chain.web3(), "EnclaveRegistry", deployment.enclave_registry)
    key = registry.functions.matching_engine_key(enclave.identity.address).call()
    assert key == enclave.identity.encryption.public_bytes
    assert enclave.image_id == nitro_image_id(PCRS)
    assert enclave.attestation_json()["authority"] == registry.functions.authority().call()


def test_a_test_root_is_refused_on_a_chain_not_named(world: tuple[Anvil, Deployment, Path]) -> None:
    _, _, folder = world
    (folder / "other.pem").write_bytes(NitroTestCA().root.public_bytes(serialization.Encoding.PEM))
    run = subprocess.run(
        [sys.executable, "-m", "kalypso.cli",
         *serve_args(folder, free_port(), "--test-root", str(folder / "other.pem"))],
        capture_output=True, text=True, check=False,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("KALYPSO_")},
             "KALYPSO_KEYSTORE_PASSWORD": PASSWORD},
    )  # fmt: skip
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "a test root attests nothing on chain 4242" in run.stderr
