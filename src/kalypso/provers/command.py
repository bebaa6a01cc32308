"""A prover that is any external program, run once per proof.

For provers Kalypso has no plugin for (rapidsnark, a Rust prover, a script around a
GPU prover): the program reads one request on stdin and writes one answer on stdout.

Contract (the shapes are `kalypso.provers.wire`'s):

- argv: run as given, without a shell, in its own process group, in `cwd` if set.
- stdin: one JSON object, then EOF:
  `{"inputs": {<signal>: <value>, ...}}`, integers as decimal strings.
- stdout: exactly one JSON object (surrounding whitespace allowed), one of
  `{"proof": <snarkjs proof.json>, "public_signals": ["…", …]}` (Groth16),
  `{"proof_hex": "0x…", "public_inputs_hex": "0x…"}` (any other proof, as the bytes
  `submit_proof` takes), or `{"invalid_inputs": "<reason>"}` when no proof exists for
  these inputs (the generator then takes the invalid-input path, not a retry).
- stderr: free-form logs; its last lines go into the error when the program fails.
- exit code: 0 with one of the answers above. Anything else is a prover failure
  (`ProverError`, the task may be retried): a non-zero exit, a signal, an answer that
  is not one of the shapes.
- timeout: past `timeout` seconds the whole process group is killed (SIGKILL) and
  `ProverTimeout` is raised.

Proofs run concurrently, one process each; `close()` kills any still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from kalypso.errors import ConfigError, ProverError, ProverTimeout
from kalypso.provers import InvalidInputs
from kalypso.provers.proof import Groth16Proof
from kalypso.provers.wire import BytesProof, parse_answer, wire_inputs

__all__ = ["CommandProver"]

_STDERR_TAIL = 2000


def _tail(data: bytes) -> str:
    text = data.decode(errors="replace").strip()
    if len(text) > _STDERR_TAIL:
        text = "…" + text[-_STDERR_TAIL:]
    return text or "(nothing)"


class CommandProver:
    """`Prover` that runs `argv` per proof under the contract in the module docstring."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if not argv:
            raise ConfigError("CommandProver needs a command: argv is empty")
        if timeout <= 0:
            raise ConfigError(f"timeout must be positive, got {timeout}")
        self.argv = [str(arg) for arg in argv]
        self.timeout = timeout
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self._running: set[asyncio.subprocess.Process] = set()

    @property
    def _name(self) -> str:
        return f"prover command {self.argv[0]}"

    async def prove(self, inputs: Mapping[str, Any]) -> Groth16Proof | BytesProof | InvalidInputs:
        request = json.dumps({"inputs": wire_inputs(inputs)}).encode()
        try:
            process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
            )
        except OSError as exc:
            raise ProverError(
                f"cannot start {self._name}: {exc}; check the path and that it is executable"
            ) from exc
        self._running.add(process)
        try:
            async with asyncio.timeout(self.timeout):
                stdout, stderr = await process.communicate(request)
        except TimeoutError:
            await self._kill(process)
            raise ProverTimeout(
                f"{self._name} ran longer than {self.timeout:g} s and was killed; raise "
                "the timeout if its proofs need longer, or check that it does not hang "
                "(it must exit after writing its answer)"
            ) from None
        except BaseException:
            await self._kill(process)
            raise
        finally:
            self._running.discard(process)
        code = process.returncode
        if code != 0:
            if code is not None and code < 0:
                how = f"was killed by signal {-code}"
            else:
                how = f"exited with code {code}"
            raise ProverError(f"{self._name} {how}; its stderr ended with:\n{_tail(stderr)}")
        try:
            answer = json.loads(stdout)
        except ValueError:
            raise ProverError(
                f"{self._name} wrote something that is not one JSON object on stdout "
                f"(logs belong on stderr): {_tail(stdout)[:200]}"
            ) from None
        return parse_answer(answer, self._name)

    async def close(self) -> None:
        for process in list(self._running):
            await self._kill(process)

    @staticmethod
    async def _kill(process: asyncio.subprocess.Process) -> None:
        # The process leads its own group: kill helpers it started (node, a GPU
        # prover) along with it.
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        # A grandchild outside the group may still hold the pipes open; do not wait on them.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 5.0)
