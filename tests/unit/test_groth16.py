"""Groth16Verifier in titanoboa against real snarkjs proofs of the sample circuits."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import boa
import pytest
from py_ecc.bn128 import FQ, G1, add, neg

from kalypso.circuits import circuit
from kalypso.contracts import source_path
from kalypso.market import BN254_SCALAR_FIELD, VerifyContext, encode_signals
from kalypso.provers.proof import (
    BN254_BASE_FIELD,
    Groth16Proof,
    batch_arguments,
    verifier_args,
)
from tests.zk import prove, snarkjs_verifies

CTX = VerifyContext.sample().as_tuple()


def deploy(name: str) -> Any:
    args = verifier_args(circuit(name).vkey_json())
    return boa.load_partial(str(source_path("Groth16Verifier"))).deploy(*args)


@pytest.fixture(scope="session")
def preimage_verifier() -> Any:
    return deploy("poseidon_preimage")


@pytest.fixture(scope="session")
def root_verifier() -> Any:
    return deploy("square_root")


def preimage(n: int) -> Groth16Proof:
    return prove("poseidon_preimage", {"preimage": n})


def root(r: int, max_root: int = 300) -> Groth16Proof:
    return prove("square_root", {"square": r * r, "max_root": max_root, "root": r})


def check(verifier: Any, proof: Groth16Proof) -> bool:
    return bool(verifier.verify(CTX, proof.public_inputs(), proof.calldata()))


def test_a_real_proof_verifies_with_one_public_input(preimage_verifier: Any) -> None:
    assert preimage_verifier.public_input_count() == 1
    assert check(preimage_verifier, preimage(7))


def test_a_real_proof_verifies_with_two_public_inputs(root_verifier: Any) -> None:
    assert root_verifier.public_input_count() == 2
    assert check(root_verifier, root(7, 10))


def test_another_public_input_reverts(preimage_verifier: Any) -> None:
    proof = preimage(7)
    other = replace(proof, public_signals=(proof.public_signals[0] + 1,))
    with boa.reverts("groth16: invalid proof"):
        check(preimage_verifier, other)


def test_a_proof_for_other_inputs_reverts(preimage_verifier: Any) -> None:
    seven, eight = preimage(7), preimage(8)
    with boa.reverts("groth16: invalid proof"):
        preimage_verifier.verify(CTX, seven.public_inputs(), eight.calldata())


def test_input_not_in_field_reverts(preimage_verifier: Any) -> None:
    proof = preimage(7)
    inputs = bytes(proof.public_inputs()[:64]) + BN254_SCALAR_FIELD.to_bytes(32, "big")
    with boa.reverts("groth16: input not in field"):
        preimage_verifier.verify(CTX, inputs, proof.calldata())


def test_wrong_input_count_reverts(root_verifier: Any) -> None:
    proof = root(7, 10)
    with boa.reverts("groth16: wrong input count"):
        root_verifier.verify(CTX, encode_signals([49]), proof.calldata())


def test_short_proof_reverts(preimage_verifier: Any) -> None:
    proof = preimage(7)
    with boa.reverts("groth16: bad proof length"):
        preimage_verifier.verify(CTX, proof.public_inputs(), proof.calldata()[:-1])


def test_coordinate_not_in_field_reverts(preimage_verifier: Any) -> None:
    proof = preimage(7)
    bad = BN254_BASE_FIELD.to_bytes(32, "big") + proof.calldata()[32:]
    with boa.reverts("groth16: proof point not in field"):
        preimage_verifier.verify(CTX, proof.public_inputs(), bad)


def test_point_off_the_curve_reverts(preimage_verifier: Any) -> None:
    proof = preimage(7)
    off = replace(proof, c=(proof.c[0], (proof.c[1] + 1) % BN254_BASE_FIELD))
    with boa.reverts("groth16: point not on curve"):
        check(preimage_verifier, off)


def test_contract_agrees_with_snarkjs(preimage_verifier: Any) -> None:
    """A differential test: valid and tampered proofs, snarkjs' verdict against the contract's."""
    valid = preimage(11)
    cases = [
        valid,
        replace(valid, public_signals=(valid.public_signals[0] ^ 1,)),
        replace(valid, a=preimage(12).a),
        replace(valid, c=preimage(12).c),
    ]
    for proof in cases:
        expected = snarkjs_verifies("poseidon_preimage", proof)
        try:
            got = check(preimage_verifier, proof)
        except boa.BoaError:
            got = False
        assert got == expected
        assert proof.verify_local(circuit("poseidon_preimage").vkey_json()) == expected
    assert snarkjs_verifies("poseidon_preimage", valid)


def verify_batch(verifier: Any, proofs: list[Groth16Proof], ctxs: list[Any] | None = None) -> bool:
    return bool(verifier.verify_batch(ctxs or [CTX] * len(proofs), *batch_arguments(proofs)))


def shift_c(proof: Groth16Proof, delta: Any) -> Groth16Proof:
    """The proof with C moved by the G1 point `delta`: invalid unless delta is zero."""
    c = add((FQ(proof.c[0]), FQ(proof.c[1])), delta)
    return replace(proof, c=(c[0].n, c[1].n))


def test_batch_of_valid_proofs_verifies(root_verifier: Any) -> None:
    assert verify_batch(root_verifier, [root(r) for r in (3, 4, 5, 6)])


@pytest.mark.parametrize("bad", [0, 1, 2])
def test_batch_with_one_bad_proof_reverts(root_verifier: Any, bad: int) -> None:
    proofs = [root(r) for r in (3, 4, 5)]
    proofs[bad] = replace(proofs[bad], public_signals=root(9).public_signals)
    with boa.reverts("groth16: invalid proof in batch"):
        verify_batch(root_verifier, proofs)


def test_two_bad_proofs_that_cancel_out_in_a_plain_sum_revert(root_verifier: Any) -> None:
    """C_0 + D and C_1 - D add up to C_0 + C_1: only random coefficients tell them apart."""
    three, four = root(3), root(4)
    with boa.reverts("groth16: invalid proof in batch"):
        verify_batch(root_verifier, [shift_c(three, G1), shift_c(four, neg(G1))])


def test_batch_contexts_do_not_change_the_verdict(root_verifier: Any) -> None:
    proofs = [root(3), root(4)]
    other = (1, 2, b"\x07" * 32, "0x" + "11" * 20, b"\x09" * 32, 5)
    assert verify_batch(root_verifier, proofs, [other, CTX])


def test_batch_of_one_verifies(preimage_verifier: Any) -> None:
    assert verify_batch(preimage_verifier, [preimage(7)])


def test_empty_or_uneven_batch_reverts(preimage_verifier: Any) -> None:
    proof = preimage(7)
    with boa.reverts("groth16: bad batch"):
        preimage_verifier.verify_batch([], [], [])
    with boa.reverts("groth16: bad batch"):
        preimage_verifier.verify_batch([CTX], list(proof.public_signals), [])
    with boa.reverts("groth16: bad batch"):
        preimage_verifier.verify_batch([CTX], [], [proof.words()])
    with boa.reverts("groth16: bad batch"):
        preimage_verifier.verify_batch([CTX, CTX], *batch_arguments([proof]))


def test_batch_input_not_in_field_reverts(preimage_verifier: Any) -> None:
    proof = preimage(7)
    with boa.reverts("groth16: input not in field"):
        preimage_verifier.verify_batch([CTX], [BN254_SCALAR_FIELD], [proof.words()])


@pytest.mark.parametrize("item", [0, 1])
@pytest.mark.parametrize("word", [0, 3, 6])
def test_batch_coordinate_not_in_field_reverts(
    preimage_verifier: Any, item: int, word: int
) -> None:
    """The precompiles reject a coordinate >= Q: A goes through a multiplication (or, the
    first proof's, the pairing), B through the pairing, C through an addition."""
    proofs = [preimage(7), preimage(8)]
    signals, rows = batch_arguments(proofs)
    rows[item][word] += BN254_BASE_FIELD
    with boa.reverts("groth16: point not on curve"):
        preimage_verifier.verify_batch([CTX] * 2, signals, rows)


def test_snarkjs_json_round_trips_through_calldata() -> None:
    proof = preimage(7)
    assert Groth16Proof.from_calldata(proof.calldata(), proof.public_inputs()) == proof
    assert Groth16Proof.from_snarkjs(*proof.to_snarkjs()) == proof
