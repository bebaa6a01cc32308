"""What the enclave images add to a request, measured through their HTTP APIs on anvil.

Setup: the devnet (anvil, automine) with its four images as their own processes
(`kalypso enclave matcher|generator|pvs|ivs`). For `--requests` private Poseidon
requests (the preimage sealed to the Matching Engine enclave's key, read from the
registry) this process times, as the daemons would call them:

- the matcher's two questions to its enclave, through the matcher's own `EnclaveKeeper`:
  `/can_open` and `/rewrap` (which reads the request and the generator's offer on-chain);
- proving inside the Generator Image (`/prove`: commitment check, open, prove) against
  proving the same inputs with `SnarkjsGroth16Prover` in this process (raw proving: a
  node holds no key, so a private task has no other path): their difference is what the
  enclave adds to a private task;
- the Proof Verification Image's `/verify` of a PLONK proof and the Input Verification
  Image's `/check`.

The latency private inputs add end to end is then can_open + rewrap + the Generator
Image's overhead, set against the end-to-end p50 of `bench/e2e.py` (given with
`--e2e-p50`, default its last measured 2.49 s). Goal: ≤ 10 %.

Run: `.venv/bin/python bench/enclave.py [--requests N]`; writes bench/results/enclave.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from kalypso.circuits import circuit, plonk
from kalypso.contracts.client import MarketplaceClient
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.crypto import SecretContext, seal
from kalypso.daemon import jsonable
from kalypso.devnet import ATTESTED_MARKET, PRIVATE_MARKET, Anvil, deploy_devnet, dev_account
from kalypso.enclave.process import devnet_enclaves, matching_engine_key
from kalypso.market import encode_signals, request_id
from kalypso.matching.secrets import EnclaveKeeper
from kalypso.provers.snarkjs import SnarkjsGroth16Prover

RESULTS = Path(__file__).resolve().parent / "results" / "enclave.json"


def ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


def timed(call: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    answer = call()
    return answer, time.perf_counter() - start


async def local_proofs(inputs: list[dict[str, int]]) -> list[float]:
    prover = SnarkjsGroth16Prover.for_circuit("poseidon_preimage")
    try:
        await prover.prove(inputs[0])  # the worker's start, as a running node has paid it
        times = []
        for values in inputs:
            start = time.perf_counter()
            await prover.prove(values)
            times.append(time.perf_counter() - start)
        return times
    finally:
        await prover.close()


def measure(requests: int, e2e_p50: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, Anvil() as chain:
        workdir, w3 = Path(tmp), chain.web3()
        setup = deploy_devnet(w3)
        deployment, markets = setup.deployment, setup.deployment.markets
        path = deployment.save(workdir / "deployment.json")
        enclaves = devnet_enclaves(workdir, chain.url, path, markets)
        for process in enclaves.values():
            process.start()
        try:
            client = MarketplaceClient(w3, deployment)
            http = httpx.Client(timeout=60)
            url = {name: p.url for name, p in enclaves.items()}
            me_key = matching_engine_key(w3, deployment, enclaves["matcher"].signing_key)
            keeper = EnclaveKeeper(url["matcher"])
            image_key = bytes.fromhex(
                http.get(url["generator"] + "/attestation").json()["encryption_key"][2:]
            )
            generator, requester = dev_account(2), dev_account(5)
            client.approve_all(generator)
            client.approve_all(requester)
            client.register(generator, stake=1_000 * TOKEN_UNIT, compute=4)
            client.join_market(
                generator,
                markets[PRIVATE_MARKET],
                price=TOKEN_UNIT,
                proof_time=60,
                encryption_key=image_key,
            )
            hashes = asyncio.run(_hashes(requests))
            times: dict[str, list[float]] = {"can_open": [], "rewrap": [], "prove": []}
            inputs = []
            for i in range(requests):
                preimage = 1000 + i
                inputs.append({"preimage": preimage})
                salt = os.urandom(32)
                rid = request_id(
                    deployment.chain_id, deployment.marketplace, requester.address, salt
                )
                context = SecretContext(deployment.chain_id, deployment.marketplace, rid)
                sealed = seal(json.dumps({"preimage": preimage}).encode(), me_key, context)
                posted = client.create_request(
                    requester,
                    markets[PRIVATE_MARKET],
                    encode_signals([hashes[i]]),
                    max_price=2 * TOKEN_UNIT,
                    proof_time=120,
                    encrypted_secret=sealed,
                    salt=salt,
                )
                # exactly the matcher's calls (its EnclaveKeeper), timed here
                opens, t = timed(lambda c=context, e=sealed: keeper.can_open(c, e))
                assert opens
                times["can_open"].append(t)
                wrapped, t = timed(
                    lambda c=context, p=posted, e=sealed: keeper.rewrap(
                        c, p.request, e, generator.address, image_key
                    )
                )
                times["rewrap"].append(t)
                task = {
                    "market_id": markets[PRIVATE_MARKET],
                    "task_id": "0x" + rid.hex(),
                    "generator": generator.address,
                    "public_inputs": "0x" + posted.public_inputs.hex(),
                    "request": jsonable(posted.request),
                    "encrypted_secret": "0x" + sealed.hex(),
                    "key_envelope": "0x" + wrapped.hex(),
                }
                answer, t = timed(lambda b=task: http.post(url["generator"] + "/prove", json=b))
                assert answer.status_code == 200 and not answer.json()["invalid"], answer.text
                times["prove"].append(t)
            local = asyncio.run(local_proofs(inputs))
            sample = plonk("square_root").sample_proof()
            verdict = {
                "market_id": markets[ATTESTED_MARKET],
                "task_id": "0x" + os.urandom(32).hex(),
                "generator": generator.address,
                "public_inputs": "0x" + sample.public_inputs().hex(),
            }
            verify = [
                timed(
                    lambda: http.post(
                        url["pvs"] + "/verify",
                        json=verdict | {"proof": "0x" + sample.calldata().hex()},
                    )
                )[1]
                for _ in range(requests)
            ]
            check = [
                timed(lambda: http.post(url["ivs"] + "/check", json=verdict))[1]
                for _ in range(requests)
            ]
        finally:
            for process in enclaves.values():
                process.stop()
    added = ms(times["can_open"]) + ms(times["rewrap"]) + (ms(times["prove"]) - ms(local))
    return {
        "requests": requests,
        "can_open_ms_p50": ms(times["can_open"]),
        "rewrap_ms_p50": ms(times["rewrap"]),
        "generator_image_prove_ms_p50": ms(times["prove"]),
        "local_prove_ms_p50": ms(local),
        "generator_image_overhead_ms": ms(times["prove"]) - ms(local),
        "pvs_verify_ms_p50": ms(verify),
        "ivs_check_ms_p50": ms(check),
        "private_added_ms": added,
        "e2e_p50_s": e2e_p50,
        "private_added_percent": 100 * added / (e2e_p50 * 1000),
    }


async def _hashes(count: int) -> list[int]:
    from kalypso.provers.snarkjs import SnarkjsWorker

    worker = SnarkjsWorker()
    try:
        out = []
        for i in range(count):
            signals = await worker.public_signals(
                circuit("poseidon_preimage").wasm, {"preimage": 1000 + i}, 1
            )
            assert isinstance(signals, list)
            out.append(signals[0])
        return out
    finally:
        await worker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--e2e-p50", type=float, default=2.49, help="seconds, from bench/e2e.py")
    args = parser.parse_args()
    result = measure(args.requests, args.e2e_p50)
    table = Table(title=f"Enclave images over HTTP (p50 of {args.requests}, anvil)")
    for name in ("step", "value", "goal"):
        table.add_column(name, justify="left" if name == "step" else "right")
    rows = [
        ("matcher → enclave /can_open", f"{result['can_open_ms_p50']:.1f} ms", ""),
        ("matcher → enclave /rewrap (reads the chain)", f"{result['rewrap_ms_p50']:.1f} ms", ""),
        ("Generator Image /prove", f"{result['generator_image_prove_ms_p50']:.1f} ms", ""),
        (
            "the same proof, raw (a snarkjs worker here)",
            f"{result['local_prove_ms_p50']:.1f} ms",
            "",
        ),
        ("Generator Image overhead", f"{result['generator_image_overhead_ms']:.1f} ms", ""),
        ("PVS /verify (PLONK)", f"{result['pvs_verify_ms_p50']:.1f} ms", ""),
        ("IVS /check", f"{result['ivs_check_ms_p50']:.1f} ms", ""),
        (
            f"private inputs add, of the e2e p50 ({result['e2e_p50_s']} s)",
            f"{result['private_added_ms']:.1f} ms = {result['private_added_percent']:.1f} %",
            "<= 10 % " + ("ok" if result["private_added_percent"] <= 10 else "over"),
        ),
    ]
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
