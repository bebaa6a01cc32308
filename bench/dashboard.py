"""Dashboard page load times with 10,000 requests indexed, and the indexer's throughput.

What is measured: a seeded history of 3 markets, 20 generators and 10,000 requests with
whole lifecycles (70 % proven, 10 % shown invalid, 5 % slashed, 5 % expired, 10 % still
open or assigned; about 29,000 events) is fed through the dashboard's own `Indexer.ingest`
in 2,000-block batches, as the log follower would hand it over; then the app is served by
uvicorn on loopback and each page is fetched 30 times over HTTP (after one warm-up), timed
from request to last byte. Also: a restart's replay of the cache into the matcher's book.

Run: `.venv/bin/python bench/dashboard.py`; writes bench/results/dashboard.json.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from eth_abi import encode
from rich.console import Console
from rich.table import Table

from kalypso.chain import BlockRef, FollowerState
from kalypso.dashboard.app import create_app
from kalypso.dashboard.indexer import Indexer
from kalypso.dashboard.store import DashboardStore
from kalypso.deployment import Deployment
from kalypso.devnet import free_port
from kalypso.market import encode_signals
from kalypso.market.events import DecodedEvent

RESULTS = Path(__file__).resolve().parent / "results" / "dashboard.json"
REQUESTS, GENERATORS, MARKETS, RUNS, BATCH_BLOCKS = 10_000, 20, 3, 30, 2_000
UNIT = 10**18
START = 1_700_000_000
MARKETPLACE, REQUESTER = "0x" + "11" * 20, "0x" + "44" * 20
PROOF = encode(["uint256[8]"], [list(range(1, 9))])
DEPLOYMENT = Deployment(
    chain_id=31337,
    deploy_block=0,
    token="0x" + "99" * 20,
    registry="0x" + "22" * 20,
    marketplace=MARKETPLACE,
    market_registry="0x" + "33" * 20,
    token_symbol="KAL",
    token_decimals=18,
)


def generator(i: int) -> str:
    return "0x" + f"{i + 1:040x}"


def history(rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """Every event of the seeded history, in order; each event is its own block."""
    out: list[tuple[str, dict[str, Any]]] = []
    for m in range(MARKETS):
        meta = {"name": f"market{m}", "proof_system": "groth16", "inputs": {"x": "public"}}
        out.append(
            (
                "MarketCreated",
                {
                    "market_id": m,
                    "creator": REQUESTER,
                    "verifier": "0x" + "77" * 20,
                    "input_verifier": "0x" + "00" * 20,
                    "slashing_penalty": UNIT,
                    "generator_image": bytes(32),
                    "input_verification_image": bytes(32),
                    "proof_verification_image": bytes(32),
                    "public_inputs_count": 1,
                    "request_kinds": 1,
                    "fee": 0,
                    "metadata": json.dumps(meta).encode(),
                },
            )
        )
    for g in range(GENERATORS):
        gen = generator(g)
        out.append(
            (
                "GeneratorRegistered",
                {
                    "generator": gen,
                    "index": g,
                    "reward_address": gen,
                    "declared_compute": 1000,
                    "stake": 10_000 * UNIT,
                },
            )
        )
        for m in range(MARKETS):
            offer = {"price": (2 + g % 5) * UNIT, "proof_time": 60, "compute_per_request": 1}
            out.append(
                (
                    "OfferSet",
                    {"generator": gen, "market_id": m, "joined": True, "encryption_key": bytes(32)}
                    | offer,
                )
            )
    for n in range(REQUESTS):
        rid, m = n.to_bytes(32, "big"), n % MARKETS
        gen, price = generator(rng.randrange(GENERATORS)), rng.randrange(2, 7) * UNIT
        task = {"task_id": rid, "market_id": m, "generator": gen}
        out.append(
            (
                "RequestCreated",
                {
                    "request_id": rid,
                    "market_id": m,
                    "requester": REQUESTER,
                    "refund_address": REQUESTER,
                    "max_price": 8 * UNIT,
                    "proof_time": 120,
                    "expiry": START + 10**8,
                    "salt": rid,
                    "public_inputs": encode_signals([n]),
                    "encrypted_secret": b"",
                },
            )
        )
        fate = rng.random()
        if fate < 0.05:
            out.append(("RequestExpired", {"request_id": rid, "market_id": m, "refund": 8 * UNIT}))
            continue
        if fate > 0.95:
            continue  # still open
        out.append(
            ("TaskAssigned", task | {"price": price, "deadline": 10**10, "generator_secret": b""})
        )
        if fate < 0.75:
            out.append(
                ("ProofSubmitted", task | {"payment": price, "refund": UNIT, "proof": PROOF})
            )
        elif fate < 0.85:
            out.append(("InvalidInputsProven", task | {"payment": price, "refund": UNIT}))
        elif fate < 0.90:
            slash = {"slasher": REQUESTER, "penalty": UNIT, "bounty": 0, "refund": 8 * UNIT}
            out.append(("TaskSlashed", task | slash))
    return out


def index(indexer: Indexer, events: list[tuple[str, dict[str, Any]]]) -> float:
    """Feed `events` (one a block, 12 s apart) in follower-sized batches; seconds taken."""
    started = time.perf_counter()
    for first in range(0, len(events), BATCH_BLOCKS):
        batch, times = [], {}
        for offset, (name, args) in enumerate(events[first : first + BATCH_BLOCKS]):
            block = first + offset + 1
            bhash = block.to_bytes(32, "big")
            batch.append(DecodedEvent(name, args, MARKETPLACE, block, bhash, bhash, 0))
            times[block] = START + 12 * block
        last = batch[-1].block_number
        state = FollowerState(last + 1, (BlockRef(last, last.to_bytes(32, "big")),))
        indexer.ingest(batch, times, state)
    indexer.head_time = START + 12 * len(events)
    return time.perf_counter() - started


def serve(indexer: Indexer) -> tuple[uvicorn.Server, str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(indexer), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def time_page(client: httpx.Client, path: str) -> dict[str, Any]:
    assert client.get(path).status_code == 200, path  # warm-up
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, path
    samples.sort()
    return {
        "page": path if len(path) < 40 else path[:36] + "…",
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 1),
        "max_ms": round(samples[-1], 1),
        "bytes": len(response.content),
    }


def main() -> None:
    events = history(random.Random(7))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dashboard.sqlite"
        indexer = Indexer(DEPLOYMENT, DashboardStore(path, {"bench": 1}))
        seconds = index(indexer, events)
        assert indexer.store.request_count() == REQUESTS
        busiest = max(
            (generator(g) for g in range(GENERATORS)),
            key=lambda a: indexer.store.generator_totals(a)["tasks"],
        )
        request = "0x" + (REQUESTS // 2).to_bytes(32, "big").hex()
        pages = [
            "/",
            "/markets/0",
            f"/requests/{request}",
            f"/generators/{busiest}",
            f"/accounts/{REQUESTER}",
            "/feed?after=0",
            "/api/markets/0",
            f"/search?q={request}",
        ]
        server, url = serve(indexer)
        with httpx.Client(base_url=url, follow_redirects=True, timeout=30) as client:
            rows = [time_page(client, page) for page in pages]
        server.should_exit = True
        indexer.store.close()
        size = path.stat().st_size  # closed: the WAL is checkpointed into it
        started = time.perf_counter()
        again = Indexer(DEPLOYMENT, DashboardStore(path, {"bench": 1}))
        replay = time.perf_counter() - started
        again.store.close()

    table = Table(title=f"Dashboard pages over HTTP, {REQUESTS:,} requests indexed ({RUNS} runs)")
    for column in ("page", "p50 ms", "p95 ms", "max ms", "bytes"):
        table.add_column(column, justify="left" if column == "page" else "right")
    for row in rows:
        table.add_row(
            row["page"],
            f"{row['p50_ms']}",
            f"{row['p95_ms']}",
            f"{row['max_ms']}",
            f"{row['bytes']:,}",
        )
    console = Console(width=100)
    console.print(table)
    indexing = {
        "events": len(events),
        "requests": REQUESTS,
        "index_seconds": round(seconds, 2),
        "events_per_second": round(len(events) / seconds),
        "cache_mib": round(size / 2**20, 1),
        "restart_replay_seconds": round(replay, 2),
    }
    console.print(
        f"indexing: {indexing['events']:,} events in {indexing['index_seconds']} s "
        f"({indexing['events_per_second']:,} events/s); cache {indexing['cache_mib']} MiB; "
        f"a restart replays it in {indexing['restart_replay_seconds']} s"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"pages": rows, "indexing": indexing}, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
