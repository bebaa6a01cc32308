"""Titanoboa fixtures: one deployment per session; boa rolls back after each test."""

from __future__ import annotations

import boa
import pytest

from kalypso.contracts.deploy import deploy_boa
from tests.unit.helpers import Kal


@pytest.fixture(scope="session")
def kal() -> Kal:
    k = Kal(deploy_boa())
    k.market.set_matching_engine(k.d.owner, True, sender=k.d.owner)
    return k


@pytest.fixture(scope="session")
def market_id(kal: Kal) -> int:
    return kal.create_market()


@pytest.fixture(scope="session")
def private_market_id(kal: Kal) -> int:
    """A market of public and private requests (with a test Generator Image)."""
    return kal.create_market(private=True)


@pytest.fixture
def alice(kal: Kal) -> str:
    """A funded requester."""
    who = boa.env.generate_address("alice")
    kal.fund(who)
    return who


@pytest.fixture
def gen(kal: Kal, market_id: int) -> str:
    """A registered generator in `market_id` (stake 1000, compute 10, price 10, 600 s)."""
    who = boa.env.generate_address("generator")
    kal.register(who, market_id)
    return who
