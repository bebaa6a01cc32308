"""Groth16 proofs with snarkjs, through one long-lived node worker.

Starting node and loading snarkjs costs about a second, more than a small proof itself
(DESIGN §4), so `SnarkjsGroth16Prover` starts `snarkjs_worker.cjs` once, on the first
proof, and sends it every proof after that as one JSON line (the protocol is written at
the top of the worker). The worker keeps the artifacts and snarkjs' curve in memory.

Proofs are serialized: one is in the worker at a time, because snarkjs already spreads
one proof over every core. The timeout counts from the moment a proof is sent, so time
spent waiting behind another proof does not count; the first proof after a (re)start
also pays node's start-up. Past the timeout the worker is killed (the only way to stop
a running proof) and `ProverTimeout` is raised; the next proof starts a fresh worker.
A worker that dies mid-proof raises `ProverError` the same way.

One worker can serve many circuits (each request names its artifacts): provers built
with the same `SnarkjsWorker` share it, as a generator serving several markets should.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kalypso.errors import ConfigError, ProverError, ProverTimeout
from kalypso.provers import InvalidInputs
from kalypso.provers.proof import Groth16Proof
from kalypso.provers.wire import wire_inputs

__all__ = ["WORKER", "SnarkjsGroth16Prover", "SnarkjsWorker", "find_node"]

WORKER = Path(__file__).with_name("snarkjs_worker.cjs")

#: a proof of the sample circuits takes well under a second; real circuits take minutes
DEFAULT_TIMEOUT = 600.0
#: how long `close()` waits for the worker to exit by itself before killing it
_STOP_GRACE = 2.0
#: stdout lines are whole proofs; public signals of large circuits make long lines
_LINE_LIMIT = 1 << 24
_STDERR_LINES = 40


def find_node(node: str | None = None) -> str:
    """node: the argument, `KALYPSO_NODE`, or PATH."""
    if node:
        return node
    if env := os.environ.get("KALYPSO_NODE"):
        return env
    if found := shutil.which("node"):
        return found
    raise ConfigError(
        "node not found: install Node.js 18 or later (Debian: `apt install nodejs`), "
        "put it on PATH or set KALYPSO_NODE to its path"
    )


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    if "KALYPSO_NODE_MODULES" not in env:
        repo_modules = Path(__file__).resolve().parents[3] / "node_modules"
        if (repo_modules / "snarkjs").is_dir():
            env["KALYPSO_NODE_MODULES"] = str(repo_modules)
    return env


class _Process:
    """One node process: writes requests, matches answer lines to them by id."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.stderr: deque[str] = deque(maxlen=_STDERR_LINES)
        self._ids = itertools.count(1)
        self._readers = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
        ]

    @classmethod
    async def start(cls, node: str) -> _Process:
        try:
            process = await asyncio.create_subprocess_exec(
                node,
                str(WORKER),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=_worker_env(),
                limit=_LINE_LIMIT,
            )
        except OSError as exc:
            raise ProverError(
                f"cannot start the snarkjs worker with {node!r}: {exc}; "
                "check that node is installed or set KALYPSO_NODE"
            ) from exc
        return cls(process)

    @property
    def alive(self) -> bool:
        return self.process.returncode is None and not self._readers[0].done()

    def stderr_tail(self) -> str:
        return "\n".join(self.stderr) or "(nothing)"

    async def request(self, payload: dict[str, Any]) -> dict[str, Any]:
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        assert self.process.stdin is not None
        try:
            line = json.dumps({"id": request_id, **payload}, separators=(",", ":"))
            self.process.stdin.write(line.encode() + b"\n")
            await self.process.stdin.drain()
            return await future
        except (BrokenPipeError, ConnectionResetError):
            # The worker died before reading; the stdout reader says how.
            return await future
        finally:
            self.pending.pop(request_id, None)

    async def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        try:
            while line := await self.process.stdout.readline():
                try:
                    answer = json.loads(line)
                    future = self.pending.get(answer["id"])
                except (ValueError, KeyError, TypeError):
                    self.stderr.append(f"(unexpected stdout) {line[:200]!r}")
                    continue
                if future is not None and not future.done():
                    future.set_result(answer)
        except (ValueError, asyncio.LimitOverrunError) as exc:
            self.stderr.append(f"(unreadable stdout) {exc}")
        code = await self.process.wait()
        # Read stderr to its end first, so the message has the worker's last words.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._readers[1]), 2)
        error = ProverError(
            f"the snarkjs worker (pid {self.process.pid}) exited with code {code} "
            f"during a proof; the next proof starts a fresh worker. "
            f"Its stderr ended with:\n{self.stderr_tail()}"
        )
        for future in self.pending.values():
            if not future.done():
                future.set_exception(error)

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.stderr.append(line.decode(errors="replace").rstrip())

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        await self._finish()

    async def stop(self) -> None:
        """Close stdin (the worker exits when it has answered), kill if it lingers."""
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), _STOP_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self._finish()

    async def _finish(self) -> None:
        await self.process.wait()
        # The readers end at EOF; give them a moment, then stop waiting on them.
        _, running = await asyncio.wait(self._readers, timeout=1.0)
        for task in running:
            task.cancel()


class SnarkjsWorker:
    """The node worker shared by any number of provers: started on the first proof,
    replaced after a timeout or a crash. Proofs wait their turn (see the module doc).

    A generator serving several markets gives every market's prover the same worker.
    """

    def __init__(self, *, node: str | None = None) -> None:
        self.node = find_node(node)
        self._process: _Process | None = None
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        """The node process id, None before the first proof or after a failure."""
        return self._process.process.pid if self._process is not None else None

    async def prove(
        self, wasm: Path, zkey: Path, inputs: Mapping[str, Any], *, timeout: float
    ) -> Groth16Proof | InvalidInputs:
        answer = await self.prove_json(wasm, zkey, inputs, timeout=timeout)
        if isinstance(answer, InvalidInputs):
            return answer
        try:
            return Groth16Proof.from_snarkjs(*answer)
        except ConfigError as exc:
            raise ProverError(
                f"the snarkjs worker answered something that is not a proof: {exc}"
            ) from exc

    async def prove_json(
        self,
        wasm: Path,
        zkey: Path,
        inputs: Mapping[str, Any],
        *,
        timeout: float,
        protocol: str = "groth16",
    ) -> tuple[dict[str, Any], list[str]] | InvalidInputs:
        """snarkjs' `proof.json` and `public.json` of `inputs`, or `InvalidInputs`."""
        # Converted before taking the lock: a bad value raises without touching the worker.
        payload = {"wasm": str(wasm), "zkey": str(zkey), "input": wire_inputs(inputs)}
        answer = await self._request({**payload, "protocol": protocol}, timeout)
        if "error" in answer:
            if answer.get("kind") == "witness":
                return InvalidInputs(str(answer["error"]))
            raise ProverError(
                f"snarkjs could not prove: {answer['error']}; check that the wasm and zkey "
                "belong to the same circuit and are readable"
            )
        if not isinstance(answer.get("proof"), dict) or not isinstance(
            answer.get("publicSignals"), list
        ):
            raise ProverError("the snarkjs worker answered something that is not a proof")
        return answer["proof"], [str(s) for s in answer["publicSignals"]]

    async def verify(
        self,
        protocol: str,
        vkey: Mapping[str, Any],
        proof: Mapping[str, Any],
        public: list[str],
        *,
        timeout: float = 60,
    ) -> bool:
        """Whether snarkjs accepts `proof` of `public` under `vkey` (a proof that does not
        parse is not accepted)."""
        payload = {"op": "verify", "protocol": protocol, "vkey": dict(vkey)}
        answer = await self._request(
            {**payload, "proof": dict(proof), "publicSignals": public}, timeout
        )
        if "error" in answer:
            raise ProverError(f"snarkjs could not verify: {answer['error']}")
        return answer.get("valid") is True

    async def public_signals(
        self, wasm: Path, inputs: Mapping[str, Any], n_public: int, *, timeout: float = 60
    ) -> list[int] | InvalidInputs:
        """The preflight of a request: the public signals a witness of `inputs` gives
        (snarkjs order), or `InvalidInputs` when no witness exists. No proof is made."""
        payload = {"op": "public", "wasm": str(wasm), "n_public": n_public}
        answer = await self._request({**payload, "input": wire_inputs(inputs)}, timeout)
        if "error" in answer:
            if answer.get("kind") == "witness":
                return InvalidInputs(str(answer["error"]))
            raise ProverError(f"snarkjs could not compute the witness: {answer['error']}")
        return [int(s) for s in answer["publicSignals"]]

    async def warm(self) -> None:
        """Start node and snarkjs now, so the first proof does not pay for it."""
        async with self._lock:
            await self._ensure()

    async def _ensure(self) -> _Process:
        if self._process is None or not self._process.alive:
            await self._discard()
            self._process = await _Process.start(self.node)
        return self._process

    async def _request(self, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        async with self._lock:
            process = await self._ensure()
            try:
                async with asyncio.timeout(timeout):
                    answer = await process.request(payload)
            except TimeoutError:
                await self._discard()
                raise ProverTimeout(
                    f"the snarkjs proof took longer than {timeout:g} s, so its worker "
                    "was killed; the next proof starts a fresh one. Raise the prover's "
                    "timeout if the circuit needs longer"
                ) from None
            except BaseException:
                # A crash (ProverError) or a cancelled caller: either way the worker is
                # gone or busy with a proof nobody waits for.
                await self._discard()
                raise
        return answer

    async def close(self) -> None:
        """Stop the worker; a later proof starts a new one."""
        async with self._lock:
            if self._process is not None:
                process, self._process = self._process, None
                await process.stop()

    async def _discard(self) -> None:
        if self._process is not None:
            process, self._process = self._process, None
            await process.kill()


class SnarkjsGroth16Prover:
    """`Prover` for a circom circuit: its wasm witness generator and Groth16 zkey.

    Without `worker` the prover starts and owns its own; with one, `close()` leaves the
    shared worker to its owner.
    """

    def __init__(
        self,
        wasm: str | os.PathLike[str],
        zkey: str | os.PathLike[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        node: str | None = None,
        worker: SnarkjsWorker | None = None,
    ) -> None:
        self.wasm = Path(wasm).resolve()
        self.zkey = Path(zkey).resolve()
        for kind, path in (("wasm", self.wasm), ("zkey", self.zkey)):
            if not path.is_file():
                raise ConfigError(f"no {kind} file at {path}; run `make circuits` or fix the path")
        if timeout <= 0:
            raise ConfigError(f"timeout must be positive, got {timeout}")
        #: seconds one proof may take before the worker is killed; may be changed
        self.timeout = timeout
        self._owns_worker = worker is None
        self.worker = worker if worker is not None else SnarkjsWorker(node=node)

    @classmethod
    def for_circuit(
        cls,
        name: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        node: str | None = None,
        worker: SnarkjsWorker | None = None,
    ) -> SnarkjsGroth16Prover:
        """A prover for one of the sample circuits (`kalypso.circuits.circuit(name)`)."""
        from kalypso.circuits import circuit

        c = circuit(name)
        return cls(c.wasm, c.zkey, timeout=timeout, node=node, worker=worker)

    @property
    def pid(self) -> int | None:
        """The worker's process id, None before the first proof or after a failure."""
        return self.worker.pid

    async def prove(self, inputs: Mapping[str, Any]) -> Groth16Proof | InvalidInputs:
        return await self.worker.prove(self.wasm, self.zkey, inputs, timeout=self.timeout)

    async def close(self) -> None:
        if self._owns_worker:
            await self.worker.close()
