"""Enclave images: ids, attestation documents and the statements the registry checks.

- `images`: an image id is keccak256 of the image's measured code and configuration;
- `document`: Nitro-shaped attestation documents (CBOR, COSE_Sign1), issued and
  verified off-chain;
- `statements`: the EIP-712 typed data checked on-chain by `EnclaveRegistry`;
- `authority`: the attestation authority (a dev root on the devnet) and the keys an
  enclave makes at start.
"""

from kalypso.enclave.authority import (
    DEV_AUTHORITY,
    DEV_AUTHORITY_KEY,
    Attestation,
    Authority,
    EnclaveIdentity,
    check_attestation,
    vouched_by,
)
from kalypso.enclave.images import ImageKind, image_id
from kalypso.enclave.statements import Domain, EnclaveStatement, TaskAttestation

__all__ = [
    "DEV_AUTHORITY",
    "DEV_AUTHORITY_KEY",
    "Attestation",
    "Authority",
    "Domain",
    "EnclaveIdentity",
    "EnclaveStatement",
    "ImageKind",
    "TaskAttestation",
    "check_attestation",
    "image_id",
    "vouched_by",
]
