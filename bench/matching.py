"""Matching throughput: the pure orderbook (`kalypso.matching.OrderBook`), in process.

What is measured (`core_benchmark`): a book with 10 markets and 1,000 generators, each
offering in 2 markets (200 offers a market) at prices, proof times and reliabilities drawn
from a seeded generator, with room for 200 tasks each (200,000 in all, so every request
can be served); 100,000 open requests spread over the markets are added, then matched
in calls of `BATCH` (the daemon's transaction batch) until none is left. The figure is
matches per second of `match` alone; adding the requests is timed separately. Peak memory
is measured by `tracemalloc` in a second, identical run (tracing slows Python down, so it
is not the timed one). The goal is at least 20,000 matches/s.

A second section (`overload_benchmark`) shows the waiting side: the same book with room
for only 10 tasks a generator (10,000 in all), so that 90,000 requests are parked; then
tasks finish one at a time, each followed by `match`, as the daemon does when it sees a
task end. Parked requests are woken only for the generator that freed room, so a cycle
costs the same however many requests wait.

Run: `.venv/bin/python bench/matching.py`; writes bench/results/matching.json.
"""

from __future__ import annotations

import json
import platform
import random
import time
import tracemalloc
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from kalypso.market import Request
from kalypso.matching import Match, Offer, OrderBook, Outcome

RESULTS = Path(__file__).resolve().parent / "results" / "matching.json"

MARKETS = 10
GENERATORS = 1_000
MARKETS_PER_GENERATOR = 2
REQUESTS = 100_000
#: Tasks each generator has room for (compute 1 a task, stake for as many penalties).
ROOM = 200
PENALTY = 100
#: Assignments per `match` call: the contract's MAX_BATCH.
BATCH = 32
#: Past outcomes given to each generator, so that reliability varies.
HISTORY = 20
NOW = 1_700_000_000
SEED = 7
GOAL = 20_000
WIDTH = 100


@dataclass(frozen=True)
class Row:
    """One measured figure; other sections (anvil) add their own rows."""

    section: str
    metric: str
    value: float
    unit: str
    goal: float | None = None
    #: the goal is a ceiling (latency) rather than a floor (throughput)
    at_most: bool = False

    @property
    def status(self) -> str:
        if self.goal is None:
            return "-"
        met = self.value <= self.goal if self.at_most else self.value >= self.goal
        return "ok" if met else ("over" if self.at_most else "below")

    def as_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "metric": self.metric,
            "value": self.value,
            "unit": self.unit,
            "goal": self.goal,
            "status": self.status,
        }


def _address(i: int) -> str:
    return "0x" + i.to_bytes(20, "big").hex()


def build_book(rng: random.Random, room: int = ROOM) -> OrderBook:
    """Markets and generators (registered, offering, with a seeded task history)."""
    book = OrderBook()
    for market_id in range(MARKETS):
        book.add_market(market_id, PENALTY)
    task = 0
    for i in range(GENERATORS):
        generator = _address(i + 1)
        book.register_generator(generator, room, room * PENALTY)
        first = i % MARKETS
        for k in range(MARKETS_PER_GENERATOR):
            market_id = (first + 3 * k) % MARKETS
            book.set_offer(
                Offer(
                    generator=generator,
                    market_id=market_id,
                    price=rng.randrange(50_000, 150_000),
                    proof_time=rng.randrange(60, 3_600),
                    compute_per_request=1,
                    encryption_key=b"\x01" * 32,
                )
            )
        reliability = rng.random()
        for _ in range(HISTORY):
            task += 1
            task_id = task.to_bytes(32, "big")
            book.task_assigned(task_id, first, generator)
            ok = rng.random() < reliability
            book.task_finished(task_id, Outcome.FULFILLED if ok else Outcome.SLASHED)
    return book


def make_requests(rng: random.Random) -> list[tuple[bytes, Request]]:
    requester = _address(0xABC)
    out = []
    for i in range(REQUESTS):
        request = Request(
            market_id=rng.randrange(MARKETS),
            requester=requester,
            refund_address=requester,
            max_price=rng.randrange(150_000, 300_000),
            proof_time=3_600,
            expiry=NOW + 3_600,
            inputs_hash=b"\x00" * 32,
            secret_hash=b"\x00" * 32,
        )
        out.append((b"\x00" * 16 + i.to_bytes(16, "big"), request))
    return out


def _run() -> dict[str, float]:
    rng = random.Random(SEED)
    book = build_book(rng)
    requests = make_requests(rng)
    start = time.perf_counter()
    for seq, (request_id, request) in enumerate(requests):
        book.add_request(request_id, request, seq)
    added = time.perf_counter()
    matched = 0
    while True:
        batch = book.match(NOW, BATCH)
        if not batch:
            break
        matched += len(batch)
    done = time.perf_counter()
    if matched != REQUESTS:
        raise AssertionError(f"matched {matched} of {REQUESTS} requests")
    return {"add_s": added - start, "match_s": done - added, "matched": matched}


def core_benchmark() -> dict[str, Any]:
    """Time adding and matching 100,000 requests; then the peak memory of the same run."""
    timed = _run()
    tracemalloc.start()
    _run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "markets": MARKETS,
        "generators": GENERATORS,
        "offers_per_market": GENERATORS * MARKETS_PER_GENERATOR // MARKETS,
        "requests": REQUESTS,
        "batch": BATCH,
        "matched": timed["matched"],
        "add_seconds": round(timed["add_s"], 3),
        "match_seconds": round(timed["match_s"], 3),
        "matches_per_second": round(timed["matched"] / timed["match_s"]),
        "adds_per_second": round(REQUESTS / timed["add_s"]),
        "peak_memory_mib": round(peak / 2**20, 1),
        "goal_matches_per_second": GOAL,
    }


def overload_benchmark(room: int = 10, cycles: int = 20_000) -> dict[str, Any]:
    """Finish-then-match cycles per second with 90% of the requests parked."""
    rng = random.Random(SEED)
    book = build_book(rng, room)
    for seq, (request_id, request) in enumerate(make_requests(rng)):
        book.add_request(request_id, request, seq)
    live: deque[Match] = deque()
    while batch := book.match(NOW, BATCH):
        live.extend(batch)
        for m in batch:
            book.task_assigned(m.request_id, m.request.market_id, m.generator)
    parked = book.parked_count()
    start = time.perf_counter()
    matched = 0
    for _ in range(cycles):
        book.task_finished(live.popleft().request_id, Outcome.FULFILLED)
        for new in book.match(NOW, BATCH):
            book.task_assigned(new.request_id, new.request.market_id, new.generator)
            live.append(new)
            matched += 1
    elapsed = time.perf_counter() - start
    if matched != cycles:
        raise AssertionError(f"{matched} requests took the {cycles} freed slots")
    return {
        "room_per_generator": room,
        "parked": parked,
        "cycles": cycles,
        "seconds": round(elapsed, 3),
        "cycles_per_second": round(cycles / elapsed),
    }


def core_rows(result: dict[str, Any]) -> list[Row]:
    section = "core (in process)"
    return [
        Row(section, "matches/s", result["matches_per_second"], "1/s", GOAL),
        Row(section, "match 100k requests", result["match_seconds"], "s"),
        Row(section, "add_request/s", result["adds_per_second"], "1/s"),
        Row(section, "peak memory (tracemalloc)", result["peak_memory_mib"], "MiB"),
    ]


def overload_rows(result: dict[str, Any]) -> list[Row]:
    section = f"overload ({result['parked']:,} parked)"
    return [Row(section, "finish + match cycles/s", result["cycles_per_second"], "1/s")]


def latency_rows(result: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for run in result["runs"]:
        section = f"anvil, {run['requests']:,} at once"
        rows += [
            Row(section, "blocks to assignment, p50", run["blocks_p50"], "blocks", 1, True),
            Row(section, "blocks to assignment, p99", run["blocks_p99"], "blocks"),
            Row(section, "assignments per tx", run["batch_mean"], "", 30),
        ]
    return rows


def latency_benchmark() -> dict[str, Any]:
    """On anvil with the matcher as its own process: a burst that fits one block, and one
    that fills several (see `bench/assign_latency.py`)."""
    from assign_latency import BURST, anvil_benchmark

    return {"runs": [anvil_benchmark(300), anvil_benchmark(BURST)]}


#: Sections in display order: each measures, and returns its JSON part and its rows.
SECTIONS: list[tuple[str, Callable[[], dict[str, Any]], Callable[[dict[str, Any]], list[Row]]]] = [
    ("core", core_benchmark, core_rows),
    ("overload", overload_benchmark, overload_rows),
    ("latency", latency_benchmark, latency_rows),
]


def table(rows: list[Row]) -> Table:
    out = Table(title="Kalypso matching")
    for name in ("section", "metric", "value", "unit", "goal"):
        out.add_column(name, justify="left" if name in ("section", "metric") else "right")
    for row in rows:
        value = f"{row.value:,.0f}" if row.value >= 1000 else f"{row.value:,.3g}"
        goal = (
            "-"
            if row.goal is None
            else f"{'<=' if row.at_most else '>='} {row.goal:,.0f} "
            + ("[green]ok[/]" if row.status == "ok" else f"[red]{row.status}[/]")
        )
        out.add_row(row.section, row.metric, value, row.unit, goal)
    return out


def write_json(results: dict[str, Any], rows: list[Row]) -> Path:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        **results,
        "rows": [row.as_dict() for row in rows],
    }
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    return RESULTS


def main() -> None:
    results: dict[str, Any] = {}
    rows: list[Row] = []
    for name, measure, to_rows in SECTIONS:
        results[name] = measure()
        rows.extend(to_rows(results[name]))
    path = write_json(results, rows)
    console = Console()
    if not console.is_terminal:
        console = Console(width=WIDTH)
    console.print(table(rows))
    console.print(f"written to {path}")


if __name__ == "__main__":
    main()
