"""Owner settings (treasury, fee, matching engines) and two-step ownership."""

import boa
import pytest

from tests.unit.helpers import UNIT, ZERO, Kal, events

NOT_OWNER = "ownable: caller is not the owner"


@pytest.fixture
def stranger() -> str:
    return str(boa.env.generate_address("stranger"))


@pytest.fixture
def engine() -> str:
    return str(boa.env.generate_address("engine"))


def test_set_treasury(kal: Kal) -> None:
    new = boa.env.generate_address("new-treasury")
    kal.market.set_treasury(new, sender=kal.d.owner)
    (log,) = events(kal.market, "TreasurySet")
    assert log.treasury == new
    assert kal.market.treasury() == new


def test_set_treasury_by_non_owner_reverts(kal: Kal, stranger: str) -> None:
    with boa.reverts(NOT_OWNER):
        kal.market.set_treasury(stranger, sender=stranger)


def test_set_treasury_to_zero_reverts(kal: Kal) -> None:
    with boa.reverts("config: zero treasury"):
        kal.market.set_treasury(ZERO, sender=kal.d.owner)


def test_set_market_creation_fee(kal: Kal) -> None:
    kal.market.set_market_creation_fee(5 * UNIT, sender=kal.d.owner)
    (log,) = events(kal.market, "MarketCreationFeeSet")
    assert log.fee == 5 * UNIT
    assert kal.market.market_creation_fee() == 5 * UNIT


def test_set_market_creation_fee_back_to_zero(kal: Kal) -> None:
    kal.market.set_market_creation_fee(5 * UNIT, sender=kal.d.owner)
    kal.market.set_market_creation_fee(0, sender=kal.d.owner)
    assert kal.market.market_creation_fee() == 0


def test_set_market_creation_fee_by_non_owner_reverts(kal: Kal, stranger: str) -> None:
    with boa.reverts(NOT_OWNER):
        kal.market.set_market_creation_fee(1, sender=stranger)


def test_set_matching_engine(kal: Kal, engine: str) -> None:
    kal.market.set_matching_engine(engine, True, sender=kal.d.owner)
    (log,) = events(kal.market, "MatchingEngineSet")
    assert (log.engine, log.allowed) == (engine, True)
    assert kal.market.matching_engines(engine)


def test_unset_matching_engine(kal: Kal, engine: str) -> None:
    kal.market.set_matching_engine(engine, True, sender=kal.d.owner)
    kal.market.set_matching_engine(engine, False, sender=kal.d.owner)
    (log,) = events(kal.market, "MatchingEngineSet")
    assert (log.engine, log.allowed) == (engine, False)
    assert not kal.market.matching_engines(engine)


def test_set_matching_engine_by_non_owner_reverts(kal: Kal, stranger: str) -> None:
    with boa.reverts(NOT_OWNER):
        kal.market.set_matching_engine(stranger, True, sender=stranger)


def test_set_matching_engine_to_zero_reverts(kal: Kal) -> None:
    with boa.reverts("config: zero address"):
        kal.market.set_matching_engine(ZERO, True, sender=kal.d.owner)


def test_set_market_matching_engine(kal: Kal, engine: str) -> None:
    kal.market.set_market_matching_engine(3, engine, True, sender=kal.d.owner)
    (log,) = events(kal.market, "MarketMatchingEngineSet")
    assert (log.market_id, log.engine, log.allowed) == (3, engine, True)
    assert kal.market.market_matching_engines(3, engine)
    assert not kal.market.market_matching_engines(4, engine)
    assert not kal.market.matching_engines(engine)


def test_set_market_matching_engine_by_non_owner_reverts(kal: Kal, stranger: str) -> None:
    with boa.reverts(NOT_OWNER):
        kal.market.set_market_matching_engine(0, stranger, True, sender=stranger)


def test_set_market_matching_engine_to_zero_reverts(kal: Kal) -> None:
    with boa.reverts("config: zero address"):
        kal.market.set_market_matching_engine(0, ZERO, True, sender=kal.d.owner)


def test_transfer_ownership_sets_pending_owner_only(kal: Kal, stranger: str) -> None:
    kal.market.transfer_ownership(stranger, sender=kal.d.owner)
    assert kal.market.pending_owner() == stranger
    assert kal.market.owner() == kal.d.owner


def test_accept_ownership_by_pending_owner(kal: Kal, stranger: str) -> None:
    kal.market.transfer_ownership(stranger, sender=kal.d.owner)
    kal.market.accept_ownership(sender=stranger)
    assert kal.market.owner() == stranger
    assert kal.market.pending_owner() == ZERO


def test_new_owner_can_set_and_old_owner_cannot(kal: Kal, stranger: str) -> None:
    kal.market.transfer_ownership(stranger, sender=kal.d.owner)
    kal.market.accept_ownership(sender=stranger)
    kal.market.set_market_creation_fee(7, sender=stranger)
    assert kal.market.market_creation_fee() == 7
    with boa.reverts(NOT_OWNER):
        kal.market.set_market_creation_fee(8, sender=kal.d.owner)


def test_accept_ownership_by_another_reverts(kal: Kal, stranger: str) -> None:
    kal.market.transfer_ownership(stranger, sender=kal.d.owner)
    with boa.reverts("ownable_2step: caller is not the new owner"):
        kal.market.accept_ownership(sender=boa.env.generate_address("other"))


def test_accept_ownership_by_the_owner_itself_reverts(kal: Kal, stranger: str) -> None:
    kal.market.transfer_ownership(stranger, sender=kal.d.owner)
    with boa.reverts("ownable_2step: caller is not the new owner"):
        kal.market.accept_ownership(sender=kal.d.owner)


def test_transfer_ownership_by_non_owner_reverts(kal: Kal, stranger: str) -> None:
    with boa.reverts(NOT_OWNER):
        kal.market.transfer_ownership(stranger, sender=stranger)
