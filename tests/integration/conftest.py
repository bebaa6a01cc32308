"""Integration tests run real processes (anvil, the kalypso CLI); every test here is marked."""

from collections.abc import Iterator

import pytest
from web3.types import RPCEndpoint

from kalypso.devnet import Anvil, DevnetSetup, deploy_devnet
from tests.integration.world import World


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def devnet_chain() -> Iterator[tuple[Anvil, DevnetSetup]]:
    """One anvil with Kalypso deployed for the session; tests that change state revert it."""
    with Anvil() as chain:
        yield chain, deploy_devnet(chain.web3())


@pytest.fixture
def snapshot(devnet_chain: tuple[Anvil, DevnetSetup]) -> Iterator[None]:
    """Run the test on a snapshot of the session chain and revert it afterwards."""
    w3 = devnet_chain[0].web3()
    snap = w3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"]
    yield
    w3.provider.make_request(RPCEndpoint("evm_revert"), [snap])


@pytest.fixture
def world(devnet_chain: tuple[Anvil, DevnetSetup]) -> World:
    return World(*devnet_chain)
