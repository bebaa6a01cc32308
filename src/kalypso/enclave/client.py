"""What a generator node asks enclaves over HTTP: a Generator Image to prove a private
task, a Proof Verification Image to attest a proof, an Input Verification Image to
attest unprovable inputs. Unreachable enclaves raise `ProverError` (the task is retried
while its deadline allows); a refusal is returned as what it means."""

from __future__ import annotations

from typing import Any

import httpx

from kalypso.daemon import jsonable
from kalypso.enclave.service import hex_bytes
from kalypso.errors import ProverError
from kalypso.market import Request
from kalypso.market.attested import attested_proof
from kalypso.provers import InvalidInputs
from kalypso.provers.wire import BytesProof


class EnclaveClient:
    def __init__(self, url: str, *, timeout: float = 600) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.AsyncClient(timeout=timeout)

    async def attestation(self) -> dict[str, Any]:
        return await self._call("GET", "/attestation", None)

    async def prove(
        self, task: dict[str, Any], request: Request, encrypted_secret: bytes, key_envelope: bytes
    ) -> BytesProof | InvalidInputs:
        """A Generator Image proves a private task."""
        body = task | {
            "request": jsonable(request),
            "encrypted_secret": "0x" + encrypted_secret.hex(),
            "key_envelope": "0x" + key_envelope.hex(),
        }
        answer = await self._call("POST", "/prove", body)
        if answer["invalid"]:
            return InvalidInputs(str(answer["reason"]), hex_bytes(answer["signature"]))
        return BytesProof(hex_bytes(answer["proof"]), bytes.fromhex(task["public_inputs"][2:]))

    async def attest_proof(self, task: dict[str, Any], proof: bytes) -> BytesProof | None:
        """The attested proof bytes, or None when the enclave finds the proof invalid."""
        try:
            answer = await self._call("POST", "/verify", task | {"proof": "0x" + proof.hex()})
        except _Refused:
            return None
        inputs = bytes.fromhex(task["public_inputs"][2:])
        return BytesProof(attested_proof(proof, hex_bytes(answer["signature"])), inputs)

    async def attest_invalid(self, task: dict[str, Any], reason: str) -> InvalidInputs | None:
        """An Input Verification Image's verdict with its attestation, or None when it
        finds the inputs provable."""
        answer = await self._call("POST", "/check", task)
        if not answer["invalid"]:
            return None
        return InvalidInputs(
            f"{reason}; attested: {answer['reason']}", hex_bytes(answer["signature"])
        )

    async def _call(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            answer = await self.http.request(method, self.url + path, json=body)
        except httpx.HTTPError as exc:
            raise ProverError(f"the enclave at {self.url} is unreachable: {exc}") from None
        if answer.status_code == 422:
            raise _Refused(answer.json().get("detail", ""))
        if answer.status_code != 200:
            raise ProverError(f"the enclave at {self.url} answered {answer.status_code}")
        result: dict[str, Any] = answer.json()
        return result

    async def close(self) -> None:
        await self.http.aclose()


class _Refused(ProverError):
    """The enclave would not sign (a 422)."""
