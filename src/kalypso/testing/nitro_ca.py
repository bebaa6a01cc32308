"""A test certificate authority shaped like AWS Nitro's, and documents it signs.

Tests only (and the simulated NSM): a P-384 chain root → regional → zonal → instance,
each certificate with the extensions AWS's carry, and a fresh leaf per document, valid
for three hours as the NSM's are. Documents come in every shape genuine ones take:
tagged (18) or not, the payload map of definite or indefinite length, optional fields
absent or CBOR null. Nothing here is trusted by default: a verifier accepts these only
when handed `root` explicitly.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from kalypso.enclave.nitro import COSE_SIGN1_TAG, ES384

_PROTECTED = cbor2.dumps({1: ES384})
_DAY = datetime.timedelta(days=1)
#: every certificate's key usage: (digital_signature, key_cert_sign)
CA_USAGE = (True, True)
LEAF_USAGE = (True, False)


@dataclass
class Issued:
    """A certificate and its key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def certificate(
    name: str,
    issuer: Issued | None,
    *,
    ca: bool | None,
    path_length: int | None = None,
    usage: tuple[bool, bool] = CA_USAGE,
    valid: tuple[datetime.datetime, datetime.datetime],
    hash_: hashes.SHA256 | hashes.SHA384 | None = None,
) -> Issued:
    """A P-384 certificate for CN=`name`, `valid` (from, to), signed by `issuer` (itself
    when None); `ca=None` leaves out basic constraints."""
    key = ec.generate_private_key(ec.SECP384R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Kalypso test"),
        x509.NameAttribute(NameOID.COMMON_NAME, name),
    ])  # fmt: skip
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(_usage(*usage), critical=True)
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca, path_length), critical=True)
    cert = builder.sign(issuer.key if issuer else key, hash_ or hashes.SHA384())
    return Issued(cert, key)


def _usage(digital_signature: bool, key_cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass
class NitroTestCA:
    """root → regional → zonal → instance, valid a day either side of `now`."""

    now: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.UTC))
    chain: list[Issued] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.chain:
            return
        window = (self.now - _DAY, self.now + _DAY)
        root = certificate("test.nitro-enclaves", None, ca=True, valid=window)
        regional = certificate("regional.test", root, ca=True, path_length=2, valid=window)
        zonal = certificate("zonal.test", regional, ca=True, path_length=1, valid=window)
        instance = certificate("instance.test", zonal, ca=True, path_length=0, valid=window)
        self.chain = [root, regional, zonal, instance]

    @property
    def root(self) -> x509.Certificate:
        return self.chain[0].cert

    def leaf(self, at_ms: int) -> Issued:
        """The signing certificate the NSM would use at `at_ms`: valid three hours."""
        at = datetime.datetime.fromtimestamp(at_ms / 1000, datetime.UTC)
        return certificate(
            "i-0123456789abcdef0-enc0123456789abcdef.test",
            self.chain[-1],
            ca=False,
            usage=LEAF_USAGE,
            valid=(at - datetime.timedelta(seconds=3), at + datetime.timedelta(hours=3)),
        )

    def issue(
        self,
        pcrs: dict[int, bytes],
        *,
        public_key: bytes | None = None,
        user_data: bytes | None = None,
        nonce: bytes | None = None,
        timestamp_ms: int | None = None,
        absent: bool = False,
        **shape: Any,
    ) -> bytes:
        """A document of an enclave with `pcrs`; optional fields left None are CBOR null,
        or left out with `absent`. `shape`: as `sign`'s."""
        timestamp_ms = timestamp_ms or int(time.time() * 1000)
        leaf = self.leaf(timestamp_ms)
        fields: dict[str, Any] = {
            "module_id": "i-0123456789abcdef0-enc0123456789abcdef",
            "digest": "SHA384",
            "timestamp": timestamp_ms,
            "pcrs": pcrs,
            "certificate": leaf.der,
            "cabundle": [issued.der for issued in self.chain],
        }
        optional = {"public_key": public_key, "user_data": user_data, "nonce": nonce}
        fields.update({k: v for k, v in optional.items() if v is not None or not absent})
        return sign(fields, leaf, **shape)


def sign(
    fields: dict[str, Any], leaf: Issued, *, tagged: bool = False, indefinite: bool = False
) -> bytes:
    """A COSE_Sign1 over the payload map `fields`, ES384 by `leaf` (tag 18 when
    `tagged`; the map of indefinite length when `indefinite`)."""
    if indefinite:
        items = b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in fields.items())
        payload = b"\xbf" + items + b"\xff"
    else:
        payload = cbor2.dumps(fields)
    signed = cbor2.dumps(["Signature1", _PROTECTED, b"", payload])
    r, s = decode_dss_signature(leaf.key.sign(signed, ec.ECDSA(hashes.SHA384())))
    sign1 = [_PROTECTED, {}, payload, r.to_bytes(48, "big") + s.to_bytes(48, "big")]
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, sign1) if tagged else sign1)


def pcrs_of(seed: int, count: int = 16) -> dict[int, bytes]:
    """`count` 48-byte PCRs, distinct per `seed` (PCR0-2 never all zero)."""
    return {i: bytes([seed % 256, i + 1]) * 24 for i in range(count)}


class SimulatedNsm:
    """An NSM for tests: documents of an enclave with `pcrs`, signed by `ca`'s chain.
    A verifier accepts them only when given `ca.root` as its root."""

    def __init__(self, ca: NitroTestCA, pcrs: dict[int, bytes]) -> None:
        self.ca = ca
        self.pcrs = pcrs

    def document(self, *, public_key: bytes, user_data: bytes, nonce: bytes) -> bytes:
        return self.ca.issue(self.pcrs, public_key=public_key, user_data=user_data, nonce=nonce)
