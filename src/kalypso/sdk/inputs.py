"""A request's inputs from the names the circuit gives them (DESIGN §8).

`request_proof(market, {"preimage": 7})` becomes the public signals (`uint256[]` in
snarkjs `public.json` order, computed by the preflight) and a secret (canonical JSON of
the private inputs the requester gave; the generator's solver finds any it left out).
The preflight runs the market's witness generator, checked against the metadata's
hash, so unprovable inputs are refused before any money moves.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kalypso.circuits import CIRCUIT_NAME, circuit, sha256_file
from kalypso.circuits.solvers import SOLVERS
from kalypso.errors import ConfigError, KalypsoError
from kalypso.market import BN254_SCALAR_FIELD, decode_signals, encode_signals
from kalypso.provers import InvalidInputs
from kalypso.provers.snarkjs import SnarkjsWorker
from kalypso.sdk.markets import Market

#: What a request may be given: inputs by name, raw public signals, or encoded bytes.
Inputs = Mapping[str, Any] | Sequence[int] | bytes


class UnprovableInputsError(KalypsoError, ValueError):
    """The preflight found no proof of these inputs; nothing was sent."""

    code = "K-SDK-001"


@dataclass(frozen=True)
class PreparedInputs:
    public_inputs: bytes
    public_signals: tuple[int, ...]
    #: the private inputs to seal to the matching engine (None: a public request)
    secret: dict[str, Any] | None

    def secret_bytes(self) -> bytes | None:
        """Canonical JSON, as generators read it."""
        if self.secret is None:
            return None
        return json.dumps(self.secret, sort_keys=True, separators=(",", ":")).encode()


def field_element(name: str, value: Any) -> Any:
    """A signal value (int, decimal or 0x text; lists of them) checked to be in the field."""
    if isinstance(value, list | tuple):
        return [field_element(name, v) for v in value]
    if isinstance(value, bool):
        raise ConfigError(f"input {name!r} is a boolean; give a number")
    try:
        number = value if isinstance(value, int) else _number(str(value).strip())
    except ValueError:
        raise ConfigError(f"input {name!r} = {value!r} is not a number") from None
    if not 0 <= number < BN254_SCALAR_FIELD:
        raise ConfigError(f"input {name!r} = {number} is not in the BN254 scalar field")
    return number


def _number(text: str) -> int:
    """Decimal text (leading zeros allowed) or 0x hex."""
    if text[:2].lower() == "0x":
        return int(text, 16)
    if not re.fullmatch(r"-?[0-9]+", text):
        raise ValueError(text)
    return int(text)


def _raw(inputs: Sequence[int] | bytes) -> PreparedInputs:
    if isinstance(inputs, bytes | bytearray):
        data = bytes(inputs)
        return PreparedInputs(data, tuple(decode_signals(data)), None)
    signals = [field_element(f"signal {i}", v) for i, v in enumerate(inputs)]
    return PreparedInputs(encode_signals(signals), tuple(signals), None)


def named(market: Market, inputs: Inputs) -> dict[str, Any]:
    """The inputs by name, checked against the market's schema."""
    if not isinstance(inputs, Mapping):
        raise ConfigError(
            f"market {market.name} names its inputs ({', '.join(market.inputs)}): "
            "give them as a dict"
        )
    known = set(market.inputs) | set(market.public_signals)
    unknown = sorted(set(inputs) - known)
    if unknown:
        raise ConfigError(
            f"market {market.name} has no input {', '.join(map(repr, unknown))}; "
            f"its inputs are {', '.join(sorted(known))}"
        )
    return {str(k): field_element(str(k), v) for k, v in inputs.items()}


def witness_inputs(market: Market, values: Mapping[str, Any]) -> dict[str, Any]:
    """Every circuit input, the missing private ones completed by the circuit's solver."""
    given = {n: v for n, v in values.items() if n in market.inputs}
    missing = [n for n in market.inputs if n not in given]
    solver = SOLVERS.get(market.circuit or "")
    if missing and solver is not None and all(n in market.private_inputs for n in missing):
        solved = solver({n: v for n, v in given.items() if market.inputs[n] == "public"})
        if isinstance(solved, InvalidInputs):
            raise UnprovableInputsError(
                f"no proof exists for these inputs: {solved.reason}; nothing was sent"
            )
        given |= dict(solved)
        missing = [n for n in market.inputs if n not in given]
    if missing:
        raise ConfigError(f"market {market.name} needs input(s) {', '.join(missing)}")
    return given


def check_signals(market: Market, values: Mapping[str, Any], computed: Sequence[int]) -> None:
    for name, value in zip(market.public_signals, computed, strict=True):
        if name in values and values[name] != value:
            raise UnprovableInputsError(
                f"your inputs make the circuit output {name} = {value}, not the "
                f"{values[name]} you gave: no proof of that exists; nothing was sent"
            )


def split(market: Market, values: Mapping[str, Any], signals: Sequence[int]) -> PreparedInputs:
    """Public signals and the secret: the private inputs the requester gave."""
    secret = {n: values[n] for n in market.private_inputs if n in values}
    return PreparedInputs(encode_signals(list(signals)), tuple(signals), secret or None)


def given_signals(market: Market, values: Mapping[str, Any]) -> list[int]:
    """Without a preflight every public signal must be given by name."""
    missing = [n for n in market.public_signals if n not in values]
    if missing:
        raise ConfigError(
            f"without a preflight give every public signal of market {market.name}: "
            f"missing {', '.join(missing)}"
        )
    return [int(values[n]) for n in market.public_signals]


def witness_generator(market: Market, chain_id: int, wasm: Path | str | None = None) -> Path:
    """The market's wasm, checked against its metadata's SHA-256: `wasm` if given, else
    the sample circuit it names, else what `kalypso generator fetch` downloaded."""
    recorded = (market.metadata.get("artifacts") or {}).get("wasm")
    candidates = [Path(wasm)] if wasm is not None else []
    if wasm is None and market.circuit and CIRCUIT_NAME.fullmatch(market.circuit):
        with contextlib.suppress(ConfigError):  # not a sample circuit
            candidates.append(circuit(market.circuit).wasm)
        fetched = Path.home() / ".kalypso" / "artifacts" / str(chain_id) / str(market.id)
        candidates.append(fetched / f"{market.circuit}.wasm")
    for path in candidates:
        if path is not None and path.is_file():
            if recorded is not None and sha256_file(path) != recorded:
                raise ConfigError(
                    f"{path} is not the witness generator market {market.name} records "
                    "(its SHA-256 differs): fetch the market's artifacts again"
                )
            return path
    raise ConfigError(
        f"no witness generator for market {market.name} to preflight with: run `kalypso "
        f"generator fetch {market.id}`, pass wasm=PATH, or skip_preflight=True"
    )


async def prepare(
    market: Market,
    inputs: Inputs,
    *,
    worker: SnarkjsWorker | None,
    wasm: Path | None = None,
) -> PreparedInputs:
    """Encode `inputs` for `market`; with a `worker`, preflight them first."""
    if not market.inputs:
        return _raw(inputs) if not isinstance(inputs, Mapping) else _no_schema(market)
    values = named(market, inputs)
    if worker is None or wasm is None:
        return split(market, values, given_signals(market, values))
    computed = await worker.public_signals(
        wasm, witness_inputs(market, values), len(market.public_signals)
    )
    if isinstance(computed, InvalidInputs):
        raise UnprovableInputsError(
            f"the circuit has no witness for these inputs ({computed.reason}); nothing was sent"
        )
    check_signals(market, values, computed)
    return split(market, values, computed)


def _no_schema(market: Market) -> PreparedInputs:
    raise ConfigError(
        f"market {market.name} records no input schema: give its public signals as a list"
    )
