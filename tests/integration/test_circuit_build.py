"""`kalypso circuit build` as a creator runs it: their own circuit (not a sample), in their
own folder, from another working directory, with the committed ptau and a fixed beacon
(the one ceremony a test may run: about 17 s)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kalypso.circuits import load_circuit, sha256_file
from kalypso.circuits.setup import zkey_verify
from kalypso.enclave.generator import GeneratorImage
from kalypso.enclave.images import ImageKind, image_id
from kalypso.enclave.verdicts import InputVerificationImage
from kalypso.errors import ConfigError
from kalypso.market import encode_signals

PAIR = Path(__file__).parents[1] / "fixtures" / "circuits" / "pair.circom"
BEACON = "0x" + "5a" * 32
KALYPSO = [sys.executable, "-m", "kalypso.cli"]


def kalypso(cwd: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KALYPSO, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """pair.circom copied into a creator's folder, built from an unrelated one."""
    creator = tmp_path_factory.mktemp("creator")
    shutil.copy(PAIR, creator / "pair.circom")
    (creator / "input.json").write_text('{"a": 2, "b": 3, "product": 6, "sum": 5}')
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    result = kalypso(
        elsewhere, "circuit", "build", creator / "pair.circom",
        "--sample-input", creator / "input.json", "--beacon", BEACON, "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "… phase 2 of the trusted setup" in result.stderr  # progress, not on stdout
    return creator / "build", json.loads(result.stdout)


def test_the_artifacts_and_manifest_are_in_the_creators_folder(
    built: tuple[Path, dict[str, Any]],
) -> None:
    folder, summary = built
    assert sorted(p.name for p in folder.iterdir()) == [
        "manifest.json", "pair.r1cs", "pair.sample.json", "pair.vkey.json", "pair.wasm",
        "pair.zkey",
    ]  # fmt: skip
    c = load_circuit(f"{folder}/")
    assert c.name == summary["circuit"] == "pair"
    # the schema, read from the compiler: outputs first, then public inputs
    assert c.public_signals == ["hash", "product", "sum"]
    assert c.inputs == {"product": "public", "sum": "public", "a": "private", "b": "private"}
    assert c.sample_proof().verify_local(c.vkey_json())
    entry = json.loads((folder / "manifest.json").read_text())["circuits"]["pair"]
    ptau = Path(entry["ptau"]["file"])  # each circuit records its own transcript
    assert entry["ptau"]["sha256"] == c.transcript_sha256 == sha256_file(ptau)
    assert zkey_verify(c.r1cs, ptau, c.zkey)[0]
    setup = json.loads((folder / "manifest.json").read_text())["circuits"]["pair"]["setup"]
    assert setup == {"beacon": BEACON[2:], "beacon_iterations_exp": 10}


def test_the_printed_image_id_is_the_one_the_generator_image_measures(
    built: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    folder, summary = built
    expected = image_id(
        ImageKind.GENERATOR, GeneratorImage.config_for(str(folder / "manifest.json"))
    )
    assert summary["generator_image"] == "0x" + expected.hex()
    moved = tmp_path / "moved"  # the id measures the artifacts, not where they are
    shutil.copytree(folder, moved)
    assert image_id(ImageKind.GENERATOR, GeneratorImage.config_for(f"{moved}/")) == expected


def test_circuit_references(built: tuple[Path, dict[str, Any]]) -> None:
    folder, _ = built
    assert load_circuit(f"{folder}/manifest.json#pair").name == "pair"
    with pytest.raises(ConfigError, match="unknown circuit 'nope'"):
        load_circuit(f"{folder}#nope")
    with pytest.raises(ConfigError, match="no circuit manifest"):
        load_circuit(f"{folder.parent}/")


@pytest.mark.parametrize(
    ("source", "args", "message"),
    [
        ("template T() { signal input x; x === ; }\ncomponent main = T();", [],
         "could not compile"),
        ("pragma circom 2.1.6;\ntemplate T() { signal input xs[2]; xs[0] === xs[1]; }\n"
         "component main {public [xs]} = T();", [], "array element"),
        ("", ["--beacon", "0x12"], "32 bytes of hex"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, source: str, args: list[str], message: str
) -> None:
    (tmp_path / "bad.circom").write_text(source)
    result = kalypso(tmp_path, "circuit", "build", "bad.circom", *args)
    assert result.returncode == 1
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and message in error[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "build").glob("*.zkey"))


SOLVER = """
import math

from kalypso.provers import InvalidInputs


def solve(inputs):
    product, total = int(inputs["product"]), int(inputs["sum"])
    disc = total * total - 4 * product
    root = math.isqrt(disc) if disc >= 0 else -1
    if root < 0 or root * root != disc or (total + root) % 2:
        return InvalidInputs(f"no whole a, b with a * b = {product} and a + b = {total}")
    return {"a": (total + root) // 2, "b": (total - root) // 2}
"""


def test_an_input_verification_image_runs_the_creators_solver(
    built: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    folder, _ = built
    (tmp_path / "solver.py").write_text(SOLVER)
    spec = f"{tmp_path}/solver.py:solve"
    c = load_circuit(f"{folder}/")
    image = InputVerificationImage(c.name, c.public_signals, spec)
    hash_ = 17197790661637433027297685226742709599380837544520340689137581733613433332983
    assert image.reason_invalid(encode_signals([hash_, 6, 5])) is None
    assert "no whole a, b" in str(image.reason_invalid(encode_signals([hash_, 7, 5])))
    config = image.measured_config()
    assert config["solver"] == {"function": "solve", "sha256": sha256_file(tmp_path / "solver.py")}
    assert str(tmp_path) not in json.dumps(config)  # the id holds wherever the file is
    printed = kalypso(tmp_path, "circuit", "image-id", f"{folder}/", "--image", "ivs",
                      "--solver", "solver.py:solve")  # fmt: skip
    assert printed.stdout.strip() == "0x" + image_id(ImageKind.INPUT_VERIFICATION, config).hex()
    (tmp_path / "solver.py").write_text(SOLVER + "\n# changed\n")
    changed = InputVerificationImage(c.name, c.public_signals, spec).measured_config()
    assert image_id(ImageKind.INPUT_VERIFICATION, changed) != image_id(
        ImageKind.INPUT_VERIFICATION, config
    )
    with pytest.raises(ConfigError, match="no input checker for circuit 'pair'"):
        InputVerificationImage(c.name, c.public_signals)
