"""RPC calls an idle matcher and an idle generator node make, per minute and per block.

What is measured: anvil mining a block every second (a fast L2) and then every 12 s
(Ethereum), Kalypso deployed, a matcher and a generator node (the square_root market)
started as their own processes, each through its own label of the provider simulator
(no faults) so its calls are counted apart. Once both are ready the counters are reset
and the daemons are left alone; the figure is calls per minute and per new block over
the window. A hosted provider bills these calls: the goal is one or two a block.

    .venv/bin/python bench/idle_rpc.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from web3 import Web3

from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.devnet import Anvil, deploy_devnet, dev_account, free_port
from kalypso.generator.process import GeneratorProcess
from kalypso.matching.process import MatcherProcess
from kalypso.testing import ProviderSimulator, SimulatorConfig

POLL = 0.5  # both daemons' poll_interval: the shipped configs' default


def measure(block_time: float, seconds: float) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        Anvil(block_time=block_time) as chain,
        ProviderSimulator(chain.url, SimulatorConfig()) as sim,
    ):
        work = Path(tmp)
        w3 = Web3(Web3.HTTPProvider(chain.url))
        setup = deploy_devnet(w3)
        deployment = setup.deployment.save(work / "deployment.json")
        matcher = MatcherProcess(
            work,
            rpc_url=sim.url_for("matcher"),
            deployment=deployment,
            account=setup.matcher,
            api_port=free_port(),
            poll_interval=POLL,
        )
        generator = GeneratorProcess(
            work,
            rpc_url=sim.url_for("generator"),
            deployment=deployment,
            account=dev_account(2),
            api_port=free_port(),
            markets={"square_root": {"circuit": "square_root", "solver": "square_root",
                                     "price": 5 * TOKEN_UNIT, "proof_time": 60}},
            stake=1_000 * TOKEN_UNIT,
            poll_interval=POLL,
        )  # fmt: skip
        try:
            matcher.start(timeout=120)
            generator.start(timeout=120)
            time.sleep(3 * block_time)  # past start-up's catch-up
            sim.reset_stats()
            first = w3.eth.block_number
            time.sleep(seconds)
            blocks = max(1, w3.eth.block_number - first)
            labels = sim.stats.snapshot()["labels"]
        finally:
            generator.stop()
            matcher.stop()
    row: dict[str, Any] = {"block_time_s": block_time, "seconds": seconds, "blocks": blocks}
    for name in ("matcher", "generator"):
        calls = labels.get(name, {}).get("calls", 0)
        row[name] = {
            "calls": calls,
            "per_minute": round(calls * 60 / seconds, 1),
            "per_block": round(calls / blocks, 2),
            "methods": labels.get(name, {}).get("methods", {}),
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="window per block time")
    args = parser.parse_args()
    rows = [measure(bt, args.seconds if bt < 12 else max(args.seconds, 120)) for bt in (1, 12)]
    print(f"{'block time':>10} {'blocks':>6} {'daemon':>9} {'calls/min':>9} {'calls/block':>11}")
    for row in rows:
        for name in ("matcher", "generator"):
            r = row[name]
            print(
                f"{row['block_time_s']:>9}s {row['blocks']:>6} {name:>9} "
                f"{r['per_minute']:>9} {r['per_block']:>11}"
            )
    print(json.dumps({"idle_rpc": rows}, indent=2), flush=True)


if __name__ == "__main__":
    main()
