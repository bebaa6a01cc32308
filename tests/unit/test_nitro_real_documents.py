"""Genuine AWS Nitro attestation documents, published in public repositories, against the
verifier: each verifies as of its own time, says what its README entry says, and is refused
once its leaf certificate has expired. The set covers the shapes real documents take
(definite and indefinite payload maps; public_key, user_data and nonce null or set; a
debug-mode enclave); tests/fixtures/nitro/README.md names each one's source."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography import x509

from kalypso.enclave.nitro import document_time, verify
from kalypso.errors import AttestationError

SHARED = Path(__file__).resolve().parents[1] / "fixtures" / "nitro"
DOCUMENTS: list[dict[str, Any]] = json.loads((SHARED / "real_documents.json").read_text())[
    "documents"
]
README = (SHARED / "README.md").read_text()
#: an untagged COSE_Sign1 as the NSM writes it: array(4), protected {1: -35}, unprotected {},
#: then the payload as a byte string with a two-byte length
UNTAGGED_HEAD = bytes.fromhex("8444a1013822a059")
INDEFINITE_MAP = 0xBF
HOUR_MS = 3_600_000


def _raw(facts: dict[str, Any]) -> bytes:
    return (SHARED / facts["file"]).read_bytes()


def _ms(iso: str) -> int:
    moment = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)


def _length(value: bytes | None) -> int | None:
    return None if value is None else len(value)


each = pytest.mark.parametrize("facts", DOCUMENTS, ids=[d["file"] for d in DOCUMENTS])


@each
def test_it_verifies_as_of_its_own_time_and_says_what_the_readme_says(
    facts: dict[str, Any],
) -> None:
    raw = _raw(facts)
    assert hashlib.sha256(raw).hexdigest() == facts["sha256"] and len(raw) == facts["size"]
    assert document_time(raw) == facts["timestamp_ms"]
    doc = verify(raw, at_ms=document_time(raw), allow_debug=facts["debug"])
    assert doc.module_id == facts["module_id"] and doc.timestamp_ms == facts["timestamp_ms"]
    assert doc.digest == "SHA384" and len(doc.pcrs) == 16
    assert doc.pcrs[0].hex() == facts["pcr0"] and doc.debug is facts["debug"]
    assert [i for i, v in doc.pcrs.items() if any(v)] == facts["nonzero_pcrs"]
    lengths = [_length(v) for v in (doc.public_key, doc.user_data, doc.nonce)]
    assert lengths == [facts["public_key"], facts["user_data"], facts["nonce"]]
    # the README entry names the same document
    for fact in (facts["file"], facts["sha256"], facts["module_id"], facts["source"]["repo"]):
        assert fact in README


@each
def test_an_hour_after_its_leaf_expired_it_is_refused(facts: dict[str, Any]) -> None:
    raw = _raw(facts)
    leaf_der = cbor2.loads(cbor2.loads(raw)[2])["certificate"]
    leaf = x509.load_der_x509_certificate(leaf_der)
    expiry = _ms(facts["leaf_not_after"])
    assert int(leaf.not_valid_after_utc.timestamp() * 1000) == expiry
    assert facts["timestamp_ms"] < expiry  # the document was made while its leaf was valid
    assert verify(raw, at_ms=expiry, allow_debug=facts["debug"]).module_id == facts["module_id"]
    with pytest.raises(AttestationError, match=r"is valid from .* not at"):
        verify(raw, at_ms=expiry + HOUR_MS, allow_debug=facts["debug"])


@each
def test_its_shape_read_from_the_raw_bytes(facts: dict[str, Any]) -> None:
    raw = _raw(facts)
    assert not facts["tagged"] and raw[: len(UNTAGGED_HEAD)] == UNTAGGED_HEAD
    payload_length = int.from_bytes(raw[8:10], "big")
    payload = raw[10 : 10 + payload_length]
    assert raw[10 + payload_length : 10 + payload_length + 2] == bytes.fromhex("5860")
    assert len(raw) == 10 + payload_length + 2 + 96  # the ES384 signature closes it
    if facts["payload_map"] == "indefinite":
        assert payload[0] == INDEFINITE_MAP and payload[-1] == 0xFF
    else:
        assert facts["payload_map"] == "definite" and payload[0] == 0xA0 | 9
    assert payload == cbor2.loads(raw)[2]


@pytest.mark.parametrize("facts", [d for d in DOCUMENTS if d["debug"]], ids=lambda d: d["file"])
def test_a_genuine_debug_mode_document_is_refused_unless_allowed(facts: dict[str, Any]) -> None:
    raw = _raw(facts)
    with pytest.raises(AttestationError, match="debug mode"):
        verify(raw, at_ms=facts["timestamp_ms"])
    assert verify(raw, at_ms=facts["timestamp_ms"], allow_debug=True).debug


def test_the_set_covers_the_shapes_real_documents_take() -> None:
    shapes = {d["payload_map"] for d in DOCUMENTS}
    assert shapes == {"definite", "indefinite"}
    for field in ("public_key", "user_data", "nonce"):
        assert any(d[field] is not None for d in DOCUMENTS), f"no document with a {field}"
    assert any(d["user_data"] is None and d["nonce"] is None for d in DOCUMENTS)
    assert any(d["debug"] for d in DOCUMENTS) and any(not d["debug"] for d in DOCUMENTS)
    assert len({d["sha256"] for d in DOCUMENTS}) == len(DOCUMENTS) >= 6
