"""`python -m kalypso.circuits.manifest BUILD_DIR ...`: write circuits/build/manifest.json."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kalypso.circuits import sha256_file
from kalypso.circuits.setup import r1cs_constraints

__all__ = ["main", "r1cs_constraints"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("build_dir", type=Path)
    parser.add_argument("--beacon", required=True)
    parser.add_argument("--iterations", type=int, required=True)
    parser.add_argument("--power", type=int, required=True)
    parser.add_argument("--plonk", nargs="*", default=[], help="circuits also set up for PLONK")
    args = parser.parse_args()
    out: Path = args.build_dir
    schemas = json.loads((out.parent / "circuits.json").read_text())
    ptau = out / f"pot{args.power}_final.ptau"
    circuits = {}
    for name, schema in schemas.items():
        files = {
            "wasm": f"{name}.wasm",
            "zkey": f"{name}.zkey",
            "vkey": f"{name}.vkey.json",
            "r1cs": f"{name}.r1cs",
            "sample": f"{name}.sample.json",
        }
        circuits[name] = {
            **schema,
            "constraints": r1cs_constraints(out / files["r1cs"]),
            "files": files,
            "sha256": {kind: sha256_file(out / file) for kind, file in files.items()},
        }
    manifest = {
        "ptau": {
            "file": ptau.name,
            "power": args.power,
            "sha256": sha256_file(ptau),
            "beacon": args.beacon,
            "beacon_iterations_exp": args.iterations,
        },
        "circuits": circuits,
        "plonk": {name: _plonk_entry(out, name) for name in args.plonk},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _plonk_entry(out: Path, name: str) -> dict[str, object]:
    files = {
        "zkey": f"{name}.plonk.zkey",
        "vkey": f"{name}.plonk.vkey.json",
        "sample": f"{name}.plonk.sample.json",
    }
    return {"files": files, "sha256": {k: sha256_file(out / f) for k, f in files.items()}}


if __name__ == "__main__":
    main()
