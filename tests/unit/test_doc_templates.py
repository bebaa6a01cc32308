"""The contract templates of the docs compile, deploy and answer as docs/market-creator.md says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boa
import pytest

from kalypso.market import MarketParams, RequestState, VerifyContext, encode_signals
from kalypso.market.codecheck import INPUT_VERIFIER_CODE, judge_code
from tests.unit.helpers import UNIT, Kal, events, live, mock_proof, state

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "docs" / "templates" / "InputVerifier.vy"
#: the template imports `interfaces.IInputVerifier`: the repository's contracts/ folder
CONTRACTS = ROOT / "contracts"
SIGNALS = 2
PRICE = 10 * UNIT


def load_template(*args: Any) -> Any:
    boa.interpret.set_search_paths([str(CONTRACTS)])
    try:
        return boa.load(str(TEMPLATE), *args)
    finally:
        boa.interpret.set_search_paths([])


@pytest.fixture(scope="module")
def verifier() -> Any:
    return load_template(SIGNALS)


@pytest.fixture(scope="module")
def template_market(kal: Kal, verifier: Any) -> int:
    params = MarketParams(
        verifier=kal.d.mock_verifier.address,
        slashing_penalty=100 * UNIT,
        input_verifier=verifier.address,
        public_inputs_count=SIGNALS,
    )
    sample = encode_signals([7, 1])
    proof = mock_proof(sample, b"\x00" * 32, kal.d.owner)
    return int(
        kal.markets.create_market(
            params.as_tuple(), b'{"name":"inverse"}', sample, proof, 2**256 - 1, sender=kal.d.owner
        )
    )


@pytest.fixture
def prover(kal: Kal, template_market: int) -> str:
    who = boa.env.generate_address("template generator")
    kal.register(who, template_market, price=PRICE)
    return who


def ask(verifier: Any, signals: list[int]) -> bool:
    ctx = VerifyContext.sample().as_tuple()
    return bool(verifier.inputs_invalid(ctx, encode_signals(signals), b""))


def test_it_deploys_with_its_signal_count(verifier: Any) -> None:
    assert verifier.PUBLIC_SIGNALS() == SIGNALS


def test_its_code_passes_the_audit_generators_require(verifier: Any) -> None:
    address = str(verifier.address)
    check = judge_code(INPUT_VERIFIER_CODE, address, bytes(boa.env.get_code(address)))
    assert check.ok and "unknown code" in check.detail and "immutable" in check.detail


@pytest.mark.parametrize("count", [0, 31])
def test_a_signal_count_out_of_bounds_reverts(count: int) -> None:
    with boa.reverts("myverifier: bad signal count"):
        load_template(count)


def test_zero_first_signal_is_invalid(verifier: Any) -> None:
    assert ask(verifier, [0, 5]) is True


@pytest.mark.parametrize("signals", [[1, 0], [3, 5], [2**200, 9]])
def test_nonzero_first_signal_is_provable(verifier: Any, signals: list[int]) -> None:
    assert ask(verifier, signals) is False


@pytest.mark.parametrize("signals", [[0], [0, 1, 2]])
def test_inputs_of_another_circuit_revert(verifier: Any, signals: list[int]) -> None:
    with boa.reverts("myverifier: wrong input count"):
        ask(verifier, signals)


def test_the_marketplace_accepts_its_invalid_verdict(
    kal: Kal, template_market: int, alice: str, prover: str
) -> None:
    rid, req, inputs = live(kal, alice, template_market, prover, signals=[0, 5])
    kal.market.submit_invalid_inputs(rid, req.as_tuple(), inputs, b"", sender=prover)
    (log,) = events(kal.market, "InvalidInputsProven")
    assert (log.task_id, log.generator, log.payment) == (rid, prover, PRICE)
    assert log.refund == req.max_price - PRICE
    assert state(kal, rid).state == RequestState.INVALID_INPUTS


def test_the_marketplace_refuses_a_claim_on_provable_inputs(
    kal: Kal, template_market: int, alice: str, prover: str
) -> None:
    rid, req, inputs = live(kal, alice, template_market, prover, signals=[3, 5])
    with boa.reverts("requests: inputs not shown invalid"):
        kal.market.submit_invalid_inputs(rid, req.as_tuple(), inputs, b"", sender=prover)
    assert state(kal, rid).state == RequestState.ASSIGNED
