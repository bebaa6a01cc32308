"""Verify AWS Nitro Enclaves attestation documents: pure, no I/O.

A Nitro enclave asks its hypervisor's Nitro Secure Module (NSM) for a document: a
COSE_Sign1 (RFC 9052) whose payload is a CBOR map of the enclave's measurements (PCRs),
an optional public key, user data and nonce, signed with ES384 by a leaf certificate
that chains to the AWS Nitro Enclaves Root-G1. The rules followed here are AWS's
"Verifying the root of trust" (aws/aws-nitro-enclaves-nsm-api,
docs/attestation_process.md, §3), with these readings of it:

- The COSE_Sign1 may be tagged (18) or not; the NSM emits it untagged.
- The signature is checked over the payload *bytes as received*: a payload map encoded
  with indefinite length, or any non-canonical way, verifies as it was signed.
- `public_key`, `user_data` and `nonce` may be absent or CBOR null (the NSM's own
  `AttestationDoc` encodes a missing one as null, as the real document in our tests
  has). Their sizes follow AWS's CDDL, `bytes .size (0..1024)` (`public_key` 1..1024),
  not the 512 bytes of its prose: the CDDL is what the NSM enforces.
- The root is pinned by the SHA-256 of its DER; `cabundle[0]` must be that root, byte
  for byte. A root certificate without a path-length limit has none (RFC 5280 §4.2.1.9).
- A document of an enclave in debug mode (PCR0, PCR1 and PCR2 all zero: anyone with
  the host can read its memory) is refused unless `allow_debug`.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import itertools
from dataclasses import dataclass
from functools import cache
from typing import Any

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from kalypso.errors import AttestationError

COSE_SIGN1_TAG = 18
ES384 = -35
#: The largest document read: a payload of at most 16 KiB (AWS's CDDL) plus the envelope.
MAX_DOCUMENT_BYTES = 20_000
PCR_LENGTHS = (32, 48, 64)
USER_BYTES = 1024

#: AWS Nitro Enclaves Root-G1 (https://aws-nitro-enclaves.amazonaws.com/AWS_NitroEnclaves_Root-G1.zip),
#: pinned by the SHA-256 of its DER, the fingerprint AWS publishes.
AWS_ROOT_SHA256 = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
AWS_ROOT_PEM = b"""-----BEGIN CERTIFICATE-----
MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD
VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4
MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL
DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG
BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb
48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE
h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF
R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC
MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW
rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N
IwLz3/Y=
-----END CERTIFICATE-----
"""


@dataclass(frozen=True)
class NitroDocument:
    """What a verified document says."""

    module_id: str
    #: when the NSM made it, milliseconds since the UNIX epoch
    timestamp_ms: int
    digest: str
    pcrs: dict[int, bytes]
    public_key: bytes | None
    user_data: bytes | None
    nonce: bytes | None
    #: the leaf certificate's DER
    certificate: bytes

    @property
    def debug(self) -> bool:
        return all(not any(self.pcrs.get(i, b"")) for i in (0, 1, 2))


@cache
def aws_root() -> x509.Certificate:
    """The pinned AWS Nitro Enclaves Root-G1 (loaded and checked once)."""
    root = x509.load_pem_x509_certificate(AWS_ROOT_PEM)
    _pinned(root, AWS_ROOT_SHA256)
    return root


def verify(
    document: bytes,
    *,
    at_ms: int,
    root: x509.Certificate | None = None,
    allow_debug: bool = False,
) -> NitroDocument:
    """The fields of `document` once its chain (to `root`, by default AWS's) and its
    signature verify, every certificate valid at `at_ms`; `AttestationError` with the
    reason otherwise. Callers check freshness, nonce and key against their own rules."""
    protected, payload, signature, bundle, parsed = _parse(document)
    leaf = _chain(parsed.certificate, bundle, root or aws_root(), at_ms)
    _check_signature(leaf, protected, payload, signature)
    if parsed.debug and not allow_debug:
        raise AttestationError(
            "the enclave runs in debug mode (PCR0-2 are zero): its host can read its memory"
        )
    return parsed


def document_time(document: bytes) -> int:
    """The timestamp (ms) a document claims, read without verifying anything: to check a
    stored document as of its own time, never to decide whether to trust it."""
    return _parse(document)[4].timestamp_ms


def _parse(document: bytes) -> tuple[bytes, bytes, bytes, list[bytes], NitroDocument]:
    """(protected header, payload, signature, cabundle, fields), each well-formed."""
    if not isinstance(document, bytes) or not 0 < len(document) <= MAX_DOCUMENT_BYTES:
        raise AttestationError(f"not an attestation document: {_size(document)}")
    protected, payload, signature = _envelope(_decode(document, "the COSE_Sign1"))
    fields = _decode(payload, "the payload")
    if not isinstance(fields, dict):
        raise AttestationError("the payload is not a CBOR map")
    return protected, payload, signature, _bundle(fields), _fields(fields)


def _decode(data: bytes, what: str) -> Any:
    """One CBOR item filling `data` exactly."""
    stream = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(stream).decode()
    except Exception as exc:  # cbor2 raises several types on malformed input
        raise AttestationError(f"{what} is not valid CBOR: {exc}") from None
    if stream.tell() != len(data):
        raise AttestationError(f"{what} has {len(data) - stream.tell()} bytes after its end")
    return item


def _envelope(item: Any) -> tuple[bytes, bytes, bytes]:
    """(protected header bytes, payload bytes, signature) of a COSE_Sign1."""
    if isinstance(item, cbor2.CBORTag):
        if item.tag != COSE_SIGN1_TAG:
            raise AttestationError(f"a CBOR tag {item.tag}, not COSE_Sign1's 18")
        item = item.value
    if not isinstance(item, list) or len(item) != 4:
        raise AttestationError("not a COSE_Sign1 (an array of 4)")
    protected, unprotected, payload, signature = item
    if not all(isinstance(part, bytes) for part in (protected, payload, signature)):
        raise AttestationError("a COSE_Sign1 whose header, payload or signature is not bytes")
    if not isinstance(unprotected, dict):
        raise AttestationError("a COSE_Sign1 whose unprotected header is not a map")
    header = _decode(protected, "the protected header")
    if not isinstance(header, dict) or header.get(1) != ES384:
        raise AttestationError(f"the signature algorithm is not ES384: {header!r}")
    if len(signature) != 96:
        raise AttestationError(f"an ES384 signature has 96 bytes, not {len(signature)}")
    return protected, payload, signature


def _fields(fields: dict[Any, Any]) -> NitroDocument:
    module_id, digest, timestamp, pcrs, certificate = (
        fields.get(k) for k in ("module_id", "digest", "timestamp", "pcrs", "certificate")
    )
    if not isinstance(module_id, str) or not module_id:
        raise AttestationError("module_id is missing or empty")
    if digest != "SHA384":
        raise AttestationError(f"digest is {digest!r}, not SHA384")
    if type(timestamp) is not int or not 0 < timestamp < 2**64:
        raise AttestationError(f"timestamp {timestamp!r} is not a positive 64-bit integer")
    if not isinstance(pcrs, dict) or not 1 <= len(pcrs) <= 32:
        raise AttestationError("pcrs is not a map of 1 to 32 registers")
    for index, value in pcrs.items():
        if type(index) is not int or not 0 <= index < 32:
            raise AttestationError(f"PCR index {index!r} is not 0 to 31")
        if not isinstance(value, bytes) or len(value) not in PCR_LENGTHS:
            raise AttestationError(f"PCR{index} is not 32, 48 or 64 bytes")
    if not isinstance(certificate, bytes) or not 1 <= len(certificate) <= 1024:
        raise AttestationError("certificate is not 1 to 1024 bytes")
    return NitroDocument(
        module_id=module_id,
        timestamp_ms=timestamp,
        digest=digest,
        pcrs=dict(sorted(pcrs.items())),
        public_key=_optional(fields, "public_key", 1),
        user_data=_optional(fields, "user_data", 0),
        nonce=_optional(fields, "nonce", 0),
        certificate=certificate,
    )


def _optional(fields: dict[Any, Any], name: str, least: int) -> bytes | None:
    value = fields.get(name)
    if value is None:  # absent, or CBOR null as the NSM writes it
        return None
    if not isinstance(value, bytes) or not least <= len(value) <= USER_BYTES:
        raise AttestationError(f"{name} is not {least} to {USER_BYTES} bytes")
    return value


def _bundle(fields: dict[Any, Any]) -> list[bytes]:
    bundle = fields.get("cabundle")
    if not isinstance(bundle, list) or not bundle:
        raise AttestationError("cabundle is missing or empty")
    if not all(isinstance(c, bytes) and 1 <= len(c) <= 1024 for c in bundle):
        raise AttestationError("a cabundle certificate is not 1 to 1024 bytes")
    return bundle


def _chain(leaf_der: bytes, bundle: list[bytes], root: x509.Certificate, at_ms: int) -> Any:
    """The leaf's public key once root → bundle → leaf verifies at `at_ms`."""
    if bundle[0] != root.public_bytes(serialization.Encoding.DER):
        raise AttestationError("the chain does not start at the trusted root")
    certificates = [_load(der) for der in [*bundle, leaf_der]]
    at = datetime.datetime.fromtimestamp(at_ms / 1000, datetime.UTC)
    for depth, (issuer, cert) in enumerate(itertools.pairwise(certificates)):
        _check_ca(issuer, below=len(certificates) - 2 - depth)  # CAs under it, not the leaf
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise AttestationError(
                f"{_name(cert)} is not signed by {_name(issuer)}: {exc}"
            ) from None
    for cert in certificates:
        if not isinstance(_hash_of(cert), hashes.SHA384):
            raise AttestationError(f"{_name(cert)} is not signed with ECDSA/SHA-384")
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            raise AttestationError(
                f"{_name(cert)} is valid from {cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} "
                f"to {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}, not at "
                f"{at:%Y-%m-%dT%H:%M:%SZ}"
            )
    leaf = certificates[-1]
    constraints = _extension(leaf, x509.BasicConstraints, required=False)
    if constraints is not None and constraints.ca:
        raise AttestationError("the signing certificate is a CA")
    if not _extension(leaf, x509.KeyUsage).digital_signature:
        raise AttestationError("the signing certificate may not sign (no digitalSignature)")
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise AttestationError("the signing certificate's key is not ECDSA P-384")
    return key


def _load(der: bytes) -> x509.Certificate:
    """A certificate whose every part read below parses (cryptography parses lazily)."""
    try:
        cert = x509.load_der_x509_certificate(der)
        _ = (cert.subject.rfc4514_string(), cert.issuer, cert.extensions, cert.public_key(),
             cert.not_valid_before_utc, cert.not_valid_after_utc)  # fmt: skip
    except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion) as exc:
        raise AttestationError(f"a certificate does not parse: {exc}") from None
    return cert


def _hash_of(cert: x509.Certificate) -> Any:
    try:
        return cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return None


def _check_ca(cert: x509.Certificate, *, below: int) -> None:
    """`cert` may issue certificates, with `below` more CAs under it in this chain."""
    constraints = _extension(cert, x509.BasicConstraints)
    if not constraints.ca:
        raise AttestationError(f"{_name(cert)} issues certificates but is not a CA")
    if constraints.path_length is not None and below > constraints.path_length:
        raise AttestationError(f"{_name(cert)} allows {constraints.path_length} CAs below it")
    if not _extension(cert, x509.KeyUsage).key_cert_sign:
        raise AttestationError(f"{_name(cert)} may not sign certificates (no keyCertSign)")


def _extension(cert: x509.Certificate, kind: Any, *, required: bool = True) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        if not required:
            return None
        raise AttestationError(f"{_name(cert)} has no {kind.__name__} extension") from None
    except ValueError as exc:  # a duplicate or malformed extension
        raise AttestationError(f"{_name(cert)}: {exc}") from None


def _check_signature(key: Any, protected: bytes, payload: bytes, signature: bytes) -> None:
    """ES384 over the Sig_structure ["Signature1", protected, h'', payload] (RFC 9052 §4.4)."""
    signed = cbor2.dumps(["Signature1", protected, b"", payload])
    r, s = int.from_bytes(signature[:48], "big"), int.from_bytes(signature[48:], "big")
    try:
        key.verify(encode_dss_signature(r, s), signed, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise AttestationError("the document's signature does not verify") from None


def _pinned(cert: x509.Certificate, sha256: str) -> None:
    if hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest() != sha256:
        raise AttestationError("the built-in AWS root does not match its pinned hash")


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "a certificate without a subject"


def _size(document: object) -> str:
    return f"{len(document)} bytes" if isinstance(document, bytes) else type(document).__name__
