"""End to end on anvil: `create_request` to `ProofSubmitted`, through the real daemons.

Setup: anvil mining a block every second (interval mining, switched on after the
contracts are deployed and the daemons have onboarded), the matcher (`kalypso matcher`)
and generators (`kalypso generator run`) as their own processes, polling the chain every
`POLL` seconds, in the devnet's private market: poseidon_preimage, whose requests are
proven only inside its Generator Image. Every request is private: its preimage is sealed
to the matcher's key (a key file: the matcher opens and re-wraps in process, without the
Matching Engine enclave whose two calls bench/enclave.py times), which re-wraps it to the
chosen generator's offer key. Generator nodes hold no key: each has its own Generator
Image (`kalypso enclave generator`, its own process and snarkjs worker, registered on-chain
by an operator account of its own), whose key its offer carries, and which opens the
preimage and proves (`prover = "enclave"`). The private path is kept, rather than
switching to public square_root requests, because it is the one that sealed inputs take:
the enclave's HTTP call, opening and commitment check are part of every private proof.

Latency (one generator): `--requests` requests, one at a time. Each is sent after a
random pause of up to one block (so requests land at every phase of the block clock),
and the next one only after the previous proof is on-chain. Times are wall-clock, taken
by this process when it sends the transaction and when it first sees a block (it polls
the head every 50 ms), and from the generator's JSON log and SQLite journal:

- end to end: sent → the block holding `ProofSubmitted` seen (p99 by nearest rank: of
  50 requests, the slowest);
- waiting for match: sent → the `TaskAssigned` block (of which the create's own
  inclusion: sent → the `RequestCreated` block);
- proving: the journal's `proof_seconds` (the node's call into its Generator Image: the
  HTTP request, opening the preimage, the commitment check and the proof);
- submitting: the rest, assigned block → proof block minus proving. It is split into
  detect (the assigned block → the node's "task assigned" log), prepare + verify
  (fetch the request, check the proof with an `eth_call`) and send + inclusion ("proof
  ready" log → the proof's block, at least the wait for the next block).

Harness overhead over raw snarkjs proving, two scopes, both against the median of warm
proofs by `SnarkjsGroth16Prover` in this process, one after each request (so under the
same background load as the node's; the daemons are up and idle then): *prover* =
median `proof_seconds` / raw - 1, what the proving path (node → Generator Image) adds;
*node* = median ("task assigned" log → "proof ready" log) / raw - 1, everything the
generator and its enclave do off-chain for a task. Block waits count in neither. The
first task of an enclave pays its snarkjs worker's start (on its first proof): it shows
in p99, not p50. Goals: end to end p50 ≤ 4 s; harness overhead ≤ 10 %.

Throughput (`--generators`, four by default): a burst of `--burst` requests, signed
beforehand, from several requesters with pipelined nonces, sent as fast as the node
takes them. Figures: the time from the first send to the last `ProofSubmitted` block,
proofs per second, per-request latency, how the tasks spread among generators, and
proofs per settlement transaction. Each generator may hold `COMPUTE` tasks at once;
the rest wait in the matcher's book for room. Here the journal's `proof_seconds` also
counts the wait for the enclave's one snarkjs worker (a node sends up to
`max_parallel_proofs` proofs, but the worker takes one at a time), so it is kept in the
JSON only. On a small machine the CPU is shared by anvil, the daemons, the enclaves and
their snarkjs workers, and anything else running on it skews every figure: the load
average is printed and kept.

Run: `.venv/bin/python bench/e2e.py [--requests N] [--burst N] [--generators N]`;
writes bench/results/e2e.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.table import Table
from web3 import Web3
from web3.types import RPCEndpoint

from kalypso.circuits import circuit
from kalypso.contracts.client import MarketplaceClient
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.crypto import EncryptionKey, SecretContext, seal
from kalypso.devnet import (
    PRIVATE_MARKET,
    SAMPLE_PENALTY,
    Anvil,
    DevnetSetup,
    deploy_devnet,
    dev_account,
    free_port,
)
from kalypso.enclave.process import EnclaveProcess
from kalypso.generator.process import GeneratorProcess
from kalypso.market import encode_signals, request_id
from kalypso.market.events import DecodedEvent, marketplace_decoder
from kalypso.matching.process import MatcherProcess
from kalypso.provers import InvalidInputs
from kalypso.provers.snarkjs import SnarkjsGroth16Prover, SnarkjsWorker

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "e2e.json"

REQUESTS = 50
BURST = 200
GENERATORS = 4
BLOCK_TIME = 1
#: the daemons' poll_interval (the process wrappers' default)
POLL = 0.2
#: how often this process looks at the head while timing one request
WATCH = 0.05
MARKET = PRIVATE_MARKET
CIRCUIT = "poseidon_preimage"
PRICE = 10 * TOKEN_UNIT
MAX_PRICE = 25 * TOKEN_UNIT
#: long enough that a generator with a queue of burst tasks never runs out of time
PROOF_TIME = 600
#: tasks a generator may hold at once in the burst (stake for as many penalties)
COMPUTE = 16
RAW_WARMUP = 3
REQUEST_TIMEOUT = 60.0
SEED = 7
GOAL_P50_S = 4.0
GOAL_OVERHEAD_PERCENT = 10
#: dev accounts: 0 deploys, 1 matches; generators and requesters share the rest
GENERATOR_ACCOUNTS = (2, 3, 4, 6, 7, 8, 9)
REQUESTER_ACCOUNTS = (5, 9, 8, 7)
#: dev accounts past anvil's ten, given ether: generator i's enclave registers with 10 + i
ENCLAVE_OPERATORS = 10
OPERATOR_ETHER = 10**20
WIDTH = 100


# ---- the devnet: anvil, the matcher, generators


@dataclass
class World:
    w3: Web3
    client: MarketplaceClient
    setup: DevnetSetup
    market_id: int
    matcher: MatcherProcess
    matcher_key: bytes
    generators: list[GeneratorProcess]
    enclaves: list[EnclaveProcess]
    requesters: list[LocalAccount]


def generator_image(
    workdir: Path, chain: Anvil, deployment: Path, market_id: int, index: int
) -> EnclaveProcess:
    """Generator `index`'s own Generator Image of the private market (not started), with
    an operator account of its own (given ether) to pay its registration."""
    operator = dev_account(ENCLAVE_OPERATORS + index)
    chain.web3().provider.make_request(
        RPCEndpoint("anvil_setBalance"), [operator.address, hex(OPERATOR_ETHER)]
    )
    folder = workdir / f"enclave-{index}"  # its log, apart from the other enclaves'
    folder.mkdir()
    return EnclaveProcess(
        folder,
        "generator",
        rpc_url=chain.url,
        deployment=deployment,
        operator=operator,
        port=free_port(),
        market=market_id,
        circuit=CIRCUIT,
    )


def _start_all(processes: list[Any]) -> None:
    with ThreadPoolExecutor(len(processes)) as pool:
        for started in [pool.submit(p.start) for p in processes]:
            started.result()


@contextlib.contextmanager
def devnet(workdir: Path, generators: int, compute: int, deposit: int) -> Iterator[World]:
    """A fresh chain with the daemons up and onboarded, then mining one block a second:
    the Generator Images first (each registers its key), then the matcher and the nodes
    (each joins with its enclave's key)."""
    with contextlib.ExitStack() as stack:
        chain = stack.enter_context(Anvil())
        w3 = chain.web3()
        setup = deploy_devnet(w3)
        client = MarketplaceClient(w3, setup.deployment)
        funded = {a.address for a in setup.funded}
        gen_accounts = [dev_account(i) for i in GENERATOR_ACCOUNTS[:generators]]
        used = set(GENERATOR_ACCOUNTS[:generators])
        requesters = [dev_account(i) for i in REQUESTER_ACCOUNTS if i not in used]
        for account in gen_accounts:
            if account.address not in funded:
                client.transfer(setup.owner, account.address, compute * SAMPLE_PENALTY)
        for requester in requesters:
            if requester.address not in funded:
                client.transfer(setup.owner, requester.address, deposit)
            client.approve_all(requester)
            client.deposit(requester, deposit)
        deployment = setup.deployment.save(workdir / "deployment.json")
        matcher_key = EncryptionKey.generate()
        matcher = MatcherProcess(
            workdir,
            rpc_url=chain.url,
            deployment=deployment,
            account=setup.matcher,
            api_port=free_port(),
            poll_interval=POLL,
            encryption_key=matcher_key.save(workdir / "matcher.x25519"),
        )
        matcher.args.append("--json-logs")
        market_id = setup.deployment.markets[MARKET]
        enclaves = [
            generator_image(workdir, chain, deployment, market_id, i) for i in range(generators)
        ]
        processes = []
        for i, (account, enclave) in enumerate(zip(gen_accounts, enclaves, strict=True)):
            market = {"price": PRICE, "proof_time": PROOF_TIME, "prover": "enclave"}
            process = GeneratorProcess(
                workdir,
                rpc_url=chain.url,
                deployment=deployment,
                account=account,
                api_port=free_port(),
                markets={MARKET: {**market, "url": enclave.url}},
                stake=compute * SAMPLE_PENALTY,
                compute=compute,
                name=f"generator-{i}",
                poll_interval=POLL,
            )
            process.args.append("--json-logs")
            processes.append(process)
        stack.callback(_stop_all, matcher, processes, enclaves)
        _start_all(enclaves)
        _start_all([matcher, *processes])
        w3.provider.make_request(RPCEndpoint("evm_setAutomine"), [False])
        w3.provider.make_request(RPCEndpoint("evm_setIntervalMining"), [BLOCK_TIME])
        yield World(
            w3,
            client,
            setup,
            market_id,
            matcher,
            matcher_key.public_bytes,
            processes,
            enclaves,
            requesters,
        )


def _stop_all(
    matcher: MatcherProcess, generators: list[GeneratorProcess], enclaves: list[EnclaveProcess]
) -> None:
    """The generators at once (each drains: it leaves its markets first, finishing its
    tasks in its enclave), then the matcher and the enclaves."""
    with ThreadPoolExecutor(len(generators)) as pool:
        list(pool.map(lambda p: p.stop(), generators))
    matcher.stop()
    for enclave in enclaves:
        enclave.stop()


class ChainWatch:
    """The marketplace's events from a block on, and when this process first saw each block."""

    def __init__(self, world: World) -> None:
        self.w3 = world.w3
        self.address = world.client.marketplace.address
        self.decoder = marketplace_decoder()
        self.next_block = self.w3.eth.block_number + 1
        self.seen: dict[int, float] = {}

    def poll(self) -> list[DecodedEvent]:
        head = self.w3.eth.block_number
        now = time.time()
        if head < self.next_block:
            return []
        for block in range(self.next_block, head + 1):
            self.seen[block] = now
        logs = self.w3.eth.get_logs(
            {"fromBlock": self.next_block, "toBlock": head, "address": self.address}
        )
        self.next_block = head + 1
        return [self.decoder.decode(entry) for entry in logs]


# ---- requests


async def _public_signals(preimages: list[int]) -> list[int]:
    worker = SnarkjsWorker()
    try:
        signals = []
        for preimage in preimages:
            answer = await worker.public_signals(circuit(CIRCUIT).wasm, {"preimage": preimage}, 1)
            assert isinstance(answer, list), answer
            signals.append(answer[0])
        return signals
    finally:
        await worker.close()


class Requests:
    """Signed `create_request` transactions of Poseidon preimages sealed to the matcher."""

    def __init__(self, world: World, count: int) -> None:
        self.world = world
        self.preimages = list(range(1, count + 1))
        self.signals = asyncio.run(_public_signals(self.preimages))
        self.chain_id = world.w3.eth.chain_id
        self.expiry = world.client.now() + 3_600
        self.nonces = {
            a.address: world.w3.eth.get_transaction_count(a.address, "pending")
            for a in world.requesters
        }
        self.gas: int | None = None

    def _call(self, requester: LocalAccount, index: int) -> tuple[Any, bytes]:
        market = self.world.client.marketplace
        salt = os.urandom(32)
        rid = request_id(self.chain_id, market.address, requester.address, salt)
        secret = json.dumps({"preimage": self.preimages[index]}).encode()
        context = SecretContext(self.chain_id, market.address, rid)
        sealed = seal(secret, self.world.matcher_key, context)
        call = market.functions.create_request(
            self.world.market_id,
            salt,
            MAX_PRICE,
            PROOF_TIME,
            self.expiry,
            requester.address,
            encode_signals([self.signals[index]]),
            sealed,
        )
        return call, rid

    def sign(self, requester: LocalAccount, index: int) -> tuple[bytes, bytes]:
        """(raw transaction, request id) of request `index`, with the next nonce."""
        call, rid = self._call(requester, index)
        if self.gas is None:  # one estimate: the requests differ only in their salt
            self.gas = call.estimate_gas({"from": requester.address}) * 3 // 2
        tx = call.build_transaction(
            {
                "from": requester.address,
                "nonce": self.nonces[requester.address],
                "gas": self.gas,
                "chainId": self.chain_id,
                "maxFeePerGas": 100 * 10**9,
                "maxPriorityFeePerGas": 10**9,
            }
        )
        self.nonces[requester.address] += 1
        return bytes(requester.sign_transaction(tx).raw_transaction), rid


# ---- what the generators recorded


def journal(process: GeneratorProcess) -> dict[bytes, float]:
    """Task id -> proof_seconds, from the generator's SQLite journal."""
    path = process.workdir / f"{process.name}.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT task_id, proof_seconds FROM tasks").fetchall()
    return {bytes(task_id): seconds for task_id, seconds in rows if seconds is not None}


def log_times(process: Any, events: set[str]) -> dict[tuple[str, bytes], float]:
    """(event, task id) -> unix time of the daemon's JSON log line, for `events`."""
    out: dict[tuple[str, bytes], float] = {}
    for line in process.log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") in events and isinstance(entry.get("task_id"), str):
            stamp = datetime.fromisoformat(entry["timestamp"]).timestamp()
            out.setdefault((entry["event"], bytes.fromhex(entry["task_id"][2:])), stamp)
    return out


class RawProver:
    """Raw snarkjs proving in this process, on its own event loop: the baseline."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.prover = SnarkjsGroth16Prover.for_circuit(CIRCUIT)
        self.times: list[float] = []
        for _ in range(RAW_WARMUP):
            self.prove()
        self.times.clear()

    def prove(self) -> None:
        start = time.perf_counter()
        proof = self.loop.run_until_complete(
            self.prover.prove({"preimage": 1_000 + len(self.times)})
        )
        self.times.append(time.perf_counter() - start)
        assert not isinstance(proof, InvalidInputs), proof

    def close(self) -> None:
        self.loop.run_until_complete(self.prover.close())
        self.loop.close()


# ---- statistics


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least a fraction `q` at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 3),
        "p99": round(percentile(values, 0.99), 3),
        "mean": round(statistics.fmean(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


# ---- latency: one request at a time, one generator


def latency_benchmark(requests: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="kalypso-e2e-") as tmp,
        devnet(Path(tmp), 1, 4, requests * MAX_PRICE) as world,
        contextlib.ExitStack() as stack,
    ):
        (generator,) = world.generators
        raw = RawProver()
        stack.callback(raw.close)
        maker = Requests(world, requests)
        requester = world.requesters[0]
        watch = ChainWatch(world)
        rng = random.Random(SEED)
        timed: list[dict[str, Any]] = []
        for i in range(requests):
            time.sleep(rng.uniform(0, BLOCK_TIME))
            raw.prove()  # the baseline, under the same background as the node's proofs
            signed, rid = maker.sign(requester, i)
            sent = time.time()
            world.w3.eth.send_raw_transaction(signed)
            blocks: dict[str, int] = {}
            while "ProofSubmitted" not in blocks:
                if time.time() - sent > REQUEST_TIMEOUT:
                    raise AssertionError(
                        f"request {i} not proven in {REQUEST_TIMEOUT:.0f} s (saw {blocks}); "
                        f"matcher: {world.matcher.tail()}; generator: {generator.tail()}"
                    )
                time.sleep(WATCH)
                for event in watch.poll():
                    key = event.args.get("request_id", event.args.get("task_id"))
                    if key == rid:
                        blocks.setdefault(event.name, event.block_number)
            timed.append({"id": rid, "sent": sent, **blocks})
        proofs = journal(generator)
        logged = log_times(generator, {"task assigned", "proof ready"})
    rows = []
    for t in timed:
        created, assigned, proven = (
            watch.seen[t[name]] for name in ("RequestCreated", "TaskAssigned", "ProofSubmitted")
        )
        proving = proofs[t["id"]]
        noticed, ready = logged[("task assigned", t["id"])], logged[("proof ready", t["id"])]
        rows.append(
            {
                "request_id": "0x" + t["id"].hex(),
                "end_to_end": proven - t["sent"],
                "match_wait": assigned - t["sent"],
                "create_inclusion": created - t["sent"],
                "proving": proving,
                "submitting": proven - assigned - proving,
                "detect": noticed - assigned,
                "prepare_verify": ready - noticed - proving,
                "send_inclusion": proven - ready,
                "node": ready - noticed,
                "blocks_to_assign": t["TaskAssigned"] - t["RequestCreated"],
                "blocks_to_proof": t["ProofSubmitted"] - t["TaskAssigned"],
            }
        )
    raw_median = statistics.median(raw.times)
    splits = {
        name: summary([r[name] for r in rows])
        for name in rows[0]
        if name not in ("request_id", "blocks_to_assign", "blocks_to_proof")
    }
    return {
        "requests": requests,
        "raw_proving": summary(raw.times),
        "prover_overhead": round(splits["proving"]["p50"] / raw_median - 1, 3),
        "node_overhead": round(splits["node"]["p50"] / raw_median - 1, 3),
        "splits_s": splits,
        "blocks_to_assign": dict(sorted(Counter(r["blocks_to_assign"] for r in rows).items())),
        "blocks_to_proof": dict(sorted(Counter(r["blocks_to_proof"] for r in rows).items())),
        "per_request": [
            {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows
        ],
    }


# ---- throughput: a burst, several generators


def throughput_benchmark(burst: int, generators: int) -> dict[str, Any]:
    requesters = len([i for i in REQUESTER_ACCOUNTS if i not in GENERATOR_ACCOUNTS[:generators]])
    deposit = (burst // requesters + 1) * MAX_PRICE
    compute = min(COMPUTE, burst // generators + 1)
    with (
        tempfile.TemporaryDirectory(prefix="kalypso-e2e-") as tmp,
        devnet(Path(tmp), generators, compute, deposit) as world,
    ):
        maker = Requests(world, burst)
        signed = [maker.sign(world.requesters[i % requesters], i) for i in range(burst)]
        wanted = {rid for _, rid in signed}
        watch = ChainWatch(world)
        start = time.time()
        for raw, _ in signed:
            world.w3.eth.send_raw_transaction(raw)
        sent = time.time() - start
        blocks: dict[str, dict[bytes, DecodedEvent]] = {
            "RequestCreated": {},
            "TaskAssigned": {},
            "ProofSubmitted": {},
        }
        deadline = start + max(120, 3 * burst)
        while len(blocks["ProofSubmitted"]) < burst:
            if time.time() > deadline:
                raise AssertionError(
                    f"{len(blocks['ProofSubmitted'])} of {burst} proven in time; "
                    f"matcher: {world.matcher.tail()}"
                )
            time.sleep(0.25)
            for event in watch.poll():
                key = event.args.get("request_id", event.args.get("task_id"))
                if event.name in blocks and key in wanted:
                    blocks[event.name].setdefault(key, event)
        proofs = {}
        for process in world.generators:
            proofs.update(journal(process))
        names = {p.account.address: p.name for p in world.generators}
    proven = blocks["ProofSubmitted"]
    done = [watch.seen[e.block_number] for e in proven.values()]
    elapsed = max(done) - start
    latencies = [t - start for t in done]
    created_blocks = Counter(e.block_number for e in blocks["RequestCreated"].values())
    to_assign = [
        e.block_number - blocks["RequestCreated"][k].block_number
        for k, e in blocks["TaskAssigned"].items()
    ]
    return {
        "burst": burst,
        "generators": generators,
        "compute_per_generator": compute,
        "send_seconds": round(sent, 2),
        "seconds": round(elapsed, 2),
        "proofs_per_second": round(burst / elapsed, 2),
        "latency_s": summary(latencies),
        "created_in_blocks": len(created_blocks),
        "blocks_to_assign": dict(sorted(Counter(to_assign).items())),
        "assign_transactions": len(
            {bytes(e.transaction_hash) for e in blocks["TaskAssigned"].values()}
        ),
        # includes the wait for the node's one snarkjs worker (see the module doc)
        "journal_proof_seconds": summary([proofs[k] for k in proven if k in proofs]),
        "journal_proof_seconds_total": round(sum(proofs[k] for k in proven if k in proofs), 1),
        "assigned_per_generator": dict(
            Counter(names[e["generator"]] for e in blocks["TaskAssigned"].values())
        ),
        "proven_per_generator": dict(Counter(names[e["generator"]] for e in proven.values())),
        "proof_transactions": len({bytes(e.transaction_hash) for e in proven.values()}),
    }


# ---- report


@dataclass(frozen=True)
class Row:
    section: str
    metric: str
    value: float
    unit: str
    goal: float | None = None

    @property
    def status(self) -> str:
        return "-" if self.goal is None else ("ok" if self.value <= self.goal else "over")


def rows_of(latency: dict[str, Any], throughput: dict[str, Any]) -> list[Row]:
    s = latency["splits_s"]
    section = f"latency, {latency['requests']} requests, 1 generator"
    rows = [
        Row(section, "end to end, p50", s["end_to_end"]["p50"], "s", GOAL_P50_S),
        Row(section, "end to end, p99", s["end_to_end"]["p99"], "s"),
    ]
    for name, label in (
        ("match_wait", "waiting for match"),
        ("create_inclusion", "  of which: create tx inclusion"),
        ("proving", "proving (journal)"),
        ("submitting", "submitting"),
        ("detect", "  of which: detect assignment"),
        ("prepare_verify", "  of which: fetch, verify"),
        ("send_inclusion", "  of which: send + inclusion"),
    ):
        rows.append(Row(section, f"{label}, p50", s[name]["p50"], "s"))
        if not label.startswith(" "):
            rows.append(Row(section, f"{label}, p99", s[name]["p99"], "s"))
    section = "harness overhead"
    rows += [
        Row(section, "raw snarkjs proof, p50", latency["raw_proving"]["p50"], "s"),
        Row(
            section,
            "prover: proof_seconds vs raw",
            100 * latency["prover_overhead"],
            "%",
            GOAL_OVERHEAD_PERCENT,
        ),
        Row(
            section,
            "node: assigned → proof ready vs raw",
            100 * latency["node_overhead"],
            "%",
            GOAL_OVERHEAD_PERCENT,
        ),
    ]
    t = throughput
    section = f"burst of {t['burst']}, {t['generators']} generators"
    counts = [n for _, n in sorted(t["proven_per_generator"].items())]
    counts += [0] * (t["generators"] - len(counts))
    spread = "/".join(map(str, counts))
    balance = round(min(counts) / max(counts), 2)
    rows += [
        Row(section, "first send → last proof", t["seconds"], "s"),
        Row(section, "proofs/s", t["proofs_per_second"], "1/s"),
        Row(section, "latency, p50", t["latency_s"]["p50"], "s"),
        Row(section, "latency, p99", t["latency_s"]["p99"], "s"),
        Row(section, f"proofs per generator {spread}, min/max", balance, ""),
        Row(section, "proofs per submit tx", round(t["burst"] / t["proof_transactions"], 1), ""),
    ]
    return rows


def table(rows: list[Row]) -> Table:
    out = Table(title="Kalypso end to end (anvil, 1 s blocks)")
    for name in ("section", "metric", "value", "unit", "goal"):
        out.add_column(name, justify="left" if name in ("section", "metric") else "right")
    for row in rows:
        goal = (
            "-"
            if row.goal is None
            else f"<= {row.goal:g} " + ("[green]ok[/]" if row.status == "ok" else "[red]over[/]")
        )
        out.add_row(row.section, row.metric, f"{row.value:,.3g}", row.unit, goal)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=REQUESTS, help="latency requests")
    parser.add_argument("--burst", type=int, default=BURST, help="requests in the burst")
    parser.add_argument(
        "--generators", type=int, default=GENERATORS, help=f"1 to {len(GENERATOR_ACCOUNTS)}"
    )
    args = parser.parse_args()
    if not 1 <= args.generators <= len(GENERATOR_ACCOUNTS) or args.requests < 1 or args.burst < 1:
        parser.error(f"--generators 1 to {len(GENERATOR_ACCOUNTS)}; --requests, --burst ≥ 1")
    load = [round(x, 2) for x in os.getloadavg()]
    latency = latency_benchmark(args.requests)
    throughput = throughput_benchmark(args.burst, args.generators)
    rows = rows_of(latency, throughput)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_at_start": load,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "block_time_s": BLOCK_TIME,
        "poll_interval_s": POLL,
        "latency": latency,
        "throughput": throughput,
        "rows": [{**row.__dict__, "status": row.status} for row in rows],
    }
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    console = Console()
    if not console.is_terminal:
        console = Console(width=WIDTH)
    console.print(table(rows))
    console.print(
        f"load average (1/5/15 min) at start {load}, at end {document['load_average_at_end']}: "
        f"{os.cpu_count()} CPUs; anything else running skews these figures"
    )
    console.print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
