"""PLONK proofs: the snarkjs worker proves and verifies them; their encoding round-trips."""

from __future__ import annotations

import pytest

from kalypso.circuits import circuit, plonk
from kalypso.errors import ConfigError
from kalypso.provers import InvalidInputs
from kalypso.provers.plonk import WORDS, PlonkProof, SnarkjsPlonkProver
from kalypso.provers.snarkjs import SnarkjsWorker


def test_the_sample_round_trips_through_calldata_and_snarkjs_json() -> None:
    proof = plonk("square_root").sample_proof()
    assert len(proof.calldata()) == 32 * WORDS
    assert PlonkProof.from_calldata(proof.calldata(), proof.public_inputs()) == proof
    assert PlonkProof.from_snarkjs(*proof.to_snarkjs()) == proof


def test_malformed_proofs_raise_config_error() -> None:
    proof = plonk("square_root").sample_proof()
    with pytest.raises(ConfigError):
        PlonkProof.from_calldata(proof.calldata()[:-1], proof.public_inputs())
    with pytest.raises(ConfigError):
        PlonkProof.from_snarkjs({"A": ["1"]}, ["1"])


async def test_prove_verify_and_refuse() -> None:
    worker = SnarkjsWorker()
    artifacts = plonk("square_root")
    try:
        prover = SnarkjsPlonkProver(circuit("square_root").wasm, artifacts.zkey, worker=worker)
        proof = await prover.prove({"square": 81, "max_root": 10, "root": 9})
        assert isinstance(proof, PlonkProof) and proof.public_signals == (81, 10)
        vkey = artifacts.vkey_json()
        assert await worker.verify("plonk", vkey, *proof.to_snarkjs())
        json_proof, public = proof.to_snarkjs()
        assert not await worker.verify("plonk", vkey, json_proof, ["82", "10"])
        assert not await worker.verify("plonk", vkey, {"garbage": 1}, public)
        sample = circuit("square_root").sample_proof()  # a Groth16 proof, its own key
        assert await worker.verify(
            "groth16", circuit("square_root").vkey_json(), *sample.to_snarkjs()
        )
        unprovable = await prover.prove({"square": 82, "max_root": 10, "root": 9})
        assert isinstance(unprovable, InvalidInputs)
    finally:
        await worker.close()
