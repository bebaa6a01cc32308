"""How the node proves one market's tasks: the prover plugin, the circuit's input schema,
and an optional solver that completes a task's inputs (`kalypso.provers.tasks`)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kalypso.circuits import load_circuit, load_schema, plonk
from kalypso.circuits.solvers import load_solver
from kalypso.enclave.client import EnclaveClient
from kalypso.errors import ConfigError, ProverError, VerdictRefused
from kalypso.generator.config import MarketConfig
from kalypso.generator.journal import Task
from kalypso.provers import InvalidInputs, Proof, Prover, TaskProver
from kalypso.provers.command import CommandProver
from kalypso.provers.http import HttpProver
from kalypso.provers.legacy import LegacyProver
from kalypso.provers.plonk import SnarkjsPlonkProver
from kalypso.provers.snarkjs import SnarkjsGroth16Prover, SnarkjsWorker
from kalypso.provers.tasks import CircuitTasks, Solver


@dataclass
class MarketProver:
    """A market's prover: the node's config for it and its `CircuitTasks`, or the
    Generator Image (`enclave`) that proves its tasks whole; and the enclaves that attest
    its proofs (`pvs`) and its invalid inputs (`ivs`), where the market wants them."""

    market_id: int
    config: MarketConfig
    #: None where a Generator Image proves
    prover: Prover | TaskProver | None
    #: input name -> "public" | "private"; None for a prover that takes raw signals
    inputs: dict[str, str] | None
    public_signals: list[str] | None
    solver: Solver | None
    enclave: EnclaveClient | None = None
    pvs: EnclaveClient | None = None
    ivs: EnclaveClient | None = None

    @property
    def tasks(self) -> CircuitTasks:
        if self.prover is None:
            raise ConfigError(f"market {self.config.market} is proven inside its Generator Image")
        return CircuitTasks(self.prover, self.inputs, self.public_signals, self.solver)

    def prover_inputs(self, public_inputs: bytes, secret: bytes | None) -> dict[str, Any]:
        return self.tasks.prover_inputs(public_inputs, secret)

    async def prove(self, public_inputs: bytes, secret: bytes | None) -> Proof | InvalidInputs:
        return await self.tasks.prove(public_inputs, secret)

    async def prove_task(self, task: Task, generator: str) -> Proof | InvalidInputs:
        """Prove one task (a private one in the Generator Image, a public one here) and
        get the attestations the market needs. An enclave that disagrees with this node
        (a proof it rejects, inputs it finds provable) is a `VerdictRefused`: the task is
        handed back at once."""
        ref = {
            "market_id": task.market_id,
            "task_id": "0x" + task.id.hex(),
            "generator": generator,
            "public_inputs": "0x" + task.public_inputs.hex(),
        }
        result: Proof | InvalidInputs
        if self.enclave is not None:
            if task.request is None:
                raise ProverError("the task's request is not fetched yet")
            result = await self.enclave.prove(
                ref, task.request, task.encrypted_secret, task.generator_secret
            )
        else:
            result = await self.prove(task.public_inputs, None)
        if isinstance(result, InvalidInputs):
            if result.evidence or self.ivs is None:
                return result
            attested = await self.ivs.attest_invalid(ref, result.reason)
            if attested is None:
                raise VerdictRefused("the Input Verification Image finds the inputs provable")
            return attested
        if self.pvs is None:
            return result
        proof = await self.pvs.attest_proof(ref, result.calldata())
        if proof is None:
            raise VerdictRefused("the Proof Verification Image rejects the prover's proof")
        return proof

    async def close(self) -> None:
        for closable in (self.prover, self.enclave, self.pvs, self.ivs):
            if closable is not None:
                await closable.close()


@dataclass(frozen=True)
class _CircuitFiles:
    inputs: dict[str, str]
    public_signals: list[str]
    wasm: Path
    zkey: Path


def _circuit(config: MarketConfig) -> _CircuitFiles | None:
    """The market's circuit: a sample's name or a built folder (`circuit`), or the
    operator's files."""
    if config.circuit is not None:
        c = load_circuit(config.circuit)
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
    prover: Prover | TaskProver | None = None
    if config.prover == "snarkjs":
        assert c is not None  # MarketConfig.check
        if config.proof_system == "plonk":
            assert config.circuit is not None
            zkey = plonk(config.circuit).zkey
            prover = SnarkjsPlonkProver(c.wasm, zkey, timeout=config.timeout, worker=worker)
        else:
            prover = SnarkjsGroth16Prover(c.wasm, c.zkey, timeout=config.timeout, worker=worker)
    elif config.prover == "enclave":
        pass  # the Generator Image proves
    elif config.prover == "command":
        assert config.command is not None
        program = config.command[0]
        if shutil.which(program) is None:
            raise ConfigError(
                f"cannot run the prover command {program!r} of market {config.market}: not "
                "found or not executable (give a path or a program on PATH)"
            )
        prover = CommandProver(config.command, timeout=config.timeout)
    elif config.api == "legacy":
        assert config.url is not None
        prover = LegacyProver(
            config.url,
            timeout=config.timeout,
            ivs_url=config.ivs_url,
            public_encoding=config.public_encoding or "fixed",
        )
    else:
        assert config.url is not None
        prover = HttpProver(config.url, timeout=config.timeout)
    solver = load_solver(config.solver) if config.solver else None

    def client(url: str | None) -> EnclaveClient | None:
        return EnclaveClient(url, timeout=config.timeout) if url else None

    return MarketProver(
        market_id,
        config,
        prover,
        inputs=c.inputs if c else None,
        public_signals=c.public_signals if c else None,
        solver=solver,
        enclave=client(config.url) if config.prover == "enclave" else None,
        pvs=client(config.proof_attestor),
        ivs=client(config.input_attestor),
    )


async def check_reachable(market: MarketProver) -> None:
    """An HTTP prover or enclave must answer (anything) at start, a template prover as
    its layout says (`LegacyProver.check`): a typo in a URL is a config error, not a
    slashed task later."""
    config = market.config
    urls = [config.proof_attestor, config.input_attestor]
    if isinstance(market.prover, LegacyProver):
        await market.prover.check()
    elif config.prover in ("http", "enclave"):
        urls.append(config.url)
    for url in filter(None, urls):
        await _answers(config, url)


async def _answers(config: MarketConfig, url: str) -> None:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            await client.get(url)
    except httpx.HTTPError as exc:
        raise ConfigError(
            f"the prover or enclave of market {config.market} at {url} is unreachable "
            f"({type(exc).__name__}): start it or fix `url`"
        ) from None
