"""The Nitro attestation verifier: a real AWS document, every shape genuine ones take
(from a test CA shaped like AWS's), and whatever an attacker makes of them."""

from __future__ import annotations

import datetime
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from eth_utils import keccak
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kalypso.enclave.images import NITRO_DOMAIN, ImageKind, measurement, nitro_image_id
from kalypso.enclave.nitro import AWS_ROOT_SHA256, NitroDocument, aws_root, verify
from kalypso.errors import AttestationError
from kalypso.testing.nitro_ca import LEAF_USAGE, Issued, NitroTestCA, certificate, pcrs_of, sign

SHARED = Path(__file__).resolve().parents[1] / "fixtures" / "nitro"
REAL = (SHARED / "marlin_oyster_2024-08-07.bin").read_bytes()
FACTS = json.loads((SHARED / "marlin_oyster_2024-08-07.json").read_text())
#: the document's own time: its leaf certificate is valid three hours from then
REAL_AT = FACTS["timestamp_ms"]


@pytest.fixture(scope="module")
def ca() -> NitroTestCA:
    return NitroTestCA()


def check(document: bytes, ca: NitroTestCA, **kw: Any) -> NitroDocument:
    at_ms = kw.pop("at_ms", int(time.time() * 1000))
    return verify(document, at_ms=at_ms, root=ca.root, **kw)


def refused(document: bytes, ca: NitroTestCA | None = None, **kw: Any) -> str:
    with pytest.raises(AttestationError) as caught:
        if ca is None:
            verify(document, at_ms=kw.pop("at_ms", REAL_AT), **kw)
        else:
            check(document, ca, **kw)
    return str(caught.value)


# -- the real document ----------------------------------------------------------------------


def test_the_real_aws_document_verifies_as_of_its_time() -> None:
    doc = verify(REAL, at_ms=REAL_AT)
    assert hashlib.sha256(REAL).hexdigest() == FACTS["sha256"]
    assert doc.module_id == FACTS["module_id"] and doc.timestamp_ms == REAL_AT
    assert doc.digest == "SHA384" and len(doc.pcrs) == FACTS["pcr_count"] == 16
    assert [doc.pcrs[i].hex() for i in (0, 1, 2)] == [FACTS["pcr0"], FACTS["pcr1"], FACTS["pcr2"]]
    assert doc.public_key is not None and doc.public_key.hex() == FACTS["public_key"]["hex"]
    assert doc.user_data is None and doc.nonce is None and not doc.debug


def test_the_pinned_root_is_the_one_aws_publishes() -> None:
    shared = x509.load_pem_x509_certificate((SHARED / "root.pem").read_bytes())
    assert aws_root() == shared
    der = shared.public_bytes(serialization.Encoding.DER)
    assert (
        hashlib.sha256(der).hexdigest() == AWS_ROOT_SHA256 == FACTS["verification"]["root_sha256"]
    )


def test_the_real_document_checked_now_has_expired() -> None:
    reason = refused(REAL, at_ms=int(time.time() * 1000))
    assert "is valid from" in reason and "not at" in reason


def test_a_moment_after_its_leaf_expired_the_real_document_is_refused() -> None:
    leaf_end = datetime.datetime(2024, 8, 7, 9, 38, 9, tzinfo=datetime.UTC)
    assert verify(REAL, at_ms=int(leaf_end.timestamp() * 1000))
    assert "i-084e1dd2f1b2c529b-enc" in refused(REAL, at_ms=int(leaf_end.timestamp() * 1000) + 1000)


def _offsets() -> dict[str, int]:
    """Where the parts of the real document lie in its bytes."""
    sign1 = cbor2.loads(REAL)
    payload = cbor2.loads(sign1[2])
    return {
        "pcr0": REAL.index(payload["pcrs"][0]),
        "pcr2": REAL.index(payload["pcrs"][2]) + 47,
        "signature": len(REAL) - 96 + 17,
        "leaf certificate": REAL.index(payload["certificate"]) + 300,
        "root in the bundle": REAL.index(payload["cabundle"][0]) + 200,
        "zonal certificate": REAL.index(payload["cabundle"][2]) + 100,
        "module id": REAL.index(payload["module_id"].encode()) + 3,
        "timestamp": REAL.index(cbor2.dumps(REAL_AT)) + 8,
        "public key": REAL.index(payload["public_key"]) + 10,
        "protected header": 3,
    }


@pytest.mark.parametrize("part", list(_offsets()))
def test_one_byte_changed_in_any_part_is_refused(part: str) -> None:
    at = _offsets()[part]
    for flip in (0x01, 0x80):
        forged = REAL[:at] + bytes([REAL[at] ^ flip]) + REAL[at + 1 :]
        refused(forged)


def test_a_chain_to_another_root_is_refused(ca: NitroTestCA) -> None:
    document = ca.issue(pcrs_of(1), public_key=b"k" * 64)
    assert "does not start at the trusted root" in refused(document, at_ms=int(time.time() * 1000))
    # the AWS root named first, the rest of the chain the test CA's: its signature fails
    fields = cbor2.loads(cbor2.loads(document)[2])
    fields["cabundle"][0] = aws_root().public_bytes(serialization.Encoding.DER)
    at_ms = fields["timestamp"]
    forged = sign(fields, ca.leaf(at_ms))
    assert "is not signed by" in refused(forged, ca=None, at_ms=at_ms)


@settings(max_examples=300, deadline=None)
@given(at=st.integers(0, len(REAL) - 1), value=st.integers(0, 255))
@example(at=944, value=1)  # a certificate's version byte: cryptography's InvalidVersion
def test_no_single_byte_change_is_accepted(at: int, value: int) -> None:
    if REAL[at] == value:
        return
    refused(REAL[:at] + bytes([value]) + REAL[at + 1 :])


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(0, len(REAL) - 1), tail=st.binary(max_size=8))
def test_a_truncated_or_extended_document_is_refused(cut: int, tail: bytes) -> None:
    refused(REAL[:cut] + tail)
    if tail:
        refused(REAL + tail)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_refused_with_a_reason(data: bytes) -> None:
    refused(data)


# -- every shape a genuine document takes -------------------------------------------------------


@pytest.mark.parametrize("tagged", [False, True])
@pytest.mark.parametrize("indefinite", [False, True])
@pytest.mark.parametrize("absent", [False, True])
def test_every_shape_of_a_genuine_document_verifies(
    ca: NitroTestCA, tagged: bool, indefinite: bool, absent: bool
) -> None:
    document = ca.issue(
        pcrs_of(2), public_key=b"\x04" * 65, tagged=tagged, indefinite=indefinite, absent=absent
    )
    doc = check(document, ca)
    assert doc.pcrs == pcrs_of(2) and doc.public_key == b"\x04" * 65
    assert doc.user_data is None and doc.nonce is None


def test_user_data_and_nonce_up_to_1024_bytes_and_empty_are_accepted(ca: NitroTestCA) -> None:
    doc = check(ca.issue(pcrs_of(3), public_key=b"p" * 1024, user_data=b"u" * 1024, nonce=b""), ca)
    assert (len(doc.public_key or b""), len(doc.user_data or b""), doc.nonce) == (1024, 1024, b"")
    assert check(ca.issue(pcrs_of(3), user_data=b""), ca).user_data == b""


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"public_key": b"p" * 1025}, "public_key is not 1 to 1024 bytes"),
        ({"public_key": b""}, "public_key is not 1 to 1024 bytes"),
        ({"user_data": b"u" * 1025}, "user_data is not 0 to 1024 bytes"),
        ({"nonce": "text"}, "nonce is not 0 to 1024 bytes"),
        ({"digest": "SHA256"}, "digest is 'SHA256', not SHA384"),
        ({"module_id": ""}, "module_id is missing or empty"),
        ({"timestamp": 0}, "timestamp 0 is not a positive"),
        ({"timestamp": True}, "is not a positive 64-bit integer"),
        ({"pcrs": {}}, "pcrs is not a map of 1 to 32"),
        ({"pcrs": {32: b"\x01" * 48}}, "PCR index 32 is not 0 to 31"),
        ({"pcrs": {0: b"\x01" * 47}}, "PCR0 is not 32, 48 or 64 bytes"),
        ({"cabundle": []}, "cabundle is missing or empty"),
    ],
)
def test_a_field_out_of_the_rules_is_refused_though_signed(
    ca: NitroTestCA, fields: dict[str, Any], reason: str
) -> None:
    genuine = cbor2.loads(cbor2.loads(ca.issue(pcrs_of(4)))[2])
    leaf = ca.leaf(genuine["timestamp"])
    genuine["certificate"] = leaf.der
    assert reason in refused(sign({**genuine, **fields}, leaf), ca)


def test_a_debug_mode_enclave_is_refused_unless_allowed(ca: NitroTestCA) -> None:
    pcrs = {**pcrs_of(5), 0: bytes(48), 1: bytes(48), 2: bytes(48)}
    document = ca.issue(pcrs, public_key=b"k" * 64)
    assert "debug mode" in refused(document, ca)
    assert check(document, ca, allow_debug=True).debug


# -- certificate rules -------------------------------------------------------------------------


def _with_chain(ca: NitroTestCA, chain: list[Issued], leaf: Issued) -> bytes:
    at_ms = int(time.time() * 1000)
    fields = cbor2.loads(cbor2.loads(ca.issue(pcrs_of(6), timestamp_ms=at_ms))[2])
    fields["cabundle"] = [c.der for c in chain]
    fields["certificate"] = leaf.der
    return sign(fields, leaf)


def _window() -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    return now - datetime.timedelta(hours=1), now + datetime.timedelta(hours=1)


def test_an_intermediate_that_is_not_a_ca_cannot_issue(ca: NitroTestCA) -> None:
    rogue = certificate("rogue", ca.chain[2], ca=False, valid=_window())  # in the instance's place
    leaf = certificate("leaf", rogue, ca=False, usage=LEAF_USAGE, valid=_window())
    assert "is not a CA" in refused(_with_chain(ca, [*ca.chain[:3], rogue], leaf), ca)


def test_a_path_longer_than_a_ca_allows_is_refused(ca: NitroTestCA) -> None:
    root, regional = ca.chain[:2]
    instance = certificate("instance", regional, ca=True, path_length=0, valid=_window())
    extra = certificate("below the instance", instance, ca=True, valid=_window())
    leaf = certificate("leaf", extra, ca=False, usage=LEAF_USAGE, valid=_window())
    chain = [root, regional, instance, extra]
    assert "allows 0 CAs below it" in refused(_with_chain(ca, chain, leaf), ca)


def test_a_leaf_that_is_a_ca_or_may_not_sign_is_refused(ca: NitroTestCA) -> None:
    as_ca = certificate("leaf", ca.chain[-1], ca=True, path_length=0, valid=_window())
    assert "is a CA" in refused(_with_chain(ca, ca.chain, as_ca), ca)
    no_sign = certificate("leaf", ca.chain[-1], ca=False, usage=(False, False), valid=_window())
    assert "no digitalSignature" in refused(_with_chain(ca, ca.chain, no_sign), ca)


def test_a_certificate_signed_with_sha256_is_refused(ca: NitroTestCA) -> None:
    leaf = certificate(
        "leaf", ca.chain[-1], ca=False, usage=LEAF_USAGE, hash_=hashes.SHA256(), valid=_window()
    )
    assert "ECDSA/SHA-384" in refused(_with_chain(ca, ca.chain, leaf), ca)


def test_a_certificate_not_yet_valid_is_refused(ca: NitroTestCA) -> None:
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    valid = (later, later + datetime.timedelta(hours=1))
    leaf = certificate("leaf", ca.chain[-1], ca=False, usage=LEAF_USAGE, valid=valid)
    assert "is valid from" in refused(_with_chain(ca, ca.chain, leaf), ca)


@settings(max_examples=60, deadline=None)
@given(
    fields=st.dictionaries(
        st.sampled_from(["module_id", "digest", "timestamp", "pcrs", "public_key", "user_data",
                         "nonce", "extra"]),
        st.one_of(st.none(), st.booleans(), st.integers(-5, 2**65), st.text(max_size=8),
                  st.binary(max_size=70), st.lists(st.binary(max_size=4), max_size=2),
                  st.dictionaries(st.integers(-1, 40), st.binary(max_size=70), max_size=3)),
    )
)  # fmt: skip
def test_signed_payloads_of_any_content_verify_or_give_a_reason(
    ca: NitroTestCA, fields: dict[str, Any]
) -> None:
    genuine = cbor2.loads(cbor2.loads(ca.issue(pcrs_of(7)))[2])
    leaf = ca.leaf(genuine["timestamp"])
    document = sign({**genuine, "certificate": leaf.der, **fields}, leaf)
    try:
        doc = check(document, ca)
    except AttestationError:
        return
    assert doc.digest == "SHA384" and doc.pcrs and doc.module_id


# -- image ids ---------------------------------------------------------------------------------


def test_a_nitro_image_id_hashes_pcr0_to_2_in_its_own_domain() -> None:
    doc = verify(REAL, at_ms=REAL_AT)
    expected = keccak(NITRO_DOMAIN + doc.pcrs[0] + doc.pcrs[1] + doc.pcrs[2])
    assert nitro_image_id(doc.pcrs) == expected
    assert nitro_image_id({**doc.pcrs, 8: b"\x01" * 48}) == expected  # PCR8 is not measured
    assert measurement(ImageKind.GENERATOR, {}).startswith(b"{")  # a dev id's preimage
    assert not NITRO_DOMAIN.startswith(b"{")
    with pytest.raises(AttestationError, match="PCR2 is not a 48-byte"):
        nitro_image_id({0: doc.pcrs[0], 1: doc.pcrs[1]})
