"""Prover plugins: every implementation passes `ProverConformance` (STYLE.md), then its own
failure paths. One snarkjs node worker serves the whole module (the `worker` fixture).
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from kalypso.circuits import circuit
from kalypso.errors import ConfigError, ProverError, ProverTimeout
from kalypso.market import encode_signals
from kalypso.provers import InvalidInputs, Proof, Prover
from kalypso.provers.command import CommandProver
from kalypso.provers.http import HttpProver
from kalypso.provers.proof import Groth16Proof
from kalypso.provers.snarkjs import WORKER, SnarkjsGroth16Prover, SnarkjsWorker, find_node
from kalypso.provers.wire import BytesProof
from tests.unit.prover_servers import Services, serve

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]
SNARKJS_CLI = ROOT / "node_modules" / "snarkjs" / "build" / "cli.cjs"
CIRCUITS = ("poseidon_preimage", "square_root")

#: Poseidon([7]), the public output of the poseidon_preimage sample
POSEIDON_7 = 7061949393491957813657776856458368574501817871421526214197139795307327923534
VALID: dict[str, dict[str, int]] = {
    "poseidon_preimage": {"preimage": 7},
    "square_root": {"square": 49, "max_root": 10, "root": 7},
}
PUBLIC: dict[str, list[int]] = {"poseidon_preimage": [POSEIDON_7], "square_root": [49, 10]}
#: 10 is not a perfect square: no witness exists
INVALID = {"square": 10, "max_root": 10, "root": 3}


def as_groth16(proof: Proof) -> Groth16Proof:
    if isinstance(proof, Groth16Proof):
        return proof
    return Groth16Proof.from_calldata(proof.calldata(), proof.public_inputs())


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture(scope="module")
def vkeys() -> dict[str, dict[str, Any]]:
    return {name: circuit(name).vkey_json() for name in CIRCUITS}


@pytest_asyncio.fixture(scope="module")
async def worker() -> AsyncIterator[SnarkjsWorker]:
    shared = SnarkjsWorker()
    yield shared
    await shared.close()


@pytest.fixture(scope="module")
def snarkjs_provers(worker: SnarkjsWorker) -> dict[str, SnarkjsGroth16Prover]:
    return {name: SnarkjsGroth16Prover.for_circuit(name, worker=worker) for name in CIRCUITS}


@pytest_asyncio.fixture(scope="module")
async def services(snarkjs_provers: dict[str, SnarkjsGroth16Prover]) -> AsyncIterator[Services]:
    async with serve(snarkjs_provers) as running:
        yield running


class ProverConformance:
    """What every `Prover` does. A subclass provides `provers` (circuit name -> Prover)
    and `hung` (a Prover whose backend never answers, with a short timeout)."""

    async def test_is_a_prover(self, provers: Mapping[str, Prover]) -> None:
        assert all(isinstance(p, Prover) for p in provers.values())

    @pytest.mark.parametrize("name", CIRCUITS)
    async def test_valid_inputs_give_a_proof_that_verifies(
        self, provers: Mapping[str, Prover], vkeys: dict[str, dict[str, Any]], name: str
    ) -> None:
        proof = await provers[name].prove(VALID[name])
        assert isinstance(proof, Proof)
        assert proof.public_inputs() == encode_signals(PUBLIC[name])
        assert as_groth16(proof).verify_local(vkeys[name])

    async def test_invalid_inputs_give_a_verdict(self, provers: Mapping[str, Prover]) -> None:
        verdict = await provers["square_root"].prove(INVALID)
        assert isinstance(verdict, InvalidInputs)
        assert verdict.reason

    async def test_inputs_json_cannot_carry_are_a_config_error(
        self, provers: Mapping[str, Prover]
    ) -> None:
        inputs: dict[str, Any] = {**VALID["square_root"], "root": object()}
        with pytest.raises(ConfigError, match="input root is a object"):
            await provers["square_root"].prove(inputs)

    async def test_hung_prover_is_stopped_at_its_timeout(self, hung: Prover) -> None:
        started = time.monotonic()
        with pytest.raises(ProverTimeout, match="timeout"):
            await hung.prove(VALID["square_root"])
        assert time.monotonic() - started < 5


# --- snarkjs through the long-lived node worker ---------------------------------------


class TestSnarkjsProver(ProverConformance):
    @pytest.fixture
    def provers(
        self, snarkjs_provers: dict[str, SnarkjsGroth16Prover]
    ) -> dict[str, SnarkjsGroth16Prover]:
        return snarkjs_provers

    @pytest_asyncio.fixture
    async def hung(self) -> AsyncIterator[SnarkjsGroth16Prover]:
        # Its own worker, so the shared one keeps serving (its replacement is tested below).
        prover = SnarkjsGroth16Prover.for_circuit("square_root", timeout=0.001)
        yield prover
        await prover.close()

    async def test_one_worker_serves_every_proof(
        self, snarkjs_provers: dict[str, SnarkjsGroth16Prover], worker: SnarkjsWorker
    ) -> None:
        await snarkjs_provers["poseidon_preimage"].prove(VALID["poseidon_preimage"])
        pid = worker.pid
        await snarkjs_provers["square_root"].prove(VALID["square_root"])
        await snarkjs_provers["square_root"].prove(INVALID)
        assert worker.pid == pid is not None

    async def test_timeout_replaces_the_worker(
        self, snarkjs_provers: dict[str, SnarkjsGroth16Prover], worker: SnarkjsWorker
    ) -> None:
        await snarkjs_provers["square_root"].prove(VALID["square_root"])
        old = worker.pid
        hasty = SnarkjsGroth16Prover.for_circuit("square_root", timeout=0.001, worker=worker)
        with pytest.raises(ProverTimeout, match=r"0\.001 s.*killed"):
            await hasty.prove(VALID["square_root"])
        assert worker.pid is None
        assert old is not None and not _alive(old)
        proof = await snarkjs_provers["square_root"].prove(VALID["square_root"])
        assert isinstance(proof, Groth16Proof)
        assert worker.pid not in (None, old)

    async def test_crashed_worker_raises_and_the_next_proof_starts_a_fresh_one(
        self, tmp_path: Path
    ) -> None:
        # A "node" that dies at its first start and is node after that.
        node = executable(
            tmp_path / "node",
            f"#!/bin/sh\nif [ ! -e {tmp_path}/crashed ]; then touch {tmp_path}/crashed; "
            f'echo "simulated crash" >&2; exit 7; fi\nexec {find_node()} "$@"\n',
        )
        prover = SnarkjsGroth16Prover.for_circuit("square_root", node=str(node), timeout=30)
        try:
            with pytest.raises(ProverError, match=r"exited with code 7(.|\n)*simulated crash"):
                await prover.prove(VALID["square_root"])
            assert isinstance(await prover.prove(INVALID), InvalidInputs)
            pid = prover.pid
        finally:
            await prover.close()
        assert pid is not None and not _alive(pid)

    async def test_missing_artifacts_are_a_config_error(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="make circuits"):
            SnarkjsGroth16Prover(tmp_path / "x.wasm", circuit("square_root").zkey)

    async def test_witness_errors_are_invalid_inputs(
        self, snarkjs_provers: dict[str, SnarkjsGroth16Prover]
    ) -> None:
        prover = snarkjs_provers["square_root"]
        for inputs in (
            {"square": 49, "max_root": 10},  # root missing
            {"square": 49, "max_root": 10, "root": 7, "extra": 1},
            {"square": "forty-nine", "max_root": 10, "root": 7},
            {"square": 49, "max_root": 6, "root": 7},  # root above max_root
        ):
            assert isinstance(await prover.prove(inputs), InvalidInputs), inputs

    async def test_worker_speaks_only_json_lines_and_exits_at_eof(self) -> None:
        square_root = circuit("square_root")
        requests = [
            {
                "id": 1,
                "wasm": str(square_root.wasm),
                "zkey": str(square_root.zkey),
                "input": INVALID,
            },
            {"id": 2, "wasm": "/nonexistent.wasm", "zkey": str(square_root.zkey), "input": {}},
        ]
        lines = "\n".join([*(json.dumps(r) for r in requests), "not json"]) + "\n"
        process = await asyncio.create_subprocess_exec(
            find_node(),
            str(WORKER),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(lines.encode()), 20)
        assert process.returncode == 0, stderr
        answers = [json.loads(line) for line in stdout.decode().splitlines()]
        by_id = {a["id"]: a for a in answers}
        assert by_id[1]["kind"] == "witness" and "Assert Failed" in by_id[1]["error"]
        assert by_id[2]["kind"] == "prover"
        assert by_id[None]["kind"] == "prover"
        assert len(answers) == 3
        assert b"Error in template" in stderr  # circom's console output went to stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --- an external command per proof ------------------------------------------------------

PROVE_SCRIPT = """
import json, os, re, subprocess, sys, tempfile

node, cli, wasm, zkey = sys.argv[1:5]
inputs = json.load(sys.stdin)["inputs"]
with tempfile.TemporaryDirectory() as work:
    files = [os.path.join(work, f + ".json") for f in ("input", "proof", "public")]
    with open(files[0], "w") as f:
        json.dump(inputs, f)
    run = subprocess.run(
        [node, cli, "groth16", "fullprove", files[0], wasm, zkey, files[1], files[2]],
        capture_output=True, text=True,
    )
    log = re.sub(r"\\x1b\\[[0-9;]*m", "", run.stdout + run.stderr)
    if run.returncode != 0:
        for line in log.splitlines():
            if "Assert Failed" in line or "input signal" in line or "inputs have been set" in line:
                json.dump({"invalid_inputs": line.strip()}, sys.stdout)
                sys.exit(0)
        sys.stderr.write(log)
        sys.exit(1)
    with open(files[1]) as p, open(files[2]) as q:
        json.dump({"proof": json.load(p), "public_signals": json.load(q)}, sys.stdout)
"""

SLEEP_SCRIPT = """
import subprocess, sys, time
child = subprocess.Popen(["sleep", "30"])  # a helper the prover starts: killed with it
open(sys.argv[1], "w").write(str(child.pid))
time.sleep(30)
"""


def python_command(script: Path, *args: str | Path) -> list[str]:
    return [sys.executable, str(script), *map(str, args)]


@pytest.fixture(scope="module")
def command_provers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CommandProver]:
    """`snarkjs groth16 fullprove` through its CLI, wrapped in the command contract."""
    script = tmp_path_factory.mktemp("command") / "prove.py"
    script.write_text(PROVE_SCRIPT)
    return {
        name: CommandProver(
            python_command(
                script, find_node(), SNARKJS_CLI, circuit(name).wasm, circuit(name).zkey
            ),
            timeout=60,
        )
        for name in CIRCUITS
    }


class TestCommandProver(ProverConformance):
    @pytest.fixture
    def provers(self, command_provers: dict[str, CommandProver]) -> dict[str, CommandProver]:
        return command_provers

    @pytest.fixture
    def child_pid_file(self, tmp_path: Path) -> Path:
        return tmp_path / "child.pid"

    @pytest.fixture
    def hung(self, tmp_path: Path, child_pid_file: Path) -> CommandProver:
        script = tmp_path / "sleep.py"
        script.write_text(SLEEP_SCRIPT)
        return CommandProver(python_command(script, child_pid_file), timeout=0.5)

    async def test_timeout_kills_the_helpers_it_started(
        self, hung: Prover, child_pid_file: Path
    ) -> None:
        with pytest.raises(ProverTimeout):
            await hung.prove({})
        child = int(child_pid_file.read_text())
        await asyncio.sleep(0.1)
        assert not _alive(child) or _zombie(child), "the prover's helper outlived it"

    async def test_failure_raises_with_stderr_tail(self, tmp_path: Path) -> None:
        script = tmp_path / "fail.py"
        script.write_text("import sys\nsys.stderr.write('out of GPU memory\\n')\nsys.exit(3)\n")
        prover = CommandProver(python_command(script), timeout=10)
        with pytest.raises(ProverError, match=r"exited with code 3(.|\n)*out of GPU memory"):
            await prover.prove({"x": 1})

    @pytest.mark.parametrize(
        "stdout",
        ["not json", "[1, 2]", '{"proof": {"pi_a": []}, "public_signals": []}', '{"nothing": 1}'],
    )
    async def test_malformed_answer_is_a_prover_error(self, tmp_path: Path, stdout: str) -> None:
        script = tmp_path / "bad.py"
        script.write_text(f"print({stdout!r})\n")
        with pytest.raises(ProverError):
            await CommandProver(python_command(script), timeout=10).prove({"x": 1})

    async def test_bytes_proof_and_wire_form(self, tmp_path: Path) -> None:
        # Echo the request back inside the proof bytes: checks stdin's shape too.
        script = tmp_path / "bytes.py"
        script.write_text(
            "import json, sys\nraw = sys.stdin.read().encode()\n"
            'print(json.dumps({"proof_hex": "0x" + raw.hex(), "public_inputs_hex": "0x0102"}))\n'
        )
        big = 2**200 + 1
        proof = await CommandProver(python_command(script), timeout=10).prove({"a": big, "b": [1]})
        assert proof == BytesProof(
            json.dumps({"inputs": {"a": str(big), "b": ["1"]}}).encode(), b"\x01\x02"
        )
        assert isinstance(proof, Proof)

    async def test_missing_program_is_a_prover_error(self, tmp_path: Path) -> None:
        with pytest.raises(ProverError, match="cannot start"):
            await CommandProver([str(tmp_path / "nope")], timeout=1).prove({})


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return False


# --- HTTP: Kalypso's API ----------------------------------------------------------------


class TestHttpProver(ProverConformance):
    @pytest_asyncio.fixture
    async def provers(self, services: Services) -> AsyncIterator[dict[str, HttpProver]]:
        provers = {
            name: HttpProver(f"{services.base_url}/kalypso/{name}", timeout=30) for name in CIRCUITS
        }
        yield provers
        for prover in provers.values():
            await prover.close()

    @pytest_asyncio.fixture
    async def hung(self, services: Services) -> AsyncIterator[HttpProver]:
        prover = HttpProver(f"{services.base_url}/hang", timeout=0.3)
        yield prover
        await prover.close()

    async def test_server_error_is_a_prover_error(self, services: Services) -> None:
        prover = HttpProver(f"{services.base_url}/broken", timeout=5)
        with pytest.raises(ProverError, match=r"HTTP 500.*out of GPU memory"):
            await prover.prove(VALID["square_root"])
        await prover.close()

    async def test_unreachable_prover_is_a_prover_error(self) -> None:
        prover = HttpProver("http://127.0.0.1:9", timeout=5)
        with pytest.raises(ProverError, match="cannot reach"):
            await prover.prove(VALID["square_root"])
        await prover.close()
