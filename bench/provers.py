"""What the snarkjs prover plugin adds on top of snarkjs itself, per sample circuit.

Plugin: `SnarkjsGroth16Prover` from Python (JSON line to the long-lived node worker,
witness, proof, JSON line back, parsed into a `Groth16Proof`), warm: after two proofs
that start the worker and load the artifacts, the mean of 10.

Floor: `snarkjs.groth16.fullProve(input, wasm, zkey)` called through the snarkjs JS API
in one node process (what `snarkjs groth16 fullprove` does, minus node's start-up and
file writes), warmed and averaged the same way. The plugin can come out faster than the
floor: its worker keeps the artifacts in memory, where fullProve reads the files anew.
So a second floor gives fullProve the artifacts as in-memory bytes, as the worker does:
the difference to it is the plugin's own cost (pipes, JSON, Python, the event loop).

Overhead = (plugin - floor) / floor; the goal is at most 5 %. The first-proof row shows
what a cold worker costs (node start-up, snarkjs and artifact loading), which the plugin
pays once per worker rather than per proof.

Run: `.venv/bin/python bench/provers.py`; writes bench/results/provers.json.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from kalypso.circuits import circuit
from kalypso.provers.proof import Groth16Proof
from kalypso.provers.snarkjs import SnarkjsGroth16Prover, find_node

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "provers.json"
WARMUP = 2
RUNS = 10
INPUTS: dict[str, dict[str, int]] = {
    "poseidon_preimage": {"preimage": 7},
    "square_root": {"square": 49, "max_root": 10, "root": 7},
}

# One fullProve per stdin line, timed inside node (so the pipe is not counted); answers
# the milliseconds.
FLOOR_JS = """
const snarkjs = require(process.argv[1]);
const [input, wasmPath, zkeyPath, inMemory] = JSON.parse(process.argv[2]);
const load = (file) => new Uint8Array(require("fs").readFileSync(file));
const [wasm, zkey] = inMemory ? [load(wasmPath), load(zkeyPath)] : [wasmPath, zkeyPath];
let queue = Promise.resolve();
const lines = require("readline").createInterface({ input: process.stdin });
lines.on("line", () => {
    queue = queue.then(async () => {
        const start = process.hrtime.bigint();
        await snarkjs.groth16.fullProve(input, wasm, zkey);
        process.stdout.write(String(Number(process.hrtime.bigint() - start) / 1e6) + "\\n");
    });
});
lines.on("close", () => queue.then(() => process.exit(0)));
"""


class Floor:
    """A node process calling snarkjs' fullProve directly, one proof per `prove()`."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, name: str, *, in_memory: bool) -> Floor:
        c = circuit(name)
        args = [INPUTS[name], str(c.wasm), str(c.zkey), in_memory]
        process = await asyncio.create_subprocess_exec(
            find_node(),
            "-e",
            FLOOR_JS,
            str(ROOT / "node_modules" / "snarkjs"),
            json.dumps(args),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def prove(self) -> float:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(b"go\n")
        await self.process.stdin.drain()
        return float(await self.process.stdout.readline())

    async def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        await self.process.wait()


async def measure_circuit(name: str) -> dict[str, Any]:
    """Plugin and both floors, interleaved (in rotating order) so that load from other
    processes on the machine falls on all three alike."""
    prover = SnarkjsGroth16Prover.for_circuit(name)
    floors = {
        "floor": await Floor.start(name, in_memory=False),
        "in_memory": await Floor.start(name, in_memory=True),
    }

    async def plugin() -> float:
        start = time.perf_counter()
        proof = await prover.prove(INPUTS[name])
        assert isinstance(proof, Groth16Proof)
        return (time.perf_counter() - start) * 1e3

    runners = {"plugin": plugin, "floor": floors["floor"].prove}
    runners["in_memory"] = floors["in_memory"].prove
    times: dict[str, list[float]] = {key: [] for key in runners}
    try:
        cold = await plugin()
        for i in range(WARMUP + RUNS):
            keys = list(runners)
            for key in keys[i % 3 :] + keys[: i % 3]:
                elapsed = await runners[key]()
                if i >= WARMUP:
                    times[key].append(elapsed)
    finally:
        await prover.close()
        for floor in floors.values():
            await floor.close()
    mean = {key: statistics.mean(values) for key, values in times.items()}
    stdev = {key: statistics.stdev(values) for key, values in times.items()}
    return {
        "circuit": name,
        "constraints": circuit(name).constraints,
        "runs": RUNS,
        "plugin_mean_ms": round(mean["plugin"], 1),
        "plugin_stdev_ms": round(stdev["plugin"], 1),
        "floor_mean_ms": round(mean["floor"], 1),
        "floor_stdev_ms": round(stdev["floor"], 1),
        "overhead_pct": round(100 * (mean["plugin"] - mean["floor"]) / mean["floor"], 1),
        "floor_in_memory_mean_ms": round(mean["in_memory"], 1),
        "floor_in_memory_stdev_ms": round(stdev["in_memory"], 1),
        "overhead_vs_in_memory_pct": round(
            100 * (mean["plugin"] - mean["in_memory"]) / mean["in_memory"], 1
        ),
        "plugin_first_proof_ms": round(cold, 1),
    }


def measure() -> list[dict[str, Any]]:
    return [asyncio.run(measure_circuit(name)) for name in INPUTS]


def table(rows: list[dict[str, Any]]) -> Table:
    out = Table(title=f"snarkjs Groth16 prover plugin vs snarkjs fullProve (warm, mean of {RUNS})")
    columns = (
        "circuit",
        "plugin ms",
        "floor ms",
        "overhead",
        "goal",
        "floor in memory ms",
        "overhead vs in memory",
        "first proof ms",
    )
    for column in columns:
        out.add_column(column, justify="left" if column == "circuit" else "right")
    for row in rows:
        met = row["overhead_pct"] <= 5
        out.add_row(
            row["circuit"],
            f"{row['plugin_mean_ms']:.1f} ± {row['plugin_stdev_ms']:.1f}",
            f"{row['floor_mean_ms']:.1f} ± {row['floor_stdev_ms']:.1f}",
            f"{row['overhead_pct']:+.1f} %",
            "[green]≤ 5 %[/]" if met else "[red]> 5 %[/]",
            f"{row['floor_in_memory_mean_ms']:.1f} ± {row['floor_in_memory_stdev_ms']:.1f}",
            f"{row['overhead_vs_in_memory_pct']:+.1f} %",
            f"{row['plugin_first_proof_ms']:.0f}",
        )
    return out


def main() -> None:
    rows = measure()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"runs": RUNS, "warmup": WARMUP, "rows": rows}, indent=2) + "\n")
    console = Console()
    if not console.is_terminal:
        console = Console(width=140)
    console.print(table(rows))
    console.print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
