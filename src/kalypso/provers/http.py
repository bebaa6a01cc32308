"""A prover behind HTTP that speaks Kalypso's own API, the shapes of `kalypso.provers.wire`:

    POST {base_url}/prove
        {"inputs": {<signal>: <value>, ...}}             integers as decimal strings
    200 {"proof": <snarkjs proof.json>, "public_signals": ["…", …]}
     or {"proof_hex": "0x…", "public_inputs_hex": "0x…"}
     or {"invalid_inputs": "<reason>"}                   no proof exists: a verdict

Any other status, shape or transport failure raises `ProverError`; a proof that takes
longer than `timeout` raises `ProverTimeout`. Provers written for Marlin's Kalypso speak
another API: `kalypso.provers.legacy`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

from kalypso.errors import ConfigError, ProverError, ProverTimeout
from kalypso.provers import InvalidInputs
from kalypso.provers.proof import Groth16Proof
from kalypso.provers.wire import BytesProof, parse_answer, wire_inputs

__all__ = ["HttpProver"]


class HttpProver:
    """`Prover` that asks a prover service over HTTP (see the module docstring)."""

    def __init__(
        self, base_url: str, *, timeout: float, headers: Mapping[str, str] | None = None
    ) -> None:
        if timeout <= 0:
            raise ConfigError(f"timeout must be positive, got {timeout}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._client = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, headers=dict(headers or {})
        )

    async def prove(self, inputs: Mapping[str, Any]) -> Groth16Proof | BytesProof | InvalidInputs:
        try:
            async with asyncio.timeout(self.timeout):
                answer = await self._post("/prove", {"inputs": wire_inputs(inputs)})
                return parse_answer(answer, f"prover at {self.base_url}")
        except (TimeoutError, httpx.TimeoutException):
            raise ProverTimeout(
                f"the prover at {self.base_url} did not answer within {self.timeout:g} s; "
                "the request was abandoned. Raise the timeout if its proofs need longer"
            ) from None

    async def close(self) -> None:
        await self._client.aclose()

    async def _post(self, path: str, body: Any) -> Any:
        try:
            response = await self._client.post(path, json=body)
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
