"""The sample circuits' artifacts (circuits/build/) and their manifest, and a creator's
circuits, built into a folder of their own with the same manifest (`circuits.build`).

`circuits/build/manifest.json` lists, per circuit, its artifacts with their SHA-256, its
input schema (which inputs are private, the order of the public signals as snarkjs emits
them), its constraint count and the trusted-setup transcript it was made from. Everything
that proves or verifies finds the files through `circuit(name)`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from kalypso.errors import ConfigError
from kalypso.provers.plonk import PlonkProof
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
    #: a proof of sample inputs: markets verify one at creation (None: prove one)
    sample: Path | None
    #: kind ("wasm", "zkey", "vkey", "r1cs", "sample") -> SHA-256 the files must have
    hashes: dict[str, str]
    #: SHA-256 of the powers-of-tau transcript the zkey was made from (None: not given)
    transcript_sha256: str | None
    #: the transcript file itself, where its manifest names one
    transcript: Path | None = None

    @classmethod
    def from_files(
        cls,
        name: str,
        schema: dict[str, Any],
        *,
        wasm: Path,
        zkey: Path,
        vkey: Path,
        r1cs: Path,
        transcript_sha256: str | None = None,
    ) -> Circuit:
        """A circuit from a creator's own artifacts and schema (the shape of a
        circuits/circuits.json entry); hashes and constraint count are read from the files."""
        from kalypso.circuits.setup import r1cs_constraints

        inputs, public_signals = _schema(schema)
        files = {"wasm": wasm, "zkey": zkey, "vkey": vkey, "r1cs": r1cs}
        for kind, path in files.items():
            if not path.is_file():
                raise ConfigError(f"no {kind} file at {path}")
        return cls(
            name=name,
            description=str(schema.get("description", "")),
            inputs=inputs,
            public_signals=public_signals,
            constraints=r1cs_constraints(r1cs),
            wasm=wasm,
            zkey=zkey,
            vkey=vkey,
            r1cs=r1cs,
            sample=None,
            hashes={kind: sha256_file(path) for kind, path in files.items()},
            transcript_sha256=transcript_sha256,
        )

    @property
    def private_inputs(self) -> list[str]:
        return [n for n, kind in self.inputs.items() if kind == "private"]

    def vkey_json(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.vkey.read_text()))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the verification key {self.vkey}: {exc}") from None

    def sample_proof(self) -> Groth16Proof:
        if self.sample is None:
            raise ConfigError(f"circuit {self.name!r} has no sample proof; give sample inputs")
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


def _schema(schema: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Check a schema: {"inputs": {name: "public"|"private"}, "public_signals": [name, ...]}."""
    inputs, signals = schema.get("inputs"), schema.get("public_signals")
    if not isinstance(inputs, dict) or not inputs:
        raise ConfigError('the schema needs "inputs": {name: "public" | "private", ...}')
    for key, kind in inputs.items():
        if kind not in ("public", "private"):
            raise ConfigError(f'schema input {key!r} is {kind!r}, not "public" or "private"')
    if not isinstance(signals, list) or not all(isinstance(s, str) for s in signals):
        raise ConfigError('the schema needs "public_signals": [name, ...] in snarkjs order')
    return {str(k): str(v) for k, v in inputs.items()}, list(signals)


def load_schema(path: Path) -> dict[str, Any]:
    """A schema file (see `Circuit.from_files`)."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the schema {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"the schema {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"the schema {path} is not a JSON object")
    _schema(data)
    return data


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


#: what a circuit may be called: its artifacts are named after it, so never a path
CIRCUIT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


def is_path(ref: str) -> bool:
    """A circuit reference that names a built folder or manifest, not a sample circuit."""
    return "/" in ref or os.sep in ref or ref.endswith(".json") or ref.startswith(".")


def circuit(name: str) -> Circuit:
    """A sample circuit by name, with the hashes its files must have (`verify_artifacts`
    checks them). Names from a market's metadata come here: anyone's choice, never read
    as a path."""
    return _entry(manifest(), build_dir(), name)


def load_circuit(ref: str) -> Circuit:
    """What an operator or creator names: a sample circuit, or one `kalypso circuit build`
    wrote: `FOLDER`, `FOLDER/manifest.json`, or either with `#NAME` if it holds several."""
    if not is_path(ref):
        if ref not in manifest()["circuits"] and Path(ref).is_dir():
            raise ConfigError(f"{ref!r} is no sample circuit; for the folder, give ./{ref}")
        return circuit(ref)
    where, _, name = ref.partition("#")
    path = Path(where).expanduser()
    path = path / "manifest.json" if path.is_dir() else path
    try:
        data = json.loads(path.read_text())
        entries = data["circuits"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(
            f"no circuit manifest at {path}: give the folder `kalypso circuit build` wrote"
        ) from None
    if not name and len(entries) != 1:
        raise ConfigError(f"{path} holds {', '.join(sorted(entries))}: give {where}#NAME")
    return _entry(data, path.parent, name or next(iter(entries)))


def _entry(data: dict[str, Any], folder: Path, name: str) -> Circuit:
    entries = data["circuits"]
    if name not in entries:
        raise ConfigError(f"unknown circuit {name!r}; known: {', '.join(sorted(entries))}")
    entry = entries[name]
    try:
        ptau = dict(entry.get("ptau") or data.get("ptau") or {})
        files = {kind: folder / file for kind, file in entry["files"].items()}
        return Circuit(
            name=name,
            description=str(entry.get("description", "")),
            inputs=dict(entry["inputs"]),
            public_signals=list(entry["public_signals"]),
            constraints=int(entry["constraints"]),
            wasm=files["wasm"],
            zkey=files["zkey"],
            vkey=files["vkey"],
            r1cs=files["r1cs"],
            sample=files.get("sample"),
            hashes=dict(entry["sha256"]),
            # a built folder records each circuit's transcript; the samples share one
            transcript_sha256=ptau.get("sha256"),
            transcript=folder / ptau["file"] if "file" in ptau else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(
            f"the manifest entry of {name!r} in {folder} is incomplete ({exc!r}): rebuild it"
        ) from None


@dataclass(frozen=True)
class PlonkArtifacts:
    """A sample circuit's PLONK setup (same wasm and ptau as its Groth16 one)."""

    name: str
    zkey: Path
    vkey: Path
    sample: Path
    #: kind ("zkey", "vkey", "sample") -> SHA-256
    hashes: dict[str, str]

    def vkey_json(self) -> dict[str, Any]:
        return dict(json.loads(self.vkey.read_text()))

    def sample_proof(self) -> PlonkProof:
        data = json.loads(self.sample.read_text())
        return PlonkProof.from_snarkjs(data["proof"], data["public"])


def plonk(name: str) -> PlonkArtifacts:
    """The PLONK artifacts of a sample circuit, checked against the manifest's hashes."""
    entries = manifest().get("plonk", {})
    if name not in entries:
        raise ConfigError(f"circuit {name!r} has no PLONK setup; known: {', '.join(entries)}")
    folder, entry = build_dir(), entries[name]
    files = {kind: folder / file for kind, file in entry["files"].items()}
    for kind, path in files.items():
        if not path.is_file() or sha256_file(path) != entry["sha256"][kind]:
            raise ConfigError(f"{path} is missing or does not match its recorded hash")
    return PlonkArtifacts(
        name, files["zkey"], files["vkey"], files["sample"], dict(entry["sha256"])
    )


def sample_ptau() -> Path:
    """The transcript the sample circuits were set up from."""
    return build_dir() / str(manifest()["ptau"]["file"])


def verify_artifacts(c: Circuit) -> None:
    """Raise ConfigError unless every file of `c` has the hash recorded for it."""
    for kind, path in (
        ("wasm", c.wasm),
        ("zkey", c.zkey),
        ("vkey", c.vkey),
        ("r1cs", c.r1cs),
        ("sample", c.sample),
    ):
        if path is None or kind not in c.hashes:
            continue
        if not path.is_file():
            raise ConfigError(f"no {kind} file at {path}")
        if sha256_file(path) != c.hashes[kind]:
            raise ConfigError(f"{path} does not match its recorded hash; rebuild or re-fetch it")
