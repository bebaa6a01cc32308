"""Provers written for Marlin's Kalypso, unmodified: the adapter against the stand-in that
answers as Marlin's template does (tests/integration/provers/marlin_template.py), then
through a generator node on the devnet in both layouts, and the confidential layout
inside a Generator Image with a private request."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kalypso.circuits import circuit
from kalypso.contracts.client import PostedRequest
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.crypto import SecretContext, seal
from kalypso.devnet import SAMPLE_PENALTY, dev_account, free_port
from kalypso.enclave.generator import GeneratorImage, legacy_prover
from kalypso.enclave.images import ImageKind, image_id
from kalypso.enclave.process import EnclaveProcess, matching_engine_key
from kalypso.enclave.service import Enclave
from kalypso.errors import ConfigError, ProverError, ProverTimeout
from kalypso.generator import Phase
from kalypso.generator.daemon import GeneratorNode
from kalypso.market import RequestKinds, RequestState, encode_signals, request_id
from kalypso.market.groth16 import create_groth16_market
from kalypso.matching.daemon import Matcher
from kalypso.provers import InvalidInputs
from kalypso.provers.legacy import LegacyProver, fixed_array
from kalypso.provers.proof import Groth16Proof
from kalypso.provers.snarkjs import SnarkjsWorker
from kalypso.provers.wire import BytesProof, canonical_json
from tests.integration.test_generator import generator_config, run_until_ready
from tests.integration.test_marlin_template import StandIn
from tests.integration.world import SQUARE_ROOT, World, async_wait_for, config_for, rpc

VALID = encode_signals([49, 10])  # as Kalypso's requests carry them: abi uint256[]
INVALID = encode_signals([10, 10])  # 10 is no square


@pytest.fixture(scope="module")
def template() -> Iterator[dict[str, StandIn]]:
    running = {layout: StandIn(layout) for layout in ("prover", "ivs", "confidential")}
    yield running
    for stand_in in running.values():
        stand_in.stop()


def verifies(proof: BytesProof | InvalidInputs, public: bytes) -> bool:
    assert isinstance(proof, BytesProof) and proof.public_inputs() == public
    decoded = Groth16Proof.from_calldata(proof.calldata(), public)
    return decoded.verify_local(circuit("square_root").vkey_json())


# ---- the adapter against the stand-in


async def test_non_confidential_layout_proves_and_checks_at_the_ivs(
    template: dict[str, StandIn],
) -> None:
    prover = LegacyProver(template["prover"].url, ivs_url=template["ivs"].url, timeout=60)
    try:
        await prover.check()
        assert verifies(await prover.prove_task(VALID, None), VALID)
        verdict = await prover.prove_task(INVALID, None)
        assert isinstance(verdict, InvalidInputs) and "checkInput" in verdict.reason
        # generateProof was never asked for them: the template would have aborted.
        assert template["prover"].process.poll() is None
        benchmark = await prover.benchmark()
        assert benchmark.data == "Success" and benchmark.time_ms > 0
    finally:
        await prover.close()


async def test_confidential_layout_proves_with_the_plain_secret(
    template: dict[str, StandIn],
) -> None:
    prover = LegacyProver(template["confidential"].url, timeout=60, confidential=True)
    try:
        await prover.check()
        secret = canonical_json({"root": 7})
        assert verifies(await prover.prove_task(VALID, secret), VALID)
        wrong = await prover.prove_task(VALID, canonical_json({"root": 8}))
        assert isinstance(wrong, InvalidInputs)
    finally:
        await prover.close()


def test_the_fixed_encoding_is_marlins_uint256_array() -> None:
    assert fixed_array(VALID) == (49).to_bytes(32, "big") + (10).to_bytes(32, "big")
    assert len(VALID) == 128  # offset, length, two words


async def test_verbatim_bytes_are_invalid_to_a_template_decoding_a_fixed_array(
    template: dict[str, StandIn],
) -> None:
    prover = LegacyProver(template["confidential"].url, timeout=60, public_encoding="verbatim")
    try:
        assert isinstance(await prover.prove_task(VALID, None), InvalidInputs)
    finally:
        await prover.close()


async def test_secrets_never_reach_a_prover_outside_the_generator_image(
    template: dict[str, StandIn],
) -> None:
    prover = LegacyProver(template["confidential"].url, timeout=60)
    try:
        with pytest.raises(ConfigError, match="only to a confidential prover"):
            await prover.prove_task(VALID, canonical_json({"root": 7}))
    finally:
        await prover.close()
    with pytest.raises(ConfigError, match="loopback"):
        LegacyProver("http://prover.example:3030", timeout=60, confidential=True)
    with pytest.raises(ConfigError, match="loopback"):  # nor an image id that cannot boot
        legacy_prover("http://prover.example:3030")
    with pytest.raises(ConfigError, match="loopback"):
        LegacyProver("http://127.0.0.1:1", ivs_url="http://10.0.0.2:3030", timeout=60,
                     confidential=True)  # fmt: skip


@pytest.mark.parametrize(
    ("url", "ivs", "message"),
    [
        ("prover", None, "serves no /api/checkInput"),  # the IVS is forgotten
        ("prover", "unreachable", "unreachable"),
        ("with a path", None, "answered HTTP 404"),
    ],
)
async def test_a_wrong_url_or_layout_is_a_config_error_at_start(
    template: dict[str, StandIn], url: str, ivs: str | None, message: str
) -> None:
    base = template["prover"].url + ("/api" if url == "with a path" else "")
    ivs_url = {"unreachable": f"http://127.0.0.1:{free_port()}", None: None}[ivs]
    prover = LegacyProver(base, ivs_url=ivs_url, timeout=60)
    try:
        with pytest.raises(ConfigError, match=message):
            await prover.check()
    finally:
        await prover.close()


async def test_a_panic_and_a_hang_are_prover_errors() -> None:
    """A template that panics aborts: the connection closes with no answer."""

    async def panics(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.close()

    async def hangs(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up
        writer.close()

    for handler, error, message in (
        (panics, ProverError, "closed the connection without answering"),
        (hangs, ProverTimeout, "did not prove within"),
    ):
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        prover = LegacyProver(f"http://127.0.0.1:{port}", timeout=0.5)
        try:
            with pytest.raises(error, match=message):
                await prover.prove_task(VALID, None)
        finally:
            await prover.close()
            server.close()


# ---- through a generator node on the devnet


def legacy_market(url: str, **keys: Any) -> dict[str, dict[str, Any]]:
    table = {"price": 5 * TOKEN_UNIT, "proof_time": 60, "prover": "http", "api": "legacy"}
    return {str(SQUARE_ROOT): {**table, "url": url, **keys}}


@pytest.fixture
async def node_for(world: World, tmp_path: Path, snapshot: None) -> AsyncIterator[Any]:
    """Start a matcher and a node serving square_root with the given market table."""
    started: list[Any] = []
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def start(markets: dict[str, dict[str, Any]]) -> GeneratorNode:
        matcher = await Matcher.open(config_for(world, tmp_path), dev_account(1))
        node = await GeneratorNode.open(generator_config(world, tmp_path, markets), dev_account(2))
        started.extend([node, matcher])
        tasks.extend([await run_until_ready(matcher, stop), await run_until_ready(node, stop)])
        return node

    yield start
    stop.set()
    await asyncio.gather(*tasks)
    for daemon in started:
        await daemon.close()


def ask(world: World, public: bytes) -> PostedRequest:
    requester = dev_account(5)
    world.client.approve_all(requester)
    return world.client.create_request(
        requester, SQUARE_ROOT, public, max_price=8 * TOKEN_UNIT, proof_time=120
    )


async def settled(world: World, posted: PostedRequest, state: RequestState) -> None:
    await async_wait_for(lambda: world.state(posted) == state, 90, state.name)


@pytest.mark.parametrize("layout", ["prover and IVS", "confidential"])
async def test_a_node_proves_and_settles_invalid_inputs_with_a_template_prover(
    world: World, template: dict[str, StandIn], node_for: Any, layout: str
) -> None:
    if layout == "confidential":
        markets = legacy_market(template["confidential"].url)
    else:
        markets = legacy_market(template["prover"].url, ivs_url=template["ivs"].url)
    node = await node_for(markets)
    proven, invalid = ask(world, VALID), ask(world, INVALID)
    await settled(world, proven, RequestState.FULFILLED)
    # The template said "invalid"; the market's own input verifier settles it.
    await settled(world, invalid, RequestState.INVALID_INPUTS)
    await async_wait_for(lambda: not node.journal.live(), 20, "the journal")
    assert {t.phase for t in node.journal.tasks()} == {Phase.CONFIRMED, Phase.INVALID_CLAIMED}


async def test_a_node_hands_back_what_the_template_calls_invalid_and_the_market_does_not(
    world: World, template: dict[str, StandIn], node_for: Any
) -> None:
    """Misconfigured (verbatim bytes to a template decoding uint256[2]), the template
    answers "invalid" for provable inputs: the market's input verifier refuses the claim
    and the node hands the task back at once, not waiting for the slash."""
    node = await node_for(legacy_market(template["confidential"].url, public_encoding="verbatim"))
    posted = ask(world, VALID)
    await async_wait_for(
        lambda: any(e.args["task_id"] == posted.id for e in world.events("TaskDiscarded")),
        60, "the hand-back",
    )  # fmt: skip
    await async_wait_for(lambda: not node.journal.live(), 20, "the journal")
    task = node.journal.get(posted.id)
    assert task is not None and task.phase == Phase.DISCARDED
    assert "invalid-inputs claim" in (task.error or "")
    assert not world.events("TaskSlashed")
    assert world.state(posted) == RequestState.OPEN  # for another generator


# ---- the confidential layout inside a Generator Image


async def test_a_private_request_is_proven_by_the_template_inside_the_generator_image(
    world: World, template: dict[str, StandIn], tmp_path: Path, snapshot: None
) -> None:
    # The enclaves attest with the wall clock; tests before this one on the session chain
    # can leave its clock behind (the full suite did), and a statement ahead of the
    # chain is refused: bring the chain to now first.
    now = int(time.time())
    if int(world.w3.eth.get_block("latest")["timestamp"]) < now:
        rpc(world.w3, "evm_setNextBlockTimestamp", now)
        rpc(world.w3, "evm_mine")
    prover_url = template["confidential"].url
    image = image_id(
        ImageKind.GENERATOR, GeneratorImage.config_for("square_root", legacy_prover(prover_url))
    )
    market = create_groth16_market(
        world.client, world.setup.owner, circuit("square_root"), name="square_root_confidential",
        slashing_penalty=SAMPLE_PENALTY, generator_image=image,
        request_kinds=RequestKinds.PRIVATE,
    ).market_id  # fmt: skip
    worker = SnarkjsWorker()
    stop = asyncio.Event()
    generator_image = GeneratorImage("square_root", worker, prover_url=prover_url)
    enclave = Enclave.dev(
        generator_image, world.w3, world.setup.deployment, dev_account(7), market_id=market
    )
    assert enclave.image_id == image  # the id the market authorized measures the prover's URL
    port = free_port()
    tasks = [asyncio.create_task(enclave.run(stop, "127.0.0.1", port))]
    path = tmp_path / "deployment.json"
    world.setup.deployment.save(path)
    me = EnclaveProcess(
        tmp_path, "matcher", rpc_url=world.chain.url, deployment=path,
        operator=dev_account(6), port=free_port(),
    ).start()  # fmt: skip
    started: list[Any] = []
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(100):
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
        matcher = await Matcher.open(
            config_for(world, tmp_path, enclave_url=me.url), dev_account(1)
        )
        table = {"price": 5 * TOKEN_UNIT, "proof_time": 60, "prover": "enclave"}
        node = await GeneratorNode.open(
            generator_config(
                world, tmp_path, {str(market): {**table, "url": f"http://127.0.0.1:{port}"}}
            ),
            dev_account(2),
        )
        started += [node, matcher]
        tasks += [await run_until_ready(matcher, stop), await run_until_ready(node, stop)]
        key = matching_engine_key(world.w3, world.setup.deployment, me.signing_key)
        proven = private(world, market, key, root=7)
        wrong = private(world, market, key, root=8)
        await settled(world, proven, RequestState.FULFILLED)
        await settled(world, wrong, RequestState.INVALID_INPUTS)  # attested by the image
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for daemon in started:
            await daemon.close()
        await worker.close()
        me.stop()


def private(world: World, market: int, key: Any, *, root: int) -> PostedRequest:
    deployment, requester = world.setup.deployment, dev_account(5)
    world.client.approve_all(requester)
    salt = os.urandom(32)
    rid = request_id(deployment.chain_id, deployment.marketplace, requester.address, salt)
    context = SecretContext(deployment.chain_id, deployment.marketplace, rid)
    return world.client.create_request(
        requester, market, VALID, max_price=8 * TOKEN_UNIT, proof_time=120,
        encrypted_secret=seal(canonical_json({"root": root}), key, context), salt=salt,
    )  # fmt: skip


async def test_attack_a_confidential_provers_error_does_not_carry_the_secret_out() -> None:
    """A template prover's error body can echo what it was sent; inside the Generator
    Image that is the secret, and the image's 503 quotes the prover's error."""

    async def echoes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        body = b'{"error":"cannot prove root 7"}'
        head = b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
        writer.write(
            head + b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echoes, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    prover = LegacyProver(f"http://127.0.0.1:{port}", timeout=5, confidential=True)
    try:
        with pytest.raises(ProverError, match="answered HTTP 500") as raised:
            await prover.prove_task(VALID, canonical_json({"root": 7}))
        assert "root 7" not in str(raised.value)
    finally:
        await prover.close()
        server.close()
