"""A node a block behind our own last action, as behind a load balancer.

Gas estimates: the rehearsal's fourth lag race. An app approves, spends the allowance
(back to zero), and approves again. A backend one block behind still holds the first
allowance, so it prices the second approve as a cheap nonzero-to-nonzero write;
on-chain it is a zero-to-nonzero one, four times dearer, and the transaction ran out
of gas. Both senders now also estimate as of the block of their own last transaction
and keep the larger.

Lookups: a request just created is not found on a node behind the one that mined it;
the SDK looks again after a pause instead of saying it does not exist."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from kalypso.chain import TxSender
from kalypso.chain.rpc import connect
from kalypso.contracts.client import MarketplaceClient
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.contracts.web3tx import bind, send
from kalypso.devnet import SAMPLE_MARKET, Anvil, DevnetSetup, dev_account
from kalypso.market import encode_signals
from kalypso.sdk import Kalypso
from kalypso.testing import ProviderSimulator, SimulatorConfig

pytestmark = pytest.mark.usefixtures("snapshot")
SPENDER = dev_account(7).address


@pytest.fixture
def sim(devnet_chain: tuple[Anvil, DevnetSetup]) -> Iterator[ProviderSimulator]:
    with ProviderSimulator(devnet_chain[0].url, SimulatorConfig()) as simulator:
        yield simulator


#: every method a sender calls but eth_estimateGas
NOT_ESTIMATES = frozenset({
    "eth_chainId", "eth_blockNumber", "eth_getBlockByNumber", "eth_getTransactionCount",
    "eth_maxPriorityFeePerGas", "eth_gasPrice", "eth_feeHistory", "eth_sendRawTransaction",
    "eth_getTransactionReceipt", "eth_getTransactionByHash", "eth_call",
})  # fmt: skip


def _lag_one_block(
    sim: ProviderSimulator, chain: Anvil, exempt: frozenset[str] = NOT_ESTIMATES
) -> threading.Timer:
    """From here on every call but the `exempt` comes from a backend one block behind the
    head, which has our last transaction once another block is mined, 0.3 s from now."""
    sim.configure(rate_lag=1.0, lag_blocks=1, exempt_methods=exempt)
    catch_up = threading.Timer(0.3, chain.web3().provider.make_request, ("evm_mine", []))
    catch_up.start()
    return catch_up


def test_the_sync_sender_prices_gas_as_of_its_own_last_transaction(
    devnet_chain: tuple[Anvil, DevnetSetup], sim: ProviderSimulator
) -> None:
    chain, setup = devnet_chain
    account = dev_account(3)
    w3 = Web3(Web3.HTTPProvider(sim.url))
    token = bind(w3, "Token", setup.deployment.token)
    send(w3, account, token.functions.approve(SPENDER, 10))
    send(w3, account, token.functions.approve(SPENDER, 0))  # the newest block
    catch_up = _lag_one_block(sim, chain)
    try:
        assert send(w3, account, token.functions.approve(SPENDER, 10))["status"] == 1
    finally:
        catch_up.join()


async def test_the_async_sender_prices_gas_as_of_its_own_last_transaction(
    devnet_chain: tuple[Anvil, DevnetSetup], sim: ProviderSimulator
) -> None:
    chain, setup = devnet_chain
    account = dev_account(4)
    w3: Any = await connect(sim.url)
    try:
        token = bind(Web3(), "Token", setup.deployment.token)
        atoken = w3.eth.contract(address=token.address, abi=token.abi)
        sender = TxSender(w3, account)
        await sender.send(atoken.functions.approve(SPENDER, 10))
        await sender.send(atoken.functions.approve(SPENDER, 0))  # the newest block
        catch_up = _lag_one_block(sim, chain)
        try:
            assert (await sender.send(atoken.functions.approve(SPENDER, 10)))["status"] == 1
        finally:
            catch_up.join()
    finally:
        await w3.provider.disconnect()


def test_a_request_just_created_is_found_on_a_node_a_block_behind(
    devnet_chain: tuple[Anvil, DevnetSetup], sim: ProviderSimulator, tmp_path: Path
) -> None:
    chain, setup = devnet_chain
    client = MarketplaceClient(chain.web3(), setup.deployment)
    client.approve_all(dev_account(3))
    market = setup.deployment.markets[SAMPLE_MARKET]
    posted = client.create_request(
        dev_account(3), market, encode_signals([5]), max_price=TOKEN_UNIT, proof_time=60
    )  # the newest block
    deployment = setup.deployment.save(tmp_path / "deployment.json")
    with Kalypso(sim.url, deployment) as app:
        catch_up = _lag_one_block(sim, chain, exempt=frozenset())
        try:
            assert app.request(posted.id).id == posted.id
        finally:
            catch_up.join()
