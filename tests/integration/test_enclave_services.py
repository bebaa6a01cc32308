"""The enclave images as services on anvil: attested, registered, and their verdicts
accepted (or refused) by the contracts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from kalypso.circuits import circuit, plonk
from kalypso.contracts.client import PostedRequest
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.contracts.web3tx import send
from kalypso.crypto import EncryptionKey, SecretContext, open_with, seal
from kalypso.daemon import jsonable
from kalypso.devnet import dev_account
from kalypso.enclave import DEV_AUTHORITY, Attestation, EnclaveStatement, check_attestation
from kalypso.enclave.matching_engine import MatchingEngineImage
from kalypso.enclave.service import Enclave, request_from_json
from kalypso.enclave.verdicts import InputVerificationImage, ProofVerificationImage
from kalypso.errors import ProofRejectedError, UnauthorizedError
from kalypso.market import RequestState, encode_signals, request_id
from kalypso.market.attested import attested_proof, create_plonk_market, split_attested_proof
from kalypso.provers.plonk import PlonkProof, SnarkjsPlonkProver
from kalypso.provers.snarkjs import SnarkjsWorker
from tests.integration.world import POSEIDON, SQUARE_ROOT, World

PRICE = 5 * TOKEN_UNIT


@pytest.fixture
def market(world: World, snapshot: None) -> int:
    return create_plonk_market(
        world.client, world.setup.owner, "square_root", name="roots", slashing_penalty=PRICE
    )


def serve(world: World, image: Any, market_id: int | None) -> tuple[Enclave, TestClient]:
    enclave = Enclave.dev(
        image, world.w3, world.setup.deployment, world.setup.owner, market_id=market_id
    )
    enclave.register()
    return enclave, TestClient(enclave.app())


@pytest.fixture
async def worker() -> AsyncIterator[SnarkjsWorker]:
    shared = SnarkjsWorker()
    yield shared
    await shared.close()


def task_json(world: World, posted: Any, generator: str) -> dict[str, Any]:
    return {
        "market_id": posted.request.market_id,
        "task_id": "0x" + posted.id.hex(),
        "generator": generator,
        "public_inputs": "0x" + posted.public_inputs.hex(),
    }


def assigned(world: World, market: int, generator: LocalAccount, square: int) -> Any:
    world.client.approve_all(dev_account(5))
    posted = world.client.create_request(
        dev_account(5), market, encode_signals([square, 10]), max_price=PRICE, proof_time=120
    )
    world.client.assign(world.setup.matcher, posted, generator.address, PRICE)
    return posted


def test_the_attestation_endpoint_verifies_off_chain(world: World, market: int) -> None:
    enclave, http = serve(
        world, InputVerificationImage("square_root", ["square", "max_root"]), market
    )
    body = http.get("/attestation").json()
    statement = EnclaveStatement(
        body["signing_key"],
        bytes.fromhex(body["encryption_key"][2:]),
        bytes.fromhex(body["image_id"][2:]),
        body["timestamp_ms"],
    )
    attestation = Attestation(
        bytes.fromhex(body["document"][2:]),
        statement,
        bytes.fromhex(body["statement_signature"][2:]),
    )
    document = check_attestation(
        attestation,
        enclave.domain,
        authority=DEV_AUTHORITY,
        image_id=enclave.image_id,
        max_age_ms=60_000,
    )
    assert document.signing_key == enclave.identity.address
    on_chain = (
        world.client.w3.eth.contract(
            address=world.setup.deployment.enclave_registry, abi=enclave.registry.abi
        )
        .functions.enclaves(enclave.identity.address)
        .call()
    )
    assert bytes(on_chain[0]) == enclave.image_id


async def test_a_plonk_proof_attested_by_the_pvs_is_paid(
    world: World, market: int, worker: SnarkjsWorker
) -> None:
    generator = world.generator(dev_account(2), {market: PRICE})
    artifacts = plonk("square_root")
    enclave, _ = serve(
        world, ProofVerificationImage("plonk", artifacts.vkey_json(), worker), market
    )
    # in this test's loop, where the shared snarkjs worker runs
    transport = httpx.ASGITransport(app=enclave.app())
    http = httpx.AsyncClient(transport=transport, base_url="http://enclave")
    posted = assigned(world, market, generator, 64)
    prover = SnarkjsPlonkProver(circuit("square_root").wasm, artifacts.zkey, worker=worker)
    proof = await prover.prove({"square": 64, "max_root": 10, "root": 8})
    assert isinstance(proof, PlonkProof)
    raw = proof.calldata()

    tampered = raw[:-1] + bytes([raw[-1] ^ 1])
    refused = await http.post(
        "/verify",
        json={**task_json(world, posted, generator.address), "proof": "0x" + tampered.hex()},
    )
    assert refused.status_code == 422

    answer = await http.post(
        "/verify", json={**task_json(world, posted, generator.address), "proof": "0x" + raw.hex()}
    )
    assert answer.status_code == 200, answer.text
    signature = bytes.fromhex(answer.json()["signature"][2:])
    with pytest.raises(ProofRejectedError):  # a valid attestation, for other bytes
        world.client.submit_proof(generator, posted, attested_proof(tampered, signature))
    world.client.submit_proof(generator, posted, attested_proof(raw, signature))
    assert world.state(posted) == RequestState.FULFILLED
    (event,) = [e for e in world.events("ProofSubmitted") if e.args["task_id"] == posted.id]
    got, _ = split_attested_proof(event.args["proof"])
    assert PlonkProof.from_calldata(got, posted.public_inputs) == proof  # the app's proof


def test_unprovable_public_inputs_are_claimed_with_the_ivs(world: World, market: int) -> None:
    generator = world.generator(dev_account(2), {market: PRICE})
    _, http = serve(world, InputVerificationImage("square_root", ["square", "max_root"]), market)
    fine = assigned(world, market, generator, 49)
    assert http.post("/check", json=task_json(world, fine, generator.address)).json() == {
        "invalid": False
    }
    for bad in (-1, 2**256, 1.5, True, "3"):  # untrusted numbers: a clear 400, nothing signed
        body = task_json(world, fine, generator.address) | {"market_id": bad}
        assert http.post("/check", json=body).status_code == 400, bad
    posted = assigned(world, market, generator, 50)
    answer = http.post("/check", json=task_json(world, posted, generator.address)).json()
    assert answer["invalid"] and "not a perfect square" in answer["reason"]
    before = world.client.balance(dev_account(5).address)
    world.client.submit_invalid_inputs(generator, posted, bytes.fromhex(answer["signature"][2:]))
    assert world.state(posted) == RequestState.INVALID_INPUTS
    assert world.client.balance(dev_account(5).address) == before  # the price went to the prover


def sealed(world: World, key: bytes, market: int, salt: bytes) -> tuple[Any, ...]:
    """A private request of `market` sealed to `key`, and the enclave's request bodies."""
    requester, deployment = dev_account(5), world.setup.deployment
    world.client.approve_all(requester)
    rid = request_id(deployment.chain_id, deployment.marketplace, requester.address, salt)
    context = SecretContext(deployment.chain_id, deployment.marketplace, rid)
    envelope = seal(json.dumps({"preimage": 42}).encode(), key, context)
    posted = world.client.create_request(
        requester,
        market,
        encode_signals([1]),
        max_price=PRICE,
        proof_time=120,
        encrypted_secret=envelope,
        salt=salt,
    )
    base = {
        "chain_id": deployment.chain_id,
        "marketplace": deployment.marketplace,
        "request_id": "0x" + rid.hex(),
        "envelope": "0x" + envelope.hex(),
    }
    fields = jsonable(posted.request)  # as the matcher sends them
    return envelope, context, base, fields


def test_the_matching_engine_rewraps_only_to_the_requests_generator(
    world: World, snapshot: None
) -> None:
    enclave, http = serve(world, MatchingEngineImage(), None)
    registry = enclave.registry.functions
    key = bytes(registry.matching_engine_key(enclave.identity.address).call())  # from the chain
    generator = dev_account(2)
    world.generator(generator, {})
    # a Generator Image enclave of the private market (the test holds its key, as it would)
    generator_key = world.generator_image_enclave(POSEIDON).encryption
    world.client.join_market(
        generator, POSEIDON, price=PRICE, proof_time=60, encryption_key=generator_key.public_bytes
    )
    envelope, context, base, fields = sealed(world, key, POSEIDON, b"\x07" * 32)
    assert http.post("/can_open", json=base).json() == {"ok": True}
    # a valid key wrap over a broken body: no generator could open it, so it is refused
    broken = envelope[:-1] + bytes([envelope[-1] ^ 1])
    assert http.post("/can_open", json={**base, "envelope": "0x" + broken.hex()}).json() == {
        "ok": False
    }
    mine = {"recipient": "0x" + generator_key.public_bytes.hex(), "generator": generator.address}
    ask = {**base, "request": fields, **mine}

    stranger = {**ask, "recipient": "0x" + EncryptionKey.generate().public_bytes.hex()}
    assert http.post("/rewrap", json=stranger).status_code == 422
    lied = http.post("/rewrap", json={**ask, "request": {**fields, "market_id": SQUARE_ROOT}})
    assert lied.status_code == 422 and "committed" in lied.text
    low_order = {**ask, "recipient": "0x" + bytes(32).hex()}
    assert http.post("/rewrap", json=low_order).status_code == 422
    answer = http.post("/rewrap", json=ask)
    assert answer.status_code == 200, answer.text
    wrapped = bytes.fromhex(answer.json()["key_envelope"][2:])
    assert json.loads(open_with(envelope, wrapped, generator_key, context)) == {"preimage": 42}

    # a plain key cannot even be offered in a market with a Generator Image
    other = world.generator(dev_account(3), {})
    with pytest.raises(UnauthorizedError, match="generator image"):
        world.client.join_market(
            other,
            POSEIDON,
            price=PRICE,
            proof_time=60,
            encryption_key=EncryptionKey.generate().public_bytes,
        )

    # a cancelled request is never re-wrapped again
    _, _, base, fields = sealed(world, key, POSEIDON, b"\x09" * 32)
    cancelled = {**base, "request": fields, **mine}
    assert http.post("/rewrap", json=cancelled).status_code == 200
    posted_again = PostedRequest(
        bytes.fromhex(base["request_id"][2:]), request_from_json(fields), b"", None
    )
    world.client.cancel(dev_account(5), posted_again)
    refused = http.post("/rewrap", json=cancelled)
    assert refused.status_code == 422 and "not open" in refused.text

    # a Generator Image key stops counting once the market's creator revokes the image
    _, _, base, fields = sealed(world, key, POSEIDON, b"\x08" * 32)
    theirs = {**base, "request": fields, **mine}
    assert http.post("/rewrap", json=theirs).status_code == 200
    image = bytes(world.client.markets.functions.market(POSEIDON).call()[4])
    send(world.w3, world.setup.owner, registry.revoke_image(POSEIDON, image))
    refused = http.post("/rewrap", json=theirs)
    assert refused.status_code == 422 and "Generator Image" in refused.text
