"""Attestation documents, EIP-712 statements and image ids, off-chain."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import cbor2
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given
from hypothesis import strategies as st

from kalypso.enclave import (
    DEV_AUTHORITY,
    DEV_AUTHORITY_KEY,
    Attestation,
    Authority,
    Domain,
    EnclaveIdentity,
    ImageKind,
    TaskAttestation,
    check_attestation,
    image_id,
)
from kalypso.enclave import document as doc
from kalypso.enclave.statements import signer_of
from kalypso.errors import AttestationError

DOMAIN = Domain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
IMAGE = image_id(ImageKind.GENERATOR, {"circuit": "poseidon_preimage"})
NOW_MS = 1_780_000_000_000
MINUTE_MS = 60_000


@pytest.fixture(scope="module")
def identity() -> EnclaveIdentity:
    return EnclaveIdentity()


@pytest.fixture(scope="module")
def attestation(identity: EnclaveIdentity) -> Attestation:
    return Authority(DEV_AUTHORITY_KEY).attest(identity, IMAGE, "generator", DOMAIN, now_ms=NOW_MS)


def check(attestation: Attestation, **kw: Any) -> doc.AttestationDocument:
    args: dict[str, Any] = {
        "authority": DEV_AUTHORITY,
        "image_id": IMAGE,
        "max_age_ms": 10 * MINUTE_MS,
        "now_ms": NOW_MS + MINUTE_MS,
    }
    return check_attestation(attestation, DOMAIN, **(args | kw))


def test_a_valid_attestation_binds_both_keys_image_and_time(
    attestation: Attestation, identity: EnclaveIdentity
) -> None:
    found = check(attestation)
    assert found.signing_key == identity.address
    assert found.encryption_key == identity.encryption.public_bytes
    assert (found.image_id, found.timestamp_ms, found.issuer) == (IMAGE, NOW_MS, DEV_AUTHORITY)


def test_the_document_is_a_nitro_shaped_cose_sign1(attestation: Attestation) -> None:
    envelope = cbor2.loads(attestation.document)
    assert envelope.tag == 18
    protected, unprotected, payload, signature = envelope.value
    assert cbor2.loads(protected) == {1: -47} and unprotected == {} and len(signature) == 64
    fields = cbor2.loads(payload)
    assert set(fields) == {
        "module_id",
        "digest",
        "timestamp",
        "pcrs",
        "certificate",
        "cabundle",
        "public_key",
        "user_data",
        "nonce",
    }
    assert fields["timestamp"] == NOW_MS  # milliseconds, as Nitro's


def test_another_authority_is_refused(attestation: Attestation) -> None:
    with pytest.raises(AttestationError, match="not the authority"):
        check(attestation, authority=Authority(os.urandom(32)).address)


def test_a_document_from_another_issuer_is_refused(identity: EnclaveIdentity) -> None:
    forged = Authority(os.urandom(32)).attest(identity, IMAGE, "generator", DOMAIN, now_ms=NOW_MS)
    with pytest.raises(AttestationError, match="not the authority"):
        check(forged)


def test_a_wrong_image_is_refused(attestation: Attestation) -> None:
    with pytest.raises(AttestationError, match="not 0x"):
        check(attestation, image_id=image_id(ImageKind.INPUT_VERIFICATION, {}))


def test_age_is_checked_in_milliseconds(attestation: Attestation) -> None:
    check(attestation, now_ms=NOW_MS + 10 * MINUTE_MS)
    with pytest.raises(AttestationError, match="old"):
        check(attestation, now_ms=NOW_MS + 10 * MINUTE_MS + 1)
    with pytest.raises(AttestationError, match="future"):
        check(attestation, now_ms=NOW_MS - 1)


def test_a_statement_that_says_something_else_is_refused(attestation: Attestation) -> None:
    for field, value in (
        ("encryption_key", os.urandom(32)),
        ("image_id", os.urandom(32)),
        ("timestamp_ms", NOW_MS + 1),
        ("signing_key", Account.create().address),
    ):
        changed = replace(attestation, statement=replace(attestation.statement, **{field: value}))
        with pytest.raises(AttestationError, match="does not match"):
            check(changed)


def test_a_statement_signed_for_another_domain_is_refused(attestation: Attestation) -> None:
    elsewhere = Domain(1, DOMAIN.registry)
    with pytest.raises(AttestationError, match="not signed by"):
        check_attestation(
            attestation,
            elsewhere,
            authority=DEV_AUTHORITY,
            image_id=IMAGE,
            max_age_ms=MINUTE_MS * 10,
            now_ms=NOW_MS,
        )


def test_every_single_byte_change_of_the_document_is_refused(attestation: Attestation) -> None:
    blob = attestation.document
    for i in range(0, len(blob), 3):  # every third byte keeps this under a second
        tampered = blob[:i] + bytes([blob[i] ^ 0x01]) + blob[i + 1 :]
        with pytest.raises(AttestationError):
            check(replace(attestation, document=tampered))


@given(st.binary(max_size=700))
def test_garbage_raises_only_attestation_error(blob: bytes) -> None:
    with pytest.raises(AttestationError):
        doc.verify(blob, authority=DEV_AUTHORITY, now_ms=NOW_MS, max_age_ms=MINUTE_MS)


@given(st.recursive(st.none() | st.integers() | st.binary() | st.text(), st.lists, max_leaves=8))
def test_malformed_cbor_structures_raise_only_attestation_error(value: Any) -> None:
    for blob in (cbor2.dumps(value), cbor2.dumps(cbor2.CBORTag(18, value))):
        with pytest.raises(AttestationError):
            doc.verify(blob, authority=DEV_AUTHORITY, now_ms=NOW_MS, max_age_ms=MINUTE_MS)


# ---------------------------------------------------------------- EIP-712


def _typed(primary: str, fields: list[tuple[str, str]], message: dict[str, Any]) -> Any:
    return encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                primary: [{"name": n, "type": t} for n, t in fields],
            },
            "primaryType": primary,
            "domain": {
                "name": "Kalypso Enclaves",
                "version": "1",
                "chainId": DOMAIN.chain_id,
                "verifyingContract": DOMAIN.registry,
            },
            "message": message,
        }
    )


def test_the_enclave_statement_is_standard_eip712(attestation: Attestation) -> None:
    s = attestation.statement
    message = _typed(
        "Enclave",
        [
            ("signingKey", "address"),
            ("encryptionKey", "bytes32"),
            ("imageId", "bytes32"),
            ("timestamp", "uint64"),
        ],
        {
            "signingKey": s.signing_key,
            "encryptionKey": s.encryption_key,
            "imageId": s.image_id,
            "timestamp": s.timestamp_ms,
        },
    )
    assert Account.recover_message(message, signature=attestation.signature) == DEV_AUTHORITY


@pytest.mark.parametrize("proof", [None, b"the raw proof"])
def test_task_attestations_are_standard_eip712(
    identity: EnclaveIdentity, proof: bytes | None
) -> None:
    verdict = TaskAttestation(
        3, os.urandom(32), Account.create().address, os.urandom(32), proof and os.urandom(32)
    )
    fields = [
        ("marketId", "uint256"),
        ("taskId", "bytes32"),
        ("generator", "address"),
        ("inputsHash", "bytes32"),
    ]
    message = {
        "marketId": verdict.market_id,
        "taskId": verdict.task_id,
        "generator": verdict.generator,
        "inputsHash": verdict.inputs_hash,
    }
    if proof is None:
        typed = _typed("InputsInvalid", fields, message)
    else:
        typed = _typed(
            "ProofValid",
            [*fields, ("proofHash", "bytes32")],
            message | {"proofHash": verdict.proof_hash},
        )
    signature = identity.sign(DOMAIN, verdict)
    assert Account.recover_message(typed, signature=signature) == identity.address
    assert signer_of(DOMAIN, verdict, signature) == identity.address


def test_a_high_s_signature_is_refused(identity: EnclaveIdentity) -> None:
    verdict = TaskAttestation(0, b"\x01" * 32, identity.address, b"\x02" * 32)
    sig = identity.sign(DOMAIN, verdict)
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(sig[32:64], "big")
    flipped = sig[:32] + (order - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    with pytest.raises(AttestationError, match="low-s"):
        signer_of(DOMAIN, verdict, flipped)


# -------------------------------------------------------------- image ids


def test_an_image_id_measures_kind_code_and_config() -> None:
    config = {"circuit": "poseidon_preimage", "zkey_sha256": "ab" * 32}
    first = image_id(ImageKind.GENERATOR, config)
    assert first == image_id(ImageKind.GENERATOR, dict(reversed(config.items())))  # canonical
    assert first != image_id(ImageKind.INPUT_VERIFICATION, config)
    assert first != image_id(ImageKind.GENERATOR, config | {"zkey_sha256": "cd" * 32})
    assert len(first) == 32
