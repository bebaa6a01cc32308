"""The whole trust path on anvil: the matcher seals through its Matching Engine enclave,
the generator node proves private tasks in its Generator Image and gets PLONK proofs and
invalid inputs attested by the Proof and Input Verification Images."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kalypso.circuits import plonk
from kalypso.contracts.client import PostedRequest
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.crypto import SecretContext, seal
from kalypso.devnet import ATTESTED_MARKET, PRIVATE_MARKET, dev_account, free_port
from kalypso.enclave.generator import GeneratorImage
from kalypso.enclave.process import EnclaveProcess, matching_engine_key
from kalypso.enclave.service import Enclave, Image
from kalypso.enclave.verdicts import InputVerificationImage, ProofVerificationImage
from kalypso.generator.daemon import GeneratorNode
from kalypso.market import RequestState, encode_signals, request_id
from kalypso.market.attested import split_attested_proof
from kalypso.matching.daemon import Matcher
from kalypso.provers.plonk import PlonkProof
from kalypso.provers.snarkjs import SnarkjsWorker
from tests.integration.test_generator import generator_config, poseidon_hash, run_until_ready
from tests.integration.world import POSEIDON, World, async_wait_for, config_for

pytestmark = pytest.mark.usefixtures("snapshot")


class Stack:
    def __init__(self, world: World, urls: dict[str, str], node: GeneratorNode) -> None:
        self.world = world
        self.urls = urls
        self.node = node
        self.attested = world.setup.deployment.markets[ATTESTED_MARKET]


@pytest.fixture
async def stack(world: World, tmp_path: Path) -> AsyncIterator[Stack]:
    worker = SnarkjsWorker()
    attested = world.setup.deployment.markets[ATTESTED_MARKET]
    vkey = plonk("square_root").vkey_json()
    images: dict[str, tuple[Image, int | None, int]] = {
        "generator": (GeneratorImage("poseidon_preimage", worker), POSEIDON, 7),
        "pvs": (ProofVerificationImage("plonk", vkey, worker), attested, 8),
        "ivs": (InputVerificationImage("square_root", ["square", "max_root"]), attested, 9),
    }
    stop = asyncio.Event()
    tasks, urls = [], {}
    for name, (image, market, operator) in images.items():
        enclave = Enclave.dev(
            image, world.w3, world.setup.deployment, dev_account(operator), market_id=market
        )
        port = free_port()
        tasks.append(asyncio.create_task(enclave.run(stop, "127.0.0.1", port)))
        urls[name] = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:
        for url in urls.values():

            async def up(url: str = url) -> bool:
                try:
                    return (await http.get(url + "/health")).json()["status"] == "ok"
                except httpx.HTTPError:
                    return False

            for _ in range(100):
                if await up():
                    break
                await asyncio.sleep(0.1)
    # The matcher asks its enclave synchronously: that one runs as its own process.
    path = tmp_path / "deployment.json"
    world.setup.deployment.save(path)
    me = EnclaveProcess(
        tmp_path,
        "matcher",
        rpc_url=world.chain.url,
        deployment=path,
        operator=dev_account(6),
        port=free_port(),
    ).start()
    urls["matcher"] = me.url
    matcher = await Matcher.open(
        config_for(world, tmp_path, enclave_url=urls["matcher"]), dev_account(1)
    )
    markets: dict[str, dict[str, Any]] = {
        PRIVATE_MARKET: {
            "price": 10 * TOKEN_UNIT,
            "proof_time": 60,
            "prover": "enclave",
            "url": urls["generator"],
        },
        ATTESTED_MARKET: {
            "price": 6 * TOKEN_UNIT,
            "proof_time": 60,
            "circuit": "square_root",
            "solver": "square_root",
            "proof_system": "plonk",
            "proof_attestor": urls["pvs"],
            "input_attestor": urls["ivs"],
        },
    }
    node = await GeneratorNode.open(generator_config(world, tmp_path, markets), dev_account(2))
    tasks += [await run_until_ready(matcher, stop), await run_until_ready(node, stop)]
    try:
        yield Stack(world, urls, node)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await node.close()
        await matcher.close()
        await worker.close()
        me.stop()


def private(stack: Stack, preimage: int, public: int) -> PostedRequest:
    world = stack.world
    deployment, requester = world.setup.deployment, dev_account(5)
    world.client.approve_all(requester)
    enclave = httpx.get(stack.urls["matcher"] + "/health").json()["signing_key"]
    key = matching_engine_key(world.w3, deployment, enclave)  # from the registry
    salt = os.urandom(32)
    rid = request_id(deployment.chain_id, deployment.marketplace, requester.address, salt)
    context = SecretContext(deployment.chain_id, deployment.marketplace, rid)
    return world.client.create_request(
        requester,
        POSEIDON,
        encode_signals([public]),
        max_price=25 * TOKEN_UNIT,
        proof_time=120,
        encrypted_secret=seal(json.dumps({"preimage": preimage}).encode(), key, context),
        salt=salt,
    )


async def settled(stack: Stack, posted: PostedRequest, state: RequestState) -> None:
    await async_wait_for(lambda: stack.world.state(posted) == state, 60, state.name)


async def test_private_tasks_are_proven_and_claimed_in_the_generator_image(stack: Stack) -> None:
    offer = stack.world.client.registry.functions.offers(dev_account(2).address, POSEIDON).call()
    async with httpx.AsyncClient() as http:  # the Generator Image serves from this loop
        answer = await http.get(stack.urls["generator"] + "/attestation")
    enclave_key = answer.json()["encryption_key"]
    assert "0x" + bytes(offer[4]).hex() == enclave_key  # the node offers its enclave's key
    digest = await poseidon_hash(7)
    proven = private(stack, 7, digest)
    mismatched = private(stack, 8, digest)
    await settled(stack, proven, RequestState.FULFILLED)
    await settled(stack, mismatched, RequestState.INVALID_INPUTS)


async def test_plonk_proofs_and_invalid_inputs_are_attested(stack: Stack) -> None:
    world = stack.world
    world.client.approve_all(dev_account(5))

    def ask(square: int) -> PostedRequest:
        return world.client.create_request(
            dev_account(5),
            stack.attested,
            encode_signals([square, 20]),
            max_price=8 * TOKEN_UNIT,
            proof_time=120,
        )

    good, bad = ask(169), ask(170)
    await settled(stack, good, RequestState.FULFILLED)
    await settled(stack, bad, RequestState.INVALID_INPUTS)
    (event,) = [e for e in world.events("ProofSubmitted") if e.args["task_id"] == good.id]
    raw, _ = split_attested_proof(event.args["proof"])
    proof = PlonkProof.from_calldata(raw, good.public_inputs)
    worker = SnarkjsWorker()
    try:
        assert await worker.verify("plonk", plonk("square_root").vkey_json(), *proof.to_snarkjs())
    finally:
        await worker.close()
