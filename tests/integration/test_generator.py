"""The generator node against anvil and the matcher: it onboards, proves real Groth16
proofs (public and private inputs), claims invalid inputs, and gets paid exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from kalypso.circuits import circuit
from kalypso.contracts.client import PostedRequest
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.crypto import EncryptionKey
from kalypso.devnet import dev_account
from kalypso.errors import ConfigError
from kalypso.generator import GeneratorConfig, Phase
from kalypso.generator.daemon import GeneratorNode
from kalypso.market import RequestState, encode_signals
from kalypso.matching.daemon import Matcher
from kalypso.provers.snarkjs import SnarkjsWorker
from tests.integration.world import (
    SQUARE_ROOT,
    World,
    async_wait_for,
    config_for,
)

pytestmark = pytest.mark.usefixtures("snapshot")

#: Poseidon(42), the public signal of a proof of knowing 42
PREIMAGE = 42


def generator_config(
    world: World, tmp_path: Path, markets: dict[str, dict[str, Any]] | None = None, **values: Any
) -> GeneratorConfig:
    path = tmp_path / "deployment.json"
    world.setup.deployment.save(path)
    raw: dict[str, Any] = {
        "rpc_url": world.chain.url,
        "deployment": str(path),
        "state": str(tmp_path / "generator.sqlite"),
        "stake": 1_000 * TOKEN_UNIT,
        "compute": 4,
        "poll_interval": 0.1,
        "api_port": 0,
        "markets": markets
        or {
            "square_root": {
                "price": 5 * TOKEN_UNIT,
                "proof_time": 60,
                "circuit": "square_root",
                "solver": "square_root",
            },
        },
        **values,
    }
    return GeneratorConfig.from_dict(raw)


class Daemons:
    """A matcher and a generator node running in this process."""

    def __init__(self, matcher: Matcher, node: GeneratorNode) -> None:
        self.matcher = matcher
        self.node = node
        assert matcher.keeper is not None
        self.matcher_key = matcher.keeper.public_key


async def run_until_ready(daemon: Any, stop: asyncio.Event) -> asyncio.Task[None]:
    task = asyncio.create_task(daemon.run(stop))
    await async_wait_for(lambda: daemon.ready or task.done(), timeout=60, what="a daemon")
    if task.done():
        await task  # raises its error
    return task


@pytest.fixture
async def daemons(world: World, tmp_path: Path) -> AsyncIterator[Daemons]:
    matcher_key = EncryptionKey.generate().save(tmp_path / "matcher.x25519")
    matcher = await Matcher.open(
        config_for(world, tmp_path, encryption_key=str(matcher_key)), dev_account(1)
    )
    node = await GeneratorNode.open(generator_config(world, tmp_path), dev_account(2))
    stop = asyncio.Event()
    tasks = [await run_until_ready(matcher, stop), await run_until_ready(node, stop)]
    try:
        yield Daemons(matcher, node)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await node.close()
        await matcher.close()


async def poseidon_hash(preimage: int = PREIMAGE) -> int:
    """The public signal of a proof of knowing `preimage`, from the witness generator."""
    worker = SnarkjsWorker()
    try:
        signals = await worker.public_signals(
            circuit("poseidon_preimage").wasm, {"preimage": preimage}, 1
        )
    finally:
        await worker.close()
    assert isinstance(signals, list)
    return signals[0]


def settled(world: World, posted: PostedRequest, state: RequestState) -> Callable[[], bool]:
    return lambda: world.state(posted) == state


async def test_it_onboards_proves_and_gets_paid(
    world: World, daemons: Daemons, tmp_path: Path
) -> None:
    client, generator = world.client, dev_account(2)
    g = client.generator(generator.address)
    assert g[0] == 1 and g[3] == 1_000 * TOKEN_UNIT and g[5] == 4
    offer = client.registry.functions.offers(generator.address, SQUARE_ROOT).call()
    assert offer[0] and offer[1] == 5 * TOKEN_UNIT
    assert offer[4] == bytes(32)  # the node holds no key: private tasks need a Generator Image

    requester = dev_account(5)
    client.approve_all(requester)
    public = world.request(SQUARE_ROOT, max_price=8 * TOKEN_UNIT, value=7)
    invalid = client.create_request(
        requester, SQUARE_ROOT, encode_signals([10, 10]), max_price=8 * TOKEN_UNIT, proof_time=120
    )
    before = client.balance(generator.address)
    await async_wait_for(settled(world, public, RequestState.FULFILLED), 60, "the public proof")
    await async_wait_for(settled(world, invalid, RequestState.INVALID_INPUTS), 60, "the claim")
    assert client.balance(generator.address) - before == 5 * TOKEN_UNIT * 2

    journal = daemons.node.journal
    await async_wait_for(lambda: not journal.live(), 20, "the journal to settle")
    phases = {t.id: t.phase for t in journal.tasks()}
    assert phases == {
        public.id: Phase.CONFIRMED,
        invalid.id: Phase.INVALID_CLAIMED,
    }
    totals = journal.totals()
    assert totals.revenue == 10 * TOKEN_UNIT and totals.penalties == 0 and totals.gas_wei > 0


@pytest.mark.parametrize(
    ("markets", "message"),
    [
        (
            {"no_such_market": {"price": 1, "proof_time": 60, "circuit": "square_root"}},
            "unknown market",
        ),
        ({"99": {"price": 1, "proof_time": 60, "circuit": "square_root"}}, "there is no market 99"),
        (
            {
                "square_root": {
                    "price": 1,
                    "proof_time": 60,
                    "prover": "command",
                    "command": ["/nonexistent/prover"],
                }
            },
            "cannot run the prover command",
        ),
        (
            {
                "square_root": {
                    "price": 1,
                    "proof_time": 60,
                    "prover": "http",
                    "url": "http://127.0.0.1:9",
                    "circuit": "square_root",
                }
            },
            "unreachable",
        ),
    ],
)
async def test_bad_config_is_a_clear_error_at_start(
    world: World, tmp_path: Path, markets: dict[str, dict[str, Any]], message: str
) -> None:
    config = generator_config(world, tmp_path, markets)
    with pytest.raises(ConfigError, match=message):
        await GeneratorNode.open(config, dev_account(2))


async def test_a_stake_below_the_penalty_is_refused(world: World, tmp_path: Path) -> None:
    node = await GeneratorNode.open(
        generator_config(world, tmp_path, stake=TOKEN_UNIT), dev_account(2)
    )
    try:
        with pytest.raises(ConfigError, match="penalty"):
            await node.onboard()
    finally:
        await node.close()


async def test_two_generators_share_a_burst_by_price_and_capacity(
    world: World, tmp_path: Path
) -> None:
    def root_market(price: int) -> dict[str, dict[str, Any]]:
        table = {"price": price, "proof_time": 60, "circuit": "square_root"}
        return {"square_root": {**table, "solver": "square_root"}}

    matcher = await Matcher.open(config_for(world, tmp_path), dev_account(1))
    cheap_dir, dear_dir = tmp_path / "cheap", tmp_path / "dear"
    cheap = await GeneratorNode.open(
        generator_config(world, cheap_dir, root_market(2 * TOKEN_UNIT), compute=2),
        dev_account(2),
    )
    dear = await GeneratorNode.open(
        generator_config(world, dear_dir, root_market(6 * TOKEN_UNIT), compute=8),
        dev_account(3),
    )
    stop = asyncio.Event()
    tasks = [await run_until_ready(d, stop) for d in (matcher, cheap, dear)]
    try:
        burst = [
            world.request(SQUARE_ROOT, max_price=8 * TOKEN_UNIT, value=v) for v in range(2, 12)
        ]
        for posted in burst:
            await async_wait_for(settled(world, posted, RequestState.FULFILLED), 90, "the burst")

        def confirmed() -> dict[str, int]:
            return {
                name: len(node.journal.tasks([Phase.CONFIRMED]))
                for name, node in (("cheap", cheap), ("dear", dear))
            }

        # On-chain first, then in the journals once their followers see the events.
        await async_wait_for(lambda: sum(confirmed().values()) == len(burst), 30, "events")
        won = confirmed()
        assert won["cheap"] >= 2 and won["dear"] >= 1, won  # the cheap one full, the rest spill
        assert cheap.journal.totals().revenue == won["cheap"] * 2 * TOKEN_UNIT
        assert dear.journal.totals().revenue == won["dear"] * 6 * TOKEN_UNIT
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for daemon in (cheap, dear, matcher):
            await daemon.close()


async def test_pause_resume_and_metrics_over_the_api(world: World, daemons: Daemons) -> None:
    from kalypso.generator.api import create_app

    node, client = daemons.node, world.client
    transport = httpx.ASGITransport(app=create_app(node))  # on this loop, like uvicorn
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as api:
        assert (await api.get("/health")).json()["status"] == "ok"
        assert (await api.post("/pause")).json() == {"paused": True}
        assert not client.registry.functions.offers(node.address, SQUARE_ROOT).call()[0]
        waiting = world.request(SQUARE_ROOT, max_price=8 * TOKEN_UNIT, value=3)
        await asyncio.sleep(1)
        assert world.state(waiting) == RequestState.OPEN  # no offer: nobody takes it
        assert (await api.get("/health")).json()["paused"] is True
        assert (await api.post("/resume")).json() == {"paused": False}
        await async_wait_for(
            lambda: (t := node.journal.get(waiting.id)) is not None and t.phase == Phase.CONFIRMED,
            60,
            "the proof",
        )
        tasks = (await api.get("/tasks", params={"phase": "confirmed"})).json()
        assert [t["task_id"] for t in tasks] == ["0x" + waiting.id.hex()]
        one = await api.get(f"/tasks/0x{waiting.id.hex()}")
        assert one.json()["phase"] == "confirmed"
        assert (await api.get("/tasks/0x1234")).status_code == 404
        assert (await api.get("/tasks", params={"phase": "nope"})).status_code == 400
        metrics = (await api.get("/metrics")).text
    assert 'kalypso_generator_tasks{phase="confirmed"} 1.0' in metrics
    assert "kalypso_generator_revenue 5e+18" in metrics
