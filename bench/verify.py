"""Gas of Groth16 verification on anvil: single proofs (1 and 2 public inputs) and batches.

Figures are `gasUsed` from the receipts of transactions calling `Groth16Verifier.verify` /
`verify_batch` (what the sender pays: 21,000 base and calldata included; an estimate
would also count the gas the pairing call is handed but does not use), with real snarkjs proofs
of the sample circuits (circuits/build, tests/fixtures/square_root_proofs.json). A batch
checks n proofs with n + 3 pairings instead of 4n. Goals: single ≤ 210k, batch ≤ 60k a
proof at n = 32, read as the verification's own gas: what it adds to a transaction,
so without the 21,000 base every transaction pays anyway.

Run: `.venv/bin/python bench/verify.py`; writes bench/results/verify.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from kalypso.circuits import circuit
from kalypso.contracts.web3tx import deploy, send
from kalypso.devnet import Anvil, dev_account
from kalypso.market import VerifyContext
from kalypso.provers.proof import Groth16Proof, batch_arguments, verifier_args

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "verify.json"
FIXTURES = ROOT / "tests" / "fixtures" / "square_root_proofs.json"
CTX = VerifyContext.sample().as_tuple()
TX_BASE = 21_000
SINGLE_GOAL = 210_000
BATCH_GOAL = 60_000


def measure() -> list[dict[str, Any]]:
    owner = dev_account(0)
    with Anvil() as chain:
        w3 = chain.web3()

        def verifier(name: str) -> Any:
            args = verifier_args(circuit(name).vkey_json())
            return deploy(w3, owner, "Groth16Verifier", *args)[0]

        def gas(call: Any) -> int:
            return int(send(w3, owner, call)["gasUsed"])

        rows: list[dict[str, Any]] = []
        for name, inputs in (("poseidon_preimage", 1), ("square_root", 2)):
            proof = circuit(name).sample_proof()
            used = gas(
                verifier(name).functions.verify(CTX, proof.public_inputs(), proof.calldata())
            )
            rows.append(
                {
                    "operation": f"verify ({inputs} public input{'s' * (inputs > 1)})",
                    "n": 1,
                    "gas": used,
                    "per_proof": used,
                    "without_base": used - TX_BASE,
                    "goal": SINGLE_GOAL,
                }
            )
        proofs = [
            Groth16Proof.from_snarkjs(p["proof"], p["public"])
            for p in json.loads(FIXTURES.read_text())
        ]
        batch_verifier = verifier("square_root")
        for n in (1, 8, 32):
            chosen = proofs[:n]
            call = batch_verifier.functions.verify_batch([CTX] * n, *batch_arguments(chosen))
            used = gas(call)
            rows.append(
                {
                    "operation": f"verify_batch {n} (2 public inputs)",
                    "n": n,
                    "gas": used,
                    "per_proof": used // n,
                    "without_base": (used - TX_BASE) // n,
                    "goal": BATCH_GOAL if n == 32 else None,
                }
            )
    return rows


def table(rows: list[dict[str, Any]]) -> Table:
    out = Table(title="Groth16 verification gas (anvil receipts)")
    for column in ("operation", "gas", "per proof", "per proof, no 21k base", "goal", "ok"):
        out.add_column(column, justify="left" if column == "operation" else "right")
    for row in rows:
        goal = row["goal"]
        ok = "-" if goal is None else ("ok" if row["without_base"] <= goal else "over")
        out.add_row(
            row["operation"],
            f"{row['gas']:,}",
            f"{row['per_proof']:,}",
            f"{row['without_base']:,}",
            "-" if goal is None else f"{goal:,}",
            ok,
        )
    return out


def main() -> None:
    rows = measure()
    Console().print(table(rows))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
