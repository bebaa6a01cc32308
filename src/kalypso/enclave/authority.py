"""The attestation authority, and the identity an enclave makes for itself at start.

An enclave makes its keys when it starts (one secp256k1 key to sign, one X25519 key to
receive secrets: never one key for both) and keeps them in memory only. The authority
attests them: it issues the attestation document (off-chain, full) and signs the
EIP-712 `Enclave` statement the registry checks (on-chain, short), both binding the same
keys, image id and millisecond timestamp.

On a devnet the authority is a development root key (`DEV_AUTHORITY_KEY`, public and
committed, so never trusted off the devnet); on a real deployment it is the service
that checks Nitro documents against the AWS root before signing statements.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eth_utils import keccak, to_checksum_address

from kalypso.crypto.keys import EncryptionKey
from kalypso.enclave import document
from kalypso.enclave.statements import (
    Domain,
    EnclaveStatement,
    TaskAttestation,
    address_of,
    sign,
    signer_of,
)
from kalypso.errors import AttestationError

#: The devnet's attestation authority. Public: it proves nothing off a devnet.
DEV_AUTHORITY_KEY = keccak(b"kalypso/dev-attestation-authority")
DEV_AUTHORITY = address_of(DEV_AUTHORITY_KEY)


def vouched_by(registered: Sequence[Any]) -> str:
    """The authority that vouched for a registered enclave, from its row in the registry
    (`EnclaveRegistry.enclaves(key)`: image id, encryption key, attested at, authority)."""
    return to_checksum_address(registered[3])


class EnclaveIdentity:
    """An enclave's keys, made at start and never written anywhere."""

    def __init__(self) -> None:
        self._signing_key = secrets.token_bytes(32)
        self.encryption = EncryptionKey.generate()
        self.address = address_of(self._signing_key)

    def sign(self, domain: Domain, verdict: TaskAttestation) -> bytes:
        """Sign a verdict on a task (never anything else: the key has one purpose)."""
        return sign(domain, verdict, self._signing_key)


@dataclass(frozen=True)
class Attestation:
    """An enclave's attestation: the full document and the statement for the registry."""

    document: bytes
    statement: EnclaveStatement
    signature: bytes


class Attester(Protocol):
    """Who attests an enclave's keys: the dev `Authority` in-process, or (off the devnet)
    `kalypso.enclave.attester.NitroAttester` through the attestation verifier."""

    #: the authority's address (what the registry checks statements against)
    address: str

    def attest(
        self, identity: EnclaveIdentity, image_id: bytes, module_id: str, domain: Domain
    ) -> Attestation: ...


class Authority:
    """Issues attestations with a secp256k1 key (the devnet's dev root)."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self.address = address_of(key)

    def attest(
        self,
        identity: EnclaveIdentity,
        image_id: bytes,
        module_id: str,
        domain: Domain,
        *,
        now_ms: int | None = None,
    ) -> Attestation:
        timestamp = int(time.time() * 1000) if now_ms is None else now_ms
        doc = document.AttestationDocument(
            module_id=module_id,
            image_id=image_id,
            timestamp_ms=timestamp,
            encryption_key=identity.encryption.public_bytes,
            signing_key=identity.address,
            issuer=self.address,
        )
        statement = EnclaveStatement(
            identity.address, identity.encryption.public_bytes, image_id, timestamp
        )
        return Attestation(
            document.issue(doc, self._key), statement, sign(domain, statement, self._key)
        )


def check_attestation(
    attestation: Attestation,
    domain: Domain,
    *,
    authority: str,
    image_id: bytes,
    max_age_ms: int,
    now_ms: int | None = None,
) -> document.AttestationDocument:
    """What a registrant checks before trusting an enclave: the document verifies, the
    statement says the same, and both are the authority's."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    doc = document.verify(
        attestation.document,
        authority=authority,
        now_ms=now,
        max_age_ms=max_age_ms,
        image_id=image_id,
    )
    statement = attestation.statement
    if (
        statement.signing_key != doc.signing_key
        or statement.encryption_key != doc.encryption_key
        or statement.image_id != doc.image_id
        or statement.timestamp_ms != doc.timestamp_ms
    ):
        raise AttestationError("the statement does not match its attestation document")
    if signer_of(domain, statement, attestation.signature) != doc.issuer:
        raise AttestationError("the statement is not signed by the document's issuer")
    return doc
