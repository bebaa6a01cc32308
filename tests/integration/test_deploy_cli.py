"""`kalypso deploy` to a chain that is not the devnet: its own keys and authority, or nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from eth_account import Account
from web3.types import RPCEndpoint

from kalypso.contracts import artifact
from kalypso.devnet import Anvil, dev_account
from kalypso.enclave import DEV_AUTHORITY

KALYPSO = [sys.executable, "-m", "kalypso.cli"]


def deploy(url: str, key: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"KALYPSO_PRIVATE_KEY": key}
    return subprocess.run(
        [*KALYPSO, "deploy", "--rpc-url", url, "--out", str(out), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_real_chain_needs_its_own_key_and_attestation_authority(tmp_path: Path) -> None:
    with Anvil(chain_id=4242) as chain:
        deployer = Account.create()
        chain.web3().provider.make_request(
            RPCEndpoint("anvil_setBalance"), [deployer.address, hex(10**20)]
        )
        out = tmp_path / "deployment.json"
        authority = Account.create().address
        refused = [
            deploy(chain.url, dev_account(0).key.hex(), out, "--attestation-authority", authority),
            deploy(chain.url, deployer.key.hex(), out),
            deploy(chain.url, deployer.key.hex(), out, "--attestation-authority", DEV_AUTHORITY),
        ]
        for run in refused:
            assert run.returncode == 1 and "Traceback" not in run.stderr + run.stdout
            assert len((run.stderr + run.stdout).strip().splitlines()) == 1, run.stderr
        assert "public development key" in refused[0].stderr + refused[0].stdout
        assert "attestation authority" in refused[1].stderr + refused[1].stdout
        assert not out.exists()

        done = deploy(chain.url, deployer.key.hex(), out, "--attestation-authority", authority)
        assert done.returncode == 0, done.stderr
        deployment = json.loads(out.read_text())
        assert deployment["chain_id"] == 4242
        registry = chain.web3().eth.contract(
            address=deployment["enclave_registry"], abi=artifact("EnclaveRegistry").abi
        )
        assert registry.functions.authorities().call() == [authority]

        # the market creator too: a public development key creates nothing off the devnet
        env = os.environ | {"KALYPSO_PRIVATE_KEY": dev_account(4).key.hex()}
        market = subprocess.run(
            [*KALYPSO, "market", "create", "roots", "--rpc-url", chain.url, "--deployment",
             str(out), "--circuit", "square_root", "--all-inputs-provable"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert market.returncode == 1 and "Traceback" not in market.stderr
        assert "public development key" in market.stderr, market.stderr
