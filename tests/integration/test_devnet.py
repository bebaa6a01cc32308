"""`kalypso devnet` brings up anvil with Kalypso deployed; one lifecycle runs over JSON-RPC."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from web3 import Web3

from kalypso.contracts.client import MarketplaceClient
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.deployment import Deployment
from kalypso.devnet import SAMPLE_MARKET, dev_account, free_port
from kalypso.errors import ProofRejectedError, UnauthorizedError
from kalypso.market import RequestState, encode_signals
from kalypso.market.events import marketplace_decoder
from kalypso.market.mock import mock_proof

KALYPSO = [sys.executable, "-m", "kalypso.cli"]


@pytest.fixture(scope="module")
def devnet(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Path, subprocess.Popen[str]]]:
    path = tmp_path_factory.mktemp("devnet") / "deployment.json"
    port = free_port()
    proc = subprocess.Popen(
        [
            *KALYPSO,
            "devnet",
            "--port",
            str(port),
            "--deployment",
            str(path),
            "--matcher-port",
            str(free_port()),
            "--generator-port",
            str(free_port()),
            "--dashboard-port",
            str(free_port()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # a terminal delivers Ctrl-C; a runner started in the background would have it ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, "devnet did not write its deployment file"
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", path, proc
    if proc.poll() is None:
        proc.kill()


def test_one_lifecycle_over_json_rpc(devnet: tuple[str, Path, subprocess.Popen[str]]) -> None:
    url, path, _ = devnet
    deployment = Deployment.load(path)
    w3 = Web3(Web3.HTTPProvider(url))
    assert w3.eth.chain_id == deployment.chain_id == 31337
    client = MarketplaceClient(w3, deployment)
    market_id = deployment.markets[SAMPLE_MARKET]
    generator, requester = dev_account(4), dev_account(3)  # the devnet's own node is 2

    client.approve_all(generator)
    client.register(generator, stake=500 * TOKEN_UNIT, compute=2)
    client.join_market(generator, market_id, price=4 * TOKEN_UNIT, proof_time=30)
    client.approve_all(requester)
    posted = client.create_request(
        requester, market_id, encode_signals([9]), max_price=10 * TOKEN_UNIT, proof_time=60
    )
    with pytest.raises(UnauthorizedError):
        client.assign(requester, posted, generator.address, 4 * TOKEN_UNIT)
    # the devnet's matcher assigns it
    assert deployment.matcher_url and httpx.get(f"{deployment.matcher_url}/health").is_success
    deadline = time.monotonic() + 20
    while client.task(posted).state != RequestState.ASSIGNED:
        assert time.monotonic() < deadline, "the devnet's matcher did not assign the request"
        time.sleep(0.1)
    with pytest.raises(ProofRejectedError):
        client.submit_proof(generator, posted, b"\x00" * 32)
    assert client.task(posted).state == RequestState.ASSIGNED
    receipt = client.submit_proof(
        generator, posted, mock_proof(posted.public_inputs, posted.id, generator.address)
    )
    assert client.task(posted).state == RequestState.FULFILLED
    assert client.balance(generator.address) == 4 * TOKEN_UNIT
    assert client.balance(requester.address) == 6 * TOKEN_UNIT

    decoder = marketplace_decoder()
    logs = w3.eth.get_logs(
        {
            "address": deployment.marketplace,
            "fromBlock": deployment.deploy_block,
            "toBlock": "latest",
            "topics": [None, "0x" + posted.id.hex()],
        }
    )
    names = [decoder.decode(log).name for log in logs]
    assert names == ["RequestCreated", "TaskAssigned", "ProofSubmitted"]
    proof_event = decoder.decode(logs[-1])
    assert proof_event["proof"] == mock_proof(posted.public_inputs, posted.id, generator.address)
    assert proof_event.block_number == receipt["blockNumber"]


def test_ctrl_c_stops_the_devnet_cleanly(devnet: tuple[str, Path, subprocess.Popen[str]]) -> None:
    url, _, proc = devnet
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)  # each daemon drains; a loaded CI machine is slow
    assert proc.returncode == 0, out
    assert "devnet ready" in out and "devnet stopped" in out
    assert "ME enclave   0x" in out
    assert "KALYPSO_RPC_URL" in out
    # the daemons' logs outlive it, for a post-mortem; nothing else of its state does
    kept = Path(re.search(r"logs are kept in (\S+)", out)[1])  # type: ignore[index]
    assert {p.name for p in kept.iterdir()} >= {"matcher.log", "generator.log"}
    assert all(p.suffix == ".log" for p in kept.rglob("*") if p.is_file())
    shutil.rmtree(kept)
    with pytest.raises(Exception):  # noqa: B017 — the chain is gone
        Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 2})).eth.chain_id  # noqa: B018
