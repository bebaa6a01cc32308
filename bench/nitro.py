"""Time to verify one AWS Nitro attestation document, by part.

The real document (tests/fixtures/nitro, 4,532 bytes, 5 certificates) checked as of its
own time, `--runs` times: the whole `verify`, and its parts — CBOR decoding and field
checks alone (`document_time`), the chain of certificates and the ES384 signature (the
rest). Also a test-CA document of the same shape, to show the figure is not the real
one's alone.

Run: `.venv/bin/python bench/nitro.py [--runs N]`; writes bench/results/nitro.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from kalypso.enclave.nitro import document_time, verify
from kalypso.testing.nitro_ca import NitroTestCA, pcrs_of

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "tests" / "fixtures" / "nitro" / "marlin_oyster_2024-08-07.bin"
RESULTS = ROOT / "bench" / "results" / "nitro.json"


def median_ms(call: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    real = REAL.read_bytes()
    at = document_time(real)
    ca = NitroTestCA()
    test_doc = ca.issue(pcrs_of(1), public_key=b"k" * 64)
    now = int(time.time() * 1000)
    rows = {
        "real: verify": median_ms(lambda: verify(real, at_ms=at), args.runs),
        "real: decode + fields": median_ms(lambda: document_time(real), args.runs),
        "test CA: verify": median_ms(lambda: verify(test_doc, at_ms=now, root=ca.root), args.runs),
    }
    rows["real: chain + signature"] = round(rows["real: verify"] - rows["real: decode + fields"], 3)
    table = Table(title=f"Nitro document verification, median of {args.runs} (ms)")
    table.add_column("what")
    table.add_column("ms", justify="right")
    for name, value in rows.items():
        table.add_row(name, f"{value:.3f}")
    Console().print(table)
    result = {"runs": args.runs, "document_bytes": len(real), "median_ms": rows}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
