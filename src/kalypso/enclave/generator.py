"""The Generator Image: it proves private-input tasks, the only place (on the generator's
side) where their private inputs are in the clear.

Its encryption key is the generator's offer key in the market (the Matching Engine
re-wraps secrets only to a registered key of the market's Generator Image). The
generator node sends it whole tasks, `POST /prove` with the task, the request's fields,
the sealed secret and the key envelope of `TaskAssigned`, and gets back a proof, or an
`InputsInvalid` attestation when the inputs cannot be proven. Before any verdict the
enclave checks on-chain that the request's fields, public inputs and sealed secret are
the ones the marketplace committed for that task, so a node cannot get "invalid" signed
for inputs of its own making. A key envelope or secret that does not open is an error,
never a verdict: anyone can wrap some key to the enclave's public key, so only a secret
that opens is the requester's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from eth_utils import keccak
from fastapi import FastAPI, HTTPException
from fastapi import Request as HttpRequest
from web3 import Web3

from kalypso.circuits import circuit
from kalypso.circuits.solvers import SOLVERS
from kalypso.contracts.web3tx import bind
from kalypso.crypto import SecretContext, open_with
from kalypso.enclave.images import ImageKind
from kalypso.enclave.service import Enclave, Task, hex_bytes, request_from_json
from kalypso.enclave.verdicts import json_body
from kalypso.errors import DecryptionError, KalypsoError
from kalypso.provers import InvalidInputs
from kalypso.provers.snarkjs import SnarkjsGroth16Prover, SnarkjsWorker
from kalypso.provers.tasks import CircuitTasks

NO_SECRET = keccak(b"")


class GeneratorImage:
    kind = ImageKind.GENERATOR

    def __init__(self, circuit_name: str, worker: SnarkjsWorker) -> None:
        c = circuit(circuit_name)
        self.circuit = c
        self.tasks = CircuitTasks(
            SnarkjsGroth16Prover(c.wasm, c.zkey, worker=worker),
            c.inputs,
            c.public_signals,
            SOLVERS.get(circuit_name),
        )

    @staticmethod
    def config_for(circuit_name: str) -> dict[str, Any]:
        return {"circuit": circuit_name, "artifacts": circuit(circuit_name).hashes}

    def measured_config(self) -> dict[str, Any]:
        return self.config_for(self.circuit.name)

    def routes(self, app: FastAPI, enclave: Enclave) -> None:
        marketplace = bind(enclave.w3, "ProofMarketplace", enclave.deployment.marketplace)
        deployment = enclave.deployment

        @app.post("/prove")
        async def prove(http: HttpRequest) -> dict[str, Any]:
            body = await json_body(http)
            task = Task.from_json(body)
            try:
                request = request_from_json(body["request"])
                sealed, key_envelope = (
                    hex_bytes(body["encrypted_secret"]),
                    hex_bytes(body["key_envelope"]),
                )
            except (KeyError, TypeError, ValueError) as exc:
                detail = f"give request, encrypted_secret, key_envelope: {exc}"
                raise HTTPException(400, detail) from None
            call = marketplace.functions.request_hash(task.task_id).call
            committed = bytes(await asyncio.to_thread(call))
            if (
                committed != request.commitment()
                or request.market_id != task.market_id
                or request.inputs_hash != Web3.keccak(task.public_inputs)
                or request.secret_hash != Web3.keccak(sealed)
            ):
                raise HTTPException(422, "the task is not the one committed on-chain")
            secret = None  # a public task of this market
            if request.secret_hash != NO_SECRET:
                context = SecretContext(deployment.chain_id, deployment.marketplace, task.task_id)
                try:
                    secret = open_with(sealed, key_envelope, enclave.identity.encryption, context)
                except DecryptionError:
                    raise HTTPException(422, "the secret does not open with this enclave") from None
            try:
                result = await self.tasks.prove(task.public_inputs, secret)
            except KalypsoError as exc:
                raise HTTPException(503, f"the prover failed: {exc}") from None
            if isinstance(result, InvalidInputs):
                signature = enclave.sign(task.verdict())
                # Witness errors can quote input values: none leaves the enclave.
                return {
                    "invalid": True,
                    "reason": "no proof exists for these inputs (checked inside the enclave)",
                    "signature": "0x" + signature.hex(),
                }
            return {"invalid": False, "proof": "0x" + result.calldata().hex()}
