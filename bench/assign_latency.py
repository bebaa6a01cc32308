"""Assignment latency on anvil: blocks from `RequestCreated` to `TaskAssigned` under a burst.

What is measured: a devnet (anvil mining a block every second, like a fast L2) with four
generators in the mock market and the matcher (`kalypso matcher`) running as its own
process. Four requesters send 1,000 `create_request` transactions, signed beforehand, as
fast as the node takes them; they land in as few blocks as the gas limit allows. For
every request the figure is the block of its `TaskAssigned` minus the block of its
`RequestCreated` (1 = assigned in the very next block, the best possible: the matcher
only sees a request once its block is mined); p50 and p99 are over all requests. Batch
size is assignments per `assign_batch` transaction.

Run through `bench/matching.py`, which prints it beside the pure-core figures.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import RPCEndpoint

from kalypso.contracts.client import MarketplaceClient
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.devnet import Anvil, deploy_devnet, dev_account, free_port
from kalypso.market import encode_signals, request_id
from kalypso.market.events import marketplace_decoder
from kalypso.matching.process import MatcherProcess

BURST = 1_000
REQUESTERS = [dev_account(i) for i in (2, 3, 4, 5)]
GENERATORS = [dev_account(i) for i in (6, 7, 8, 9)]
MAX_PRICE = TOKEN_UNIT
PENALTY = 100 * TOKEN_UNIT  # the devnet's mock market
GOAL_P50_BLOCKS = 1
GOAL_BATCH = 30


def _prepare(client: MarketplaceClient, owner: LocalAccount) -> None:
    room = BURST // len(GENERATORS) + 1
    for generator in GENERATORS:
        client.transfer(owner, generator.address, room * PENALTY)
        client.approve_all(generator)
        client.register(generator, stake=room * PENALTY, compute=room)
        client.join_market(generator, 0, price=MAX_PRICE // 2, proof_time=600)
    for requester in REQUESTERS:
        client.approve_all(requester)
        client.deposit(requester, BURST * MAX_PRICE)


def _signed_burst(
    w3: Web3, client: MarketplaceClient, burst: int
) -> tuple[list[bytes], list[bytes]]:
    """Every create_request of the burst, signed in advance; and the request ids."""
    chain_id, market = w3.eth.chain_id, client.marketplace
    expiry = client.now() + 3_600
    nonces = {a.address: w3.eth.get_transaction_count(a.address) for a in REQUESTERS}
    signed: list[bytes] = []
    ids: list[bytes] = []
    for i in range(burst):
        requester = REQUESTERS[i % len(REQUESTERS)]
        salt = os.urandom(32)
        call = market.functions.create_request(
            0, salt, MAX_PRICE, 600, expiry, requester.address, encode_signals([i + 1]), b""
        )
        tx = call.build_transaction(
            {
                "from": requester.address,
                "nonce": nonces[requester.address],
                "gas": 300_000,
                "chainId": chain_id,
                "maxFeePerGas": 50 * 10**9,
                "maxPriorityFeePerGas": 10**9,
            }
        )
        nonces[requester.address] += 1
        signed.append(requester.sign_transaction(tx).raw_transaction)
        ids.append(request_id(chain_id, market.address, requester.address, salt))
    return signed, ids


def anvil_benchmark(burst: int = BURST, block_time: int = 1) -> dict[str, Any]:
    with Anvil() as chain, tempfile.TemporaryDirectory(prefix="kalypso-bench-") as tmp:
        w3 = chain.web3()
        setup = deploy_devnet(w3)
        client = MarketplaceClient(w3, setup.deployment)
        _prepare(client, setup.owner)
        deployment = setup.deployment.save(Path(tmp) / "deployment.json")
        matcher = MatcherProcess(
            Path(tmp),
            rpc_url=chain.url,
            deployment=deployment,
            account=setup.matcher,
            api_port=free_port(),
            poll_interval=0.1,
        )
        with matcher:
            w3.provider.make_request(RPCEndpoint("evm_setAutomine"), [False])
            w3.provider.make_request(RPCEndpoint("evm_setIntervalMining"), [block_time])
            signed, ids = _signed_burst(w3, client, burst)
            first_block = w3.eth.block_number
            start = time.monotonic()
            for raw in signed:
                w3.eth.send_raw_transaction(raw)
            # Watch cheaply (the matcher's health) so the bench does not compete for CPU.
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                time.sleep(0.5)
                health = matcher.status("/health")
                idle = not health["open_requests"] and not health["pending_assignments"]
                if idle and health["lag_blocks"] <= 1:
                    break
            elapsed = time.monotonic() - start
            logs = w3.eth.get_logs(
                {
                    "fromBlock": first_block,
                    "toBlock": "latest",
                    "address": client.marketplace.address,
                }
            )
    wanted = set(ids)
    created: dict[bytes, int] = {}
    assigned: dict[bytes, Any] = {}
    for event in map(marketplace_decoder().decode, logs):
        if event.name == "RequestCreated" and event["request_id"] in wanted:
            created[event["request_id"]] = event.block_number
        elif event.name == "TaskAssigned" and event["task_id"] in wanted:
            assigned[event["task_id"]] = event
    latencies = sorted(assigned[r].block_number - created[r] for r in assigned)
    batches = Counter(bytes(e.transaction_hash) for e in assigned.values())
    return {
        "requests": burst,
        "assigned": len(assigned),
        "seconds": round(elapsed, 1),
        "blocks_p50": statistics.median(latencies) if latencies else None,
        "blocks_p99": latencies[int(0.99 * (len(latencies) - 1))] if latencies else None,
        "blocks_max": latencies[-1] if latencies else None,
        "transactions": len(batches),
        "batch_mean": round(len(assigned) / max(1, len(batches)), 1),
        "batch_max": max(batches.values(), default=0),
        "block_time_s": block_time,
        "batch_sizes": dict(sorted(Counter(batches.values()).items())),
        "created_per_block": dict(sorted(Counter(created.values()).items())),
    }


if __name__ == "__main__":
    print(anvil_benchmark(300))
    print(anvil_benchmark(BURST))
