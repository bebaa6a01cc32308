"""`kalypso generator benchmark`: time the market's prover on sample inputs and price a
proof at the current gas price."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kalypso.circuits import circuit, load_circuit
from kalypso.errors import ConfigError
from kalypso.generator.config import GeneratorConfig, MarketConfig
from kalypso.generator.operator.chain import connect, metadata
from kalypso.generator.proving import build_prover, check_reachable
from kalypso.market import catalog
from kalypso.market.audit import read_market
from kalypso.provers import InvalidInputs, Prover
from kalypso.provers.legacy import LegacyProver
from kalypso.provers.snarkjs import SnarkjsWorker

#: gas of one `submit_proof` without the verifier: the first payment to a generator,
#: with the MockVerifier (bench/results/gas.json, "submit_proof (first payment)": 94,801)
SUBMIT_GAS = 95_000
#: `Groth16Verifier.verify` without the 21,000 transaction base: 199,352 gas at one
#: public input, 206,773 at two (bench/results/verify.json), so ~192,000 + 7,500 a
#: signal. A single Groth16 submit with one public input: ~290,000 gas.
GROTH16_VERIFY_GAS = 192_000
GROTH16_GAS_PER_SIGNAL = 7_500
#: `benchmark` never suggests a proof time below this (a few block times)
MIN_PROOF_TIME = 10


@dataclass(frozen=True)
class Benchmark:
    market_id: int
    config: MarketConfig
    seconds: tuple[float, ...]
    suggested_proof_time: int
    submit_gas: int
    #: where the gas figure comes from
    gas_source: str
    gas_price_wei: int
    token_symbol: str
    token_decimals: int

    @property
    def break_even_wei(self) -> int:
        return self.submit_gas * self.gas_price_wei

    def break_even_tokens(self, token_per_eth: float) -> int:
        """The break-even price in token base units at `token_per_eth` tokens an ETH."""
        rate = Decimal(str(token_per_eth)) * Decimal(10) ** (self.token_decimals - 18)
        return math.ceil(self.break_even_wei * rate)


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile: with fewer than 100 runs, p99 is the slowest."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def suggest_proof_time(seconds: list[float], submit_margin: float) -> int:
    return max(MIN_PROOF_TIME, math.ceil(2 * quantile(seconds, 0.99) + submit_margin))


def submit_gas(meta: dict[str, Any], public_inputs: int) -> tuple[int, str]:
    """Gas of one `submit_proof` in a market, from the bench results (see the constants):
    an estimate, as `eth_estimateGas` needs a live task."""
    if meta.get("verifier") == "groth16":
        gas = SUBMIT_GAS + GROTH16_VERIFY_GAS + GROTH16_GAS_PER_SIGNAL * public_inputs
        return gas, f"Groth16, {public_inputs} public signal(s); bench/results"
    return SUBMIT_GAS, "the marketplace's part only: the verifier's gas is unknown"


def benchmark(
    settings: GeneratorConfig,
    market: str,
    *,
    runs: int = 5,
    inputs: dict[str, Any] | None = None,
    config_file: str = "the config",
) -> Benchmark:
    """Prove sample inputs `runs` times with the market's configured prover (the first
    run includes starting the prover) and price a proof at the current gas price."""
    if runs < 1:
        raise ConfigError("--runs must be at least 1")
    client = connect(settings)
    resolve = catalog.resolver(client)
    mid = resolve(market)
    config = next((m for m in settings.markets if _same(resolve, m.market, mid)), None)
    if config is None:
        keys = " or ".join(f"[markets.{k}]" for k in dict.fromkeys((str(mid), market)))
        raise ConfigError(
            f"market {mid} has no table in {config_file}: add {keys} (`kalypso init` writes one)"
        )
    onchain = read_market(client, mid)
    meta = metadata(onchain)
    sample = inputs if inputs is not None else _sample_inputs(config, meta)
    seconds = asyncio.run(_prove(mid, config, sample, runs))
    gas, source = submit_gas(meta, onchain.public_inputs_count)
    return Benchmark(
        mid,
        config,
        tuple(seconds),
        suggest_proof_time(seconds, settings.submit_margin),
        gas,
        source,
        int(client.w3.eth.gas_price),
        client.deployment.token_symbol,
        client.deployment.token_decimals,
    )


def _same(resolve: Callable[[int | str], int], market: str, mid: int) -> bool:
    try:
        return resolve(market) == mid
    except ConfigError:
        return False


def _sample_inputs(config: MarketConfig, meta: dict[str, Any]) -> dict[str, Any]:
    """The inputs of the sample proof of the market's circuit: the config's (a sample or
    a built folder), else the sample circuit the metadata names (never read as a path)."""
    name = str(config.circuit or meta.get("circuit"))
    found = None
    try:
        c = load_circuit(config.circuit) if config.circuit else circuit(name)
        if (sample := c.sample) is not None:
            found = json.loads(sample.read_text()).get("input")
    except (ConfigError, OSError, ValueError):
        pass
    if not isinstance(found, dict):
        raise ConfigError(f"no sample inputs for circuit {name}: give --inputs JSON")
    return found


async def _prove(mid: int, config: MarketConfig, inputs: dict[str, Any], runs: int) -> list[float]:
    worker = SnarkjsWorker()
    prover = build_prover(mid, config, worker)
    try:
        await check_reachable(prover)
        if isinstance(prover.prover, LegacyProver):  # a template prover benchmarks itself
            return [(await prover.prover.benchmark()).time_ms / 1000 for _ in range(runs)]
        if not isinstance(prover.prover, Prover):
            raise ConfigError(f"market {config.market} is proven inside its Generator Image")
        if prover.solver is not None and not set(prover.inputs or ()) <= set(inputs):
            solved = prover.solver(inputs)
            if isinstance(solved, InvalidInputs):
                raise ConfigError(f"the sample inputs have no solution: {solved.reason}")
            inputs = {**inputs, **solved}
        seconds = []
        for _ in range(runs):
            start = time.perf_counter()
            result = await prover.prover.prove(inputs)
            seconds.append(time.perf_counter() - start)
            if isinstance(result, InvalidInputs):
                raise ConfigError(f"the sample inputs are not provable: {result.reason}")
        return seconds
    finally:
        await prover.close()
        await worker.close()
