"""A generator node behind a hosted provider on a bad day (the simulator in front of the
devnet's anvil): rate limits, outages, dropped answers, a lagging backend, log ranges
capped at a few blocks and transactions that land while their answer is lost. It starts,
is paid for every task, and drains — leaving its markets — without a traceback."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.devnet import Anvil, DevnetSetup, dev_account, free_port
from kalypso.generator.process import GeneratorProcess
from kalypso.market import RequestState, encode_signals
from kalypso.matching.daemon import Matcher
from kalypso.testing import ProviderSimulator, SimulatorConfig
from tests.integration.world import SQUARE_ROOT, World, async_wait_for, config_for

pytestmark = pytest.mark.usefixtures("snapshot")

PROVER = Path(__file__).parent / "provers" / "square_root_prover.py"
GENERATOR = dev_account(2)
BAD_DAY = SimulatorConfig(
    seed=11,
    personality="rotate",
    max_block_range=5,
    rate_429=0.15,
    retry_after_s=0,
    rate_503=0.05,
    rate_502=0.02,
    rate_drop=0.03,
    rate_lag=0.1,
    rate_send_after_forward=0.2,
    send_after_forward_kinds=("503", "drop"),
    latency_ms=5,
)


@pytest.fixture
def provider(devnet_chain: tuple[Anvil, DevnetSetup]) -> Iterator[ProviderSimulator]:
    with ProviderSimulator(devnet_chain[0].url, BAD_DAY) as sim:
        yield sim


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


async def test_a_generator_behind_a_hosted_provider_is_paid_for_every_task_and_drains(
    world: World, matcher: Matcher, provider: ProviderSimulator, tmp_path: Path
) -> None:
    deployment = world.setup.deployment.save(tmp_path / "deployment.json")
    market = {
        "price": 5 * TOKEN_UNIT,
        "proof_time": 60,
        "prover": "command",
        "command": [sys.executable, str(PROVER)],
        "circuit": "square_root",
        "solver": "square_root",
    }
    node = GeneratorProcess(
        tmp_path,
        rpc_url=provider.url_for("generator"),
        deployment=deployment,
        account=GENERATOR,
        api_port=free_port(),
        markets={"square_root": market},
        stake=1_000 * TOKEN_UNIT,
    ).start(timeout=120)
    requester = dev_account(5)
    world.client.approve_all(requester)
    posted = [
        world.client.create_request(
            requester,
            SQUARE_ROOT,
            encode_signals([root * root, 100]),
            max_price=8 * TOKEN_UNIT,
            proof_time=120,
        )
        for root in (5, 7, 8, 10)  # roots 2, 3, 4 and 6 make the test prover misbehave
    ]
    try:
        for p in posted:
            await async_wait_for(
                lambda p=p: world.state(p) == RequestState.FULFILLED, 150, "every proof paid"
            )
        node.stop(timeout=60)  # SIGTERM: drain, through the same bad provider
        assert node.process is not None and node.process.returncode == 0, node.tail(20)
    finally:
        node.stop()
    offer = world.client.registry.functions.offers(GENERATOR.address, SQUARE_ROOT).call()
    assert not offer[0]  # left the market: nothing more can be assigned, nor slashed
    log = node.log.read_text()
    assert "Traceback" not in log and "proving crashed" not in log
    stats = provider.stats.snapshot()["labels"]["generator"]
    assert sum(stats["faults"].values()) > 10 and stats["refusals"].get("range", 0) > 0


async def test_a_stopped_matcher_exits_at_once_while_its_endpoint_is_down(
    world: World, tmp_path: Path, devnet_chain: tuple[Anvil, DevnetSetup]
) -> None:
    """Its stages wait out the endpoint's retries (up to a minute each): stopping cancels
    them instead of waiting; the journal keeps what they did."""
    with ProviderSimulator(devnet_chain[0].url, SimulatorConfig()) as sim:
        config = config_for(world, tmp_path, rpc_url=sim.url)
        m = await Matcher.open(config, dev_account(1))
        stop = asyncio.Event()
        task = asyncio.create_task(m.run(stop))
        await async_wait_for(lambda: m.ready or task.done(), what="the matcher to start")
    await asyncio.sleep(1)  # the endpoint is gone: every stage is retrying
    stop.set()
    await asyncio.wait_for(task, 5)
    await m.close()
