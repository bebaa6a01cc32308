"""A prover behind HTTP: Kalypso's own API, or Marlin's Kalypso prover template.

Kalypso API (`api="kalypso"`), the shapes of `kalypso.provers.wire`:

    POST {base_url}/prove
        {"inputs": {<signal>: <value>, ...}}             integers as decimal strings
    200 {"proof": <snarkjs proof.json>, "public_signals": ["…", …]}
     or {"proof_hex": "0x…", "public_inputs_hex": "0x…"}
     or {"invalid_inputs": "<reason>"}                   no proof exists: a verdict

Legacy API (`api="legacy"`), what existing Kalypso provers implement
(REFERENCE-kalypso.md). Bodies are `InputPayload`s,
`{"public": [u8…], "secrets": {"PlainSecrets": [u8…]} | null}`, where `public` is the
request's public inputs (abi `uint256[]` of `public_signals`, in order) and the secret
the canonical JSON of the other inputs (`wire.canonical_json`):

    POST {base_url}/api/checkInput      -> {"valid": bool}        asked first
    POST {base_url}/api/generateProof   -> {"proof": [u8…]}       the bytes submit_proof takes
    GET  {base_url}/api/benchmark       -> {"data": …, "time_in_ms": n}   `benchmark()`

`/api/getAttestationForInvalidInputs` is deliberately not called: its signature is not
bound to a chain, contract or market and so can be replayed; from a legacy prover only
verdicts and proofs are taken, and invalid inputs are attested by Kalypso's own Input
Verification image. The legacy API has no place for a public output the caller does not
know, so every name in `public_signals` must be among the inputs (the generator takes
them from the request's public inputs).

Any other status, shape or transport failure raises `ProverError`; a proof that takes
longer than `timeout` (all calls of one proof together) raises `ProverTimeout`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from kalypso.errors import ConfigError, ProverError, ProverTimeout
from kalypso.market import BN254_SCALAR_FIELD, encode_signals
from kalypso.provers import InvalidInputs
from kalypso.provers.proof import Groth16Proof
from kalypso.provers.wire import BytesProof, canonical_json, parse_answer, wire_inputs

__all__ = ["Benchmark", "HttpProver"]

Api = Literal["kalypso", "legacy"]


@dataclass(frozen=True)
class Benchmark:
    """A legacy prover's `/api/benchmark` answer."""

    data: Any
    time_ms: float


def _u8_list(value: Any) -> bytes | None:
    if not isinstance(value, list):
        return None
    if not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in value):
        return None
    return bytes(value)


def _integer(value: Any) -> int | None:
    """A signal value as snarkjs reads it: an integer, or a decimal or 0x-hex string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text, 16) if text.lower().startswith("0x") else int(text)
        except ValueError:
            return None
    return None


class HttpProver:
    """`Prover` that asks a prover service over HTTP (see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        api: Api = "kalypso",
        public_signals: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if api not in ("kalypso", "legacy"):
            raise ConfigError(f"api must be 'kalypso' or 'legacy', got {api!r}")
        if api == "legacy" and not public_signals:
            raise ConfigError(
                "the legacy prover API takes the public inputs as bytes: give "
                "public_signals, the circuit's public signal names in snarkjs order "
                "(HttpProver.for_circuit does)"
            )
        if timeout <= 0:
            raise ConfigError(f"timeout must be positive, got {timeout}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.api: Api = api
        self.public_signals = list(public_signals or [])
        self._client = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, headers=dict(headers or {})
        )

    @classmethod
    def for_circuit(
        cls, base_url: str, name: str, *, timeout: float, api: Api = "kalypso"
    ) -> HttpProver:
        """A prover service for one of the sample circuits (`kalypso.circuits.circuit`)."""
        from kalypso.circuits import circuit

        return cls(base_url, timeout=timeout, api=api, public_signals=circuit(name).public_signals)

    async def prove(self, inputs: Mapping[str, Any]) -> Groth16Proof | BytesProof | InvalidInputs:
        try:
            async with asyncio.timeout(self.timeout):
                if self.api == "legacy":
                    return await self._prove_legacy(inputs)
                answer = await self._post("/prove", {"inputs": wire_inputs(inputs)})
                return parse_answer(answer, f"prover at {self.base_url}")
        except (TimeoutError, httpx.TimeoutException):
            raise ProverTimeout(
                f"the prover at {self.base_url} did not answer within {self.timeout:g} s; "
                "the request was abandoned. Raise the timeout if its proofs need longer"
            ) from None

    async def benchmark(self) -> Benchmark:
        """The legacy prover's own benchmark (`GET /api/benchmark`)."""
        if self.api != "legacy":
            raise ConfigError("benchmark() belongs to the legacy prover-template API")
        try:
            async with asyncio.timeout(self.timeout):
                answer = await self._request("GET", "/api/benchmark")
        except (TimeoutError, httpx.TimeoutException):
            raise ProverTimeout(
                f"the prover at {self.base_url} did not benchmark within {self.timeout:g} s"
            ) from None
        if not isinstance(answer, Mapping) or not isinstance(answer.get("time_in_ms"), int | float):
            raise ProverError(f"the prover at {self.base_url} answered a malformed benchmark")
        return Benchmark(answer.get("data"), float(answer["time_in_ms"]))

    async def close(self) -> None:
        await self._client.aclose()

    async def _prove_legacy(self, inputs: Mapping[str, Any]) -> BytesProof | InvalidInputs:
        missing = [name for name in self.public_signals if name not in inputs]
        if missing:
            raise ConfigError(
                f"the legacy prover API needs every public signal among the inputs; "
                f"missing {', '.join(missing)} (take them from the request's public inputs)"
            )
        values: list[int] = []
        for name in self.public_signals:
            number = _integer(inputs[name])
            if number is None:
                return InvalidInputs(f"public signal {name} is not an integer: {inputs[name]!r}")
            if not 0 <= number < BN254_SCALAR_FIELD:
                return InvalidInputs(f"public signal {name} is not in the BN254 scalar field")
            values.append(number)
        try:
            public = encode_signals(values)
        except ConfigError as exc:
            return InvalidInputs(str(exc))
        private = {k: v for k, v in inputs.items() if k not in self.public_signals}
        payload = {
            "public": list(public),
            "secrets": {"PlainSecrets": list(canonical_json(private))} if private else None,
        }
        verdict = await self._post("/api/checkInput", payload)
        if not isinstance(verdict, Mapping) or not isinstance(verdict.get("valid"), bool):
            raise ProverError(f"the prover at {self.base_url} answered checkInput without valid")
        if not verdict["valid"]:
            return InvalidInputs(f"the prover at {self.base_url} says the inputs are invalid")
        answer = await self._post("/api/generateProof", payload)
        proof = _u8_list(answer.get("proof")) if isinstance(answer, Mapping) else None
        if proof is None:
            raise ProverError(
                f"the prover at {self.base_url} answered generateProof without a proof "
                "as an array of bytes"
            )
        return BytesProof(proof, public)

    async def _post(self, path: str, body: Any) -> Any:
        return await self._request("POST", path, body)

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        try:
            response = await self._client.request(method, path, json=body)
        except httpx.TimeoutException:
            raise
        except httpx.HTTPError as exc:
            raise ProverError(
                f"cannot reach the prover at {self.base_url}{path}: {exc!r}; check that it "
                "runs and the URL is right"
            ) from exc
        if response.status_code != 200:
            raise ProverError(
                f"the prover at {self.base_url}{path} answered HTTP {response.status_code}: "
                f"{response.text[:500]}"
            )
        try:
            return response.json()
        except ValueError:
            raise ProverError(
                f"the prover at {self.base_url}{path} answered something that is not JSON: "
                f"{response.text[:200]}"
            ) from None
