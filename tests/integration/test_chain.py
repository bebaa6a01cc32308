"""`kalypso.chain` over anvil: the follower reads in chunks and survives reorgs; the sender."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from eth_utils import event_abi_to_log_topic
from web3 import AsyncWeb3, Web3
from web3.types import RPCEndpoint

from kalypso.chain import (
    FollowerState,
    LogBatch,
    LogFollower,
    Rollback,
    SenderPolicy,
    TxSender,
    find_request,
)
from kalypso.chain.logs import LogWindow
from kalypso.chain.rpc import connect
from kalypso.contracts import artifact
from kalypso.contracts.client import MarketplaceClient
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.contracts.web3tx import bind
from kalypso.devnet import Anvil, DevnetSetup, dev_account
from kalypso.errors import ChainError, TransactionDroppedError, UnauthorizedError
from kalypso.market import encode_signals
from kalypso.market.events import DecodedEvent, marketplace_decoder

pytestmark = pytest.mark.usefixtures("snapshot")


@pytest.fixture
async def aw3(devnet_chain: tuple[Anvil, DevnetSetup]) -> AsyncIterator[AsyncWeb3[Any]]:
    w3 = await connect(devnet_chain[0].url, expected_chain_id=31337)
    yield w3
    await w3.provider.disconnect()


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    return w3.provider.make_request(RPCEndpoint(method), list(params))["result"]


def follower_for(w3: AsyncWeb3[Any], setup: DevnetSetup, **kwargs: Any) -> LogFollower:
    d = setup.deployment
    return LogFollower(w3, [d.marketplace, d.registry], marketplace_decoder(), **kwargs)


async def drain(follower: LogFollower, state: FollowerState) -> tuple[FollowerState, list[Any]]:
    """Step until nothing is new; returns the state and every item in order."""
    items: list[Any] = []
    while (item := await follower.step(state)) is not None:
        items.append(item)
        state = follower.advance(state, item)
    return state, items


def events_of(items: list[Any]) -> list[DecodedEvent]:
    return [e for item in items if isinstance(item, LogBatch) for e in item.events]


def post(client: MarketplaceClient, account: LocalAccount, value: int) -> bytes:
    client.approve_all(account)
    posted = client.create_request(
        account, 0, encode_signals([value]), max_price=TOKEN_UNIT, proof_time=60
    )
    return posted.id


async def test_follows_from_the_deploy_block_in_bounded_chunks(
    devnet_chain: tuple[Anvil, DevnetSetup], aw3: AsyncWeb3[Any]
) -> None:
    chain, setup = devnet_chain
    w3 = chain.web3()
    client = MarketplaceClient(w3, setup.deployment)
    posted = post(client, dev_account(3), 5)
    follower = follower_for(aw3, setup, max_range=3)
    state, items = await drain(follower, FollowerState(setup.deployment.deploy_block))
    batches = [i for i in items if isinstance(i, LogBatch)]
    assert all(b.to_block - b.from_block < 3 for b in batches)
    assert state.next_block == w3.eth.block_number + 1
    events = events_of(items)
    every_log = w3.eth.get_logs(
        {
            "fromBlock": setup.deployment.deploy_block,
            "toBlock": "latest",
            "address": [setup.deployment.marketplace, setup.deployment.registry],
        }
    )
    assert len(events) == len(every_log)
    assert [(e.block_number, e.log_index) for e in events] == sorted(
        (e.block_number, e.log_index) for e in events
    )
    assert events[-1].name == "RequestCreated" and events[-1]["request_id"] == posted


async def test_confirmations_hold_back_the_newest_blocks(
    devnet_chain: tuple[Anvil, DevnetSetup], aw3: AsyncWeb3[Any]
) -> None:
    chain, setup = devnet_chain
    follower = follower_for(aw3, setup, confirmations=2)
    state, _ = await drain(follower, FollowerState(setup.deployment.deploy_block))
    assert state.next_block == chain.web3().eth.block_number - 1


async def test_a_reorg_rolls_back_and_replays_the_new_chain(
    devnet_chain: tuple[Anvil, DevnetSetup], aw3: AsyncWeb3[Any]
) -> None:
    chain, setup = devnet_chain
    w3 = chain.web3()
    client = MarketplaceClient(w3, setup.deployment)
    follower = follower_for(aw3, setup)
    state, _ = await drain(follower, FollowerState(setup.deployment.deploy_block))
    fork_point = w3.eth.block_number
    snap = rpc(w3, "evm_snapshot")
    orphan = post(client, dev_account(3), 1)
    state, items = await drain(follower, state)
    assert orphan in [e["request_id"] for e in events_of(items)]

    rpc(w3, "evm_revert", snap)
    rpc(w3, "evm_mine")  # a different block at the same height, then the new history
    kept = post(client, dev_account(4), 2)
    item = await follower.step(state)
    assert isinstance(item, Rollback) and item.to_block == fork_point
    state = follower.advance(state, item)
    state, items = await drain(follower, state)
    replayed = [e["request_id"] for e in events_of(items) if e.name == "RequestCreated"]
    assert replayed == [kept]


async def test_the_sender_tracks_nonces_and_maps_reverts(
    devnet_chain: tuple[Anvil, DevnetSetup], aw3: AsyncWeb3[Any]
) -> None:
    chain, setup = devnet_chain
    w3 = aw3
    account = dev_account(4)
    token = bind(chain.web3(), "Token", setup.deployment.token)
    atoken = w3.eth.contract(address=token.address, abi=token.abi)
    sender = TxSender(w3, account)
    before = chain.web3().eth.get_transaction_count(account.address)
    sent: list[Any] = []

    async def record(tx: Any) -> None:
        sent.append(tx)

    for _ in range(3):
        receipt = await sender.send(
            atoken.functions.transfer(dev_account(5).address, 1), on_sent=record
        )
        assert receipt["status"] == 1
    assert [tx.nonce for tx in sent] == [before, before + 1, before + 2]

    market = bind(chain.web3(), "ProofMarketplace", setup.deployment.marketplace)
    amarket = w3.eth.contract(address=market.address, abi=market.abi)
    with pytest.raises(UnauthorizedError, match="not the owner"):
        await sender.send(amarket.functions.set_treasury(account.address))
    assert chain.web3().eth.get_transaction_count(account.address) == before + 3


async def test_a_stuck_transaction_is_replaced_with_higher_fees(
    devnet_chain: tuple[Anvil, DevnetSetup], aw3: AsyncWeb3[Any]
) -> None:
    chain, setup = devnet_chain
    sync = chain.web3()
    w3 = aw3
    token = bind(sync, "Token", setup.deployment.token)
    atoken = w3.eth.contract(address=token.address, abi=token.abi)
    sender = TxSender(w3, dev_account(4), SenderPolicy(bump_after=0.3, poll_interval=0.05))
    sent: list[Any] = []

    async def mine_after_a_bump(tx: Any) -> None:
        sent.append(tx)
        if len(sent) == 2:
            rpc(sync, "evm_mine")

    rpc(sync, "evm_setAutomine", False)
    try:
        receipt = await sender.send(
            atoken.functions.transfer(dev_account(5).address, 1), on_sent=mine_after_a_bump
        )
    finally:
        rpc(sync, "evm_setAutomine", True)
    assert len(sent) == 2 and sent[1].max_fee > sent[0].max_fee
    assert sent[1].nonce == sent[0].nonce
    assert bytes(receipt["transactionHash"]) == sent[1].hash


async def test_a_nonce_taken_by_another_transaction_is_reported(
    devnet_chain: tuple[Anvil, DevnetSetup], aw3: AsyncWeb3[Any]
) -> None:
    chain, setup = devnet_chain
    sync = chain.web3()
    w3 = aw3
    account = dev_account(4)
    token = bind(sync, "Token", setup.deployment.token)
    atoken = w3.eth.contract(address=token.address, abi=token.abi)
    sender = TxSender(w3, account, SenderPolicy(bump_after=60, poll_interval=0.05))

    async def replace_it(tx: Any) -> None:
        # Another wallet of the same key sends a higher-paying transaction at the nonce.
        rival = account.sign_transaction(
            {
                "to": account.address,
                "value": 0,
                "gas": 21_000,
                "nonce": tx.nonce,
                "chainId": 31337,
                "maxFeePerGas": tx.max_fee * 3,
                "maxPriorityFeePerGas": tx.priority_fee * 3,
            }
        )
        sync.eth.send_raw_transaction(rival.raw_transaction)
        rpc(sync, "evm_mine")

    rpc(sync, "evm_setAutomine", False)
    try:
        with pytest.raises(TransactionDroppedError, match="used by another transaction"):
            await sender.send(
                atoken.functions.transfer(dev_account(5).address, 1), on_sent=replace_it
            )
    finally:
        rpc(sync, "evm_setAutomine", True)


async def test_an_unreachable_or_wrong_chain_is_a_clear_error(
    devnet_chain: tuple[Anvil, DevnetSetup], aw3: AsyncWeb3[Any]
) -> None:
    with pytest.raises(ChainError, match="no Ethereum JSON-RPC endpoint"):
        await connect("http://127.0.0.1:9")
    with pytest.raises(ChainError, match="is chain 31337, but the deployment is on chain 1"):
        await connect(devnet_chain[0].url, expected_chain_id=1)


async def test_a_request_is_found_by_its_id_as_committed_now(
    devnet_chain: tuple[Anvil, DevnetSetup], aw3: AsyncWeb3[Any]
) -> None:
    chain, setup = devnet_chain
    client = MarketplaceClient(chain.web3(), setup.deployment)
    requester = dev_account(3)
    client.approve_all(requester)
    posted = client.create_request(
        requester, 0, encode_signals([7]), max_price=TOKEN_UNIT, proof_time=60
    )
    client.increase_max_price(requester, posted, 2 * TOKEN_UNIT)
    d = setup.deployment
    found = await find_request(
        aw3, d.marketplace, marketplace_decoder(), posted.id, from_block=d.deploy_block
    )
    assert found is not None
    assert found.request == posted.with_max_price(2 * TOKEN_UNIT).request
    assert found.public_inputs == posted.public_inputs and found.encrypted_secret == b""
    stored = client.marketplace.functions.request_hash(posted.id).call()
    assert found.request.commitment() == bytes(stored)
    head = chain.web3().eth.block_number
    for window in (1, 2, 1000):  # read backwards in capped windows: the same answer
        windowed = await find_request(
            aw3,
            d.marketplace,
            marketplace_decoder(),
            posted.id,
            from_block=d.deploy_block,
            to_block=head,
            window=LogWindow(size=window, largest=window),
        )
        assert windowed == found
    missing = await find_request(
        aw3, d.marketplace, marketplace_decoder(), b"\x01" * 32, from_block=d.deploy_block
    )
    assert missing is None


async def test_a_topic_filter_follows_only_the_events_asked_for(
    devnet_chain: tuple[Anvil, DevnetSetup], aw3: AsyncWeb3[Any]
) -> None:
    chain, setup = devnet_chain
    post(MarketplaceClient(chain.web3(), setup.deployment), dev_account(3), 5)
    created = next(e for e in artifact("ProofMarketplace").abi if e.get("name") == "RequestCreated")
    follower = follower_for(aw3, setup, topics=[event_abi_to_log_topic(created)])
    _, items = await drain(follower, FollowerState(setup.deployment.deploy_block))
    names = {e.name for e in events_of(items)}
    assert names == {"RequestCreated"}
