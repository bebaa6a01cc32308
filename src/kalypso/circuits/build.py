"""`kalypso circuit build`: a creator's .circom file to the artifacts of a Groth16 market,
in the creator's own folder, from any working directory.

Steps: compile (r1cs, wasm, sym), read the input schema from the compiler's own output,
phase 2 of the trusted setup on a powers-of-tau transcript (a contribution of fresh
entropy, then a public random beacon), `zkey verify`, the verification key, a sample
proof if inputs are given, and a `manifest.json` that `load_circuit("path/to/folder/")` reads
(the same format as the sample circuits' one).

circom is found as anvil is: `KALYPSO_CIRCOM` (a native `circom` or circom2's `cli.js`),
the project's `node_modules/circom2`, or `circom` on PATH. circom2 runs as WASI and opens
only files below its working directory, so it runs from `/` with absolute paths: then
a circuit anywhere can include circomlib from the project's node_modules.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kalypso.circuits import CIRCUIT_NAME, Circuit, load_circuit, sample_ptau, sha256_file
from kalypso.circuits.setup import (
    check_fits,
    last_line,
    node_modules,
    ptau_power,
    r1cs_constraints,
    r1cs_signals,
    run_snarkjs,
    zkey_verify,
)
from kalypso.errors import ConfigError

#: 2^10 squarings of the beacon (snarkjs' own cap is 2^32; circuits/build.sh uses 10)
BEACON_ITERATIONS = 10
COMPILE_TIMEOUT = 1800.0
#: a scalar signal of main (an array element is named like `xs[0]`)
_SIGNAL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Progress = Callable[[str], None]


def find_circom() -> list[str]:
    """The compiler's command: `KALYPSO_CIRCOM`, node_modules' circom2, or PATH."""
    from kalypso.provers.snarkjs import find_node

    if env := os.environ.get("KALYPSO_CIRCOM"):
        return [find_node(), env] if env.endswith(".js") else [env]
    cli = node_modules() / "circom2" / "cli.js"
    if cli.is_file():
        return [find_node(), str(cli)]
    if found := shutil.which("circom"):
        return [found]
    raise ConfigError(
        "circom not found: run `make setup` in the kalypso repository (it installs circom2), "
        "put circom 2 on PATH, or set KALYPSO_CIRCOM to its path"
    )


def compile_circuit(source: Path, out: Path, includes: list[Path]) -> tuple[Path, Path, Path]:
    """r1cs, wasm and sym of `source`, written under `out`."""
    name = source.stem
    args = [*find_circom(), str(source), "--r1cs", "--wasm", "--sym", "--O2", "-o", str(out)]
    for folder in [source.parent, *includes, node_modules()]:
        args += ["-l", str(folder)]
    try:
        result = subprocess.run(
            args, cwd="/", capture_output=True, text=True, timeout=COMPILE_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(f"circom took longer than {COMPILE_TIMEOUT:g} s") from None
    except OSError as exc:
        raise ConfigError(
            f"cannot run circom ({args[0]}: {exc.strerror or exc}): fix KALYPSO_CIRCOM or PATH"
        ) from None
    r1cs, wasm, sym = out / f"{name}.r1cs", out / f"{name}_js" / f"{name}.wasm", out / f"{name}.sym"
    if result.returncode != 0 or not all(p.is_file() for p in (r1cs, wasm, sym)):
        error = next(
            (ln for ln in _output_lines(result) if "error" in ln.lower()), last_line(result)
        )
        raise ConfigError(f"circom could not compile {source}: {error}")
    return r1cs, wasm, sym


def _output_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def schema_of(r1cs: Path, sym: Path, description: str = "") -> dict[str, Any]:
    """The input schema, from the compiler's output: the r1cs header counts outputs,
    public and private inputs, and the sym file names signals 1… in that order (which is
    also the order of snarkjs' public signals: outputs, then public inputs)."""
    outputs, public, private = r1cs_signals(r1cs)
    names: dict[int, str] = {}
    for line in sym.read_text().splitlines():
        index, _, _, name = line.split(",", 3)
        if 1 <= int(index) <= outputs + public + private:
            names[int(index)] = name.removeprefix("main.")
    ordered = [names[i] for i in range(1, outputs + public + private + 1)]
    if arrays := [n for n in ordered if not _SIGNAL.fullmatch(n)]:
        raise ConfigError(
            f"main's signal {arrays[0]} is an array element: give main scalar signals "
            "(wrap an array in a template), or write the schema by hand (docs/market-creator.md)"
        )
    inputs = {n: "public" for n in ordered[outputs : outputs + public]}
    inputs |= {n: "private" for n in ordered[outputs + public :]}
    schema = {"inputs": inputs, "public_signals": ordered[: outputs + public]}
    return {"description": description, **schema} if description else schema


def default_beacon(r1cs: Path) -> str:
    """A beacon anyone can recompute, and so predict: fine for the devnet only."""
    return hashlib.sha256(b"kalypso circuit build " + sha256_file(r1cs).encode()).hexdigest()


def build(
    source: Path,
    out: Path,
    *,
    ptau: Path | None = None,
    beacon: str | None = None,
    sample_input: dict[str, Any] | None = None,
    includes: list[Path] | None = None,
    description: str = "",
    progress: Progress = lambda _: None,
) -> Circuit:
    """Compile `source` and set it up in `out`; returns the circuit as `load_circuit` loads it."""
    source, out = source.resolve(), out.resolve()
    name = source.stem
    if not source.is_file():
        raise ConfigError(f"no circuit file at {source}")
    if not CIRCUIT_NAME.fullmatch(name):
        raise ConfigError(f"name the file after its circuit in letters, digits, _ and -: {name!r}")
    if beacon is not None and not re.fullmatch(r"(0x)?[0-9a-fA-F]{64}", beacon):
        raise ConfigError("--beacon takes 32 bytes of hex (a block hash announced in advance)")
    ptau = (ptau or sample_ptau()).resolve()
    with tempfile.TemporaryDirectory(prefix="kalypso-circuit-") as tmp:
        # everything is made here and moved into `out` only once it all checks: a failed
        # rebuild leaves the folder as it was
        work, stage = Path(tmp), Path(tmp) / "stage"
        stage.mkdir()
        progress(f"compiling {source.name}")
        r1cs, wasm, sym = compile_circuit(source, work, [p.resolve() for p in includes or []])
        schema = schema_of(r1cs, sym, description)
        constraints = r1cs_constraints(r1cs)
        check_fits(constraints + len(schema["public_signals"]), ptau_power(ptau))
        files = {
            "wasm": f"{name}.wasm", "zkey": f"{name}.zkey", "vkey": f"{name}.vkey.json",
            "r1cs": f"{name}.r1cs",
        }  # fmt: skip
        shutil.copyfile(r1cs, stage / files["r1cs"])
        shutil.copyfile(wasm, stage / files["wasm"])
        beacon = (beacon or default_beacon(r1cs)).removeprefix("0x")
        progress(f"phase 2 of the trusted setup ({constraints} constraints, {ptau.name})")
        _snarkjs("groth16", "setup", str(r1cs), str(ptau), str(work / "0.zkey"))
        _snarkjs("zkey", "contribute", str(work / "0.zkey"), str(work / "1.zkey"),
                 "--name=creator", f"-e={os.urandom(32).hex()}")  # fmt: skip
        zkey = stage / files["zkey"]
        _snarkjs("zkey", "beacon", str(work / "1.zkey"), str(zkey), beacon,
                 str(BEACON_ITERATIONS), "-n=final beacon")  # fmt: skip
        progress("checking the key against the circuit and the transcript (zkey verify)")
        ok, said = zkey_verify(stage / files["r1cs"], ptau, zkey)
        if not ok:
            raise ConfigError(f"the setup does not verify: {said}")
        _snarkjs("zkey", "export", "verificationkey", str(zkey), str(stage / files["vkey"]))
        if sample_input is not None:
            progress("proving the sample inputs (markets check a sample proof at creation)")
            files["sample"] = f"{name}.sample.json"
            _sample(stage, files, sample_input)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.sample.json").unlink(missing_ok=True)  # not one of an older build
        for file in files.values():
            shutil.move(stage / file, out / file)
    _write_manifest(out, name, schema, files, constraints, ptau, beacon)
    return load_circuit(str(out / "manifest.json") + f"#{name}")


def _snarkjs(*args: str) -> None:
    result = run_snarkjs(*args)
    if result.returncode != 0:
        raise ConfigError(f"snarkjs {' '.join(args[:2])} failed: {last_line(result)}")


def _sample(out: Path, files: dict[str, str], inputs: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(prefix="kalypso-sample-") as tmp:
        work = Path(tmp)
        (work / "input.json").write_text(json.dumps(inputs))
        result = run_snarkjs("groth16", "fullprove", str(work / "input.json"),
                             str(out / files["wasm"]), str(out / files["zkey"]),
                             str(work / "proof.json"), str(work / "public.json"))  # fmt: skip
        if result.returncode != 0 or not (work / "proof.json").is_file():
            raise ConfigError(f"the sample inputs do not prove: {last_line(result)}")
        sample = {
            "input": inputs,
            "proof": json.loads((work / "proof.json").read_text()),
            "public": json.loads((work / "public.json").read_text()),
        }
    (out / files["sample"]).write_text(json.dumps(sample, indent=2) + "\n")


def _write_manifest(
    out: Path,
    name: str,
    schema: dict[str, Any],
    files: dict[str, str],
    constraints: int,
    ptau: Path,
    beacon: str,
) -> None:
    """Add (or replace) `name` in `out/manifest.json`; other circuits built there stay."""
    path = out / "manifest.json"
    existing: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    entry = {
        "ptau": {"file": str(ptau), "power": ptau_power(ptau), "sha256": sha256_file(ptau)},
        "description": schema.get("description", ""),
        "inputs": schema["inputs"],
        "public_signals": schema["public_signals"],
        "constraints": constraints,
        "files": files,
        "sha256": {kind: sha256_file(out / file) for kind, file in files.items()},
        "setup": {"beacon": beacon, "beacon_iterations_exp": BEACON_ITERATIONS},
    }
    manifest = {"circuits": {**existing.get("circuits", {}), name: entry}}
    path.write_text(json.dumps(manifest, indent=2) + "\n")
