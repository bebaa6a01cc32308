"""Market creation: stored terms, the creation fee, every rejected market, immutability."""

from dataclasses import replace
from typing import Any

import boa
import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from kalypso.market import BN254_SCALAR_FIELD, MarketParams, RequestKinds, encode_signals
from tests.unit.helpers import PENALTY, UNIT, ZERO, Kal, events, inline_verifier, mock_proof

METADATA = b'{"name":"sha256","artifacts":"ipfs://x"}'
SAMPLE = encode_signals([7])
IMAGE = b"\x11" * 32


def params(kal: Kal, **overrides: Any) -> MarketParams:
    base = MarketParams(
        verifier=kal.d.mock_verifier.address,
        slashing_penalty=PENALTY,
        input_verifier=kal.d.input_verifier.address,
        public_inputs_count=1,
    )
    return replace(base, **overrides)


def create(
    kal: Kal,
    p: MarketParams,
    *,
    sample: bytes = SAMPLE,
    proof: bytes | None = None,
    sender: str | None = None,
) -> int:
    sender = sender or kal.d.owner
    proof = mock_proof(sample, b"\x00" * 32, sender) if proof is None else proof
    return int(
        kal.markets.create_market(p.as_tuple(), METADATA, sample, proof, 2**256 - 1, sender=sender)
    )


def test_create_market_stores_its_terms(kal: Kal) -> None:
    count = kal.markets.market_count()
    p = params(kal, generator_image=IMAGE, proof_verification_image=b"\x22" * 32)
    mid = create(kal, p)
    assert mid == count
    assert kal.markets.market_count() == count + 1
    m = kal.markets.market(mid)
    assert m.creator == kal.d.owner
    assert m.verifier == kal.d.mock_verifier.address
    assert m.input_verifier == kal.d.input_verifier.address
    assert m.slashing_penalty == PENALTY
    assert m.generator_image == IMAGE
    assert m.input_verification_image == b"\x00" * 32
    assert m.proof_verification_image == b"\x22" * 32
    assert m.public_inputs_count == 1
    assert m.metadata_hash == keccak(METADATA)
    assert m.request_kinds == RequestKinds.PUBLIC


def test_create_market_logs_market_created_with_metadata(kal: Kal) -> None:
    count = kal.markets.market_count()
    create(kal, params(kal, generator_image=IMAGE))
    (log,) = events(kal.markets, "MarketCreated")
    assert log.market_id == count
    assert log.creator == kal.d.owner
    assert log.verifier == kal.d.mock_verifier.address
    assert log.input_verifier == kal.d.input_verifier.address
    assert log.slashing_penalty == PENALTY
    assert log.generator_image == IMAGE
    assert log.public_inputs_count == 1
    assert log.fee == 0
    assert log.metadata == METADATA


def test_market_ids_are_sequential(kal: Kal) -> None:
    first = create(kal, params(kal))
    assert create(kal, params(kal)) == first + 1


def test_opaque_input_market_accepts_any_sample_bytes(kal: Kal) -> None:
    mid = create(kal, params(kal, public_inputs_count=0), sample=b"\xde\xad")
    assert kal.markets.market(mid).public_inputs_count == 0


def test_create_market_charges_fee_to_treasury(kal: Kal, alice: str) -> None:
    kal.market.set_market_creation_fee(5 * UNIT, sender=kal.d.owner)
    tokens = kal.token.balanceOf(alice)
    treasury = kal.market.balance_of(kal.d.treasury)
    create(kal, params(kal), sender=alice)
    (log,) = events(kal.markets, "MarketCreated")
    assert log.fee == 5 * UNIT
    assert kal.token.balanceOf(alice) == tokens - 5 * UNIT
    assert kal.market.balance_of(kal.d.treasury) == treasury + 5 * UNIT


def test_create_market_fee_drawn_from_internal_balance(kal: Kal, alice: str) -> None:
    kal.market.set_market_creation_fee(5 * UNIT, sender=kal.d.owner)
    kal.market.deposit(8 * UNIT, sender=alice)
    tokens = kal.token.balanceOf(alice)
    create(kal, params(kal), sender=alice)
    assert kal.market.balance_of(alice) == 3 * UNIT
    assert kal.token.balanceOf(alice) == tokens


def test_create_market_fee_without_funds_reverts(kal: Kal) -> None:
    kal.market.set_market_creation_fee(5 * UNIT, sender=kal.d.owner)
    poor = boa.env.generate_address("poor")
    with boa.reverts():
        create(kal, params(kal), sender=poor)


def test_verifier_not_a_contract_reverts(kal: Kal) -> None:
    eoa = boa.env.generate_address("eoa")
    with boa.reverts("markets: verifier not a contract"):
        create(kal, params(kal, verifier=eoa))


def test_input_verifier_not_a_contract_reverts(kal: Kal) -> None:
    eoa = boa.env.generate_address("eoa")
    with boa.reverts("markets: input verifier not a contract"):
        create(kal, params(kal, input_verifier=eoa))


def test_zero_penalty_reverts(kal: Kal) -> None:
    with boa.reverts("markets: zero penalty"):
        create(kal, params(kal, slashing_penalty=0))


def test_too_many_public_inputs_reverts(kal: Kal) -> None:
    with boa.reverts("markets: too many public inputs"):
        create(kal, params(kal, public_inputs_count=31), sample=encode_signals([7] * 30))


def test_thirty_public_inputs_is_the_cap(kal: Kal) -> None:
    mid = create(kal, params(kal, public_inputs_count=30), sample=encode_signals([7] * 30))
    assert kal.markets.market(mid).public_inputs_count == 30


def test_no_invalid_input_path_reverts(kal: Kal) -> None:
    with boa.reverts("markets: no invalid-input path for public inputs"):
        create(kal, params(kal, input_verifier=ZERO))
    with boa.reverts("markets: no invalid-input path for public inputs"):  # secrets only
        create(kal, params(kal, input_verifier=ZERO, generator_image=IMAGE))


@pytest.mark.parametrize(
    "path",
    [
        {"generator_image": IMAGE, "request_kinds": RequestKinds.PRIVATE},
        {"input_verification_image": IMAGE},
        {"all_inputs_provable": True},
    ],
)
def test_each_other_invalid_input_path_is_enough(kal: Kal, path: dict[str, Any]) -> None:
    mid = create(kal, params(kal, input_verifier=ZERO, **path))
    assert kal.markets.market(mid).input_verifier == ZERO


def test_sample_proof_rejected_by_a_false_verifier_reverts(kal: Kal) -> None:
    verifier = inline_verifier("False")
    with boa.reverts("markets: sample proof rejected"):
        create(kal, params(kal, verifier=verifier.address))


def test_wrong_sample_proof_reverts_with_the_verifier_reason(kal: Kal) -> None:
    with boa.reverts("mock: bad proof"):
        create(kal, params(kal), proof=b"\x00" * 32)


def test_sample_proof_is_bound_to_the_creator(kal: Kal, alice: str) -> None:
    with boa.reverts("mock: bad proof"):
        create(kal, params(kal), proof=mock_proof(SAMPLE, b"\x00" * 32, kal.d.owner), sender=alice)


def test_wrong_sample_input_count_reverts(kal: Kal) -> None:
    with boa.reverts("markets: wrong input count"):
        create(kal, params(kal, public_inputs_count=2), sample=encode_signals([7]))


def test_sample_length_word_disagreeing_with_count_reverts(kal: Kal) -> None:
    # 64 + 32 bytes as for one signal, but the length word says 0
    sample = abi_encode(["uint256"], [32]) + abi_encode(["uint256"], [0]) + b"\x00" * 32
    with boa.reverts("markets: wrong input count"):
        create(kal, params(kal), sample=sample)


def test_sample_input_not_in_field_reverts(kal: Kal) -> None:
    sample = abi_encode(["uint256[]"], [[BN254_SCALAR_FIELD]])
    with boa.reverts("markets: input not in field"):
        create(kal, params(kal), sample=sample)


def test_sample_input_just_below_the_modulus_is_accepted(kal: Kal) -> None:
    create(kal, params(kal), sample=encode_signals([BN254_SCALAR_FIELD - 1]))


def test_markets_have_no_setter(kal: Kal) -> None:
    writers = {
        f["name"]
        for f in kal.market.abi
        if f.get("type") == "function" and f["stateMutability"] in ("nonpayable", "payable")
    }
    touching = {
        n for n in writers if any(k in n for k in ("verifier", "penalty", "image", "market"))
    }
    assert touching == {
        "open_market",  # the market registry's, once per market (test_open_market_...)
        "set_market_creation_fee",
        "set_market_matching_engine",
        "set_market_registry",
    }
    registry_writers = {
        f["name"]
        for f in kal.markets.abi
        if f.get("type") == "function" and f["stateMutability"] in ("nonpayable", "payable")
    }
    assert registry_writers == {"create_market"}
    assert not [n for n in writers if n.startswith("set_") and ("verifier" in n or "penalty" in n)]


def test_owner_settings_leave_market_terms_unchanged(kal: Kal, market_id: int) -> None:
    before = kal.markets.market(market_id)
    kal.market.set_market_creation_fee(9, sender=kal.d.owner)
    kal.market.set_market_matching_engine(market_id, kal.d.owner, True, sender=kal.d.owner)
    kal.market.set_treasury(boa.env.generate_address("t"), sender=kal.d.owner)
    assert kal.markets.market(market_id) == before


def test_open_market_is_for_the_market_registry_once(kal: Kal, market_id: int) -> None:
    with boa.reverts("markets: not the market registry"):
        kal.market.open_market(99, kal.d.owner, 1, 1, 0, sender=kal.d.owner)
    with boa.reverts("markets: market exists"), boa.env.prank(kal.markets.address):
        kal.market.open_market(market_id, kal.d.owner, 1, 1, 0)


def test_the_market_registry_is_set_once(kal: Kal) -> None:
    with boa.reverts("config: market registry already set"):
        kal.market.set_market_registry(kal.markets.address, sender=kal.d.owner)
