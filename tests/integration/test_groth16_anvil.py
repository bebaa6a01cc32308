"""Groth16Verifier over JSON-RPC (anvil): every single-byte tamper and batches of 32."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from py_ecc.bn128 import FQ, G1, add, neg
from web3 import Web3
from web3.exceptions import ContractLogicError

from kalypso.circuits import circuit
from kalypso.contracts.client import MarketplaceClient
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.contracts.web3tx import deploy
from kalypso.devnet import Anvil, deploy_devnet, dev_account
from kalypso.errors import ProofRejectedError
from kalypso.market import RequestState, VerifyContext
from kalypso.provers.proof import Groth16Proof, batch_arguments, verifier_args

FIXTURES = Path(__file__).parents[1] / "fixtures" / "square_root_proofs.json"
CTX = VerifyContext.sample().as_tuple()


@pytest.fixture(scope="module")
def proofs() -> list[Groth16Proof]:
    return [
        Groth16Proof.from_snarkjs(p["proof"], p["public"]) for p in json.loads(FIXTURES.read_text())
    ]


@pytest.fixture(scope="module")
def w3() -> Iterator[Web3]:
    with Anvil() as chain:
        yield chain.web3()


@pytest.fixture(scope="module")
def verifier(w3: Web3) -> Any:
    args = verifier_args(circuit("square_root").vkey_json())
    contract, _ = deploy(w3, dev_account(0), "Groth16Verifier", *args)
    return contract


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
    assert verifier.functions.verify_batch([CTX] * 32, *batch_arguments(proofs)).call()


@pytest.mark.parametrize("bad", [0, 13, 31])
def test_a_batch_of_32_with_one_bad_proof_reverts(
    verifier: Any, proofs: list[Groth16Proof], bad: int
) -> None:
    chosen = list(proofs)
    chosen[bad] = replace(chosen[bad], public_signals=proofs[(bad + 1) % 32].public_signals)
    with pytest.raises(ContractLogicError, match="groth16: invalid proof in batch"):
        verifier.functions.verify_batch([CTX] * 32, *batch_arguments(chosen)).call()


@pytest.mark.parametrize(("first", "second"), [(0, 1), (5, 30), (30, 31)])
def test_a_batch_of_32_with_two_bad_proofs_that_cancel_out_reverts(
    verifier: Any, proofs: list[Groth16Proof], first: int, second: int
) -> None:
    """C moved by +D in one proof and -D in another: the plain sum of the Cs is unchanged,
    so only the random coefficients reject them (proofs 1 and 2 share one keccak draw)."""
    chosen = list(proofs)
    for index, delta in ((first, G1), (second, neg(G1))):
        c = add((FQ(chosen[index].c[0]), FQ(chosen[index].c[1])), delta)
        chosen[index] = replace(chosen[index], c=(c[0].n, c[1].n))
    with pytest.raises(ContractLogicError, match="groth16: invalid proof in batch"):
        verifier.functions.verify_batch([CTX] * 32, *batch_arguments(chosen)).call()


def test_batches_of_every_size_verify(verifier: Any, proofs: list[Groth16Proof]) -> None:
    """Every size from 1 to 32: the calldata hash takes small or large chunks by size."""
    for n in range(1, 33):
        assert verifier.functions.verify_batch([CTX] * n, *batch_arguments(proofs[:n])).call()


#: gasUsed of `submit_proofs` of 16 proofs in the devnet's square_root market: 1,583,779
#: with a `bytes` item per proof, 1,484,370 with the flat verify_batch arrays.
SUBMIT_16_GAS = 1_500_000


def test_a_groth16_market_settles_16_proofs_in_one_submit_proofs(
    w3: Web3, proofs: list[Groth16Proof]
) -> None:
    setup = deploy_devnet(w3)
    client = MarketplaceClient(w3, setup.deployment)
    market_id = setup.deployment.markets["square_root"]
    generator, requester = setup.funded[0], setup.funded[1]
    client.approve_all(generator)
    client.register(generator, stake=5_000 * TOKEN_UNIT, compute=32)
    client.join_market(generator, market_id, price=TOKEN_UNIT, proof_time=600)
    client.approve_all(requester)
    chosen = proofs[:16]
    tasks = [
        client.create_request(
            requester, market_id, p.public_inputs(), max_price=TOKEN_UNIT, proof_time=600
        )
        for p in chosen
    ]
    client.assign_batch(setup.matcher, [(t, generator.address, TOKEN_UNIT, b"") for t in tasks])
    bad = [(t, p.calldata()) for t, p in zip(tasks, chosen, strict=True)]
    bad[3] = (tasks[3], chosen[4].calldata())
    with pytest.raises(ProofRejectedError, match="groth16: invalid proof in batch"):
        client.submit_proofs(generator, bad)
    receipt = client.submit_proofs(
        generator, [(t, p.calldata()) for t, p in zip(tasks, chosen, strict=True)]
    )
    assert [client.task(t).state for t in tasks] == [RequestState.FULFILLED] * 16
    assert receipt["gasUsed"] <= SUBMIT_16_GAS
