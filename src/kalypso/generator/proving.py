"""How the node proves one market's tasks: the prover plugin, the circuit's input schema,
and an optional solver that completes a task's inputs.

A task carries its public signals (snarkjs order) and maybe a secret (canonical JSON of
private signals). The prover is given the circuit's *inputs* by name: the public
signals that are inputs, the secret's values and what the solver computes. The proof
must prove exactly the requested public signals; if the inputs give others (a secret
that does not hash to the requested hash), no proof of the request exists: the inputs
are invalid.
"""

from __future__ import annotations

import importlib
import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kalypso.circuits import circuit, load_schema
from kalypso.circuits.solvers import SOLVERS
from kalypso.errors import ConfigError
from kalypso.generator.config import MarketConfig
from kalypso.market import decode_signals
from kalypso.provers import InvalidInputs, Proof, Prover
from kalypso.provers.command import CommandProver
from kalypso.provers.http import HttpProver
from kalypso.provers.snarkjs import SnarkjsGroth16Prover, SnarkjsWorker

#: (public inputs by name) -> the private inputs that complete them, or a verdict
Solver = Callable[[Mapping[str, int]], Mapping[str, int] | InvalidInputs]

BUILTIN_SOLVERS = {name: f"kalypso.circuits.solvers:{name}" for name in SOLVERS}


@dataclass
class MarketProver:
    market_id: int
    config: MarketConfig
    prover: Prover
    #: input name -> "public" | "private"; None for a prover that takes raw signals
    inputs: dict[str, str] | None
    public_signals: list[str] | None
    solver: Solver | None

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

    async def close(self) -> None:
        await self.prover.close()


def load_solver(name: str) -> Solver:
    """A solver by built-in name or `package.module:function`."""
    target = BUILTIN_SOLVERS.get(name, name)
    module, _, function = target.partition(":")
    try:
        solver = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(
            f"no solver {name!r}: give a built-in ({', '.join(BUILTIN_SOLVERS)}) or "
            "`package.module:function`"
        ) from None
    if not callable(solver):
        raise ConfigError(f"solver {name!r} is not a function")
    return solver  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _CircuitFiles:
    inputs: dict[str, str]
    public_signals: list[str]
    wasm: Path
    zkey: Path


def _circuit(config: MarketConfig) -> _CircuitFiles | None:
    """The market's circuit: a sample one by name, or the operator's files."""
    if config.circuit is not None:
        c = circuit(config.circuit)
        return _CircuitFiles(c.inputs, c.public_signals, c.wasm, c.zkey)
    if config.schema is None:
        return None  # a prover that reads the public inputs as bytes
    schema = load_schema(config.schema)
    wasm, zkey = config.wasm or Path("-"), config.zkey or Path("-")
    return _CircuitFiles(dict(schema["inputs"]), list(schema["public_signals"]), wasm, zkey)


def build_prover(market_id: int, config: MarketConfig, worker: SnarkjsWorker) -> MarketProver:
    """The market's prover, checked as far as it can be before any task: artifacts exist,
    the command is executable, the solver imports."""
    c = _circuit(config)
    prover: Prover
    if config.prover == "snarkjs":
        assert c is not None  # MarketConfig.check
        prover = SnarkjsGroth16Prover(c.wasm, c.zkey, timeout=config.timeout, worker=worker)
    elif config.prover == "command":
        assert config.command is not None
        program = config.command[0]
        if shutil.which(program) is None:
            raise ConfigError(
                f"cannot run the prover command {program!r} of market {config.market}: not "
                "found or not executable (give a path or a program on PATH)"
            )
        prover = CommandProver(config.command, timeout=config.timeout)
    else:
        assert config.url is not None
        prover = HttpProver(
            config.url, timeout=config.timeout, public_signals=c.public_signals if c else None
        )
    solver = load_solver(config.solver) if config.solver else None
    return MarketProver(
        market_id,
        config,
        prover,
        inputs=c.inputs if c else None,
        public_signals=c.public_signals if c else None,
        solver=solver,
    )


async def check_reachable(config: MarketConfig) -> None:
    """An HTTP prover must answer (anything) at start: a typo in its URL is a config error,
    not a slashed task later."""
    if config.prover != "http" or config.url is None:
        return
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            await client.get(config.url)
    except httpx.HTTPError as exc:
        raise ConfigError(
            f"the prover of market {config.market} at {config.url} is unreachable "
            f"({type(exc).__name__}): start it or fix `url`"
        ) from None
