"""docs/market-creator.md's short path, run word for word: every block of that section, in
order, as one bash script in a fresh folder, against `kalypso devnet` as a newcomer
starts it. A circuit that is not a sample, built with the committed ptau and a fixed
beacon (the one ceremony a test may run), to a market with a Generator Image, proven
through the CLI and the SDK, and inputs with no proof settled without a slash."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kalypso.circuits import load_circuit
from kalypso.devnet import free_port
from kalypso.provers.proof import Groth16Proof

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "market-creator.md"
FIXTURE = ROOT / "tests" / "fixtures" / "circuits" / "pair.circom"


def short_path() -> list[tuple[str, str]]:
    """(language, code) of each fenced block of the short path, in order."""
    text = DOC.read_text()
    section = text[text.index("## The short path") :]
    section = section[: section.index("\n## ", 10)]
    return re.findall(r"```(bash|python)\n(.*?)```", section, re.S)


def script() -> str:
    """The blocks as one script: the Python one fed to the same interpreter."""
    parts = ["set -euo pipefail"]
    for language, code in short_path():
        parts.append(code if language == "bash" else f"python - <<'PYTHON'\n{code}PYTHON")
    return "\n".join(parts) + "\n"


def test_the_doc_builds_the_circuit_the_other_tests_use() -> None:
    blocks = short_path()
    assert [language for language, _ in blocks].count("python") == 1
    assert FIXTURE.read_text() in blocks[0][1]


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`kalypso devnet` on free ports; the environment it tells the user to paste."""
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "PATH": f"{Path(sys.executable).parent}:"
           f"{os.environ['PATH']}", "COLUMNS": "200"}  # fmt: skip
    ports = [str(free_port()) for _ in range(4)]
    process = subprocess.Popen(
        [sys.executable, "-m", "kalypso.cli", "devnet", "--port", ports[0], "--matcher-port",
         ports[1], "--generator-port", ports[2], "--dashboard-port", ports[3]],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None
    printed = []
    for line in process.stdout:
        printed.append(line)
        if "Ctrl-C stops the chain" in line:
            break
    exports = dict(re.findall(r"export (KALYPSO_\w+)=(\S+)", "".join(printed)))
    assert set(exports) == {"KALYPSO_RPC_URL", "KALYPSO_DEPLOYMENT", "KALYPSO_PRIVATE_KEY"}, (
        "".join(printed)
    )
    try:
        yield {**env, **exports}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


@pytest.mark.slow  # about 85 s: a devnet of its own, a setup, three proofs
def test_a_newcomer_follows_the_short_path(devnet: dict[str, str], tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(
        ["bash", "-c", script()], cwd=work, env=devnet, capture_output=True, text=True,
        timeout=600, start_new_session=True,
    )  # fmt: skip
    folder = work / "pair"
    logs = "".join(
        f"\n--- {name}\n" + (folder / name).read_text()
        for name in ("enclave.log", "generator.log")
        if (folder / name).is_file()
    )
    assert done.returncode == 0, done.stdout + done.stderr + logs
    out = done.stdout + done.stderr
    assert "built pair: 305 constraints" in out
    assert "market created: pair" in out
    assert "proven: hash" in out  # the SDK
    assert "showed its inputs have no proof" in out  # settled by the Generator Image
    assert "slash" not in (folder / "generator.log").read_text().lower()
    proof = json.loads((folder / "proof.json").read_text())  # the CLI's, JSON only
    c = load_circuit(str(folder / "build") + "/")
    assert proof["public"][1:] == ["6", "5"]
    assert Groth16Proof.from_snarkjs(proof["proof"], proof["public"]).verify_local(c.vkey_json())
