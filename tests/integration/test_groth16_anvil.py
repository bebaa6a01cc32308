"""Groth16Verifier over JSON-RPC (anvil): every single-byte tamper and batches of 32."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3
from web3.exceptions import ContractLogicError

from kalypso.circuits import circuit
from kalypso.contracts.web3tx import deploy
from kalypso.devnet import Anvil, dev_account
from kalypso.provers.proof import Groth16Proof, verifier_args

FIXTURES = Path(__file__).parents[1] / "fixtures" / "square_root_proofs.json"
CTX = (31337, 0, b"\x00" * 32, "0x" + "00" * 20, b"\x00" * 32)


@pytest.fixture(scope="module")
def proofs() -> list[Groth16Proof]:
    return [
        Groth16Proof.from_snarkjs(p["proof"], p["public"]) for p in json.loads(FIXTURES.read_text())
    ]


@pytest.fixture(scope="module")
def verifier() -> Iterator[Any]:
    with Anvil() as chain:
        w3: Web3 = chain.web3()
        args = verifier_args(circuit("square_root").vkey_json())
        contract, _ = deploy(w3, dev_account(0), "Groth16Verifier", *args)
        yield contract


def accepts(verifier: Any, inputs: bytes, proof: bytes) -> bool:
    try:
        return bool(verifier.functions.verify(CTX, inputs, proof).call())
    except ContractLogicError:
        return False


def test_every_single_byte_change_of_a_proof_is_rejected(
    verifier: Any, proofs: list[Groth16Proof]
) -> None:
    proof = proofs[6]
    data, inputs = proof.calldata(), proof.public_inputs()
    assert accepts(verifier, inputs, data)
    for i in range(len(data)):
        tampered = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]
        assert not accepts(verifier, inputs, tampered), f"byte {i} changed and still accepted"


def test_every_public_input_change_is_rejected(verifier: Any, proofs: list[Groth16Proof]) -> None:
    proof = proofs[6]
    for index in range(len(proof.public_signals)):
        signals = list(proof.public_signals)
        signals[index] += 1
        other = Groth16Proof(proof.a, proof.b, proof.c, tuple(signals))
        assert not accepts(verifier, other.public_inputs(), other.calldata())


def test_a_batch_of_32_valid_proofs_verifies(verifier: Any, proofs: list[Groth16Proof]) -> None:
    call = verifier.functions.verify_batch(
        [CTX] * 32, [p.public_inputs() for p in proofs], [p.calldata() for p in proofs]
    )
    assert call.call()


@pytest.mark.parametrize("bad", [0, 13, 31])
def test_a_batch_of_32_with_one_bad_proof_reverts(
    verifier: Any, proofs: list[Groth16Proof], bad: int
) -> None:
    inputs = [p.public_inputs() for p in proofs]
    inputs[bad] = proofs[(bad + 1) % 32].public_inputs()
    with pytest.raises(ContractLogicError, match="groth16: invalid proof in batch"):
        verifier.functions.verify_batch([CTX] * 32, inputs, [p.calldata() for p in proofs]).call()
