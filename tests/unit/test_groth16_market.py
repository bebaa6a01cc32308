"""A real Groth16 market in the marketplace: proofs pay out only for the posted inputs."""

from __future__ import annotations

from typing import Any

import boa
import pytest

from kalypso.circuits import circuit
from kalypso.contracts import source_path
from kalypso.market import MarketParams, RequestState
from kalypso.market.groth16 import market_metadata
from kalypso.provers.proof import Groth16Proof, verifier_args
from tests.unit.helpers import PENALTY, UNIT, Kal, state
from tests.zk import prove


def root(r: int) -> Groth16Proof:
    return prove("square_root", {"square": r * r, "max_root": 300, "root": r})


@pytest.fixture(scope="module")
def root_market(kal: Kal) -> int:
    c = circuit("square_root")
    verifier = boa.load_partial(str(source_path("Groth16Verifier"))).deploy(
        *verifier_args(c.vkey_json())
    )
    input_verifier = boa.load_partial(str(source_path("SquareRootInputVerifier"))).deploy()
    params = MarketParams(
        verifier=verifier.address,
        slashing_penalty=PENALTY,
        input_verifier=input_verifier.address,
        public_inputs_count=2,
    )
    sample = c.sample_proof()
    return int(
        kal.markets.create_market(
            params.as_tuple(),
            market_metadata(c, "square_root"),
            sample.public_inputs(),
            sample.calldata(),
            2**256 - 1,
            sender=kal.d.owner,
        )
    )


def posted(kal: Kal, requester: str, market_id: int, generator: str, proof: Groth16Proof) -> Any:
    rid, req, inputs = kal.request(requester, market_id, signals=list(proof.public_signals))
    kal.assign(rid, req, generator)
    return rid, req, inputs


def test_a_real_proof_pays_out(kal: Kal, root_market: int, alice: str) -> None:
    generator = boa.env.generate_address("prover")
    kal.register(generator, root_market)
    proof = root(5)
    rid, req, inputs = posted(kal, alice, root_market, generator, proof)
    kal.market.submit_proof(rid, req.as_tuple(), inputs, proof.calldata(), sender=generator)
    assert state(kal, rid).state == RequestState.FULFILLED
    assert kal.market.balance_of(generator) == 10 * UNIT


def test_a_proof_of_other_inputs_cannot_pay_out(kal: Kal, root_market: int, alice: str) -> None:
    generator = boa.env.generate_address("prover")
    kal.register(generator, root_market)
    rid, req, inputs = posted(kal, alice, root_market, generator, root(5))
    other = root(6)
    with boa.reverts("requests: inputs mismatch"):
        kal.market.submit_proof(
            rid, req.as_tuple(), other.public_inputs(), other.calldata(), sender=generator
        )
    with boa.reverts("groth16: invalid proof"):
        kal.market.submit_proof(rid, req.as_tuple(), inputs, other.calldata(), sender=generator)
    assert state(kal, rid).state == RequestState.ASSIGNED


def test_a_batch_with_one_bad_proof_changes_nothing(kal: Kal, root_market: int, alice: str) -> None:
    generator = boa.env.generate_address("prover")
    kal.register(generator, root_market)
    proofs = [root(7), root(8)]
    tasks = [posted(kal, alice, root_market, generator, p) for p in proofs]
    items = [
        (rid, req.as_tuple(), inputs, proof.calldata())
        for (rid, req, inputs), proof in zip(tasks, proofs, strict=True)
    ]
    bad = list(items)
    bad[1] = (*items[1][:3], proofs[0].calldata())
    with boa.reverts("groth16: invalid proof in batch"):
        kal.market.submit_proofs(bad, sender=generator)
    assert [state(kal, rid).state for rid, _, _ in tasks] == [RequestState.ASSIGNED] * 2
    kal.market.submit_proofs(items, sender=generator)
    assert [state(kal, rid).state for rid, _, _ in tasks] == [RequestState.FULFILLED] * 2


def test_unprovable_inputs_are_settled_by_the_input_verifier(
    kal: Kal, root_market: int, alice: str
) -> None:
    generator = boa.env.generate_address("prover")
    kal.register(generator, root_market)
    rid, req, inputs = kal.request(alice, root_market, signals=[10, 10])
    kal.assign(rid, req, generator)
    kal.market.submit_invalid_inputs(rid, req.as_tuple(), inputs, b"", sender=generator)
    assert state(kal, rid).state == RequestState.INVALID_INPUTS


def test_provable_inputs_cannot_be_claimed_invalid(kal: Kal, root_market: int, alice: str) -> None:
    generator = boa.env.generate_address("prover")
    kal.register(generator, root_market)
    rid, req, inputs = kal.request(alice, root_market, signals=[49, 10])
    kal.assign(rid, req, generator)
    with boa.reverts("requests: inputs not shown invalid"):
        kal.market.submit_invalid_inputs(rid, req.as_tuple(), inputs, b"", sender=generator)
