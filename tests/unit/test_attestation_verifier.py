"""The attestation verifier: which Nitro documents become signed `Enclave` statements.

Documents come from a test CA shaped like AWS's (`SimulatedNsm`); the verifier is given
its root, the one thing swapped from production."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from kalypso.enclave.images import nitro_image_id
from kalypso.enclave.statements import Domain, signer_of
from kalypso.enclave.verifier import MAX_DOCUMENT_AGE_MS, NONCE_TTL_S, AttestationVerifier
from kalypso.enclave.verifier_api import verifier_app
from kalypso.errors import AttestationError
from kalypso.testing.nitro_ca import NitroTestCA, SimulatedNsm, pcrs_of

DOMAIN = Domain(4242, "0x" + "12" * 20)
KEY = b"\x07" * 32
ENCLAVE = Account.create()
X25519 = os.urandom(32)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def ca() -> NitroTestCA:
    return NitroTestCA()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(ca: NitroTestCA, clock: Clock) -> AttestationVerifier:
    return AttestationVerifier(KEY, DOMAIN, root=ca.root, clock=clock)


def document(ca: NitroTestCA, nonce: bytes | None, clock: Clock, **kw: Any) -> bytes:
    fields = {"public_key": X25519, "user_data": bytes.fromhex(ENCLAVE.address[2:]), **kw}
    return ca.issue(pcrs_of(3), nonce=nonce, timestamp_ms=int(clock.now * 1000), **fields)


def test_a_genuine_document_becomes_a_statement_the_authority_signed(
    ca: NitroTestCA, clock: Clock, verifier: AttestationVerifier
) -> None:
    verdict = verifier.attest(document(ca, verifier.nonce(), clock))
    s = verdict.statement
    assert (s.signing_key, s.encryption_key) == (ENCLAVE.address, X25519)
    assert s.image_id == nitro_image_id(pcrs_of(3))
    assert s.timestamp_ms == int(clock.now * 1000)
    assert signer_of(DOMAIN, s, verdict.signature) == verifier.address


def test_a_nonce_serves_once_and_only_if_this_verifier_issued_it_lately(
    ca: NitroTestCA, clock: Clock, verifier: AttestationVerifier
) -> None:
    used = verifier.nonce()
    verifier.attest(document(ca, used, clock))
    for nonce in (used, os.urandom(32), None):  # replayed, made up, absent
        with pytest.raises(AttestationError, match="nonce"):
            verifier.attest(document(ca, nonce, clock))
    late = verifier.nonce()
    clock.now += NONCE_TTL_S + 1
    with pytest.raises(AttestationError, match="nonce"):
        verifier.attest(document(ca, late, clock))


def test_an_old_document_or_one_from_the_future_is_refused(
    ca: NitroTestCA, clock: Clock, verifier: AttestationVerifier
) -> None:
    old = document(ca, verifier.nonce(), clock)
    clock.now += MAX_DOCUMENT_AGE_MS / 1000 + 1
    with pytest.raises(AttestationError, match="at most 300 s old"):
        verifier.attest(old)
    ahead = Clock()
    ahead.now = clock.now + 120
    with pytest.raises(AttestationError, match="is valid from"):  # its leaf is not yet
        verifier.attest(document(ca, verifier.nonce(), ahead))


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"public_key": b"k" * 64}, "32-byte X25519 key"),
        ({"public_key": None}, "32-byte X25519 key"),
        ({"user_data": b"u" * 32}, "20-byte signing address"),
    ],
)
def test_a_document_must_bind_both_keys_of_the_enclave(
    ca: NitroTestCA,
    clock: Clock,
    verifier: AttestationVerifier,
    fields: dict[str, Any],
    reason: str,
) -> None:
    with pytest.raises(AttestationError, match=reason):
        verifier.attest(document(ca, verifier.nonce(), clock, **fields))


def test_debug_enclaves_and_other_roots_are_refused(ca: NitroTestCA, clock: Clock) -> None:
    aws = AttestationVerifier(KEY, DOMAIN, clock=clock)  # the pinned AWS root
    with pytest.raises(AttestationError, match="trusted root"):
        aws.attest(document(ca, aws.nonce(), clock))
    verifier = AttestationVerifier(KEY, DOMAIN, root=ca.root, clock=clock)
    debug = {**pcrs_of(3), 0: bytes(48), 1: bytes(48), 2: bytes(48)}
    doc = SimulatedNsm(ca, debug).document(
        public_key=X25519, user_data=bytes.fromhex(ENCLAVE.address[2:]), nonce=verifier.nonce()
    )
    with pytest.raises(AttestationError, match="debug mode"):
        verifier.attest(doc)


def test_the_http_api_hands_out_nonces_and_statements_and_says_why_not(
    ca: NitroTestCA, clock: Clock, verifier: AttestationVerifier
) -> None:
    http = TestClient(verifier_app(verifier))
    assert http.get("/health").json() == {
        "status": "ok", "authority": verifier.address, "chain_id": 4242,
        "registry": DOMAIN.registry, "root": "test",
    }  # fmt: skip
    nonce = bytes.fromhex(http.post("/nonce").json()["nonce"][2:])
    signed = http.post("/attest", json={"document": "0x" + document(ca, nonce, clock).hex()})
    assert signed.status_code == 200
    assert signed.json()["signing_key"] == ENCLAVE.address
    assert signed.json()["image_id"] == "0x" + nitro_image_id(pcrs_of(3)).hex()
    again = http.post("/attest", json={"document": "0x" + document(ca, nonce, clock).hex()})
    assert again.status_code == 400 and "nonce" in again.json()["error"]
    garbage = http.post("/attest", json={"document": "0xzz"})
    assert garbage.status_code == 400 and garbage.json()["error"]
    assert http.post("/attest", json={}).status_code == 422
