"""The generator node under faults: provers that crash, hang or answer garbage; the node
killed (SIGKILL) at each phase of a task and started again. Every task ends paid exactly
once, handed back, or slashed only when its deadline passed while the node was down."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from kalypso.contracts.client import PostedRequest
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.devnet import dev_account, free_port
from kalypso.generator import Phase, TaskJournal
from kalypso.generator.process import GeneratorProcess
from kalypso.market import RequestState, encode_signals
from kalypso.matching.daemon import Matcher
from tests.integration.world import SQUARE_ROOT, World, async_wait_for, config_for, rpc

pytestmark = pytest.mark.usefixtures("snapshot")

PROVER = Path(__file__).parent / "provers" / "square_root_prover.py"
GENERATOR = dev_account(2)


@pytest.fixture
async def matcher(world: World, tmp_path: Path) -> AsyncIterator[Matcher]:
    m = await Matcher.open(config_for(world, tmp_path), dev_account(1))
    stop = asyncio.Event()
    task = asyncio.create_task(m.run(stop))
    await async_wait_for(lambda: m.ready or task.done(), what="the matcher to start")
    yield m
    stop.set()
    await task
    await m.close()


def generator_process(
    world: World, tmp_path: Path, *, timeout: float = 600, **settings: Any
) -> GeneratorProcess:
    deployment = world.setup.deployment.save(tmp_path / "deployment.json")
    market = {
        "price": 5 * TOKEN_UNIT,
        "proof_time": 60,
        "prover": "command",
        "command": [sys.executable, str(PROVER)],
        "circuit": "square_root",
        "solver": "square_root",
        "timeout": timeout,
    }
    return GeneratorProcess(
        tmp_path,
        rpc_url=world.chain.url,
        deployment=deployment,
        account=GENERATOR,
        api_port=free_port(),
        markets={"square_root": market},
        stake=1_000 * TOKEN_UNIT,
        **settings,
    )


def root_request(world: World, root: int, proof_time: int = 120) -> PostedRequest:
    requester = dev_account(5)
    world.client.approve_all(requester)
    return world.client.create_request(
        requester,
        SQUARE_ROOT,
        encode_signals([root * root, 100]),
        max_price=8 * TOKEN_UNIT,
        proof_time=proof_time,
    )


def phase_of(tmp_path: Path, posted: PostedRequest) -> Phase | None:
    journal = TaskJournal.read_only(tmp_path / "generator.sqlite")
    try:
        task = journal.get(posted.id)
    finally:
        journal.close()
    return task.phase if task else None


def in_phase(tmp_path: Path, posted: PostedRequest, *phases: Phase) -> Callable[[], bool]:
    return lambda: phase_of(tmp_path, posted) in phases


def proofs_submitted(world: World, posted: PostedRequest) -> int:
    return len([e for e in world.events("ProofSubmitted") if e["task_id"] == posted.id])


async def test_a_prover_that_crashes_hangs_garbles_or_forges_fails_cleanly_and_others_are_served(
    world: World, matcher: Matcher, tmp_path: Path
) -> None:
    with generator_process(world, tmp_path, timeout=10, compute=8) as node:
        crash, hang, garbage, forged, good = (root_request(world, r) for r in (2, 3, 4, 6, 5))
        await async_wait_for(
            lambda: world.state(good) == RequestState.FULFILLED, 60, "the good proof"
        )
        for bad in (crash, hang, garbage, forged):
            await async_wait_for(in_phase(tmp_path, bad, Phase.DISCARDED), 60, "a hand-back")
            assert world.state(bad) == RequestState.OPEN  # back in the book, not slashed
        assert node.process is not None and node.process.poll() is None


async def test_killed_while_proving_it_proves_again_and_is_paid_once(
    world: World, matcher: Matcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALYPSO_TEST_PROVER_SLEEP", "3")
    node = generator_process(world, tmp_path).start()
    try:
        posted = root_request(world, 7)
        await async_wait_for(in_phase(tmp_path, posted, Phase.PROVING), 30, "proving")
        node.kill()
        monkeypatch.setenv("KALYPSO_TEST_PROVER_SLEEP", "0")
        node.start()
        await async_wait_for(in_phase(tmp_path, posted, Phase.CONFIRMED), 60, "the proof")
    finally:
        node.stop()
    assert world.state(posted) == RequestState.FULFILLED
    assert proofs_submitted(world, posted) == 1


async def test_killed_with_its_proof_in_the_pool_it_waits_and_never_resubmits(
    world: World, matcher: Matcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALYPSO_TEST_PROVER_SLEEP", "2")
    node = generator_process(world, tmp_path).start()
    w3 = world.w3
    try:
        posted = root_request(world, 12)
        await async_wait_for(lambda: world.state(posted) == RequestState.ASSIGNED, 30, "it")
        rpc(w3, "evm_setAutomine", False)  # the proof will wait in the pool
        await async_wait_for(in_phase(tmp_path, posted, Phase.SUBMITTED), 30, "the submission")
        node.kill()
        sent = w3.eth.get_transaction_count(GENERATOR.address, "pending")
        starting = asyncio.create_task(asyncio.to_thread(node.start))
        await asyncio.sleep(2)  # the new process waits for the pooled proof…
        rpc(w3, "evm_setAutomine", True)
        rpc(w3, "evm_mine")  # …which lands now
        await starting
        await async_wait_for(in_phase(tmp_path, posted, Phase.CONFIRMED), 60, "the proof")
        assert w3.eth.get_transaction_count(GENERATOR.address) == sent  # nothing resent
    finally:
        rpc(w3, "evm_setAutomine", True)
        node.stop()
    assert proofs_submitted(world, posted) == 1


async def test_down_past_the_deadline_it_is_slashed_and_records_it(
    world: World, matcher: Matcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALYPSO_TEST_PROVER_SLEEP", "30")
    node = generator_process(world, tmp_path).start()
    try:
        posted = root_request(world, 8, proof_time=60)
        await async_wait_for(in_phase(tmp_path, posted, Phase.PROVING), 30, "proving")
        node.kill()
        world.client.time_travel(120)  # the deadline passes while the node is down
        await async_wait_for(
            lambda: world.state(posted) == RequestState.SLASHED, 30, "the matcher's slash"
        )
        monkeypatch.setenv("KALYPSO_TEST_PROVER_SLEEP", "0")
        node.start()
        await async_wait_for(in_phase(tmp_path, posted, Phase.SLASHED), 30, "the record")
    finally:
        node.stop()
    assert proofs_submitted(world, posted) == 0


async def test_assigned_while_down_it_finds_the_task_on_start(
    world: World, matcher: Matcher, tmp_path: Path
) -> None:
    node = generator_process(world, tmp_path).start()
    node.kill()
    try:
        posted = root_request(world, 10)
        await async_wait_for(
            lambda: world.state(posted) == RequestState.ASSIGNED, 30, "the assignment"
        )
        node.start()
        await async_wait_for(in_phase(tmp_path, posted, Phase.CONFIRMED), 60, "the proof")
    finally:
        node.stop()
    assert proofs_submitted(world, posted) == 1
