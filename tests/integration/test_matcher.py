"""The matching engine daemon against anvil: assigns across markets, waits for a price,
survives a kill and a reorg, slashes the overdue, explains itself, fails clearly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount

from kalypso.contracts.client import PostedRequest
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.contracts.web3tx import send
from kalypso.crypto import EncryptionKey, SecretContext, open_with, seal
from kalypso.devnet import dev_account, free_port
from kalypso.errors import MatcherKeyError, UnauthorizedError
from kalypso.market import RequestState, encode_signals, request_id
from kalypso.matching.daemon import Matcher
from tests.integration.world import (
    KALYPSO,
    MOCK,
    POSEIDON,
    SQUARE_ROOT,
    World,
    async_wait_for,
    config_for,
    rpc,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("snapshot")


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


async def test_requests_in_several_markets_get_assigned(world: World, matcher: Matcher) -> None:
    alice = world.generator(dev_account(2), {MOCK: 3 * TOKEN_UNIT, SQUARE_ROOT: 2 * TOKEN_UNIT})
    posted = [
        world.request(MOCK, max_price=5 * TOKEN_UNIT),
        world.request(SQUARE_ROOT, max_price=5 * TOKEN_UNIT, value=7),
        world.request(MOCK, max_price=5 * TOKEN_UNIT, value=8),
    ]
    await async_wait_for(
        lambda: all(world.state(p) == RequestState.ASSIGNED for p in posted), what="assignments"
    )
    assigned = {e["task_id"]: e for e in world.events("TaskAssigned")}
    assert {assigned[p.id]["generator"] for p in posted} == {alice.address}
    assert [assigned[p.id]["price"] for p in posted] == [
        3 * TOKEN_UNIT,
        2 * TOKEN_UNIT,
        3 * TOKEN_UNIT,
    ]


async def test_a_request_priced_too_low_waits_for_a_cheaper_generator(
    world: World, matcher: Matcher
) -> None:
    world.generator(dev_account(2), {MOCK: 9 * TOKEN_UNIT})
    cheap = world.request(MOCK, max_price=5 * TOKEN_UNIT)
    await asyncio.sleep(1.0)
    assert world.state(cheap) == RequestState.OPEN
    why = matcher.view.book.explain(cheap.id, matcher.head_time + 1)
    rules = {c.generator: c.rule for c in why.checks}
    assert rules[dev_account(2).address] == "requests: price above max"

    bob = world.generator(dev_account(3), {MOCK: 4 * TOKEN_UNIT})
    await async_wait_for(lambda: world.state(cheap) == RequestState.ASSIGNED, what="assignment")
    (event,) = [e for e in world.events("TaskAssigned") if e["task_id"] == cheap.id]
    assert event["generator"] == bob.address


async def test_a_reorg_is_rolled_back_and_the_new_chain_matched(
    world: World, matcher: Matcher
) -> None:
    world.generator(dev_account(2), {MOCK: 3 * TOKEN_UNIT}, compute=1)
    world.client.approve_all(dev_account(5))
    snap = rpc(world.w3, "evm_snapshot")
    orphan = world.request(MOCK, max_price=5 * TOKEN_UNIT)
    await async_wait_for(lambda: world.state(orphan) == RequestState.ASSIGNED, what="first")
    rpc(world.w3, "evm_revert", snap)
    rpc(world.w3, "evm_mine")
    # The generator's only compute unit was taken by the orphaned task: the matcher must
    # forget it to assign the request of the new chain.
    kept = world.request(MOCK, max_price=5 * TOKEN_UNIT, value=9)
    await async_wait_for(lambda: world.state(kept) == RequestState.ASSIGNED, what="after reorg")
    assert matcher.metrics.reorgs._value.get() >= 1  # type: ignore[attr-defined]
    assert orphan.id not in matcher.view.requests


async def test_an_overdue_task_is_slashed_by_the_matcher(world: World, matcher: Matcher) -> None:
    world.generator(dev_account(2), {MOCK: 3 * TOKEN_UNIT})
    posted = world.request(MOCK, max_price=5 * TOKEN_UNIT)
    await async_wait_for(lambda: world.state(posted) == RequestState.ASSIGNED, what="assignment")
    balance = world.client.balance(dev_account(1).address)
    world.client.time_travel(200)
    await async_wait_for(lambda: world.state(posted) == RequestState.SLASHED, what="the slash")
    assert world.client.balance(dev_account(1).address) > balance  # the bounty


async def test_the_api_explains_an_unmatched_request(world: World, tmp_path: Path) -> None:
    port = free_port()
    config = config_for(world, tmp_path, api_port=port)
    world.generator(dev_account(2), {MOCK: 9 * TOKEN_UNIT})
    posted = world.request(MOCK, max_price=5 * TOKEN_UNIT)
    stop = asyncio.Event()
    from kalypso.matching.service import serve

    task = asyncio.create_task(serve(config, dev_account(1), stop=stop))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(100):
                try:
                    if (await http.get("/health")).json()["status"] == "ok":
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            health = (await http.get("/health")).json()
            assert health["address"] == dev_account(1).address and health["lag_blocks"] <= 1
            status = (await http.get(f"/requests/0x{posted.id.hex()}")).json()
            assert status["state"] in ("open", "parked")
            text = str(status)
            assert "requests: price above max" in text and dev_account(2).address in text
            book = (await http.get(f"/markets/{MOCK}/book")).json()
            assert book
            gen = (await http.get(f"/generators/{dev_account(2).address}")).json()
            assert gen["successes"] == 0 and gen["window"] == 20
            assert (await http.get("/requests/0x12")).status_code == 400
            metrics = (await http.get("/metrics")).text
            assert "kalypso_matcher_open_requests" in metrics
            assert "kalypso_matcher_lag_blocks" in metrics
    finally:
        stop.set()
        await task


async def test_a_key_that_is_not_a_matching_engine_is_refused(world: World, tmp_path: Path) -> None:
    with pytest.raises(MatcherKeyError, match="not an authorized matching engine"):
        await Matcher.open(config_for(world, tmp_path), dev_account(4))
    with pytest.raises(MatcherKeyError, match="may not assign in market"):
        await Matcher.open(config_for(world, tmp_path, markets=[0, 2]), dev_account(4))


# ---- the daemon as its own process


def start_daemon(config: Path, key: LocalAccount) -> subprocess.Popen[str]:
    env = {**os.environ, "KALYPSO_MATCHER_KEY": "0x" + key.key.hex().removeprefix("0x")}
    return subprocess.Popen(
        [*KALYPSO, "matcher", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def write_config(world: World, tmp_path: Path, **values: Any) -> Path:
    config = config_for(world, tmp_path)
    lines = [
        f'rpc_url = "{config.rpc_url}"',
        f'deployment = "{config.deployment}"',
        f'state = "{config.state}"',
        "poll_interval = 0.1",
        "api_port = 0",
    ]
    lines += [f"{k} = {v}" for k, v in values.items()]
    path = tmp_path / "matcher.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("confirmations", [0, 2])
def test_killed_and_restarted_it_loses_nothing_and_assigns_nothing_twice(
    world: World, tmp_path: Path, confirmations: int
) -> None:
    world.generator(dev_account(2), {MOCK: 3 * TOKEN_UNIT}, compute=64)
    world.generator(dev_account(3), {MOCK: 4 * TOKEN_UNIT}, compute=64)
    config = write_config(world, tmp_path, batch_size=4, confirmations=confirmations)
    daemon = start_daemon(config, dev_account(1))
    posted: list[PostedRequest] = []

    def all_assigned(requests: list[PostedRequest], *, every: bool) -> Callable[[], bool]:
        def check() -> bool:
            if confirmations:
                rpc(world.w3, "evm_mine")  # blocks for the confirmations to pass
            states = [world.state(p) == RequestState.ASSIGNED for p in requests]
            return all(states) if every else any(states)

        return check

    try:
        for i in range(12):
            posted.append(world.request(MOCK, max_price=5 * TOKEN_UNIT, value=i))
            if i == 5:
                wait_for(all_assigned(posted, every=False))
                daemon.send_signal(signal.SIGKILL)
                daemon.wait(10)
        daemon = start_daemon(config, dev_account(1))
        wait_for(all_assigned(posted, every=True), what="every request assigned after the restart")
        time.sleep(1)  # room for a wrong second assignment to show
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=20)
    assert daemon.returncode == 0, out
    assert "matcher stopped" in out
    assigned = [e["task_id"] for e in world.events("TaskAssigned")]
    assert sorted(assigned) == sorted(p.id for p in posted)
    assert not [e for e in world.events("AssignSkipped") if e["reason"] == "requests: not open"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("rpc_url = 12", "rpc_url has the wrong type"),
        ("batch_size = 64", "batch_size must be 1 to 32"),
        ("colour = 'blue'", "unknown key(s) colour"),
        (
            'rpc_url = "http://127.0.0.1:9"\nstartup_timeout = 2',
            "the chain did not answer within 2 s (startup_timeout), last: [K-RPC-001] no "
            "Ethereum JSON-RPC endpoint answers",
        ),
        ("", "is not an authorized matching engine"),
    ],
)
def test_bad_config_unreachable_rpc_or_wrong_key_is_one_clear_line(
    world: World, tmp_path: Path, setup: str, message: str
) -> None:
    config = write_config(world, tmp_path)
    lines = [line for line in config.read_text().splitlines() if line.split(" = ")[0] not in setup]
    config.write_text("\n".join([*lines, setup]) + "\n")
    daemon = start_daemon(config, dev_account(4))
    out, _ = daemon.communicate(timeout=30)
    assert daemon.returncode == 1
    assert message in out, out
    assert "Traceback" not in out


def test_two_shards_with_their_own_keys_assign_side_by_side(world: World, tmp_path: Path) -> None:
    owner = world.setup.owner
    mock_engine, root_engine = dev_account(6), dev_account(7)
    for engine, market in ((mock_engine, MOCK), (root_engine, SQUARE_ROOT)):
        call = world.client.marketplace.functions.set_market_matching_engine(
            market, engine.address, True
        )
        send(world.w3, owner, call)
    world.generator(dev_account(2), {MOCK: 3 * TOKEN_UNIT, SQUARE_ROOT: 2 * TOKEN_UNIT})
    shards = []
    for name, engine, market in (("a", mock_engine, MOCK), ("b", root_engine, SQUARE_ROOT)):
        folder = tmp_path / name
        folder.mkdir()
        shards.append(start_daemon(write_config(world, folder, markets=f"[{market}]"), engine))
    try:
        posted = [world.request(MOCK, max_price=5 * TOKEN_UNIT, value=v) for v in (1, 2, 3)] + [
            world.request(SQUARE_ROOT, max_price=5 * TOKEN_UNIT, value=v) for v in (4, 5, 6)
        ]
        wait_for(
            lambda: all(world.state(p) == RequestState.ASSIGNED for p in posted),
            what="both shards to assign their markets",
        )
    finally:
        for shard in shards:
            shard.send_signal(signal.SIGTERM)
            shard.communicate(timeout=20)
    senders = {
        bytes(e["task_id"]): world.w3.eth.get_transaction(e.transaction_hash)["from"]
        for e in world.events("TaskAssigned")
    }
    assert [senders[p.id] for p in posted] == [mock_engine.address] * 3 + [root_engine.address] * 3
    assert not world.events("AssignSkipped")


async def test_attack_nobody_else_can_stop_the_matcher(world: World, tmp_path: Path) -> None:
    """A stranger's `assign_batch` reverts (it used to log "not a matching engine" skips
    the matcher read as its own revocation), and another engine's skips are not ours."""
    m = await Matcher.open(config_for(world, tmp_path), dev_account(1))
    stop = asyncio.Event()
    task = asyncio.create_task(m.run(stop))
    try:
        await async_wait_for(lambda: m.ready, what="the matcher to start")
        first = world.request(MOCK, max_price=5 * TOKEN_UNIT)  # no generator yet: it waits
        item = (first, dev_account(2).address, TOKEN_UNIT, b"")
        with pytest.raises(UnauthorizedError, match="not a matching engine"):
            world.client.assign_batch(dev_account(7), [item])
        other_engine = world.setup.owner  # authorized too, with a batch that skips
        world.client.set_matching_engine(other_engine, other_engine.address, True)
        world.client.assign_batch(other_engine, [item])
        (skip,) = world.events("AssignSkipped")
        assert skip["engine"] == other_engine.address
        world.generator(dev_account(2), {MOCK: 3 * TOKEN_UNIT})
        await async_wait_for(
            lambda: world.state(first) == RequestState.ASSIGNED, what="the matcher to assign"
        )
        assert not task.done() and m.fatal is None
    finally:
        stop.set()
        await task
        await m.close()


async def test_a_key_revoked_while_running_stops_the_matcher(world: World, tmp_path: Path) -> None:
    m = await Matcher.open(config_for(world, tmp_path), dev_account(1))
    stop = asyncio.Event()
    task = asyncio.create_task(m.run(stop))
    try:
        await async_wait_for(lambda: m.ready, what="the matcher to start")
        world.client.set_matching_engine(world.setup.owner, dev_account(1).address, False)
        world.generator(dev_account(2), {MOCK: 3 * TOKEN_UNIT})
        posted = world.request(MOCK, max_price=5 * TOKEN_UNIT)
        with pytest.raises(MatcherKeyError, match="is not an authorized matching engine"):
            await asyncio.wait_for(task, 20)
        assert world.state(posted) == RequestState.OPEN
    finally:
        stop.set()
        if not task.done():
            await task
        await m.close()


async def test_a_private_request_reaches_the_generator_sealed_to_its_key(
    world: World, tmp_path: Path
) -> None:
    matcher_key = EncryptionKey.generate()
    key_file = matcher_key.save(tmp_path / "matcher.x25519")
    m = await Matcher.open(
        config_for(world, tmp_path, encryption_key=str(key_file)), dev_account(1)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(m.run(stop))
    client, requester = world.client, dev_account(5)
    try:
        await async_wait_for(lambda: m.ready, what="the matcher to start")
        enclave = world.generator_image_enclave(POSEIDON)  # its key opens the secret
        generator = dev_account(2)
        client.approve_all(generator)
        client.register(generator, stake=1_000 * TOKEN_UNIT, compute=8)
        client.join_market(
            generator,
            POSEIDON,
            price=3 * TOKEN_UNIT,
            proof_time=60,
            encryption_key=enclave.encryption.public_bytes,
        )
        cheap = world.generator(dev_account(3), {POSEIDON: TOKEN_UNIT})  # no key: public only
        client.approve_all(requester)

        def private_request(plaintext: bytes, sealed_to: bytes) -> tuple[PostedRequest, bytes]:
            salt = os.urandom(32)
            rid = request_id(31337, client.marketplace.address, requester.address, salt)
            context = SecretContext(31337, client.marketplace.address, rid)
            secret = seal(plaintext, sealed_to, context)
            posted = client.create_request(
                requester,
                POSEIDON,
                encode_signals([3]),
                max_price=5 * TOKEN_UNIT,
                proof_time=120,
                encrypted_secret=secret,
                salt=salt,
            )
            return posted, secret

        posted, secret = private_request(b'{"preimage": "42"}', matcher_key.public_bytes)
        stray, _ = private_request(b'{"preimage": "7"}', EncryptionKey.generate().public_bytes)
        await async_wait_for(lambda: world.state(posted) == RequestState.ASSIGNED, what="it")
        (event,) = [e for e in world.events("TaskAssigned") if e["task_id"] == posted.id]
        context = SecretContext(31337, client.marketplace.address, posted.id)
        opened = open_with(secret, event["generator_secret"], enclave.encryption, context)
        assert opened == b'{"preimage": "42"}'
        assert event["generator"] == generator.address != cheap.address
        await asyncio.sleep(0.5)
        assert world.state(stray) == RequestState.OPEN
        assert stray.id in m.view.undecryptable
    finally:
        stop.set()
        await task
        await m.close()
