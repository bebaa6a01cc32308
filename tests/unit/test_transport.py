"""The chain layer's providers against the hosted-provider simulator in front of anvil:
rate limits, outages, dead endpoints, range refusals and sends that may have landed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from eth_account import Account
from web3 import AsyncWeb3, Web3
from web3.exceptions import Web3RPCError

from kalypso.chain.faults import Backoff
from kalypso.chain.follower import FollowerState, LogBatch, LogFollower
from kalypso.chain.logs import LogWindow, aget_logs, get_logs
from kalypso.chain.transport import AsyncResilientHTTPProvider, ResilientHTTPProvider
from kalypso.devnet import Anvil, dev_account, free_port
from kalypso.errors import ChainError
from kalypso.market.events import marketplace_decoder
from kalypso.testing import ProviderSimulator, SimulatorConfig

pytestmark = pytest.mark.integration  # starts anvil

QUICK = Backoff(first=0.01, cap=0.05, give_up=20)


@pytest.fixture(scope="module")
def chain() -> Iterator[Anvil]:
    with Anvil() as anvil:
        yield anvil


@pytest.fixture(scope="module")
def running(chain: Anvil) -> Iterator[ProviderSimulator]:
    with ProviderSimulator(chain.url) as sim:
        yield sim


@pytest.fixture
def sim(running: ProviderSimulator) -> ProviderSimulator:
    running.reset(SimulatorConfig(seed=3))
    return running


def web3(url: str, **kw: object) -> tuple[Web3, ResilientHTTPProvider]:
    provider = ResilientHTTPProvider(url, backoff=kw.pop("backoff", QUICK), **kw)  # type: ignore[arg-type]
    return Web3(provider), provider


def transfer(w3: Web3, index: int, value: int = 1, nonce: int | None = None) -> bytes:
    account = dev_account(index)
    tx = {
        "to": dev_account(9).address,
        "value": value,
        "gas": 21_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 1,
        "nonce": w3.eth.get_transaction_count(account.address) if nonce is None else nonce,
        "chainId": w3.eth.chain_id,
        "type": 2,
    }
    return bytes(Account.sign_transaction(tx, account.key).raw_transaction)


def test_reads_ride_out_rate_limits_and_outages(sim: ProviderSimulator) -> None:
    sim.configure(rate_429=0.3, rate_503=0.1, rate_502=0.05, retry_after_s=0)
    w3, provider = web3(sim.url)
    for _ in range(60):
        assert w3.eth.block_number >= 0
    retries = provider.stats.retries
    assert retries["rate_limited"] > 5 and retries["unavailable"] > 3
    assert provider.stats.gave_up == 0


def test_a_dropped_or_hung_answer_is_retried(sim: ProviderSimulator) -> None:
    sim.configure(rate_drop=0.3, rate_timeout=0.1, hang_s=2)
    w3, provider = web3(sim.url, timeout=0.5)
    for _ in range(20):
        assert w3.eth.chain_id > 0
    assert provider.stats.retries["dropped"] + provider.stats.retries["timeout"] > 3


def test_retry_after_is_waited_for_and_giving_up_says_what_to_do(
    sim: ProviderSimulator,
) -> None:
    sim.configure(rate_429=1.0, retry_after_s=1)
    w3, provider = web3(sim.url, backoff=Backoff(first=0.01, cap=0.05, give_up=2.5))
    start = time.monotonic()
    with pytest.raises(ChainError, match=r"eth_blockNumber failed 3 times .* rate_limited"):
        _ = w3.eth.block_number
    assert time.monotonic() - start >= 2.0  # 1 s after each refusal, not 0.05
    assert provider.stats.gave_up == 1


def test_a_dead_endpoint_falls_back_to_the_next(sim: ProviderSimulator) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    w3, provider = web3(f"{dead},{sim.url}")
    for _ in range(5):
        assert w3.eth.block_number >= 0
    assert provider.stats.retries["connection"] >= 1


def test_a_range_refusal_is_returned_at_once(sim: ProviderSimulator) -> None:
    sim.configure(max_block_range=2, personality="quicknode")  # HTTP 413 with a JSON body
    w3, provider = web3(sim.url)
    with pytest.raises(Web3RPCError, match="limited to a 2 range"):
        w3.eth.get_logs({"fromBlock": 0, "toBlock": 5})
    assert provider.stats.range_refusals == 1 and not provider.stats.retries


def test_the_budget_spaces_calls(sim: ProviderSimulator) -> None:
    w3, _ = web3(sim.url, rate=50)
    start = time.monotonic()
    for _ in range(100):
        assert w3.eth.block_number >= 0
    assert time.monotonic() - start >= 0.95  # 50 at once (a second's worth), 50 at 50/s


def test_a_send_that_landed_while_the_answer_was_lost_is_not_sent_again(
    sim: ProviderSimulator, chain: Anvil
) -> None:
    sim.configure(rate_send_after_forward=1.0, send_after_forward_kinds=("timeout",), hang_s=2)
    w3, provider = web3(sim.url, timeout=0.5)
    raw = transfer(w3, 5)
    sender = dev_account(5).address
    before = w3.eth.get_transaction_count(sender)
    tx_hash = w3.eth.send_raw_transaction(raw)
    assert tx_hash == Web3.keccak(raw)
    assert provider.stats.calls["eth_sendRawTransaction"] == 1
    assert provider.stats.calls.get("eth_getTransactionByHash", 0) == 0  # looked up inside
    sim.configure(rate_send_after_forward=0.0)
    assert w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)["status"] == 1
    assert w3.eth.get_transaction_count(sender) == before + 1
    assert sim.stats.calls(method="eth_sendRawTransaction") == 1  # one send reached the node


def test_the_same_bytes_twice_answer_with_their_hash(sim: ProviderSimulator) -> None:
    w3, _ = web3(sim.url)
    raw = transfer(w3, 6)
    first = w3.eth.send_raw_transaction(raw)
    w3.eth.wait_for_transaction_receipt(first, timeout=10)
    assert w3.eth.send_raw_transaction(raw) == first  # "nonce too low", by these bytes
    other = transfer(w3, 6, value=2, nonce=0)  # a nonce another transaction used
    with pytest.raises(Web3RPCError, match="nonce too low"):
        w3.eth.send_raw_transaction(other)


def test_the_async_provider_rides_out_the_same(sim: ProviderSimulator) -> None:
    sim.configure(rate_429=0.3, rate_503=0.1, rate_drop=0.1, retry_after_s=0)

    async def run() -> AsyncResilientHTTPProvider:
        provider = AsyncResilientHTTPProvider(sim.url, backoff=QUICK)
        w3 = AsyncWeb3(provider)
        for _ in range(40):
            assert await w3.eth.block_number >= 0
        await provider.disconnect()
        return provider

    provider = asyncio.run(run())
    assert sum(provider.stats.retries.values()) > 5 and provider.stats.gave_up == 0


def test_logs_are_read_in_windows_the_provider_accepts(
    sim: ProviderSimulator, chain: Anvil
) -> None:
    direct = Web3(Web3.HTTPProvider(chain.url))
    sender = dev_account(7).address
    for _ in range(12):  # a log-less chain is enough: the blocks are what is counted
        direct.eth.send_transaction({"from": sender, "to": sender, "value": 0})
    head = direct.eth.block_number
    sim.configure(max_block_range=4, personality="rotate", rate_429=0.2, retry_after_s=0)
    w3, provider = web3(sim.url)
    window = LogWindow(size=100)
    assert get_logs(w3, {}, 0, head, window=window) == direct.eth.get_logs(
        {"fromBlock": 0, "toBlock": head}
    )
    assert provider.stats.range_refusals >= 2
    refusals = provider.stats.range_refusals
    get_logs(w3, {}, 0, head, window=window)  # the window remembers the provider's limit
    assert provider.stats.range_refusals <= refusals + 1  # it tries growing back, once

    async def backwards() -> list[object]:
        aw3 = AsyncWeb3(AsyncResilientHTTPProvider(sim.url, backoff=QUICK))
        try:
            return await aget_logs(aw3, {}, 0, head, backwards=True, enough=lambda _: True)
        finally:
            await aw3.provider.disconnect()

    assert len(asyncio.run(backwards())) <= 4  # the newest window only


#: Runtime `PUSH1 0 PUSH1 0 LOG0 STOP` (one empty log per call) behind a constructor.
EMITTER_INITCODE = "0x6560006000a0006000526006601af3"


def test_a_follower_behind_lagging_backends_sees_every_log_once(
    sim: ProviderSimulator, chain: Anvil
) -> None:
    direct = Web3(Web3.HTTPProvider(chain.url))
    sender = dev_account(8).address
    deployed = direct.eth.send_transaction({"from": sender, "data": EMITTER_INITCODE})
    emitter = direct.eth.wait_for_transaction_receipt(deployed)["contractAddress"]
    start = direct.eth.block_number
    for _ in range(8):
        direct.eth.send_transaction({"from": sender, "to": emitter})
    expected = [
        (log["blockNumber"], log["logIndex"])
        for log in direct.eth.get_logs(
            {"fromBlock": start, "toBlock": "latest", "address": emitter}
        )
    ]
    sim.configure(rate_lag=0.6, lag_blocks=2, max_block_range=3, rate_429=0.2, retry_after_s=0)

    async def follow() -> list[tuple[int, int]]:
        aw3 = AsyncWeb3(AsyncResilientHTTPProvider(sim.url, backoff=QUICK))
        follower = LogFollower(aw3, [emitter], marketplace_decoder(), max_range=100)
        state, seen = FollowerState(start), []
        try:
            while state.next_block <= start + 8:
                item = await follower.step(state)
                if item is None:
                    continue
                assert isinstance(item, LogBatch)  # no reorg here: a lagging node is not one
                seen += [
                    (int(log["blockNumber"]), int(log["logIndex"])) for log, _ in item.malformed
                ]
                state = follower.advance(state, item)
        finally:
            await aw3.provider.disconnect()
        return seen

    assert asyncio.run(follow()) == expected  # undecodable here: the follower keeps them apart
    assert sim.stats.faults("lagged") > 0
