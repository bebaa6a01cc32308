"""Proving one task of a circuit: its inputs by name, a solver, and the public-signal check.

A task carries its public signals (snarkjs order) and maybe a secret (canonical JSON of
private signals). The prover is given the circuit's *inputs* by name: the public
signals that are inputs, the secret's values and what the solver computes. The proof
must prove exactly the requested public signals; if the inputs give others (a secret
that does not hash to the requested hash), no proof of the request exists: the inputs
are invalid. A `TaskProver` (Marlin's template) takes the task's bytes as they are and
finds its own witness: no input schema, no solver. Shared by the generator node and the
Generator Image enclave.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kalypso.errors import ConfigError, ProverError
from kalypso.market import decode_signals
from kalypso.provers import InvalidInputs, Proof, Prover, TaskProver

#: (public inputs by name) -> the private inputs that complete them, or a verdict
Solver = Callable[[Mapping[str, int]], Mapping[str, int] | InvalidInputs]


@dataclass
class CircuitTasks:
    """How to prove a circuit's tasks with `prover`."""

    prover: Prover | TaskProver
    #: input name -> "public" | "private"; None for a prover that takes raw signals
    inputs: dict[str, str] | None
    public_signals: list[str] | None
    solver: Solver | None = None

    def prover_inputs(self, public_inputs: bytes, secret: bytes | None) -> dict[str, Any]:
        """The inputs to prove a task with, by circuit input name."""
        values: dict[str, Any] = {}
        if self.inputs is not None and self.public_signals is not None:
            signals = decode_signals(public_inputs)
            if len(signals) != len(self.public_signals):
                raise ConfigError(
                    f"the task has {len(signals)} public signals, the circuit "
                    f"{len(self.public_signals)}"
                )
            named = dict(zip(self.public_signals, signals, strict=True))
            values = {n: v for n, v in named.items() if self.inputs.get(n) == "public"}
        else:
            values = {"public_inputs": "0x" + public_inputs.hex()}
        if secret:
            private = json.loads(secret)
            if not isinstance(private, dict):
                raise ConfigError("the task's secret is not a JSON object of private signals")
            values.update(private)
        return values

    async def prove(self, public_inputs: bytes, secret: bytes | None) -> Proof | InvalidInputs:
        if isinstance(self.prover, TaskProver):
            result = await self.prover.prove_task(public_inputs, secret)
            if isinstance(result, InvalidInputs) or result.public_inputs() == public_inputs:
                return result
            raise ProverError("the prover proved other public inputs than the task's")
        try:
            inputs = self.prover_inputs(public_inputs, secret)
        except (ConfigError, ValueError) as exc:
            return InvalidInputs(f"the task's inputs do not fit the circuit: {exc}")
        if self.solver is not None:
            solved = self.solver(inputs)
            if isinstance(solved, InvalidInputs):
                return solved
            inputs = {**inputs, **solved}
        result = await self.prover.prove(inputs)
        if isinstance(result, InvalidInputs) or result.public_inputs() == public_inputs:
            return result
        return InvalidInputs(
            "the inputs give other public signals than the request's (a secret that does "
            "not match the public inputs)"
        )
