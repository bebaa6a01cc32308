"""Attestation documents: CBOR in a COSE_Sign1 envelope, in the shape of AWS Nitro's.

A Nitro enclave asks its hypervisor for a document binding its measurements (PCRs), a
public key and user data, signed through a certificate chain to the AWS root. Here the
attestation authority (a dev root key on the devnet) issues it instead, with the same
layout, so a Nitro verifier can take its place:

    COSE_Sign1 = tag 18 [protected: bstr({1: alg}), unprotected: {}, payload: bstr, sig]
    payload    = {module_id, digest, timestamp (ms), pcrs: {0: image id},
                  certificate: DER of the issuer's certificate, cabundle: [],
                  public_key: X25519 encryption key, user_data: signing address,
                  nonce}

The signature is ES256K (ECDSA over secp256k1 with SHA-256, COSE alg -47) by the
authority, whose certificate is in the document; a verifier trusts it only when its
key is the authority it expects, given as an Ethereum address (the same the registry
stores on-chain).
"""

from __future__ import annotations

import datetime
import warnings
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.x509.oid import NameOID
from eth_utils import keccak, to_checksum_address

from kalypso.errors import AttestationError

COSE_SIGN1_TAG = 18
ES256K = -47
_PROTECTED = cbor2.dumps({1: ES256K})
#: Nitro's digest field names the PCR hash; ours are keccak-256 image ids.
DIGEST = "KECCAK256"


@dataclass(frozen=True)
class AttestationDocument:
    """What a verified document says."""

    module_id: str
    image_id: bytes
    timestamp_ms: int
    encryption_key: bytes
    signing_key: str
    issuer: str
    nonce: bytes = b""


def issue(document: AttestationDocument, authority_key: bytes) -> bytes:
    """Encode and sign `document` with the authority's secp256k1 key (its `issuer`)."""
    private = ec.derive_private_key(int.from_bytes(authority_key, "big"), ec.SECP256K1())
    payload = cbor2.dumps(
        {
            "module_id": document.module_id,
            "digest": DIGEST,
            "timestamp": document.timestamp_ms,
            "pcrs": {0: document.image_id},
            "certificate": _certificate(private),
            "cabundle": [],
            "public_key": document.encryption_key,
            "user_data": bytes.fromhex(document.signing_key.removeprefix("0x")),
            "nonce": document.nonce,
        }
    )
    der = private.sign(_to_be_signed(payload), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [_PROTECTED, {}, payload, signature]))


def verify(
    blob: bytes,
    *,
    authority: str,
    now_ms: int,
    max_age_ms: int,
    image_id: bytes | None = None,
) -> AttestationDocument:
    """Decode `blob` and check it, raising `AttestationError` on the first failed check.

    Checked: the COSE_Sign1 structure and algorithm, the issuer's certificate key is
    `authority` (an address), its signature, the fields' types, the age (milliseconds,
    as Nitro's: not in the future, not older than `max_age_ms`) and, when given, the
    image id.
    """
    payload, protected, signature = _envelope(blob)
    if protected != _PROTECTED:
        raise AttestationError("the document is not signed with ES256K")
    fields = _fields(payload)
    public = _issuer_key(fields["certificate"])
    issuer = _address(public)
    if issuer != to_checksum_address(authority):
        raise AttestationError(f"the document is issued by {issuer}, not the authority {authority}")
    try:
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        public.verify(encode_dss_signature(r, s), _to_be_signed(payload), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise AttestationError("the document's signature is invalid") from None
    timestamp = fields["timestamp"]
    if timestamp > now_ms:
        raise AttestationError(f"the document is dated {timestamp - now_ms} ms in the future")
    if now_ms - timestamp > max_age_ms:
        raise AttestationError(
            f"the document is {(now_ms - timestamp) // 1000} s old, over {max_age_ms // 1000} s"
        )
    document = AttestationDocument(
        module_id=fields["module_id"],
        image_id=fields["pcrs"][0],
        timestamp_ms=timestamp,
        encryption_key=fields["public_key"],
        signing_key=to_checksum_address(fields["user_data"]),
        issuer=issuer,
        nonce=fields["nonce"],
    )
    if image_id is not None and document.image_id != image_id:
        raise AttestationError(
            f"the document is for image 0x{document.image_id.hex()}, not 0x{image_id.hex()}"
        )
    return document


def _to_be_signed(payload: bytes) -> bytes:
    """COSE's Sig_structure for a COSE_Sign1 with no external data."""
    return cbor2.dumps(["Signature1", _PROTECTED, b"", payload])


def _envelope(blob: bytes) -> tuple[bytes, bytes, bytes]:
    try:
        decoded = cbor2.loads(blob)
    except Exception:  # cbor2 raises many kinds on garbage
        raise AttestationError("the document is not CBOR") from None
    if not isinstance(decoded, cbor2.CBORTag) or decoded.tag != COSE_SIGN1_TAG:
        raise AttestationError("the document is not a COSE_Sign1 (CBOR tag 18)")
    parts = decoded.value
    if not (
        isinstance(parts, list)
        and len(parts) == 4
        and isinstance(parts[0], bytes)
        and isinstance(parts[1], dict)
        and isinstance(parts[2], bytes)
        and isinstance(parts[3], bytes)
        and len(parts[3]) == 64
    ):
        raise AttestationError("the COSE_Sign1 is malformed")
    return parts[2], parts[0], parts[3]


_FIELD_TYPES: dict[str, type] = {
    "module_id": str,
    "digest": str,
    "timestamp": int,
    "pcrs": dict,
    "certificate": bytes,
    "cabundle": list,
    "public_key": bytes,
    "user_data": bytes,
    "nonce": bytes,
}


def _fields(payload: bytes) -> dict[str, Any]:
    try:
        fields = cbor2.loads(payload)
    except Exception:
        raise AttestationError("the document's payload is not CBOR") from None
    if not isinstance(fields, dict) or set(fields) != set(_FIELD_TYPES):
        raise AttestationError("the document's payload does not have the expected fields")
    for name, kind in _FIELD_TYPES.items():
        if not isinstance(fields[name], kind) or isinstance(fields[name], bool):
            raise AttestationError(f"the document's {name} is not a {kind.__name__}")
    pcr = fields["pcrs"].get(0)
    if fields["digest"] != DIGEST or not isinstance(pcr, bytes) or len(pcr) != 32:
        raise AttestationError("the document's PCR 0 is not a 32-byte keccak image id")
    if len(fields["public_key"]) != 32 or len(fields["user_data"]) != 20:
        raise AttestationError("the document's keys are not an X25519 key and an address")
    if fields["timestamp"] < 0:
        raise AttestationError("the document's timestamp is negative")
    return fields


def _issuer_key(certificate: bytes) -> ec.EllipticCurvePublicKey:
    try:
        with warnings.catch_warnings():  # a tampered certificate may warn before it fails
            warnings.simplefilter("ignore")
            public = x509.load_der_x509_certificate(certificate).public_key()
    except Exception:  # InvalidVersion, UnsupportedAlgorithm, ValueError: untrusted bytes
        raise AttestationError("the document's certificate is not DER X.509") from None
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256k1":
        raise AttestationError("the document's certificate is not a secp256k1 key")
    return public


def _address(public: ec.EllipticCurvePublicKey) -> str:
    point = public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return to_checksum_address(keccak(point[1:])[-20:])


def _certificate(private: ec.EllipticCurvePrivateKey) -> bytes:
    """A self-signed certificate of the authority's key (the dev root has no CA above it)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Kalypso attestation authority")])
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=365 * 30))
        .sign(private, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
