"""A node a block behind our own last action, as behind a load balancer.

Gas estimates: the rehearsal's fourth lag race. An app approves, spends the allowance
(back to zero), and approves again. A backend one block behind still holds the first
allowance, so it prices the second approve as a cheap nonzero-to-nonzero write;
on-chain it is a zero-to-nonzero one, four times dearer, and the transaction ran out
of gas. Both senders now also estimate as of the block of their own last transaction
and keep the larger.

Escrow: a request charged to the internal balance leaves too little for the next; a
node behind that charge still shows the balance before it, and the SDK skipped the
approval the next request needed. It now also reads the balance as of its own last
transaction and approves unless both cover the price.

Lookups: a request just created is not found on a node behind the one that mined it;
the SDK looks again after a pause instead of saying it does not exist."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3
from web3.types import RPCEndpoint

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


@contextmanager
def lagging(
    sim: ProviderSimulator, chain: Anvil, exempt: frozenset[str] = NOT_ESTIMATES
) -> Iterator[None]:
    """Within the block every call but the `exempt` comes from a backend one block behind
    the head, while the chain mines a block every 0.3 s (the backend catches up to what
    was newest a moment later)."""
    sim.configure(rate_lag=1.0, lag_blocks=1, exempt_methods=exempt)
    done = threading.Event()

    def mine() -> None:
        while not done.wait(0.3):
            chain.web3().provider.make_request(RPCEndpoint("evm_mine"), [])

    miner = threading.Thread(target=mine)
    miner.start()
    try:
        yield
    finally:
        done.set()
        miner.join()


def test_the_sync_sender_prices_gas_as_of_its_own_last_transaction(
    devnet_chain: tuple[Anvil, DevnetSetup], sim: ProviderSimulator
) -> None:
    chain, setup = devnet_chain
    account = dev_account(3)
    w3 = Web3(Web3.HTTPProvider(sim.url))
    token = bind(w3, "Token", setup.deployment.token)
    send(w3, account, token.functions.approve(SPENDER, 10))
    send(w3, account, token.functions.approve(SPENDER, 0))  # the newest block
    with lagging(sim, chain):
        assert send(w3, account, token.functions.approve(SPENDER, 10))["status"] == 1


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
        with lagging(sim, chain):
            assert (await sender.send(atoken.functions.approve(SPENDER, 10)))["status"] == 1
    finally:
        await w3.provider.disconnect()


def test_a_request_just_created_is_found_on_a_node_a_block_behind(
    devnet_chain: tuple[Anvil, DevnetSetup], sim: ProviderSimulator, tmp_path: Path
) -> None:
    chain, setup = devnet_chain
    client = MarketplaceClient(chain.web3(), setup.deployment)
    client.approve_all(dev_account(3))
    market = setup.deployment.markets[SAMPLE_MARKET]
    deployment = setup.deployment.save(tmp_path / "deployment.json")
    with Kalypso(sim.url, deployment) as app, lagging(sim, chain, exempt=frozenset()):
        posted = client.create_request(
            dev_account(3), market, encode_signals([5]), max_price=TOKEN_UNIT, proof_time=60
        )  # the newest block, on the node itself
        assert app.request(posted.id).id == posted.id


def test_a_stale_internal_balance_never_skips_the_approval_a_request_needs(
    devnet_chain: tuple[Anvil, DevnetSetup], sim: ProviderSimulator, tmp_path: Path
) -> None:
    chain, setup = devnet_chain
    deployment = setup.deployment.save(tmp_path / "deployment.json")
    with Kalypso(sim.url, deployment, dev_account(5)) as app:
        app.deposit("10 KAL")
        inputs = {"square": 49, "max_root": 10}
        app.request_proof("square_root", inputs, max_price="6 KAL", proof_time=120)
        assert app.balance() == 4 * TOKEN_UNIT  # charged inside: 4 KAL left, the newest block
        with lagging(sim, chain, exempt=NOT_ESTIMATES - {"eth_call"}):
            again = app.request_proof("square_root", inputs, max_price="6 KAL", proof_time=120)
        assert again.status().max_price == 6 * TOKEN_UNIT
