"""The enclave images for AWS Nitro (nitro/): pinned inputs, exactly the measured files,
and the image id of a build's measurements.

Docker and nitro-cli are not on these machines, so the builds themselves are not run
here: these tests hold the files to what a reproducible, measured build needs."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kalypso.cli import app
from kalypso.enclave.images import code_measurement, measurements_pcrs, nitro_image_id
from kalypso.enclave.nitro import verify
from kalypso.errors import AttestationError
from tests.unit.test_real_chains_doc import code, resolve

ROOT = Path(__file__).resolve().parents[2]
NITRO = ROOT / "nitro"
IMAGES = ("matcher", "generator", "pvs", "ivs")
REAL = ROOT / "tests" / "fixtures" / "nitro" / "marlin_oyster_2024-08-07.bin"
#: keccak256(b"kalypso.nitro-image.v1" ‖ PCR0 ‖ PCR1 ‖ PCR2) of the real document
REAL_IMAGE_ID = "0x08bf860dc82abdd274e8ac518f3d73e97818ebfae81fd65d771bfcbc098d7772"
COMMON = {"nitro/requirements.txt", "src/kalypso"}
CIRCUIT = {"circuits/build/manifest.json", "circuits/build/${CIRCUIT}.*"}
NODE = {"package.json", "package-lock.json"}
#: what each image's Dockerfile copies from the repository, and nothing else
COPIED = {
    "matcher": COMMON,
    "generator": COMMON | CIRCUIT | NODE,
    "pvs": COMMON | CIRCUIT | NODE,
    "ivs": COMMON | CIRCUIT,
}


def instructions(image: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of nitro/Dockerfile.IMAGE, continuation lines joined."""
    text = (NITRO / f"Dockerfile.{image}").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split()[0].upper(), line.partition(" ")[2])
        for line in lines
        if line and not line.startswith("#")
    ]


def copied(image: str) -> set[str]:
    """The repository paths the Dockerfile copies (not those from another stage)."""
    sources: set[str] = set()
    for op, args in instructions(image):
        if op == "COPY" and not args.startswith("--from="):
            sources.update(args.split()[:-1])
    return sources


@pytest.mark.parametrize("image", IMAGES)
def test_every_base_image_is_named_by_digest(image: str) -> None:
    bases = [args for op, args in instructions(image) if op == "FROM"]
    assert bases
    for base in bases:
        assert re.fullmatch(r"[a-z0-9.:/-]+@sha256:[0-9a-f]{64}( AS \w+)?", base), base


@pytest.mark.parametrize("image", IMAGES)
def test_python_packages_are_installed_by_hash_only(image: str) -> None:
    runs = [args for op, args in instructions(image) if op == "RUN" and "pip" in args]
    assert runs == [
        "pip install --no-cache-dir --no-compile --no-deps --require-hashes "
        "-r /app/requirements.txt"
    ]


@pytest.mark.parametrize("image", IMAGES)
def test_each_image_copies_exactly_its_measured_files(image: str) -> None:
    assert copied(image) == COPIED[image]
    npm = [args for op, args in instructions(image) if op == "RUN" and "npm" in args]
    assert npm == (
        ["npm ci --ignore-scripts --no-audit --no-fund"] if COPIED[image] >= NODE else []
    )


def test_the_package_copied_is_the_code_a_dev_image_id_measures() -> None:
    """`COPY src/kalypso` brings every file .dockerignore lets through; the dev image id
    measures exactly those, so the two domains measure the same code."""
    ignore = [
        line for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]  # fmt: skip
    assert ignore[0] == "*"  # nothing reaches a build unless named
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    sources = set().union(*COPIED.values())
    for source in sources:
        assert any(source == allowed_ or source.startswith(allowed_ + "/") for allowed_ in allowed)
    assert allowed == {s for s in sources if not s.startswith("circuits/")} | {"circuits/build"}
    package = ROOT / "src" / "kalypso"
    dropped = [line for line in ignore[1:] if not line.startswith("!")]
    reaching = {
        path.relative_to(package).as_posix()
        for path in package.rglob("*")
        if path.is_file()
        and not any(fnmatch.fnmatch(path.relative_to(ROOT).as_posix(), p) for p in dropped)
        and "__pycache__" not in path.parts
    }
    assert {path for path, _ in code_measurement()} == reaching


def test_a_circuit_image_copies_just_that_circuits_artifacts() -> None:
    build = ROOT / "circuits" / "build"
    manifest = json.loads((build / "manifest.json").read_text())
    for name, entry in manifest["circuits"].items():
        matched = {p.name for p in build.glob(f"{name}.*")}
        assert set(entry["files"].values()) <= matched  # the Groth16 artifacts
        assert matched - set(entry["files"].values()) <= {
            f"{name}.plonk.{kind}" for kind in ("zkey", "vkey.json", "sample.json")
        }


def test_the_requirements_pin_every_package_by_hash_at_the_tested_versions() -> None:
    text = (NITRO / "requirements.txt").read_text()
    blocks = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}.*\n)+)",
                        text, re.MULTILINE)  # fmt: skip
    pinned = {name.lower().replace("_", "-"): version for name, version, _ in blocks}
    assert len(pinned) == len(re.findall(r"^[A-Za-z0-9]", text, re.MULTILINE))  # all hashed
    for name, version in pinned.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # the nitro extra (aws-nsm-interface) is not installed here
        assert installed == version, f"{name}: locked {version}, tested with {installed}"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["nitro"]
    for requirement in declared:
        name = re.split(r"[=<>\[ ]", requirement)[0].lower().replace("_", "-")
        assert name in pinned, f"{name} is a dependency the images do not install"


def test_the_image_id_of_a_build_is_printed_from_nitro_clis_measurements(
    tmp_path: Path,
) -> None:
    doc = verify(REAL.read_bytes(), at_ms=1723012689640)
    output = {"Measurements": {"HashAlgorithm": "Sha384 { ... }",
                               **{f"PCR{i}": doc.pcrs[i].hex() for i in (0, 1, 2)}}}  # fmt: skip
    assert "0x" + nitro_image_id(measurements_pcrs(output)).hex() == REAL_IMAGE_ID
    path = tmp_path / "build.json"
    path.write_text(json.dumps(output))
    shown = CliRunner().invoke(app, ["attest", "image-id", str(path)])
    assert shown.exit_code == 0, shown.output
    assert f"image id  {REAL_IMAGE_ID}" in shown.output
    assert f"PCR0      {doc.pcrs[0].hex()}" in shown.output
    as_json = CliRunner().invoke(app, ["attest", "image-id", str(path), "--json"])
    assert json.loads(as_json.output)["image_id"] == REAL_IMAGE_ID


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ({}, "no Measurements"),
        ({"Measurements": {"HashAlgorithm": "Sha256 { ... }"}}, "not Sha384"),
        ({"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": "ab"}}, "PCR0 is not 48"),
    ],
)
def test_measurements_that_are_not_nitro_clis_are_refused(output: dict, reason: str) -> None:
    with pytest.raises(AttestationError, match=reason):
        measurements_pcrs(output)


def test_the_build_script_knows_the_four_images() -> None:
    script = (NITRO / "build.sh").read_text()
    assert "matcher|generator|pvs|ivs)" in script
    assert "kalypso attest image-id" in script
    assert {p.name.removeprefix("Dockerfile.") for p in NITRO.glob("Dockerfile.*")} == set(IMAGES)


@pytest.mark.parametrize("image", IMAGES)
def test_each_image_boots_its_own_kind_and_a_measured_circuit(image: str) -> None:
    (cmd,) = [args for op, args in instructions(image) if op == "CMD"]
    argv = json.loads(cmd)
    if image == "matcher":
        assert argv == ["python", "-m", "kalypso.enclave.boot", "matcher"]
    else:  # the circuit comes from the build (ARG CIRCUIT), never from the boot config
        assert argv[:2] == ["/bin/sh", "-c"]
        assert argv[2] == (
            f'exec python -m kalypso.enclave.boot {image} --circuit "$KALYPSO_IMAGE_CIRCUIT"'
        )
        assert ("ENV", "KALYPSO_IMAGE_CIRCUIT=${CIRCUIT}") in instructions(image)


def test_the_parent_plan_proxies_the_rpc_and_the_verifier_and_forwards_the_port() -> None:
    shown = CliRunner().invoke(app, [
        "enclave", "parent-plan", "pvs", "--rpc-url", "https://rpc.example.org/v2/SECRET",
        "--attestation-service", "http://verifier.example.org:7400", "--cid", "17",
    ])  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert "vsock-proxy 8101 rpc.example.org 443 --config allowlist-pvs.yaml &" in shown.output
    assert "vsock-proxy 8102 verifier.example.org 7400" in shown.output
    assert "socat TCP-LISTEN:7301,fork,reuseaddr VSOCK-CONNECT:17:7301 &" in shown.output
    assert "SECRET" not in shown.output  # an RPC URL's path may hold an API key


def test_a_boot_config_the_enclave_would_refuse_is_refused_before_sending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "deployment.json").write_text("{}")
    monkeypatch.setenv("KALYPSO_PRIVATE_KEY", "0x" + "11" * 32)
    shown = CliRunner().invoke(app, [
        "enclave", "boot", "generator", "--rpc-url", "https://rpc.example.org",
        "--deployment", str(tmp_path / "deployment.json"),
        "--attestation-service", "http://verifier.example.org:7400",
    ])  # fmt: skip
    assert shown.exit_code != 0
    assert "market is required for the generator image" in str(shown.exception)
    assert "11" * 32 not in str(shown.exception)


def test_every_kalypso_command_and_option_on_the_page_exists() -> None:
    page = (ROOT / "docs" / "nitro-images.md").read_text()
    checked = 0
    for snippet in code(page):
        for match in re.finditer(r"\bkalypso((?: +[^\s`|]+)+)", snippet):
            command, rest = resolve(match.group(1).split())
            options = {
                o for p in getattr(command, "params", []) for o in (*p.opts, *p.secondary_opts)
            }
            for word in rest:
                if word.startswith("--"):
                    assert word in options, f"{word} is no option of: {snippet}"
            checked += 1
    assert checked >= 5
