"""Requests: creation rules, cancel, increase_max_price and cancel_expired."""

import os
from typing import Any

import boa
import pytest
from eth_abi import encode as abi_encode

from kalypso.market import (
    BN254_SCALAR_FIELD,
    Request,
    RequestState,
    TaskState,
    encode_signals,
    request_id,
)
from tests.unit.helpers import UNIT, ZERO, Kal, events, now, state

DAY = 86_400
INPUTS = encode_signals([42])


def create(kal: Kal, who: str, market_id: int, **overrides: Any) -> bytes:
    """create_request with valid defaults; override any argument by name."""
    args: dict[str, Any] = {
        "market_id": market_id,
        "salt": os.urandom(32),
        "max_price": 50 * UNIT,
        "proof_time": 3600,
        "expiry": now() + 600,
        "refund_address": who,
        "public_inputs": INPUTS,
        "encrypted_secret": b"",
    }
    args.update(overrides)
    return bytes(kal.market.create_request(*args.values(), sender=who))


# ------------------------------------------------------------------ create


def test_create_request_logs_request_created(kal: Kal, private_market_id: int, alice: str) -> None:
    market_id = private_market_id
    refund = boa.env.generate_address("refund")
    salt = b"\x05" * 32
    expiry = now() + 600
    rid = create(
        kal,
        alice,
        market_id,
        salt=salt,
        refund_address=refund,
        expiry=expiry,
        encrypted_secret=b"s",
    )
    (log,) = events(kal.market, "RequestCreated")
    assert log.request_id == rid
    assert (log.market_id, log.requester, log.refund_address) == (market_id, alice, refund)
    assert (log.max_price, log.proof_time, log.expiry) == (50 * UNIT, 3600, expiry)
    assert (log.salt, log.public_inputs, log.encrypted_secret) == (salt, INPUTS, b"s")


def test_request_id_is_known_before_sending(kal: Kal, market_id: int, alice: str) -> None:
    salt = b"\x07" * 32
    rid = create(kal, alice, market_id, salt=salt)
    assert rid == request_id(boa.env.evm.patch.chain_id, kal.market.address, alice, salt)


def test_request_hash_is_the_commitment_of_its_fields(
    kal: Kal, private_market_id: int, alice: str
) -> None:
    rid, req, _ = kal.request(alice, private_market_id, secret=b"key")
    assert kal.market.request_hash(rid) == req.commitment()
    assert kal.market.hash_request(req.as_tuple()) == req.commitment()


def test_new_request_is_open(kal: Kal, market_id: int, alice: str) -> None:
    rid, _, _ = kal.request(alice, market_id)
    assert state(kal, rid) == TaskState(RequestState.OPEN, 0, 0, 0, 0)
    assert not kal.market.is_fulfilled(rid)


def test_same_salt_twice_reverts(kal: Kal, market_id: int, alice: str) -> None:
    create(kal, alice, market_id, salt=b"\x01" * 32)
    with boa.reverts("requests: request exists"):
        create(kal, alice, market_id, salt=b"\x01" * 32)


def test_same_salt_of_another_requester_is_a_new_request(
    kal: Kal, market_id: int, alice: str
) -> None:
    bob = boa.env.generate_address("bob")
    kal.fund(bob)
    assert create(kal, alice, market_id, salt=b"\x01" * 32) != create(
        kal, bob, market_id, salt=b"\x01" * 32
    )


def test_unknown_market_reverts(kal: Kal, alice: str) -> None:
    with boa.reverts("markets: unknown market"):
        create(kal, alice, kal.markets.market_count())


def test_inputs_too_large_on_opaque_market_reverts(kal: Kal, alice: str) -> None:
    opaque = kal.create_market(public_inputs_count=0)
    with boa.reverts("markets: inputs too large"):
        create(kal, alice, opaque, public_inputs=b"\x01" * 1025)


def test_inputs_of_1024_bytes_on_opaque_market(kal: Kal, alice: str) -> None:
    opaque = kal.create_market(public_inputs_count=0)
    create(kal, alice, opaque, public_inputs=b"\x01" * 1024)


def test_wrong_input_count_reverts(kal: Kal, market_id: int, alice: str) -> None:
    with boa.reverts("markets: wrong input count"):
        create(kal, alice, market_id, public_inputs=encode_signals([1, 2]))


def test_empty_inputs_on_signal_market_revert(kal: Kal, market_id: int, alice: str) -> None:
    with boa.reverts("markets: wrong input count"):
        create(kal, alice, market_id, public_inputs=b"")


def test_input_not_in_field_reverts(kal: Kal, market_id: int, alice: str) -> None:
    inputs = abi_encode(["uint256[]"], [[BN254_SCALAR_FIELD]])
    with boa.reverts("markets: input not in field"):
        create(kal, alice, market_id, public_inputs=inputs)


def test_secret_too_large_reverts(kal: Kal, private_market_id: int, alice: str) -> None:
    with boa.reverts("requests: secret too large"):
        create(kal, alice, private_market_id, encrypted_secret=b"\x01" * 1025)


def test_secret_of_1024_bytes(kal: Kal, private_market_id: int, alice: str) -> None:
    create(kal, alice, private_market_id, encrypted_secret=b"\x01" * 1024)


def test_zero_price_reverts(kal: Kal, market_id: int, alice: str) -> None:
    with boa.reverts("requests: zero price"):
        create(kal, alice, market_id, max_price=0)


def test_price_too_large_reverts(kal: Kal, market_id: int, alice: str) -> None:
    with boa.reverts("requests: price too large"):
        create(kal, alice, market_id, max_price=2**96)


@pytest.mark.parametrize("proof_time", [0, DAY + 1])
def test_bad_proof_time_reverts(kal: Kal, market_id: int, alice: str, proof_time: int) -> None:
    with boa.reverts("requests: bad proof time"):
        create(kal, alice, market_id, proof_time=proof_time)


@pytest.mark.parametrize("proof_time", [1, DAY])
def test_proof_time_bounds_are_accepted(
    kal: Kal, market_id: int, alice: str, proof_time: int
) -> None:
    create(kal, alice, market_id, proof_time=proof_time)


def test_expiry_in_the_past_reverts(kal: Kal, market_id: int, alice: str) -> None:
    with boa.reverts("requests: bad expiry"):
        create(kal, alice, market_id, expiry=now() - 1)


def test_expiry_beyond_thirty_days_reverts(kal: Kal, market_id: int, alice: str) -> None:
    with boa.reverts("requests: bad expiry"):
        create(kal, alice, market_id, expiry=now() + 30 * DAY + 1)


@pytest.mark.parametrize("ahead", [0, 30 * DAY])
def test_expiry_bounds_are_accepted(kal: Kal, market_id: int, alice: str, ahead: int) -> None:
    create(kal, alice, market_id, expiry=now() + ahead)


def test_zero_refund_address_reverts(kal: Kal, market_id: int, alice: str) -> None:
    with boa.reverts("requests: zero refund address"):
        create(kal, alice, market_id, refund_address=ZERO)


# ------------------------------------------------------------------ cancel


def refunded_request(kal: Kal, alice: str, market_id: int) -> tuple[bytes, Request, str]:
    """A request of alice whose refunds go to a separate address."""
    refund = boa.env.generate_address("refund")
    expiry = now() + 600
    rid = create(kal, alice, market_id, refund_address=refund, expiry=expiry)
    req = Request.new(
        market_id=market_id,
        requester=alice,
        refund_address=refund,
        max_price=50 * UNIT,
        proof_time=3600,
        expiry=expiry,
        public_inputs=INPUTS,
    )
    return rid, req, refund


def test_cancel_request_refunds_the_refund_address(kal: Kal, market_id: int, alice: str) -> None:
    rid, req, refund = refunded_request(kal, alice, market_id)
    kal.market.cancel_request(rid, req.as_tuple(), sender=alice)
    (log,) = events(kal.market, "RequestCancelled")
    assert (log.request_id, log.market_id, log.refund) == (rid, market_id, 50 * UNIT)
    assert kal.market.balance_of(refund) == 50 * UNIT
    assert kal.market.balance_of(alice) == 0
    assert state(kal, rid).state == RequestState.CLOSED


def test_cancel_request_by_someone_else_reverts(kal: Kal, market_id: int, alice: str) -> None:
    rid, req, _ = kal.request(alice, market_id)
    with boa.reverts("requests: not the requester"):
        kal.market.cancel_request(rid, req.as_tuple(), sender=boa.env.generate_address("x"))


def test_cancel_request_twice_reverts(kal: Kal, market_id: int, alice: str) -> None:
    rid, req, _ = kal.request(alice, market_id)
    kal.market.cancel_request(rid, req.as_tuple(), sender=alice)
    with boa.reverts("requests: not open"):
        kal.market.cancel_request(rid, req.as_tuple(), sender=alice)


def test_cancel_assigned_request_reverts(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _ = kal.request(alice, market_id)
    kal.assign(rid, req, gen)
    with boa.reverts("requests: not open"):
        kal.market.cancel_request(rid, req.as_tuple(), sender=alice)


def test_cancel_request_with_wrong_fields_reverts(kal: Kal, market_id: int, alice: str) -> None:
    rid, req, _ = kal.request(alice, market_id)
    with boa.reverts("requests: fields mismatch"):
        kal.market.cancel_request(rid, req.with_max_price(1).as_tuple(), sender=alice)


def test_cancel_unknown_request_reverts(kal: Kal, market_id: int, alice: str) -> None:
    _, req, _ = kal.request(alice, market_id)
    with boa.reverts("requests: unknown request"):
        kal.market.cancel_request(b"\x09" * 32, req.as_tuple(), sender=alice)


# -------------------------------------------------------- increase price


def test_increase_max_price(kal: Kal, market_id: int, alice: str) -> None:
    rid, req, _ = kal.request(alice, market_id, max_price=50 * UNIT)
    tokens = kal.token.balanceOf(alice)
    kal.market.increase_max_price(rid, req.as_tuple(), 80 * UNIT, sender=alice)
    (log,) = events(kal.market, "MaxPriceIncreased")
    assert (log.request_id, log.market_id, log.max_price) == (rid, market_id, 80 * UNIT)
    assert kal.market.request_hash(rid) == req.with_max_price(80 * UNIT).commitment()
    assert kal.token.balanceOf(alice) == tokens - 30 * UNIT


def test_increase_max_price_draws_from_internal_balance(
    kal: Kal, market_id: int, alice: str
) -> None:
    rid, req, _ = kal.request(alice, market_id, max_price=50 * UNIT)
    kal.market.deposit(40 * UNIT, sender=alice)
    kal.market.increase_max_price(rid, req.as_tuple(), 80 * UNIT, sender=alice)
    assert kal.market.balance_of(alice) == 10 * UNIT


def test_old_fields_are_stale_after_increase(kal: Kal, market_id: int, alice: str) -> None:
    rid, req, _ = kal.request(alice, market_id, max_price=50 * UNIT)
    kal.market.increase_max_price(rid, req.as_tuple(), 80 * UNIT, sender=alice)
    with boa.reverts("requests: fields mismatch"):
        kal.market.cancel_request(rid, req.as_tuple(), sender=alice)
    kal.market.cancel_request(rid, req.with_max_price(80 * UNIT).as_tuple(), sender=alice)
    assert kal.market.balance_of(alice) == 80 * UNIT


def test_increase_max_price_by_someone_else_reverts(kal: Kal, market_id: int, alice: str) -> None:
    rid, req, _ = kal.request(alice, market_id)
    with boa.reverts("requests: not the requester"):
        kal.market.increase_max_price(
            rid, req.as_tuple(), 80 * UNIT, sender=boa.env.generate_address("x")
        )


@pytest.mark.parametrize("new", [50 * UNIT, 49 * UNIT])
def test_increase_max_price_not_higher_reverts(
    kal: Kal, market_id: int, alice: str, new: int
) -> None:
    rid, req, _ = kal.request(alice, market_id, max_price=50 * UNIT)
    with boa.reverts("requests: price not higher"):
        kal.market.increase_max_price(rid, req.as_tuple(), new, sender=alice)


def test_increase_max_price_too_large_reverts(kal: Kal, market_id: int, alice: str) -> None:
    rid, req, _ = kal.request(alice, market_id)
    with boa.reverts("requests: price too large"):
        kal.market.increase_max_price(rid, req.as_tuple(), 2**96, sender=alice)


def test_increase_max_price_not_open_reverts(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, _ = kal.request(alice, market_id)
    kal.assign(rid, req, gen)
    with boa.reverts("requests: not open"):
        kal.market.increase_max_price(rid, req.as_tuple(), 80 * UNIT, sender=alice)


def test_increase_max_price_after_expiry_reverts(kal: Kal, market_id: int, alice: str) -> None:
    rid, req, _ = kal.request(alice, market_id, expiry_in=600)
    boa.env.time_travel(seconds=601)
    with boa.reverts("requests: expired"):
        kal.market.increase_max_price(rid, req.as_tuple(), 80 * UNIT, sender=alice)


# ---------------------------------------------------------- cancel_expired


def test_cancel_expired_at_expiry_reverts(kal: Kal, market_id: int, alice: str) -> None:
    rid, req, _ = kal.request(alice, market_id, expiry_in=600)
    boa.env.time_travel(seconds=600)
    with boa.reverts("requests: not expired"):
        kal.market.cancel_expired(rid, req.as_tuple(), sender=boa.env.generate_address("x"))


def test_cancel_expired_by_anyone_after_expiry(kal: Kal, market_id: int, alice: str) -> None:
    rid, req, refund = refunded_request(kal, alice, market_id)
    boa.env.time_travel(seconds=601)
    kal.market.cancel_expired(rid, req.as_tuple(), sender=boa.env.generate_address("x"))
    (log,) = events(kal.market, "RequestExpired")
    assert (log.request_id, log.market_id, log.refund) == (rid, market_id, 50 * UNIT)
    assert kal.market.balance_of(refund) == 50 * UNIT
    assert state(kal, rid).state == RequestState.CLOSED


def test_cancel_expired_of_assigned_request_reverts(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, _ = kal.request(alice, market_id, expiry_in=600)
    kal.assign(rid, req, gen)
    boa.env.time_travel(seconds=601)
    with boa.reverts("requests: not open"):
        kal.market.cancel_expired(rid, req.as_tuple())


def test_cancel_expired_with_wrong_fields_reverts(kal: Kal, market_id: int, alice: str) -> None:
    rid, req, _ = kal.request(alice, market_id, expiry_in=600)
    boa.env.time_travel(seconds=601)
    with boa.reverts("requests: fields mismatch"):
        kal.market.cancel_expired(rid, req.with_max_price(1).as_tuple())
