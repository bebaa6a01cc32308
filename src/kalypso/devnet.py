"""A local development chain: anvil from the repository's node_modules, with Kalypso deployed.

`kalypso devnet` starts it, deploys the contracts and a sample market, funds the dev
accounts and writes the deployment file; tests and benchmarks use `Anvil` directly.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import TxReceipt

from kalypso.chain.faults import Backoff
from kalypso.chain.rpc import sync_web3
from kalypso.circuits import circuit
from kalypso.contracts.client import MarketplaceClient
from kalypso.contracts.deploy import TOKEN_UNIT, DeployParams, deploy_web3
from kalypso.contracts.web3tx import deploy
from kalypso.deployment import DEVNET_CHAIN_ID, Deployment
from kalypso.errors import ChainError, ConfigError
from kalypso.market import MarketParams, RequestKinds, encode_signals
from kalypso.market.groth16 import Groth16Market, create_groth16_market
from kalypso.market.mock import mock_proof

#: anvil's well-known development mnemonic. Its keys are public: never use them for value.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNTS = 10
ANVIL_RELATIVE = Path("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")

Account.enable_unaudited_hdwallet_features()


def dev_account(index: int) -> LocalAccount:
    """Dev account `index` of the anvil mnemonic (0 deploys and owns; 1 is the matcher)."""
    account: LocalAccount = Account.from_mnemonic(
        DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}"
    )
    return account


def dev_keys() -> set[str]:
    """The committed development private keys, lower-case hex."""
    return {dev_account(i).key.hex().removeprefix("0x").lower() for i in range(DEV_ACCOUNTS)}


def refuse_dev_key(account: LocalAccount | None, chain_id: int, what: str) -> None:
    """A public development key signs on the devnet only: anyone can spend from it."""
    if (
        chain_id != DEVNET_CHAIN_ID
        and account is not None
        and account.key.hex().removeprefix("0x").lower() in dev_keys()
    ):
        raise ConfigError(
            f"refusing a public development key on chain {chain_id}: give {what} its own key "
            "(--keystore)"
        )


def repo_root() -> Path | None:
    root = Path(__file__).resolve().parents[2]
    return root if (root / "package.json").is_file() else None


def find_anvil() -> str:
    """anvil: `KALYPSO_ANVIL`, the repository's node_modules, or PATH."""
    if env := os.environ.get("KALYPSO_ANVIL"):
        return env
    root = repo_root()
    if root is not None and (root / ANVIL_RELATIVE).exists():
        return str(root / ANVIL_RELATIVE)
    if found := shutil.which("anvil"):
        return found
    raise ConfigError(
        "anvil not found: run `make setup` in the kalypso repository, "
        "`npm install @foundry-rs/anvil@1.7.1`, or set KALYPSO_ANVIL to its path"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds; nothing if it already ended."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Anvil:
    """An anvil process on a local port; a context manager that stops it on exit."""

    def __init__(
        self,
        port: int | None = None,
        *,
        block_time: float | None = None,
        log: Path | None = None,
        chain_id: int = DEVNET_CHAIN_ID,
    ) -> None:
        self.port = port or free_port()
        self.chain_id = chain_id
        self.url = f"http://127.0.0.1:{self.port}"
        self.block_time = block_time
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15) -> Anvil:
        args = [find_anvil(), "--host", "127.0.0.1", "--port", str(self.port)]
        args += ["--chain-id", str(self.chain_id), "--mnemonic", DEV_MNEMONIC, "--silent"]
        if self.block_time:
            args += ["--block-time", str(self.block_time)]
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        w3 = sync_web3(self.url, 2, backoff=Backoff(give_up=0))  # we poll; no retries
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ChainError(f"anvil exited with code {self.process.returncode} on start")
            try:
                if w3.is_connected():
                    return self
            except Exception:
                pass
            time.sleep(0.05)
        self.stop()
        raise ChainError(f"anvil did not answer on {self.url} within {timeout:.0f} s")

    def stop(self) -> None:
        stop_process(self.process, timeout=5)

    def web3(self) -> Web3:
        return sync_web3(self.url, 30)

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class DevnetSetup:
    deployment: Deployment
    owner: LocalAccount
    matcher: LocalAccount
    funded: list[LocalAccount]


#: Sample market on the devnet: proofs checked by the test verifier, one public input,
#: inputs >= 1,000,000 provably invalid through the threshold input verifier.
SAMPLE_MARKET = "mock"
SAMPLE_PENALTY = 100 * TOKEN_UNIT
#: The square_root market whose PLONK proofs the Proof Verification Image attests.
ATTESTED_MARKET = "square_root_plonk"
#: The market of private requests: poseidon_preimage, proven only inside its Generator
#: Image, which alone opens the preimages and attests the ones that do not match.
PRIVATE_MARKET = "poseidon_preimage"
FUND_AMOUNT = 100_000 * TOKEN_UNIT


def deploy_devnet(w3: Web3) -> DevnetSetup:
    """Deploy everything to a fresh devnet chain: contracts, the sample market, funded accounts."""
    owner, matcher = dev_account(0), dev_account(1)
    deployment = deploy_web3(w3, owner, DeployParams(treasury=owner.address))
    client = MarketplaceClient(w3, deployment)
    client.set_matching_engine(owner, matcher.address)
    market_id, _ = create_sample_market(client, owner)
    markets, verifiers = {SAMPLE_MARKET: market_id}, dict(deployment.verifiers)
    for name, market in create_circuit_markets(client, owner).items():
        markets[name] = market.market_id
        verifiers[f"{name}_verifier"] = market.verifier
    from kalypso.market.attested import create_plonk_market  # it imports the daemons' code

    markets[ATTESTED_MARKET] = create_plonk_market(
        client, owner, "square_root", name=ATTESTED_MARKET, slashing_penalty=SAMPLE_PENALTY
    )
    funded = [dev_account(i) for i in range(1, 6)]
    for account in funded:
        client.transfer(owner, account.address, FUND_AMOUNT)
    deployment = replace(deployment, markets=markets, verifiers=verifiers)
    return DevnetSetup(deployment, owner, matcher, funded)


def create_sample_market(
    client: MarketplaceClient, owner: LocalAccount, *, name: str = SAMPLE_MARKET
) -> tuple[int, TxReceipt]:
    """A market on the sample terms, `name` in its metadata; returns its id and receipt."""
    deployment = client.deployment
    params = MarketParams(
        verifier=deployment.verifiers["mock_verifier"],
        input_verifier=deployment.verifiers["threshold_input_verifier"],
        slashing_penalty=SAMPLE_PENALTY,
        public_inputs_count=1,
    )
    metadata = {"name": name, "verifier": "test (keccak)", "public_inputs": ["value"]}
    sample = encode_signals([7])
    proof = mock_proof(sample, b"\x00" * 32, owner.address)
    market_id = client.market_count()
    receipt = client.create_market(
        owner, params, json.dumps(metadata, separators=(",", ":")).encode(), sample, proof
    )
    return market_id, receipt


def create_circuit_markets(
    client: MarketplaceClient, owner: LocalAccount
) -> dict[str, Groth16Market]:
    """The sample circuits' markets, with real Groth16 verifiers.

    poseidon_preimage (`PRIVATE_MARKET`): private requests only (a sealed preimage of a
    public hash), proven inside its Generator Image (`kalypso enclave generator`), which
    also attests preimages that do not match: the only party that sees them. square_root:
    public requests; inputs can be unprovable, decided by an on-chain verifier. The PLONK
    market of square_root (`ATTESTED_MARKET`, created after these) is verified by the
    Proof Verification Image.
    """
    from kalypso.enclave.generator import GeneratorImage  # it imports the daemons' code
    from kalypso.enclave.images import ImageKind, image_id

    generator_image = image_id(ImageKind.GENERATOR, GeneratorImage.config_for("poseidon_preimage"))
    input_verifier, _ = deploy(client.w3, owner, "SquareRootInputVerifier")
    return {
        PRIVATE_MARKET: create_groth16_market(
            client,
            owner,
            circuit("poseidon_preimage"),
            name=PRIVATE_MARKET,
            slashing_penalty=SAMPLE_PENALTY,
            generator_image=generator_image,
            request_kinds=RequestKinds.PRIVATE,
        ),
        "square_root": create_groth16_market(
            client,
            owner,
            circuit("square_root"),
            name="square_root",
            slashing_penalty=SAMPLE_PENALTY,
            input_verifier=input_verifier.address,
        ),
    }
