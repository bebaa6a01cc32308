"""The two images that only judge: Proof Verification and Input Verification.

- `ProofVerificationImage` verifies a proof off-chain (snarkjs PLONK or Groth16 against
  the verification key it measures) and signs `ProofValid` over the task and the hash
  of exactly the proof bytes it checked: `POST /verify` with the task and `proof`.
- `InputVerificationImage` decides whether a task's public inputs can be proven (with
  the circuit's solver it measures) and signs `InputsInvalid` when they cannot:
  `POST /check` with the task.

Both answer 422 when they will not sign; neither keeps anything between calls.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi import Request as HttpRequest

from kalypso.circuits import solvers
from kalypso.enclave.images import ImageKind
from kalypso.enclave.service import Enclave, Task, hex_bytes
from kalypso.errors import ConfigError, KalypsoError
from kalypso.market import decode_signals
from kalypso.provers import InvalidInputs
from kalypso.provers.plonk import PlonkProof
from kalypso.provers.proof import Groth16Proof
from kalypso.provers.snarkjs import SnarkjsWorker

PROTOCOLS = ("plonk", "groth16")


def _canonical_sha256(value: Any) -> str:
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


class ProofVerificationImage:
    kind = ImageKind.PROOF_VERIFICATION

    def __init__(self, protocol: str, vkey: Mapping[str, Any], worker: SnarkjsWorker) -> None:
        if protocol not in PROTOCOLS or vkey.get("protocol") != protocol:
            raise ConfigError(f"the verification key is not a snarkjs {protocol} key")
        self.protocol = protocol
        self.vkey = dict(vkey)
        self.worker = worker

    @staticmethod
    def config_for(protocol: str, vkey: Mapping[str, Any]) -> dict[str, Any]:
        return {"protocol": protocol, "vkey_sha256": _canonical_sha256(dict(vkey))}

    def measured_config(self) -> dict[str, Any]:
        return self.config_for(self.protocol, self.vkey)

    async def valid(self, public_inputs: bytes, proof: bytes) -> bool:
        try:
            decoded: PlonkProof | Groth16Proof = (
                PlonkProof.from_calldata(proof, public_inputs)
                if self.protocol == "plonk"
                else Groth16Proof.from_calldata(proof, public_inputs)
            )
        except ConfigError:
            return False
        proof_json, public = decoded.to_snarkjs()
        return await self.worker.verify(self.protocol, self.vkey, proof_json, public)

    def routes(self, app: FastAPI, enclave: Enclave) -> None:
        @app.post("/verify")
        async def verify(request: HttpRequest) -> dict[str, Any]:
            body = await json_body(request)
            task = Task.from_json(body)
            try:
                proof = hex_bytes(body["proof"])
            except (KeyError, ValueError):
                raise HTTPException(400, "give the proof bytes as hex") from None
            try:
                ok = await self.valid(task.public_inputs, proof)
            except KalypsoError as exc:
                raise HTTPException(503, f"cannot verify now: {exc}") from None
            if not ok:
                raise HTTPException(422, "the proof does not verify: nothing signed")
            signature = enclave.sign(task.verdict(proof))
            return {"signature": "0x" + signature.hex(), "signer": enclave.identity.address}


class InputVerificationImage:
    kind = ImageKind.INPUT_VERIFICATION

    def __init__(self, circuit: str, public_signals: list[str], solver: str | None = None) -> None:
        """`solver`: a creator's `path/to/solver.py:function` (measured by its SHA-256);
        else the built-in one of the sample `circuit`."""
        if solver is None and circuit not in solvers.SOLVERS:
            raise ConfigError(
                f"no input checker for circuit {circuit!r}: give --solver FILE.py:FUNCTION, "
                f"the circuit's solver (built in: {', '.join(solvers.SOLVERS)})"
            )
        self.circuit = circuit
        self.public_signals = list(public_signals)
        self.solve, self.solver = solvers.measured_solver(solver or circuit)

    def measured_config(self) -> dict[str, Any]:
        return {"solver": self.solver, "public_signals": self.public_signals}

    def reason_invalid(self, public_inputs: bytes) -> str | None:
        """Why these inputs cannot be proven, or None when they can."""
        try:
            values = decode_signals(public_inputs)
        except ConfigError as exc:
            return str(exc)
        if len(values) != len(self.public_signals):
            return f"{len(values)} public signals, the circuit has {len(self.public_signals)}"
        verdict = self.solve(dict(zip(self.public_signals, values, strict=True)))
        return verdict.reason if isinstance(verdict, InvalidInputs) else None

    def routes(self, app: FastAPI, enclave: Enclave) -> None:
        @app.post("/check")
        async def check(request: HttpRequest) -> dict[str, Any]:
            task = Task.from_json(await json_body(request))
            reason = self.reason_invalid(task.public_inputs)
            if reason is None:
                return {"invalid": False}
            signature = enclave.sign(task.verdict())
            return {
                "invalid": True,
                "reason": reason,
                "signature": "0x" + signature.hex(),
                "signer": enclave.identity.address,
            }


async def json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "the body is a JSON object")
    return body
