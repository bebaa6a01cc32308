"""The sample circuits' artifacts (circuits/build/) and their manifest.

`circuits/build/manifest.json` lists, per circuit, its artifacts with their SHA-256, its
input schema (which inputs are private, the order of the public signals as snarkjs emits
them), its constraint count and the trusted-setup transcript it was made from. Everything
that proves or verifies finds the files through `circuit(name)`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from kalypso.errors import ConfigError
from kalypso.provers.proof import Groth16Proof


@dataclass(frozen=True)
class Circuit:
    name: str
    description: str
    #: input name -> "private" | "public", as the circuit's `signal input`s
    inputs: dict[str, str]
    #: public signals in snarkjs order (outputs first, then public inputs)
    public_signals: list[str]
    constraints: int
    wasm: Path
    zkey: Path
    vkey: Path
    r1cs: Path
    #: a proof of sample inputs: markets verify one at creation
    sample: Path
    hashes: dict[str, str]
    transcript_sha256: str

    @property
    def private_inputs(self) -> list[str]:
        return [n for n, kind in self.inputs.items() if kind == "private"]

    def vkey_json(self) -> dict[str, Any]:
        return dict(json.loads(self.vkey.read_text()))

    def sample_proof(self) -> Groth16Proof:
        data = json.loads(self.sample.read_text())
        return Groth16Proof.from_snarkjs(data["proof"], data["public"])

    def metadata(self) -> dict[str, Any]:
        """What a market records about its circuit (DESIGN §8)."""
        return {
            "circuit": self.name,
            "description": self.description,
            "inputs": self.inputs,
            "public_signals": self.public_signals,
            "constraints": self.constraints,
            "artifacts": self.hashes,
            "trusted_setup_sha256": self.transcript_sha256,
        }


def build_dir() -> Path:
    """`KALYPSO_CIRCUITS`, else the repository's circuits/build."""
    if env := os.environ.get("KALYPSO_CIRCUITS"):
        return Path(env)
    return Path(__file__).resolve().parents[3] / "circuits" / "build"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@cache
def manifest() -> dict[str, Any]:
    path = build_dir() / "manifest.json"
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise ConfigError(f"no circuit manifest at {path}; run `make circuits`") from None


def circuit(name: str) -> Circuit:
    """A sample circuit by name, its files checked against the manifest's hashes."""
    entries = manifest()["circuits"]
    if name not in entries:
        raise ConfigError(f"unknown circuit {name!r}; known: {', '.join(sorted(entries))}")
    entry = entries[name]
    folder = build_dir()
    files = {kind: folder / file for kind, file in entry["files"].items()}
    return Circuit(
        name=name,
        description=entry["description"],
        inputs=dict(entry["inputs"]),
        public_signals=list(entry["public_signals"]),
        constraints=int(entry["constraints"]),
        wasm=files["wasm"],
        zkey=files["zkey"],
        vkey=files["vkey"],
        r1cs=files["r1cs"],
        sample=files["sample"],
        hashes=dict(entry["sha256"]),
        transcript_sha256=manifest()["ptau"]["sha256"],
    )


def verify_artifacts(c: Circuit) -> None:
    """Raise ConfigError unless every file of `c` has the hash the manifest records."""
    for kind, path in (
        ("wasm", c.wasm),
        ("zkey", c.zkey),
        ("vkey", c.vkey),
        ("r1cs", c.r1cs),
        ("sample", c.sample),
    ):
        if sha256_file(path) != c.hashes[kind]:
            raise ConfigError(f"{path} does not match its recorded hash; rebuild or re-fetch it")
