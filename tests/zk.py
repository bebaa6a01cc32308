"""Real Groth16 proofs for tests, made once per session with the snarkjs CLI."""

from __future__ import annotations

import json
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from kalypso.circuits import circuit
from kalypso.provers.proof import Groth16Proof

SNARKJS = Path(__file__).resolve().parents[1] / "node_modules/snarkjs/build/cli.cjs"


def snarkjs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(SNARKJS), *args], capture_output=True, text=True, check=False
    )


@cache
def proof_of(name: str, inputs_json: str) -> Groth16Proof:
    """A proof of `inputs_json` (JSON text, so calls can be cached) for sample circuit `name`."""
    c = circuit(name)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "input.json").write_text(inputs_json)
        run = snarkjs(
            "groth16",
            "fullprove",
            str(folder / "input.json"),
            str(c.wasm),
            str(c.zkey),
            str(folder / "proof.json"),
            str(folder / "public.json"),
        )
        assert run.returncode == 0, run.stderr
        return Groth16Proof.from_snarkjs(
            json.loads((folder / "proof.json").read_text()),
            json.loads((folder / "public.json").read_text()),
        )


def prove(name: str, inputs: dict[str, Any]) -> Groth16Proof:
    return proof_of(name, json.dumps(inputs, sort_keys=True))


def snarkjs_verifies(name: str, proof: Groth16Proof) -> bool:
    """`snarkjs groth16 verify` on this proof (the reference the contract must agree with)."""
    proof_json, public = proof.to_snarkjs()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "proof.json").write_text(json.dumps(proof_json))
        (folder / "public.json").write_text(json.dumps(public))
        run = snarkjs(
            "groth16",
            "verify",
            str(circuit(name).vkey),
            str(folder / "public.json"),
            str(folder / "proof.json"),
        )
        return run.returncode == 0 and "OK" in run.stdout
