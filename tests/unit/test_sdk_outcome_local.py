"""SDK outcomes (decoded proofs, how a request ended) and the local backend end to end."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from kalypso.amounts import parse_amount
from kalypso.circuits import circuit, plonk
from kalypso.errors import ConfigError, InsufficientFundsError, InvalidStateError, KalypsoError
from kalypso.market import RequestState, encode_signals
from kalypso.market.attested import attested_proof
from kalypso.provers.plonk import PlonkProof
from kalypso.provers.proof import Groth16Proof
from kalypso.sdk import Kalypso, NoProofError, Outcome, RawProof, RequestStatus
from kalypso.sdk.inputs import UnprovableInputsError
from kalypso.sdk.local import WALLET, _market
from kalypso.sdk.outcome import decode_proof

KAL = 10**18
POSEIDON = _market(0, "poseidon_preimage")
SQUARE = _market(1, "square_root")
RID = b"\xab" * 32
GENERATOR = "0x" + "9e" * 20

# ---- decoding proofs


def test_decode_a_groth16_proof() -> None:
    proof = circuit("poseidon_preimage").sample_proof()
    decoded = decode_proof(POSEIDON, proof.calldata(), proof.public_inputs())
    assert isinstance(decoded, Groth16Proof)
    assert decoded == proof
    with pytest.raises(ConfigError, match="a Groth16 proof is 256 bytes"):
        decode_proof(POSEIDON, proof.calldata()[:-32], proof.public_inputs())


def test_decode_an_attested_plonk_proof() -> None:
    market = replace(SQUARE, proof_system="plonk")
    raw = plonk("square_root").sample_proof()
    data = attested_proof(raw.calldata(), b"\x00" * 65)
    decoded = decode_proof(market, data, raw.public_inputs())
    assert isinstance(decoded, PlonkProof)
    assert decoded == raw
    with pytest.raises(ConfigError, match="not an attested proof"):
        decode_proof(market, raw.calldata(), raw.public_inputs())


def test_decode_an_opaque_proof() -> None:
    market = replace(SQUARE, proof_system="opaque")
    inputs = encode_signals([1, 2])
    decoded = decode_proof(market, b"any bytes", inputs)
    assert decoded == RawProof(b"any bytes", inputs)
    assert decoded.public_signals == (1, 2)
    assert decoded.calldata() == b"any bytes"
    assert decoded.public_inputs() == inputs
    assert RawProof(b"p", b"not signals").public_signals == ()


# ---- outcomes


@pytest.mark.parametrize(
    ("state", "description"),
    [
        (RequestState.FULFILLED, f"request 0x{RID.hex()} proven by {GENERATOR}"),
        (
            RequestState.INVALID_INPUTS,
            f"request 0x{RID.hex()}: {GENERATOR} showed its inputs have no proof",
        ),
        (
            RequestState.SLASHED,
            f"request 0x{RID.hex()}: {GENERATOR} missed its deadline and was slashed",
        ),
        (
            RequestState.CLOSED,
            f"request 0x{RID.hex()} closed unassigned (cancelled or expired) and refunded",
        ),
    ],
)
def test_outcome_describe(state: RequestState, description: str) -> None:
    outcome = Outcome(RID, state, generator=GENERATOR)
    assert outcome.describe() == description
    assert outcome.fulfilled is (state is RequestState.FULFILLED)


def test_no_proof_error_carries_the_outcome() -> None:
    outcome = Outcome(RID, RequestState.SLASHED, generator=GENERATOR, refund=5, penalty=9)
    error = NoProofError(outcome)
    assert error.outcome is outcome
    assert isinstance(error, KalypsoError)
    assert str(error) == f"[K-SDK-003] no proof: {outcome.describe()}"


def status(state: RequestState, now: int) -> RequestStatus:
    return RequestStatus(RID, state, 0, 10, 60, 100, None, 0, 200, now)


@pytest.mark.parametrize(
    ("state", "now", "expired", "overdue"),
    [
        (RequestState.OPEN, 100, False, False),  # assignable at its expiry
        (RequestState.OPEN, 101, True, False),
        (RequestState.ASSIGNED, 200, False, False),  # provable at its deadline
        (RequestState.ASSIGNED, 201, False, True),
        (RequestState.FULFILLED, 10_000, False, False),
        (RequestState.CLOSED, 10_000, False, False),
        (RequestState.SLASHED, 10_000, False, False),
    ],
)
def test_request_status_expired_and_overdue(
    state: RequestState, now: int, expired: bool, overdue: bool
) -> None:
    s = status(state, now)
    assert s.expired is expired
    assert s.overdue is overdue


# ---- amounts


def test_parse_amount_in_base_units() -> None:
    assert parse_amount("15 base") == 15
    assert parse_amount("1,500 base") == 1500
    assert parse_amount(" 7 BASE ") == 7
    for junk in ("x base", "1.5 base", "-1 base", "base"):
        with pytest.raises(ConfigError, match="not a number of base units"):
            parse_amount(junk)


# ---- the local backend


@pytest.fixture(scope="module")
def k() -> Iterator[Kalypso]:
    client = Kalypso(backend="local")
    try:
        yield client
    finally:
        client.close()


def funds(k: Kalypso) -> tuple[int, int]:
    return k.wallet_balance(), k.balance()


def test_local_markets_by_name_and_id(k: Kalypso) -> None:
    markets = k.markets()
    assert [(m.id, m.name) for m in markets] == [(0, "poseidon_preimage"), (1, "square_root")]
    assert k.market("square_root").id == 1
    assert k.market(1).name == "square_root"
    assert k.market("1").name == "square_root"
    assert k.market(markets[0]) is markets[0]
    assert k.market(0).proof_system == "groth16"
    assert k.market("poseidon_preimage").inputs == {"preimage": "private"}


def test_local_unknown_market(k: Kalypso) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown market 'nope'.*0 poseidon_preimage, 1 square_root"
    ):
        k.market("nope")
    with pytest.raises(ConfigError, match="there is no market 7"):
        k.request_proof(7, {"preimage": 1}, max_price="1 KAL")


def test_local_deposit_withdraw_balance(k: Kalypso) -> None:
    wallet, balance = funds(k)
    k.deposit("10 KAL")
    assert funds(k) == (wallet - 10 * KAL, balance + 10 * KAL)
    k.withdraw("4 KAL")
    assert funds(k) == (wallet - 6 * KAL, balance + 6 * KAL)
    k.withdraw(5)
    assert funds(k) == (wallet - 6 * KAL + 5, balance + 6 * KAL - 5)
    k.withdraw()
    assert funds(k) == (wallet + balance, 0)
    with pytest.raises(InsufficientFundsError):
        k.withdraw(1)
    with pytest.raises(InsufficientFundsError):
        k.deposit(wallet + balance + 1)
    assert funds(k) == (wallet + balance, 0)
    assert k.show(k.amount("2.5 KAL")) == "2.5 KAL"
    assert k.address == "0x" + "11" * 20


def test_local_poseidon_proof(k: Kalypso) -> None:
    k.deposit("10 KAL")
    wallet, balance = funds(k)
    request = k.request_proof(
        "poseidon_preimage", {"preimage": 42}, max_price="5 KAL", proof_time=60
    )
    assert request.market.name == "poseidon_preimage"
    assert request.max_price == 5 * KAL
    # escrowed from the internal balance
    assert funds(k) == (wallet, balance - 5 * KAL)
    proof = request.wait_for_proof(timeout=60)
    assert isinstance(proof, Groth16Proof)
    assert proof.verify_local(circuit("poseidon_preimage").vkey_json())
    assert len(proof.public_signals) == 1
    assert proof.public_signals == request.aio.public_signals
    outcome = request.wait()
    assert outcome.fulfilled and outcome.proof == proof
    assert outcome.payment == 5 * KAL
    assert request.status().state is RequestState.FULFILLED
    with pytest.raises(InvalidStateError):
        request.cancel()


def test_local_square_root_proof(k: Kalypso) -> None:
    request = k.request_proof(
        "square_root", {"square": 49, "max_root": 10}, max_price="1 KAL", proof_time=60
    )
    proof = request.wait_for_proof(timeout=60)
    assert isinstance(proof, Groth16Proof)
    assert proof.public_signals == (49, 10) == request.aio.public_signals


def test_local_preflight_refusal_leaves_balances_unchanged(k: Kalypso) -> None:
    k.deposit("1 KAL")
    before = funds(k)
    with pytest.raises(UnprovableInputsError, match="50 is not a perfect square"):
        k.request_proof("square_root", {"square": 50, "max_root": 10}, max_price="1 KAL")
    with pytest.raises(UnprovableInputsError, match="no witness"):
        k.request_proof("square_root", {"square": 49, "max_root": 10, "root": 6}, max_price="1 KAL")
    assert funds(k) == before


@pytest.mark.parametrize(
    "inputs",
    [
        {"square": 50, "max_root": 10, "root": 7},  # the circuit has no witness
        {"preimage": 42, "hash": 1},  # the proof's signals differ from the request's
    ],
)
def test_local_skip_preflight_ends_in_invalid_inputs(k: Kalypso, inputs: dict[str, int]) -> None:
    market = "square_root" if "square" in inputs else "poseidon_preimage"
    request = k.request_proof(market, inputs, max_price="1 KAL", proof_time=60, skip_preflight=True)
    with pytest.raises(NoProofError) as info:
        request.wait_for_proof(timeout=60)
    assert info.value.outcome.state is RequestState.INVALID_INPUTS
    assert info.value.outcome.proof is None
    assert info.value.outcome.request_id == request.id


def test_local_insufficient_funds(k: Kalypso) -> None:
    before = funds(k)
    with pytest.raises(InsufficientFundsError):
        k.request_proof(
            "square_root",
            {"square": 49, "max_root": 10},
            max_price=sum(before) + 1,
            proof_time=60,
        )
    assert funds(k) == before


def test_local_request_reattaches(k: Kalypso) -> None:
    request = k.request_proof(
        "square_root", {"square": 4, "max_root": 10}, max_price="1 KAL", proof_time=60
    )
    again = k.request(request.id)
    assert again.aio is request.aio
    assert k.request("0x" + request.id.hex()).aio is request.aio
    assert k.request(request.id.hex()).id == request.id
    assert again.wait_for_proof(timeout=60).public_signals == (4, 10)
    with pytest.raises(ConfigError, match="no local request 0x"):
        k.request(b"\x00" * 32)


def test_local_escrow_never_drives_the_wallet_negative() -> None:
    with Kalypso(backend="local") as k:
        k.deposit(WALLET * 6 // 10)
        try:
            with pytest.raises(InsufficientFundsError):
                k.request_proof(
                    "square_root",
                    {"square": 49, "max_root": 10},
                    max_price=WALLET * 7 // 10,
                    proof_time=60,
                    skip_preflight=True,
                )
        finally:
            assert k.wallet_balance() >= 0


def test_local_skip_preflight_with_no_root_loses_no_money() -> None:
    with Kalypso(backend="local") as k:
        k.deposit("10 KAL")
        before = funds(k)
        try:
            request = k.request_proof(
                "square_root",
                {"square": 50, "max_root": 10},
                max_price="1 KAL",
                proof_time=60,
                skip_preflight=True,
            )
        except UnprovableInputsError:
            # refused: then nothing may have been taken
            assert funds(k) == before
        else:
            with pytest.raises(NoProofError) as info:
                request.wait_for_proof(timeout=60)
            assert info.value.outcome.state is RequestState.INVALID_INPUTS


def test_local_refuses_negative_amounts() -> None:
    with Kalypso(backend="local") as k:
        before = funds(k)
        try:
            with pytest.raises(ConfigError):
                k.deposit(-5)
            with pytest.raises(ConfigError):
                k.withdraw(-5)
        finally:
            assert funds(k) == before


def test_local_withdraw_of_an_empty_balance_says_so() -> None:
    with Kalypso(backend="local") as k, pytest.raises(ConfigError, match="nothing to withdraw"):
        k.withdraw()
