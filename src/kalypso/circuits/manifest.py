"""`python -m kalypso.circuits.manifest BUILD_DIR ...`: write circuits/build/manifest.json."""

from __future__ import annotations

import argparse
import json
import struct
from pathlib import Path

from kalypso.circuits import sha256_file


def r1cs_constraints(path: Path) -> int:
    """The constraint count from an .r1cs header section (iden3 binary format)."""
    data = path.read_bytes()
    offset = 12  # magic, version, section count
    while offset < len(data):
        kind, size = struct.unpack_from("<IQ", data, offset)
        offset += 12
        if kind == 1:  # header: field size, prime, wires, pub out, pub in, priv in, labels, m
            field_size = struct.unpack_from("<I", data, offset)[0]
            base = offset + 4 + field_size
            return int(struct.unpack_from("<I", data, base + 24)[0])
        offset += size
    raise ValueError(f"{path}: no header section")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("build_dir", type=Path)
    parser.add_argument("--beacon", required=True)
    parser.add_argument("--iterations", type=int, required=True)
    parser.add_argument("--power", type=int, required=True)
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
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
