"""Prover plugins: turn a task's inputs into a proof, or a verdict that they are invalid.

Every plugin implements `Prover`; `kalypso.provers.proof` holds the proof types and
their encodings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from kalypso.provers.proof import Groth16Proof

__all__ = ["Groth16Proof", "InvalidInputs", "Proof", "Prover", "TaskProver"]


@runtime_checkable
class Proof(Protocol):
    """What a generator submits: proof bytes and the public inputs they prove."""

    def calldata(self) -> bytes: ...

    def public_inputs(self) -> bytes: ...


@dataclass(frozen=True)
class InvalidInputs:
    """The inputs cannot be proven (no witness exists); `reason` says why. `evidence` is
    what `submit_invalid_inputs` shows for it (an enclave's attestation), if anything."""

    reason: str
    evidence: bytes = b""


@runtime_checkable
class Prover(Protocol):
    async def prove(self, inputs: Mapping[str, Any]) -> Proof | InvalidInputs:
        """Prove `inputs` (circuit signal name -> value, private and public)."""
        ...

    async def close(self) -> None:
        """Release processes and connections."""
        ...


@runtime_checkable
class TaskProver(Protocol):
    """A prover that takes a task as the chain carries it, public input bytes and the
    secret, and finds its own witness (a prover written for Marlin's Kalypso)."""

    async def prove_task(self, public_inputs: bytes, secret: bytes | None) -> Proof | InvalidInputs:
        """Prove the request's public inputs (with its private ones, if given)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
