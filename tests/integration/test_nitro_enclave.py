"""An enclave attested with Nitro registers on a chain that is not the devnet, and a
private request goes from the SDK to a proof there.

Chain 4242, no development key signing for Kalypso (anvil's first account only pays
gas to fresh accounts). The attestation verifier runs as an operator runs it (`kalypso
attest serve`, its key in a keystore); the enclaves' documents come from a simulated NSM
whose test CA is the one thing swapped for AWS's root (`--test-root`, allowed on this
chain by name)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from kalypso.circuits import circuit
from kalypso.contracts.client import MarketplaceClient
from kalypso.contracts.deploy import TOKEN_UNIT, DeployParams, deploy_web3
from kalypso.contracts.web3tx import bind, send
from kalypso.deployment import Deployment
from kalypso.devnet import Anvil, dev_account, free_port
from kalypso.enclave.authority import Authority
from kalypso.enclave.generator import GeneratorImage
from kalypso.enclave.images import nitro_image_id
from kalypso.enclave.matching_engine import MatchingEngineImage
from kalypso.enclave.service import Enclave, Image
from kalypso.generator.config import GeneratorConfig
from kalypso.generator.daemon import GeneratorNode
from kalypso.market import RequestKinds
from kalypso.market.groth16 import create_groth16_market
from kalypso.matching.config import MatcherConfig
from kalypso.matching.daemon import Matcher
from kalypso.process import DaemonProcess
from kalypso.provers.snarkjs import SnarkjsWorker
from kalypso.sdk import AsyncKalypso, DevAuthorityWarning
from kalypso.testing.nitro_ca import NitroTestCA, SimulatedNsm, pcrs_of
from tests.integration.test_generator import poseidon_hash, run_until_ready

CHAIN_ID = 4242
PASSWORD = "a long password for the verifier"
MATCHER_PCRS = pcrs_of(11)
GENERATOR_PCRS = pcrs_of(12)
PENALTY = 100 * TOKEN_UNIT


@dataclass
class World:
    chain: Anvil
    deployment: Deployment
    owner: LocalAccount
    folder: Path
    ca: NitroTestCA
    verifier_url: str

    def funded(self, tokens: int = 0) -> LocalAccount:
        """A fresh account with ether for gas and `tokens` KAL from the owner."""
        account = Account.create()
        self.chain.web3().eth.send_transaction({
            "from": dev_account(0).address, "to": account.address,
            "value": Web3.to_wei(10, "ether"),
        })  # fmt: skip
        if tokens:
            MarketplaceClient(self.chain.web3(), self.deployment).transfer(
                self.owner, account.address, tokens
            )
        return account

    def nitro(self, image: Image, pcrs: dict[int, bytes], market_id: int | None) -> Enclave:
        return Enclave.nitro(
            image, self.chain.web3(), self.deployment, self.funded(), market_id=market_id,
            source=SimulatedNsm(self.ca, pcrs), service_url=self.verifier_url,
        )  # fmt: skip


def serve_args(folder: Path, port: int, *more: str) -> list[str]:
    return ["attest", "serve", "--deployment", str(folder / "deployment.json"),
            "--keystore", str(folder / "authority.json"), "--port", str(port), *more]  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Chain 4242 with a deployment whose authority is the verifier's key, a private
    poseidon_preimage market whose Generator Image is measured by PCRs, and the verifier
    (trusting the test CA's root) serving."""
    folder = tmp_path_factory.mktemp("nitro")
    authority = Account.create()
    (folder / "authority.json").write_text(json.dumps(Account.encrypt(authority.key, PASSWORD)))
    ca = NitroTestCA()
    (folder / "root.pem").write_bytes(ca.root.public_bytes(serialization.Encoding.PEM))
    with Anvil(chain_id=CHAIN_ID) as chain:
        gas_only = World(chain, None, None, folder, ca, "")  # type: ignore[arg-type]
        owner = gas_only.funded()
        params = DeployParams(
            treasury=owner.address,
            test_verifiers=False,
            attestation_authority=authority.address,
            matching_engine_image=nitro_image_id(MATCHER_PCRS),
            authority_delay=0,  # a second authority is added in a test, not in two days
        )
        deployment = deploy_web3(chain.web3(), owner, params)
        market = create_groth16_market(
            MarketplaceClient(chain.web3(), deployment), owner, circuit("poseidon_preimage"),
            name="poseidon_preimage", slashing_penalty=PENALTY,
            generator_image=nitro_image_id(GENERATOR_PCRS), request_kinds=RequestKinds.PRIVATE,
        )  # fmt: skip
        deployment = replace(deployment, markets={"poseidon_preimage": market.market_id})
        deployment.save(folder / "deployment.json")
        port = free_port()
        test_root = ["--test-root", str(folder / "root.pem"), "--allow-test-root-on", str(CHAIN_ID)]
        verifier = DaemonProcess(
            "verifier", serve_args(folder, port, *test_root), workdir=folder, account=None,
            key_env=None, api_port=port, env={"KALYPSO_KEYSTORE_PASSWORD": PASSWORD},
        )  # fmt: skip
        verifier.start(timeout=60)
        try:
            yield World(chain, deployment, owner, folder, ca, verifier.url)
        finally:
            verifier.stop(timeout=30)


def test_an_enclave_attested_through_the_verifier_registers_on_chain_4242(world: World) -> None:
    enclave = world.nitro(MatchingEngineImage(), MATCHER_PCRS, None)
    enclave.register()
    registry = bind(world.chain.web3(), "EnclaveRegistry", world.deployment.enclave_registry)
    key = registry.functions.matching_engine_key(enclave.identity.address).call()
    assert key == enclave.identity.encryption.public_bytes
    assert enclave.image_id == nitro_image_id(MATCHER_PCRS)
    assert [enclave.attestation_json()["authority"]] == registry.functions.authorities().call()


@contextmanager
def serving(enclave: Enclave, worker: SnarkjsWorker | None = None) -> Iterator[str]:
    """`enclave` registered and serving from its own thread and event loop, as its own
    process would (the matcher asks its enclave synchronously); yields its URL. Its
    `worker` lives in that loop and is closed there."""
    port, stop, loop = free_port(), asyncio.Event(), asyncio.new_event_loop()

    async def lifetime() -> None:
        try:
            await enclave.run(stop, "127.0.0.1", port)
        finally:
            if worker is not None:
                await worker.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(lifetime(),))
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/health").json()["status"] == "ok":
                    break
            except httpx.HTTPError:
                pass
            if not thread.is_alive():
                raise RuntimeError(f"the {enclave.image.kind.value} enclave stopped")
            threading.Event().wait(0.1)
        yield url
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        loop.close()


@pytest.fixture
async def network(world: World) -> AsyncIterator[tuple[Matcher, GeneratorNode]]:
    """A matcher sealing through its Nitro-attested Matching Engine, and a generator node
    proving in its Nitro-attested Generator Image: every account fresh."""
    market = world.deployment.markets["poseidon_preimage"]
    worker = SnarkjsWorker()
    matcher_image = world.nitro(MatchingEngineImage(), MATCHER_PCRS, None)
    generator_image = world.nitro(
        GeneratorImage("poseidon_preimage", worker), GENERATOR_PCRS, market
    )
    matcher_account, generator_account = world.funded(), world.funded(2_000 * TOKEN_UNIT)
    MarketplaceClient(world.chain.web3(), world.deployment).set_matching_engine(
        world.owner, matcher_account.address
    )
    folder = world.folder
    common = {"rpc_url": world.chain.url, "deployment": str(folder / "deployment.json"),
              "poll_interval": 0.1, "api_port": 0}  # fmt: skip
    with serving(matcher_image) as matcher_url, serving(generator_image, worker) as generator_url:
        matcher_config = {**common, "state": str(folder / "m.sqlite"), "enclave_url": matcher_url}
        offer = {"price": 10 * TOKEN_UNIT, "proof_time": 60, "prover": "enclave",
                 "url": generator_url}  # fmt: skip
        node_config = {**common, "state": str(folder / "g.sqlite"), "stake": 1_000 * TOKEN_UNIT,
                       "compute": 4, "markets": {"poseidon_preimage": offer}}  # fmt: skip
        matcher = await Matcher.open(MatcherConfig.from_dict(matcher_config), matcher_account)
        node = await GeneratorNode.open(GeneratorConfig.from_dict(node_config), generator_account)
        stop = asyncio.Event()
        tasks = [await run_until_ready(matcher, stop), await run_until_ready(node, stop)]
        try:
            yield matcher, node
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            await node.close()
            await matcher.close()


async def test_a_private_request_goes_from_the_sdk_to_a_proof_on_chain_4242(
    world: World, network: tuple[Matcher, GeneratorNode]
) -> None:
    requester = world.funded(100 * TOKEN_UNIT)
    kalypso = await AsyncKalypso.connect(
        world.chain.url, world.folder / "deployment.json", requester
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DevAuthorityWarning)  # the key is Nitro's
            request = await kalypso.request_proof(
                "poseidon_preimage", {"preimage": 7}, max_price="25 KAL", proof_time=120
            )
        proof = await request.wait_for_proof(timeout=120)
    finally:
        await kalypso.close()
    assert list(proof.public_signals) == [await poseidon_hash(7)]
    assert proof.verify_local(circuit("poseidon_preimage").vkey_json())


async def test_the_sdk_seals_to_no_matching_engine_of_a_removed_authority(
    world: World,
) -> None:
    """The newest Matching Engine was vouched for by an authority the owner then removed
    (its key leaked): the SDK, finding the enclave by the registry's logs, seals to the
    newest one of an authority still in the set."""
    w3, deployment = world.chain.web3(), world.deployment
    honest = world.nitro(MatchingEngineImage(), MATCHER_PCRS, None)
    honest.register()
    leaked_key = os.urandom(32)
    registry = bind(w3, "EnclaveRegistry", deployment.enclave_registry)
    image = nitro_image_id(MATCHER_PCRS)
    leaked = Authority(leaked_key).address
    send(w3, world.owner, registry.functions.propose_authority(leaked, image))
    send(w3, world.owner, registry.functions.apply_authority())
    thief = Enclave(MatchingEngineImage(), w3, deployment, world.funded(), market_id=None,
                    authority=Authority(leaked_key))  # fmt: skip
    thief.image_id = image
    thief.register()
    requester = world.funded()
    kalypso = await AsyncKalypso.connect(
        world.chain.url, world.folder / "deployment.json", requester
    )
    try:
        assert await kalypso.matching_engine_key() == thief.identity.encryption.public_bytes
        send(w3, world.owner, registry.functions.remove_authority(leaked))
        assert await kalypso.matching_engine_key() == honest.identity.encryption.public_bytes
    finally:
        await kalypso.close()


def test_a_test_root_is_refused_on_a_chain_not_named(world: World) -> None:
    (world.folder / "other.pem").write_bytes(
        NitroTestCA().root.public_bytes(serialization.Encoding.PEM)
    )
    run = subprocess.run(
        [sys.executable, "-m", "kalypso.cli",
         *serve_args(world.folder, free_port(), "--test-root", str(world.folder / "other.pem"))],
        capture_output=True, text=True, check=False,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("KALYPSO_")},
             "KALYPSO_KEYSTORE_PASSWORD": PASSWORD},
    )  # fmt: skip
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "a test root attests nothing on chain 4242" in run.stderr
