"""An enclave image as a service: keys made at start, attested, registered, served.

Every image runs the same way (`kalypso enclave <image>`):

1. make its keys (`EnclaveIdentity`: a signing key and an encryption key, in memory
   only) and, on the devnet, measure itself (`image_id` of its kind and configuration);
2. get attested: on the devnet by the dev root, in-process; elsewhere it sends a
   document from its NSM to the attestation verifier (`kalypso attest serve`), which
   checks it against the AWS root and signs the statement, its image id from the PCRs;
3. register on-chain (`EnclaveRegistry.register`, paid by the operator's key), and
   register again before `MAX_AGE` runs out;
4. serve HTTP: `GET /attestation` (the document, the statement and its signature, for
   anyone to verify off-chain), `GET /health`, and the image's own routes.

Nothing an enclave sees in the clear is logged or returned: its routes answer with
proofs, re-wrapped keys and signed verdicts only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from eth_account.signers.local import LocalAccount
from fastapi import FastAPI, HTTPException
from web3 import Web3

from kalypso.contracts.web3tx import bind, send
from kalypso.daemon import api_server, sleep_or_stop
from kalypso.deployment import DEVNET_CHAIN_ID, Deployment
from kalypso.enclave.attester import NitroAttester
from kalypso.enclave.authority import (
    DEV_AUTHORITY_KEY,
    Attestation,
    Attester,
    Authority,
    EnclaveIdentity,
)
from kalypso.enclave.images import ImageKind, image_id
from kalypso.enclave.nsm import DocumentSource
from kalypso.enclave.statements import Domain, TaskAttestation
from kalypso.errors import ConfigError, KalypsoError
from kalypso.logs import get_logger
from kalypso.market import Request

log = get_logger("kalypso.enclave")

#: Register again when this share of `MAX_AGE` has passed since the last attestation.
REFRESH_SHARE = 0.5


class Image(Protocol):
    """What one image adds to the common service."""

    kind: ImageKind

    def measured_config(self) -> Mapping[str, Any]:
        """The configuration its id measures (JSON values)."""
        ...

    def routes(self, app: FastAPI, enclave: Enclave) -> None:
        """Add its HTTP routes."""
        ...


@dataclass(frozen=True)
class Task:
    """The task a verdict is about, as the image's routes receive it."""

    market_id: int
    task_id: bytes
    generator: str
    public_inputs: bytes

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Task:
        try:
            return cls(
                uint256(body["market_id"]),
                hex_bytes(body["task_id"], 32),
                Web3.to_checksum_address(body["generator"]),
                hex_bytes(body["public_inputs"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise HTTPException(
                400, f"a task needs market_id, task_id, generator, public_inputs (hex): {exc}"
            ) from None

    def verdict(self, proof: bytes | None = None) -> TaskAttestation:
        """InputsInvalid, or ProofValid of `proof`, over the inputs this enclave checked."""
        return TaskAttestation(
            self.market_id,
            self.task_id,
            self.generator,
            Web3.keccak(self.public_inputs),
            None if proof is None else Web3.keccak(proof),
        )


def uint256(value: Any) -> int:
    """A uint256 from untrusted JSON: an integer (not a bool, a float or a string)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**256:
        raise ValueError(f"not a uint256: {value!r}")
    return value


def hex_bytes(value: Any, size: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"not a hex string: {value!r}")
    raw = bytes.fromhex(value.removeprefix("0x"))
    if size is not None and len(raw) != size:
        raise ValueError(f"expected {size} bytes, got {len(raw)}")
    return raw


def request_from_json(fields: Any) -> Request:
    """A request's committed fields from JSON (`jsonable(request)`)."""
    return Request(
        uint256(fields["market_id"]),
        Web3.to_checksum_address(fields["requester"]),
        Web3.to_checksum_address(fields["refund_address"]),
        uint256(fields["max_price"]),
        uint256(fields["proof_time"]),
        uint256(fields["expiry"]),
        hex_bytes(fields["inputs_hash"], 32),
        hex_bytes(fields["secret_hash"], 32),
    )


class Enclave:
    """One running image: its identity, attestation and on-chain registration."""

    def __init__(
        self,
        image: Image,
        w3: Web3,
        deployment: Deployment,
        operator: LocalAccount,
        *,
        market_id: int | None,
        authority: Attester,
    ) -> None:
        if deployment.enclave_registry is None:
            raise ConfigError("the deployment has no enclave registry; redeploy with this kalypso")
        if image.kind != ImageKind.MATCHING_ENGINE and market_id is None:
            raise ConfigError(f"the {image.kind.value} image serves a market: give its id")
        self.image = image
        self.w3 = w3
        self.deployment = deployment
        self.operator = operator
        self.market_id = market_id
        self.authority = authority
        self.identity = EnclaveIdentity()
        self.image_id = image_id(image.kind, image.measured_config())
        self.registry = bind(w3, "EnclaveRegistry", deployment.enclave_registry)
        self.domain = Domain(deployment.chain_id, deployment.enclave_registry)
        self.max_age = int(self.registry.functions.MAX_AGE().call())
        self.attestation: Attestation | None = None

    @classmethod
    def dev(
        cls, image: Image, w3: Web3, deployment: Deployment, operator: LocalAccount, **kw: Any
    ) -> Enclave:
        """An enclave attested by the devnet's dev authority (only on the devnet)."""
        if deployment.chain_id != DEVNET_CHAIN_ID:
            raise ConfigError(
                f"the dev attestation authority is public and proves nothing on chain "
                f"{deployment.chain_id}: a real deployment attests enclaves with Nitro"
            )
        return cls(image, w3, deployment, operator, authority=Authority(DEV_AUTHORITY_KEY), **kw)

    @classmethod
    def nitro(
        cls,
        image: Image,
        w3: Web3,
        deployment: Deployment,
        operator: LocalAccount,
        *,
        source: DocumentSource,
        service_url: str,
        **kw: Any,
    ) -> Enclave:
        """An enclave attested by the verifier at `service_url`, with documents from
        `source` (its NSM; a simulated one in tests)."""
        attester = NitroAttester(source, service_url)
        return cls(image, w3, deployment, operator, authority=attester, **kw)

    def sign(self, verdict: TaskAttestation) -> bytes:
        return self.identity.sign(self.domain, verdict)

    def register(self) -> None:
        """Attest the keys now and register (or refresh) them on-chain."""
        attestation = self.authority.attest(
            self.identity, self.image_id, self.image.kind.value, self.domain
        )
        s = attestation.statement
        self.image_id = s.image_id  # under Nitro, the verifier's: measured by the NSM
        call = self.registry.functions.register(
            self.market_id or 0,
            s.signing_key,
            s.encryption_key,
            s.image_id,
            s.timestamp_ms,
            attestation.signature,
        )
        receipt = send(self.w3, self.operator, call)
        self.attestation = attestation
        log.info(
            "enclave registered",
            image=self.image.kind.value,
            image_id="0x" + self.image_id.hex(),
            signing_key=self.identity.address,
            market_id=self.market_id,
            gas=receipt["gasUsed"],
        )

    def attestation_json(self) -> dict[str, Any]:
        if self.attestation is None:
            raise HTTPException(503, "not attested yet")
        s = self.attestation.statement
        return {
            "image": self.image.kind.value,
            "image_id": "0x" + self.image_id.hex(),
            "signing_key": s.signing_key,
            "encryption_key": "0x" + s.encryption_key.hex(),
            "timestamp_ms": s.timestamp_ms,
            "document": "0x" + self.attestation.document.hex(),
            "statement_signature": "0x" + self.attestation.signature.hex(),
            "authority": self.authority.address,
            "registry": self.deployment.enclave_registry,
            "chain_id": self.deployment.chain_id,
        }

    def app(self) -> FastAPI:
        app = FastAPI(title=f"Kalypso {self.image.kind.value} enclave", docs_url=None)

        @app.get("/attestation")
        def attestation() -> dict[str, Any]:
            return self.attestation_json()

        @app.get("/health")
        def health() -> dict[str, Any]:
            return {
                "status": "ok" if self.attestation is not None else "starting",
                "image": self.image.kind.value,
                "address": self.operator.address,  # who pays its registrations
                "signing_key": self.identity.address,
            }

        self.image.routes(app, self)
        return app

    async def run(self, stop: asyncio.Event, host: str, port: int) -> None:
        """Register, serve until `stop`, and register again before the key expires."""
        await asyncio.to_thread(self.register)
        async with api_server(self.app(), host, port, log):
            while not stop.is_set():
                assert self.attestation is not None
                age = time.time() - self.attestation.statement.timestamp_ms / 1000
                await sleep_or_stop(stop, max(1.0, self.max_age * REFRESH_SHARE - age))
                if stop.is_set():
                    break
                try:
                    await asyncio.to_thread(self.register)
                except KalypsoError as exc:
                    log.warning("refreshing the registration failed; retrying", error=str(exc))
