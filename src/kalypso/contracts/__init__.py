"""Compiled contracts: build them from `contracts/*.vy` and load their ABIs and bytecode.

The Vyper sources live in the repository's `contracts/` folder; their build outputs
(`build/<Name>.json`: ABI, init bytecode, runtime code and its layout, source hash) are
written next to this module and ship as package data, so an installed `kalypso` needs no
compiler.

Deployed Vyper code is the runtime code followed by the immutables (Vyper 0.4.3:
`deploy` returns the runtime code with `immutables_len` more bytes, which the constructor
wrote; `vyper -f layout` gives each immutable's offset there). The runtime code ends
with data sections (the selector jump table); the initcode's CBOR footer gives their
lengths (vyper#3584), so `Artifact.code_size` is where the instructions stop.
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

import cbor2

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
#: Bumped when the build outputs change shape, so older builds are redone.
BUILD_FORMAT = 2


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    runtime_size: int
    #: the runtime code, as deployed before its immutables
    runtime: bytes
    #: bytes of instructions at the start of `runtime`; data sections follow
    code_size: int
    #: bytes of immutables the constructor appends to `runtime`
    immutables_size: int
    #: immutable name -> (offset, length) within those bytes
    immutables: dict[str, tuple[int, int]]


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
        [_vyper(), "-f", "abi,bytecode,bytecode_runtime,layout", CONTRACTS[name]],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BuildError(f"compiling {name} failed:\n{result.stderr.strip()}")
    abi, bytecode, runtime, layout = result.stdout.strip().splitlines()
    runtime_size, data_sizes, immutables_size = _footer(bytes.fromhex(bytecode[2:]))
    if runtime_size != (len(runtime) - 2) // 2:
        raise BuildError(f"{name}: the initcode's footer disagrees with the runtime code")
    code_layout = _flat_layout(json.loads(layout).get("code_layout", {}))
    return {
        "name": name,
        "abi": json.loads(abi),
        "bytecode": bytecode,
        "runtime": runtime,
        "runtime_size": runtime_size,
        "code_size": runtime_size - sum(data_sizes),
        "immutables_size": immutables_size,
        "immutables": code_layout,
    }


def _flat_layout(layout: dict[str, Any], prefix: str = "") -> dict[str, list[int]]:
    """`vyper -f layout`'s code layout, modules' immutables as `module.NAME`."""
    flat: dict[str, list[int]] = {}
    for key, value in layout.items():
        if "offset" in value:
            flat[prefix + key] = [int(value["offset"]), int(value["length"])]
        else:
            flat |= _flat_layout(value, f"{prefix}{key}.")
    return flat


def _footer(initcode: bytes) -> tuple[int, list[int], int]:
    """(runtime size, data section sizes, immutables size) from the CBOR footer Vyper
    appends to initcode: [integrity, runtime size, [data sizes], immutables size,
    {"vyper": version}], then two bytes giving the footer's length."""
    try:
        length = int.from_bytes(initcode[-2:], "big")
        _, runtime, data, immutables, _ = cbor2.loads(initcode[-length:-2])
        return int(runtime), [int(d) for d in data], int(immutables)
    except (ValueError, TypeError, cbor2.CBORDecodeError) as exc:
        raise BuildError(f"no Vyper 0.4 footer at the end of the initcode: {exc}") from None


def build(force: bool = False, echo: bool = False) -> Path:
    """Compile every contract whose sources changed since the last build."""
    folder = sources_dir()
    if folder is None:
        raise BuildError("no contract sources to build (installed package)")
    digest = sources_hash(folder)
    stamp = BUILD_DIR / "sources.sha256"
    stamped = f"{digest} format {BUILD_FORMAT}"
    if not force and stamp.exists() and stamp.read_text() == stamped:
        return BUILD_DIR
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    for name in CONTRACTS:
        if echo:
            print(f"compiling {CONTRACTS[name]}", file=sys.stderr)
        out = _compile(folder, name) | {"sources_sha256": digest}
        (BUILD_DIR / f"{name}.json").write_text(json.dumps(out, indent=1))
    stamp.write_text(stamped)
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
    return Artifact(
        name=data["name"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        runtime_size=data["runtime_size"],
        runtime=bytes.fromhex(data["runtime"][2:]),
        code_size=data["code_size"],
        immutables_size=data["immutables_size"],
        immutables={k: (v[0], v[1]) for k, v in data["immutables"].items()},
    )
