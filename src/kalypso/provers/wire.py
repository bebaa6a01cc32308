"""The JSON shapes external provers speak, defined once for `CommandProver` and `HttpProver`.

A request carries the inputs by signal name, integers as decimal strings (as snarkjs'
`input.json` does: JSON numbers above 2**53 lose digits in JavaScript):

    {"inputs": {"square": "49", "max_root": "10", "root": "7"}}

An answer is one JSON object of one of three shapes:

    {"proof": <snarkjs proof.json>, "public_signals": ["49", "10"]}   a Groth16 proof
    {"proof_hex": "0x…", "public_inputs_hex": "0x…"}                 any other proof system
    {"invalid_inputs": "why no proof exists"}                         a verdict, not an error

`proof_hex` is exactly the bytes `submit_proof` takes and `public_inputs_hex` the
request's public inputs; they come back as a `BytesProof`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kalypso.errors import ConfigError, ProverError
from kalypso.provers import InvalidInputs
from kalypso.provers.proof import Groth16Proof

__all__ = ["BytesProof", "canonical_json", "parse_answer", "wire_inputs"]


@dataclass(frozen=True)
class BytesProof:
    """A proof of any system as opaque bytes: what the market's verifier takes."""

    proof: bytes
    public: bytes

    def calldata(self) -> bytes:
        return self.proof

    def public_inputs(self) -> bytes:
        return self.public


def _wire(value: Any, name: str) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _wire(v, f"{name}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_wire(v, f"{name}[{i}]") for i, v in enumerate(value)]
    raise ConfigError(
        f"input {name} is a {type(value).__name__}; give numbers, strings or arrays of them"
    )


def wire_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """`inputs` with every integer (also inside arrays) as a decimal string.

    Raises ConfigError for a value JSON cannot carry (a caller's mistake, not a verdict
    on the inputs: nothing is sent).
    """
    return {str(name): _wire(value, str(name)) for name, value in inputs.items()}


def canonical_json(inputs: Mapping[str, Any]) -> bytes:
    """One byte string per set of inputs: sorted keys, no spaces, integers as decimal
    strings, UTF-8. The private inputs travel in this form (the legacy API's secrets)."""
    return json.dumps(
        wire_inputs(inputs), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def _hex(value: Any, field: str, source: str) -> bytes:
    if not isinstance(value, str):
        raise ProverError(f"{source} answered a {field} that is not a hex string")
    try:
        return bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise ProverError(f"{source} answered a {field} that is not valid hex") from None


def parse_answer(answer: Any, source: str) -> Groth16Proof | BytesProof | InvalidInputs:
    """One of the three answer shapes; anything else is the prover's fault (ProverError).

    `source` names the prover in error messages ("prover command ./prove.py").
    """
    if not isinstance(answer, Mapping):
        raise ProverError(f"{source} answered {type(answer).__name__}, not a JSON object")
    if "invalid_inputs" in answer:
        reason = answer["invalid_inputs"]
        if not isinstance(reason, str) or not reason:
            raise ProverError(f"{source} answered invalid_inputs without a reason string")
        return InvalidInputs(reason)
    if "proof" in answer:
        if "public_signals" not in answer:
            raise ProverError(f"{source} answered a proof without public_signals")
        signals = answer["public_signals"]
        if not isinstance(signals, list):
            raise ProverError(f"{source} answered public_signals that are not a list")
        try:
            return Groth16Proof.from_snarkjs(answer["proof"], signals)
        except (ConfigError, ValueError, TypeError) as exc:
            raise ProverError(f"{source} answered a malformed Groth16 proof: {exc}") from exc
    if "proof_hex" in answer:
        if "public_inputs_hex" not in answer:
            raise ProverError(f"{source} answered proof_hex without public_inputs_hex")
        return BytesProof(
            _hex(answer["proof_hex"], "proof_hex", source),
            _hex(answer["public_inputs_hex"], "public_inputs_hex", source),
        )
    raise ProverError(
        f"{source} answered none of proof, proof_hex or invalid_inputs "
        f"(keys: {', '.join(sorted(map(str, answer))) or 'none'})"
    )
