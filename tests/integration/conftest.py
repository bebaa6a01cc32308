"""Integration tests run real processes (anvil, the kalypso CLI); every test here is marked."""

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from web3.types import RPCEndpoint

from kalypso.devnet import Anvil, DevnetSetup, deploy_devnet
from kalypso.stack import DevnetStack
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


class SdkDevnet:
    """A chain of its own with the whole devnet stack running, for the SDK and CLI tests
    (the daemons keep state, so they never share the snapshot-reverted session chain)."""

    def __init__(self, chain: Anvil, setup: DevnetSetup, stack: DevnetStack, path: Path) -> None:
        self.chain = chain
        self.setup = setup
        self.stack = stack
        self.deployment = path
        self.url = chain.url

    def env(self, account: LocalAccount) -> dict[str, str]:
        """The KALYPSO_* environment `kalypso devnet` prints, for `account`."""
        return {
            "KALYPSO_RPC_URL": self.url,
            "KALYPSO_DEPLOYMENT": str(self.deployment),
            "KALYPSO_PRIVATE_KEY": "0x" + account.key.hex().removeprefix("0x"),
        }


@pytest.fixture(scope="session")
def sdk_devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SdkDevnet]:
    workdir = tmp_path_factory.mktemp("sdk-devnet")
    with Anvil() as chain:
        setup = deploy_devnet(chain.web3())
        path = setup.deployment.save(workdir / "deployment.json")
        stack = DevnetStack.build(workdir, chain.url, path, setup, slash_overdue=False).start()
        try:
            deployment = replace(setup.deployment, matcher_url=stack.matcher.url)
            deployment.save(path)
            yield SdkDevnet(chain, replace(setup, deployment=deployment), stack, path)
        finally:
            stack.stop()
