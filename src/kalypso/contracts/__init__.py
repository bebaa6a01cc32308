"""Compiled contracts: build them from `contracts/*.vy` and load their ABIs and bytecode.

The Vyper sources live in the repository's `contracts/` folder; their build outputs
(`build/<Name>.json`: ABI, init bytecode, runtime size, source hash) are written next to
this module and ship as package data, so an installed `kalypso` needs no compiler.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from kalypso.errors import BuildError

#: Name -> source path relative to the sources folder.
CONTRACTS: dict[str, str] = {
    "Token": "Token.vy",
    "GeneratorRegistry": "GeneratorRegistry.vy",
    "ProofMarketplace": "ProofMarketplace.vy",
    "MarketRegistry": "MarketRegistry.vy",
    "EnclaveRegistry": "EnclaveRegistry.vy",
    "Groth16Verifier": "verifiers/Groth16Verifier.vy",
    "SquareRootInputVerifier": "verifiers/SquareRootInputVerifier.vy",
    "MockVerifier": "test/MockVerifier.vy",
    "ThresholdInputVerifier": "test/ThresholdInputVerifier.vy",
}

#: EIP-170: the largest runtime code a chain accepts.
MAX_CODE_SIZE = 24_576

BUILD_DIR = Path(__file__).parent / "build"


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    runtime_size: int


def sources_dir() -> Path | None:
    """The repository's `contracts/` folder, or None in an installed package."""
    candidate = Path(__file__).resolve().parents[3] / "contracts"
    return candidate if (candidate / "ProofMarketplace.vy").is_file() else None


def source_path(name: str) -> Path:
    folder = sources_dir()
    if folder is None:
        raise BuildError(f"the Vyper sources of {name} are not here; use the compiled artifacts")
    return folder / CONTRACTS[name]


def sources_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted([*folder.rglob("*.vy"), *folder.rglob("*.vyi")]):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _vyper() -> str:
    local = Path(sys.executable).parent / "vyper"
    found = str(local) if local.exists() else shutil.which("vyper")
    if found is None:
        raise BuildError("the Vyper compiler is not installed; run `make setup`")
    return found


def _compile(folder: Path, name: str) -> dict[str, Any]:
    result = subprocess.run(
        [_vyper(), "-f", "abi,bytecode,bytecode_runtime", CONTRACTS[name]],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BuildError(f"compiling {name} failed:\n{result.stderr.strip()}")
    abi, bytecode, runtime = result.stdout.strip().splitlines()
    return {
        "name": name,
        "abi": json.loads(abi),
        "bytecode": bytecode,
        "runtime_size": (len(runtime) - 2) // 2,
    }


def build(force: bool = False, echo: bool = False) -> Path:
    """Compile every contract whose sources changed since the last build."""
    folder = sources_dir()
    if folder is None:
        raise BuildError("no contract sources to build (installed package)")
    digest = sources_hash(folder)
    stamp = BUILD_DIR / "sources.sha256"
    if not force and stamp.exists() and stamp.read_text() == digest:
        return BUILD_DIR
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    for name in CONTRACTS:
        if echo:
            print(f"compiling {CONTRACTS[name]}", file=sys.stderr)
        out = _compile(folder, name) | {"sources_sha256": digest}
        (BUILD_DIR / f"{name}.json").write_text(json.dumps(out, indent=1))
    stamp.write_text(digest)
    artifact.cache_clear()
    return BUILD_DIR


@cache
def artifact(name: str) -> Artifact:
    """The compiled contract `name`, building it first when its sources changed."""
    if name not in CONTRACTS:
        raise BuildError(f"unknown contract {name!r}; known: {', '.join(CONTRACTS)}")
    if sources_dir() is not None:
        build()
    path = BUILD_DIR / f"{name}.json"
    if not path.exists():
        raise BuildError(f"{path} is missing; reinstall kalypso or run `make setup`")
    data = json.loads(path.read_text())
    return Artifact(data["name"], data["abi"], data["bytecode"], data["runtime_size"])
