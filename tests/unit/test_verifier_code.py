"""Attack 4: a market's verifier or input verifier that changes its answers after the
market exists. The code is judged (`kalypso.market.codecheck`), not its getters."""

from __future__ import annotations

from typing import Any

import boa
import pytest

from kalypso.circuits import circuit
from kalypso.contracts import artifact, source_path
from kalypso.market import MarketParams, RequestState, encode_signals
from kalypso.market.codecheck import (
    INPUT_VERIFIER_CODE,
    VERIFIER_CODE,
    groth16_immutables,
    groth16_key,
    identify,
    judge_code,
)
from kalypso.provers.proof import verifier_args
from tests.switchable import SWITCHABLE_INPUT_VERIFIER, SWITCHABLE_VERIFIER, getter_key
from tests.unit.helpers import PENALTY, ZERO, Kal, live, mock_proof, state

KEY = verifier_args(circuit("square_root").vkey_json())
CTX = (31337, 0, b"\x00" * 32, ZERO, b"\x00" * 32, 0)


def code(contract: Any) -> bytes:
    return bytes(boa.env.get_code(contract.address))


@pytest.fixture(scope="module")
def groth16() -> Any:
    return boa.load_partial(str(source_path("Groth16Verifier"))).deploy(*KEY)


def test_attack_switchable_verifier_passes_the_old_checks_and_is_flagged(kal: Kal) -> None:
    c = circuit("square_root")
    sample = c.sample_proof()
    verifier = boa.loads(SWITCHABLE_VERIFIER, *KEY)
    params = MarketParams(
        verifier=verifier.address,
        slashing_penalty=PENALTY,
        public_inputs_count=2,
        all_inputs_provable=True,
    )
    # what passed before: the sample is accepted at creation, the getters give the key
    kal.markets.create_market(
        params.as_tuple(),
        b"{}",
        sample.public_inputs(),
        sample.calldata(),
        2**256 - 1,
        sender=kal.d.owner,
    )
    assert getter_key(verifier) == KEY
    # the owner switches it off: every honest proof is now rejected
    verifier.switch(False)
    with boa.reverts("groth16: invalid proof"):
        verifier.verify(CTX, sample.public_inputs(), sample.calldata())

    check = judge_code(VERIFIER_CODE, str(verifier.address), code(verifier))
    assert not check.ok
    assert "unknown code" in check.detail and "can change: SLOAD (state)" in check.detail
    assert identify(code(verifier)) is None


def test_attack_switchable_input_verifier_is_flagged(kal: Kal, alice: str) -> None:
    liar = boa.loads(SWITCHABLE_INPUT_VERIFIER)
    params = MarketParams(
        verifier=kal.d.mock_verifier.address,
        input_verifier=liar.address,
        slashing_penalty=PENALTY,
        public_inputs_count=1,
    )
    sample = encode_signals([7])
    proof = mock_proof(sample, b"\x00" * 32, kal.d.owner)
    mid = int(
        kal.markets.create_market(
            params.as_tuple(), b"{}", sample, proof, 2**256 - 1, sender=kal.d.owner
        )
    )
    gen = boa.env.generate_address("generator")
    kal.register(gen, mid)
    rid, req, inputs = live(kal, alice, mid, gen, signals=[42])
    # switched to "everything is invalid": the generator is paid without proving
    liar.switch(True)
    kal.market.submit_invalid_inputs(rid, req.as_tuple(), inputs, b"", sender=gen)
    assert state(kal, rid).state == RequestState.INVALID_INPUTS

    check = judge_code(INPUT_VERIFIER_CODE, str(liar.address), code(liar))
    assert not check.ok and "can change: SLOAD (state)" in check.detail


def test_the_dev_verifiers_are_recognised_and_immutable(kal: Kal, groth16: Any) -> None:
    for contract, name in (
        (groth16, "Groth16Verifier"),
        (kal.d.mock_verifier, "MockVerifier"),
        (kal.d.input_verifier, "ThresholdInputVerifier"),
    ):
        check = judge_code(VERIFIER_CODE, str(contract.address), code(contract))
        assert check.ok, check.detail
        assert f"kalypso's {name}" in check.detail and ", immutable: " in check.detail
    root = boa.load_partial(str(source_path("SquareRootInputVerifier"))).deploy()
    assert judge_code(INPUT_VERIFIER_CODE, str(root.address), code(root)).ok


def test_the_key_is_read_from_the_code_as_the_getters_report_it(groth16: Any) -> None:
    found = identify(code(groth16))
    assert found is not None and found[0].name == "Groth16Verifier"
    assert groth16_key(found[1]) == KEY == getter_key(groth16)
    assert groth16_immutables(KEY) == found[1]


def test_our_runtime_with_a_doctored_negated_key_is_refused(groth16: Any) -> None:
    """Getters read BETA, the pairing uses NEG_BETA: both must be the constructor's."""
    runtime = artifact("Groth16Verifier").runtime
    immutables = bytearray(code(groth16)[len(runtime) :])
    offset, _ = artifact("Groth16Verifier").immutables["NEG_BETA"]
    immutables[offset + 31] ^= 1
    check = judge_code(VERIFIER_CODE, "0x" + "11" * 20, runtime + bytes(immutables))
    assert not check.ok and "another key" in check.detail
    assert groth16_key(bytes(immutables)) is None


def test_the_enclave_registry_passes_by_its_address_only(kal: Kal) -> None:
    registry = str(kal.d.enclaves.address)
    trusted = {registry.lower(): "the deployment's EnclaveRegistry"}
    assert judge_code(VERIFIER_CODE, registry, code(kal.d.enclaves), trusted).ok
    assert not judge_code(VERIFIER_CODE, registry, code(kal.d.enclaves)).ok
