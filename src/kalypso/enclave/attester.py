"""An enclave attested through the attestation verifier service (off the devnet).

It asks the verifier for a nonce, its NSM for a document binding its X25519 key
(`public_key`), its signing address (`user_data`) and the nonce, and the verifier for
the signed `Enclave` statement (`kalypso.enclave.verifier_api` has the routes).
"""

from __future__ import annotations

from typing import Any

import httpx

from kalypso.enclave.authority import Attestation, EnclaveIdentity
from kalypso.enclave.nsm import DocumentSource
from kalypso.enclave.statements import Domain, EnclaveStatement, signer_of
from kalypso.errors import AttestationError, ServiceError


class NitroAttester:
    """Attests an enclave through a verifier service, with documents from `source` (the
    NSM, or a simulated one in tests): the `Enclave`'s attester off the devnet."""

    def __init__(self, source: DocumentSource, service_url: str, *, timeout: float = 30.0) -> None:
        self.source = source
        self.url = service_url.rstrip("/")
        self.timeout = timeout
        self.address = ""  # the authority, known after the first attestation

    def attest(
        self, identity: EnclaveIdentity, image_id: bytes, module_id: str, domain: Domain
    ) -> Attestation:
        """Attest `identity`'s keys. `image_id` and `module_id` are the dev authority's
        inputs: here the NSM measures the image and names the module."""
        nonce = bytes.fromhex(self._post("/nonce", None)["nonce"].removeprefix("0x"))
        encryption = identity.encryption.public_bytes
        document = self.source.document(
            public_key=encryption,
            user_data=bytes.fromhex(identity.address.removeprefix("0x")),
            nonce=nonce,
        )
        answer = self._post("/attest", {"document": "0x" + document.hex()})
        statement = EnclaveStatement(
            signing_key=answer["signing_key"],
            encryption_key=bytes.fromhex(answer["encryption_key"].removeprefix("0x")),
            image_id=bytes.fromhex(answer["image_id"].removeprefix("0x")),
            timestamp_ms=int(answer["timestamp_ms"]),
        )
        signature = bytes.fromhex(answer["signature"].removeprefix("0x"))
        if statement.signing_key != identity.address or statement.encryption_key != encryption:
            raise AttestationError("the verifier's statement is not about this enclave's keys")
        self.address = signer_of(domain, statement, signature)
        return Attestation(document, statement, signature)

    def _post(self, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            response = httpx.post(self.url + path, json=body, timeout=self.timeout)
            answer: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ServiceError(
                f"the attestation verifier at {self.url} did not answer {path}: {exc}"
            ) from None
        if response.status_code == 400:
            raise AttestationError(f"the verifier refused the document: {answer.get('error')}")
        if response.status_code != 200:
            status = response.status_code
            raise ServiceError(f"the attestation verifier answered {path} with {status}")
        return answer
