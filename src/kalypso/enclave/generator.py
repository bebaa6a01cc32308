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

It proves with snarkjs, or with a confidential prover written for Marlin's Kalypso
(`prover_url`, `kalypso.provers.legacy`): the template's confidential layout, running
beside it inside the enclave on a loopback port, given the opened secret as
`PlainSecrets`. The prover's URL and encoding are in the measured config; the prover
itself is measured only where the image contains it (a Nitro image built with it: its
PCRs), never by a dev image id, which measures Kalypso's code alone.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from eth_utils import keccak
from fastapi import FastAPI, HTTPException
from fastapi import Request as HttpRequest
from web3 import Web3

from kalypso.circuits import Circuit, load_circuit, verify_artifacts
from kalypso.circuits.solvers import SOLVERS
from kalypso.contracts.web3tx import bind
from kalypso.crypto import SecretContext, open_with
from kalypso.enclave.images import ImageKind
from kalypso.enclave.service import Enclave, Task, hex_bytes, request_from_json
from kalypso.enclave.verdicts import json_body
from kalypso.errors import ConfigError, DecryptionError, KalypsoError
from kalypso.provers import InvalidInputs, Prover, TaskProver
from kalypso.provers.legacy import ENCODINGS, LOOPBACK, LegacyProver
from kalypso.provers.snarkjs import SnarkjsGroth16Prover, SnarkjsWorker
from kalypso.provers.tasks import CircuitTasks

NO_SECRET = keccak(b"")
#: seconds a confidential template prover may take over one proof
PROOF_TIMEOUT = 600.0


def legacy_prover(prover_url: str | None, public_encoding: str = "fixed") -> dict[str, str] | None:
    """What the image id measures of a template prover: where it is and how it is spoken to."""
    if prover_url is None:
        return None
    if urlsplit(prover_url).hostname not in LOOPBACK or public_encoding not in ENCODINGS:
        raise ConfigError(
            "the Generator Image's template prover is on a loopback URL (beside it, in its "
            f"enclave), with a public encoding of {' or '.join(ENCODINGS)}"
        )
    return {"api": "legacy", "url": prover_url.rstrip("/"), "public_encoding": public_encoding}


def _measured(c: Circuit, legacy: dict[str, str] | None) -> dict[str, Any]:
    config: dict[str, Any] = {"circuit": c.name, "artifacts": c.hashes}
    return config if legacy is None else {**config, "prover": legacy}


class GeneratorImage:
    kind = ImageKind.GENERATOR

    def __init__(
        self,
        circuit_name: str,
        worker: SnarkjsWorker,
        *,
        prover_url: str | None = None,
        public_encoding: str = "fixed",
    ) -> None:
        c = load_circuit(circuit_name)
        self.circuit = c
        self.legacy = legacy_prover(prover_url, public_encoding)
        verify_artifacts(c)  # the files it proves with are the ones its id measures
        prover: Prover | TaskProver
        if prover_url is not None:
            prover = LegacyProver(
                prover_url,
                timeout=PROOF_TIMEOUT,
                public_encoding=public_encoding,
                confidential=True,
            )
        else:
            prover = SnarkjsGroth16Prover(c.wasm, c.zkey, worker=worker)
        self.tasks = CircuitTasks(prover, c.inputs, c.public_signals, SOLVERS.get(c.name))

    @staticmethod
    def config_for(circuit_ref: str, legacy: dict[str, str] | None = None) -> dict[str, Any]:
        """The measured config of the image of a circuit (a sample's name, or a folder
        `kalypso circuit build` wrote: its name and hashes are measured, never its path);
        `legacy` is `legacy_prover(...)` where a template prover proves."""
        return _measured(load_circuit(circuit_ref), legacy)

    def measured_config(self) -> dict[str, Any]:
        return _measured(self.circuit, self.legacy)

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
