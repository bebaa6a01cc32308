"""The hosted-provider simulator answers as real providers do: statuses, headers, texts.

One anvil and one simulator for the module; each test resets the simulator to its own
config. Clients are plain `requests` and `aiohttp`, never Kalypso's chain code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import requests
from eth_account import Account

from kalypso.devnet import Anvil, dev_account, free_port
from kalypso.testing import PERSONALITIES, ProviderSimulator, SimulatorConfig, profile
from kalypso.testing.cli import build_parser, config_from

pytestmark = pytest.mark.integration  # starts anvil

#: Runtime `PUSH1 0 PUSH1 0 LOG0 STOP` (one empty log per call) behind a constructor.
EMITTER_INITCODE = "0x6560006000a0006000526006601af3"
ALCHEMY_429 = (
    "Your app has exceeded its compute units per second capacity. If you have retries "
    "enabled, you can safely ignore this message. If not, check out "
    "https://docs.alchemy.com/reference/throughput"
)


def rpc(url: str, method: str, *params: Any, request_id: int = 1, **kw: Any) -> Any:
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)}
    return requests.post(url, json=body, **kw)


def node(url: str, method: str, *params: Any) -> Any:
    answer = rpc(url, method, *params).json()
    assert "error" not in answer, answer
    return answer["result"]


@pytest.fixture(scope="module")
def chain() -> Iterator[Anvil]:
    with Anvil() as anvil:
        yield anvil


def mined(chain: Anvil, tx: str) -> Any:
    """The receipt of `tx` (anvil mines a moment after it answers, on a loaded machine)."""
    deadline = time.monotonic() + 20
    while (receipt := node(chain.url, "eth_getTransactionReceipt", tx)) is None:
        assert time.monotonic() < deadline, f"{tx} not mined"
        time.sleep(0.05)
    return receipt


@pytest.fixture(scope="module")
def emitter(chain: Anvil) -> tuple[str, list[int]]:
    """A contract that logs once per call, called in 5 blocks: (address, their numbers)."""
    sender = dev_account(0).address
    tx = node(chain.url, "eth_sendTransaction", {"from": sender, "data": EMITTER_INITCODE})
    address = mined(chain, tx)["contractAddress"]
    blocks = []
    for _ in range(5):
        tx = node(chain.url, "eth_sendTransaction", {"from": sender, "to": address})
        blocks.append(int(mined(chain, tx)["blockNumber"], 16))
    return address, blocks


@pytest.fixture(scope="module")
def running(chain: Anvil) -> Iterator[ProviderSimulator]:
    with ProviderSimulator(chain.url) as sim:
        yield sim


@pytest.fixture
def sim(running: ProviderSimulator) -> ProviderSimulator:
    running.reset(SimulatorConfig(seed=1))
    return running


def signed_transfer(chain: Anvil, index: int) -> tuple[str, str, int]:
    """(raw tx, sender, nonce) of a 1-wei transfer from dev account `index`."""
    account = dev_account(index)
    nonce = int(node(chain.url, "eth_getTransactionCount", account.address, "latest"), 16)
    tx = {
        "to": dev_account(9).address,
        "value": 1,
        "gas": 21_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 1,
        "nonce": nonce,
        "chainId": chain.chain_id,
        "type": 2,
    }
    raw = Account.sign_transaction(tx, account.key).raw_transaction
    return "0x" + raw.hex().removeprefix("0x"), account.address, nonce


# -- eth_getLogs: block ranges and result counts -----------------------------------------

RANGE_TEXTS = {
    "alchemy": (
        200,
        -32600,
        "You can make eth_getLogs requests with up to a 10000 block range. Based on your "
        "parameters, this block range should work: [0x0, 0x270f]",
    ),
    "infura": (200, -32602, "range 10001 exceeds limit of 10000"),
    "quicknode": (413, -32614, "eth_getLogs is limited to a 10,000 range"),
    "ankr": (200, -32600, "block range is too wide"),
    "cloudflare": (
        200,
        -32047,
        "Invalid eth_getLogs request. 'fromBlock'-'toBlock' range too large. Max range: 10000",
    ),
    "publicnode": (200, -32701, "exceed maximum block range: 10000"),
    "drpc": (200, 35, "ranges over 10000 blocks are not supported on freetier"),
    "reth": (200, -32602, "query exceeds max block range 10000"),
    "erigon": (200, -32602, "query block range exceeds server limit, narrow your filter: 10000"),
}


@pytest.mark.parametrize("name", sorted(RANGE_TEXTS))
def test_a_range_over_the_limit_is_refused_in_the_providers_words(
    sim: ProviderSimulator, name: str
) -> None:
    sim.configure(personality=name, max_block_range=10_000)
    answer = rpc(sim.url, "eth_getLogs", {"fromBlock": "0x0", "toBlock": hex(10_000)})
    status, code, message = RANGE_TEXTS[name]
    assert answer.status_code == status
    assert answer.json() == {"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": message}}
    assert sim.stats.refusals("range") == 1 and sim.stats.snapshot()["forwarded"] == 0


def test_a_range_within_the_limit_reaches_the_node_and_rotate_cycles_texts(
    sim: ProviderSimulator, emitter: tuple[str, list[int]]
) -> None:
    sim.configure(max_block_range=500)
    assert len(node(sim.url, "eth_getLogs", {"fromBlock": "0x0", "toBlock": "latest"})) == 5
    sim.configure(personality="rotate")
    wide = {"fromBlock": "0x0", "toBlock": hex(500)}  # 501 blocks
    codes = [rpc(sim.url, "eth_getLogs", wide).json()["error"]["code"] for _ in PERSONALITIES]
    assert len(set(codes)) > 5  # each refusal in the next provider's words


def test_more_logs_than_the_cap_are_refused_with_a_range_that_fits(
    sim: ProviderSimulator, emitter: tuple[str, list[int]]
) -> None:
    address, blocks = emitter
    sim.configure(personality="infura", max_logs=3)
    query = {"address": address, "fromBlock": hex(blocks[0]), "toBlock": hex(blocks[-1])}
    answer = rpc(sim.url, "eth_getLogs", query)
    assert answer.status_code == 200
    fit = blocks[3] - 1  # the 4th log's block is one too many
    assert answer.json()["error"] == {
        "code": -32005,
        "message": f"query returned more than 3 results. Try with this block range "
        f"[0x{blocks[0]:X}, 0x{fit:X}].",
        "data": {"from": f"0x{blocks[0]:X}", "limit": 3, "to": f"0x{fit:X}"},
    }
    sim.configure(personality="reth")
    assert rpc(sim.url, "eth_getLogs", query).json()["error"] == {
        "code": -32602,
        "message": f"query exceeds max results 3, retry with the range {blocks[0]}-{fit}",
    }
    within = {**query, "toBlock": hex(fit)}
    assert len(node(sim.url, "eth_getLogs", within)) == 3
    assert sim.stats.refusals("results") == 2


# -- rate limits ---------------------------------------------------------------------------


def test_a_429_carries_retry_after_and_the_providers_body(sim: ProviderSimulator) -> None:
    sim.configure(rate_429=1.0, retry_after_s=3)
    answer = rpc(sim.url, "eth_blockNumber", request_id=7)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "3"
    assert answer.json() == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {"code": 429, "message": ALCHEMY_429},
    }

    sim.configure(personality="infura")
    error = rpc(sim.url, "eth_blockNumber").json()["error"]
    assert (error["code"], error["message"]) == (-32005, "project ID request rate exceeded")
    assert error["data"]["backoff_seconds"] == 3.0

    sim.configure(rate_limit_http=False)  # TheRPC's way: the same error in an HTTP 200
    answer = rpc(sim.url, "eth_blockNumber")
    assert answer.status_code == 200 and "Retry-After" not in answer.headers
    assert answer.json()["error"]["code"] == -32005
    assert sim.stats.faults("rate_limited") == 3


def test_429s_come_in_bursts(sim: ProviderSimulator) -> None:
    sim.configure(rate_429=1.0, rate_limit_burst=3)
    assert rpc(sim.url, "eth_chainId").status_code == 429
    sim.configure(rate_429=0.0)  # the burst goes on regardless
    statuses = [rpc(sim.url, "eth_chainId").status_code for _ in range(3)]
    assert statuses == [429, 429, 200]


def test_fault_rates_hold_and_repeat_for_a_seed_per_label(sim: ProviderSimulator) -> None:
    config = SimulatorConfig(seed=5, rate_429=0.3, rate_503=0.1)

    def pattern(label: str) -> list[int]:
        return [rpc(sim.url_for(label), "eth_chainId").status_code for _ in range(100)]

    sim.reset(config)
    first = pattern("matcher")
    assert 15 <= first.count(429) <= 45 and 2 <= first.count(503) <= 20
    sim.reset(config)
    pattern("generator")  # another client's traffic does not shift this one's faults
    assert pattern("matcher") == first


def test_a_client_over_its_budget_gets_429_and_batch_items_over_it_get_errors(
    sim: ProviderSimulator,
) -> None:
    sim.configure(requests_per_second=5.0)
    statuses = [rpc(sim.url_for("a"), "eth_chainId") for _ in range(7)]
    assert [s.status_code for s in statuses] == [200] * 5 + [429] * 2
    assert int(statuses[-1].headers["Retry-After"]) >= 1
    batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"} for i in range(7)]
    answer = requests.post(sim.url_for("b"), json=batch)
    assert answer.status_code == 200  # QuickNode: "25 valid responses and one (1) error"
    items = answer.json()
    assert [i["id"] for i in items] == list(range(7))
    assert ["result" in i for i in items] == [True] * 5 + [False] * 2
    assert items[6]["error"]["code"] == 429
    assert sim.stats.faults("budget", label="a") == 2 and sim.stats.faults("budget", "b") == 2


# -- unhealthy backends, latency, drops, hangs ---------------------------------------------


def test_503_and_502_answers(sim: ProviderSimulator) -> None:
    sim.configure(rate_503=1.0)
    answer = rpc(sim.url, "eth_blockNumber")
    assert answer.status_code == 503
    assert answer.json()["error"] == {
        "code": -32011,
        "message": "no backend is currently healthy to serve traffic",
    }
    sim.configure(rate_503=0.0, rate_502=1.0)
    answer = rpc(sim.url, "eth_blockNumber")
    assert answer.status_code == 502 and answer.headers["Content-Type"].startswith("text/html")
    assert "502 Bad Gateway" in answer.text
    assert sim.stats.snapshot()["forwarded"] == 0


def test_latency_is_jittered_around_the_setting(sim: ProviderSimulator) -> None:
    sim.configure(latency_ms=80.0, latency_jitter=0.25)
    waits = []
    for _ in range(5):
        start = time.monotonic()
        rpc(sim.url, "eth_chainId")
        waits.append(time.monotonic() - start)
    assert all(0.058 <= w <= 0.3 for w in waits) and len({round(w, 3) for w in waits}) > 1


def test_a_dropped_connection_cuts_the_body(sim: ProviderSimulator) -> None:
    sim.configure(rate_drop=1.0)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        rpc(sim.url, "eth_blockNumber")
    assert sim.stats.faults("drop") == 1 and sim.stats.snapshot()["forwarded"] == 0


def test_a_hanging_request_outlasts_the_client_timeout(sim: ProviderSimulator) -> None:
    sim.configure(rate_timeout=1.0, hang_s=3.0)
    start = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        rpc(sim.url, "eth_blockNumber", timeout=0.3)
    assert time.monotonic() - start < 1.0 and sim.stats.faults("timeout") == 1


def test_a_node_that_is_down_shows_as_a_502() -> None:
    with ProviderSimulator(f"http://127.0.0.1:{free_port()}") as sim:
        assert rpc(sim.url, "eth_chainId").status_code == 502
        assert sim.stats.faults("upstream_error") == 1


def test_faults_spare_exempt_methods(sim: ProviderSimulator) -> None:
    sim.configure(rate_503=1.0, exempt_methods=frozenset({"eth_chainId"}))
    assert rpc(sim.url, "eth_chainId").json()["result"] == hex(31337)
    assert rpc(sim.url, "eth_blockNumber").status_code == 503


# -- eth_sendRawTransaction: possibly sent ---------------------------------------------------


@pytest.mark.parametrize("kind", ["503", "timeout", "drop"])
def test_a_transaction_can_reach_the_node_while_the_client_sees_a_failure(
    sim: ProviderSimulator, chain: Anvil, kind: str
) -> None:
    sim.configure(rate_send_after_forward=1.0, send_after_forward_kinds=(kind,), hang_s=2.0)
    raw, sender, nonce = signed_transfer(chain, 3)
    if kind == "503":
        assert rpc(sim.url, "eth_sendRawTransaction", raw).status_code == 503
    else:
        failure: dict[str, Any] = {
            "timeout": requests.exceptions.ReadTimeout,
            # cut mid-body, or (on a loaded machine) before the status line went out
            "drop": (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError),
        }
        with pytest.raises(failure[kind]):
            rpc(sim.url, "eth_sendRawTransaction", raw, timeout=0.5)
    assert node(chain.url, "eth_getTransactionCount", sender, "latest") == hex(nonce + 1)
    assert sim.stats.faults("send_after_forward") == 1


def test_a_503_before_forwarding_means_the_transaction_was_not_sent(
    sim: ProviderSimulator, chain: Anvil
) -> None:
    sim.configure(rate_503=1.0)
    raw, sender, nonce = signed_transfer(chain, 4)
    assert rpc(sim.url, "eth_sendRawTransaction", raw).status_code == 503
    assert node(chain.url, "eth_getTransactionCount", sender, "latest") == hex(nonce)


# -- a lagging backend ---------------------------------------------------------------------


def test_a_lagging_backend_answers_as_of_its_older_head(
    sim: ProviderSimulator, chain: Anvil, emitter: tuple[str, list[int]]
) -> None:
    raw, sender, nonce = signed_transfer(chain, 5)
    tx = node(chain.url, "eth_sendRawTransaction", raw)
    head = int(mined(chain, tx)["blockNumber"], 16)  # the newest block, once anvil mined it
    address, _ = emitter
    sim.configure(rate_lag=1.0, lag_blocks=1)
    calls = [
        ("eth_blockNumber", []),
        ("eth_getBlockByNumber", ["latest", False]),
        ("eth_getTransactionReceipt", [tx]),
        ("eth_getTransactionCount", [sender, "pending"]),
        ("eth_getBlockByNumber", [hex(head), False]),
        ("eth_getLogs", [{"address": address, "fromBlock": "0x0", "toBlock": "latest"}]),
    ]
    batch = [
        {"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)
    ]
    number, block, receipt, count, newest, logs = [
        a["result"] for a in requests.post(sim.url, json=batch).json()
    ]
    assert number == block["number"] == hex(head - 1)  # one backend, one head
    assert receipt is None and newest is None and count == hex(nonce)
    assert len(logs) == 5
    assert sim.stats.faults("lagged") == 1

    sim.configure(lag_blocks=2)
    seen = {int(node(sim.url, "eth_blockNumber"), 16) for _ in range(20)}
    assert seen == {head - 1, head - 2}

    sim.configure(lag_blocks=1, lag_logs="error")
    answer = rpc(sim.url, "eth_getLogs", {"fromBlock": hex(head - 3), "toBlock": hex(head)})
    assert answer.json()["error"] == {
        "code": -32602,
        "message": "block range extends beyond current head block",
    }


def test_logs_of_the_newest_blocks_are_missing_on_a_lagging_backend(
    sim: ProviderSimulator, chain: Anvil, emitter: tuple[str, list[int]]
) -> None:
    address, _ = emitter
    sender = dev_account(0).address
    tx = node(chain.url, "eth_sendTransaction", {"from": sender, "to": address})
    mined(chain, tx)  # a 6th log, in the newest block
    sim.configure(rate_lag=1.0, lag_blocks=1)
    query = {"address": address, "fromBlock": "0x0", "toBlock": "latest"}
    assert len(node(sim.url, "eth_getLogs", query)) == 5
    # by the newest block's hash: an error, as geth's "unknown block", never an empty list
    newest = {"blockHash": node(chain.url, "eth_getBlockByNumber", "latest", False)["hash"]}
    assert rpc(sim.url, "eth_getLogs", newest).json()["error"] == {
        "code": -32000,
        "message": "unknown block",
    }
    sim.configure(rate_lag=0.0)
    assert len(node(sim.url, "eth_getLogs", query)) == 6
    assert len(node(sim.url, "eth_getLogs", {**newest, "address": address})) == 1


# -- batches, labels, stats, control ---------------------------------------------------------


def test_batches_keep_order_and_ids_and_bad_items_get_errors(sim: ProviderSimulator) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": "a", "method": "eth_chainId", "params": []},
        "not a call",
        {"jsonrpc": "2.0", "id": 3, "method": "eth_blockNumber", "params": []},
    ]
    items = requests.post(sim.url, json=batch).json()
    assert items[0] == {"jsonrpc": "2.0", "id": "a", "result": hex(31337)}
    assert items[1]["error"]["code"] == -32600 and items[2]["id"] == 3
    broken = requests.post(sim.url, data=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.json()["error"]["code"] == -32700


def test_stats_count_calls_per_method_and_label(sim: ProviderSimulator) -> None:
    rpc(sim.url_for("matcher"), "eth_blockNumber")
    rpc(sim.url_for("matcher"), "eth_chainId")
    batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"} for i in range(3)]
    requests.post(sim.url_for("generator"), json=batch)
    rpc(sim.url, "eth_chainId")
    stats = requests.get(f"{sim.url}/_stats").json()
    assert (stats["requests"], stats["calls"], stats["forwarded"]) == (4, 6, 6)
    assert stats["methods"] == {"eth_blockNumber": 1, "eth_chainId": 5}
    assert stats["labels"]["matcher"]["calls"] == 2
    assert stats["labels"]["generator"] == {
        "requests": 1,
        "calls": 3,
        "methods": {"eth_chainId": 3},
        "faults": {},
        "refusals": {},
    }
    assert sim.stats.calls(label="default") == 1 and sim.stats.calls("eth_chainId") == 5
    with pytest.raises(ValueError):
        sim.url_for("not/a label")


def test_the_control_endpoint_switches_faults_at_runtime(sim: ProviderSimulator) -> None:
    control = f"{sim.url}/_control"
    assert requests.post(control, json={"rate_503": 1.0}).status_code == 200
    assert rpc(sim.url, "eth_chainId").status_code == 503
    assert requests.post(control, json={"faults_enabled": False}).status_code == 200
    assert rpc(sim.url, "eth_chainId").status_code == 200
    assert requests.post(control, json={"rate_503": 2.0}).status_code == 400
    assert requests.post(control, json={"no_such": 1}).status_code == 400
    shown = requests.get(control).json()
    assert shown["config"]["faults_enabled"] is False and "hosted" in shown["profiles"]
    hosted = requests.post(control, json={"profile": "hosted", "reset": True}).json()
    assert hosted["config"]["max_block_range"] == 500 and sim.stats.calls() == 0


# -- ways to run it ------------------------------------------------------------------------


async def test_in_process_async_context_manager(chain: Anvil) -> None:
    async with ProviderSimulator(chain.url, profile("none")) as sim:
        async with aiohttp.ClientSession() as client:
            body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
            async with client.post(sim.url_for("sdk"), json=body) as answer:
                assert (await answer.json())["result"] == hex(31337)
        assert sim.stats.calls(label="sdk") == 1


def test_profiles_and_cli_options() -> None:
    hosted = profile("hosted")
    assert (hosted.max_block_range, hosted.rate_429, hosted.rate_503) == (500, 0.10, 0.02)
    assert (hosted.latency_ms, hosted.lag_blocks, hosted.retry_after_s) == (80.0, 2, 1)
    args = build_parser().parse_args(
        [
            *("--upstream", "http://x", "--profile", "strict", "--rate-429", "0"),
            *("--max-logs", "0", "--exempt", "eth_chainId", "--seed", "9"),
            *("--after-forward-kind", "503", "--rate-limit-in-200"),
        ]
    )
    config = config_from(args)
    assert config.rate_429 == 0 and config.max_logs is None and config.seed == 9
    assert config.exempt_methods == {"eth_chainId"} and config.personality == "rotate"
    assert config.send_after_forward_kinds == ("503",) and config.rate_limit_http is False
    with pytest.raises(ValueError):
        SimulatorConfig(rate_429=0.7, rate_503=0.5)


def test_python_dash_m_serves_until_interrupted(chain: Anvil) -> None:
    port = free_port()
    command = [sys.executable, "-m", "kalypso.testing.provider", "--upstream", chain.url]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--profile", "none"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error::RuntimeWarning"},
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith(
            f"provider simulator on http://127.0.0.1:{port}"
        )
        assert node(f"http://127.0.0.1:{port}/ops", "eth_chainId") == hex(31337)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=10)
        assert process.returncode == 0 and '"ops"' in out
    finally:
        process.kill()
    helptext = subprocess.run(
        [*command, "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in ("--profile", "--seed", "--rate-429", "--rate-send-after-forward", "--lag-logs"):
        assert flag in helptext
