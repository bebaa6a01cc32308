"""The devnet as integration tests see it: a sync client, accounts, waiting helpers."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import RPCEndpoint

from kalypso.contracts.client import MarketplaceClient, PostedRequest
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.contracts.web3tx import bind, send
from kalypso.devnet import Anvil, DevnetSetup, dev_account
from kalypso.enclave import DEV_AUTHORITY_KEY, Authority, Domain, EnclaveIdentity
from kalypso.market import RequestState, encode_signals
from kalypso.market.events import marketplace_decoder
from kalypso.matching.config import MatcherConfig

KALYPSO = [sys.executable, "-m", "kalypso.cli"]
MOCK, POSEIDON, SQUARE_ROOT = 0, 1, 2


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    return w3.provider.make_request(RPCEndpoint(method), list(params))["result"]


def wait_for(condition: Callable[[], bool], timeout: float = 20, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


async def async_wait_for(
    condition: Callable[[], bool], timeout: float = 20, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


class World:
    """The devnet seen by one test: a sync client, generators and requesters."""

    def __init__(self, chain: Anvil, setup: DevnetSetup) -> None:
        self.chain = chain
        self.setup = setup
        self.w3 = chain.web3()
        self.client = MarketplaceClient(self.w3, setup.deployment)

    def generator(
        self,
        account: LocalAccount,
        markets: dict[int, int],
        *,
        compute: int = 8,
        proof_time: int = 60,
    ) -> LocalAccount:
        self.client.approve_all(account)
        self.client.register(account, stake=1_000 * TOKEN_UNIT, compute=compute)
        for market, price in markets.items():
            self.client.join_market(account, market, price=price, proof_time=proof_time)
        return account

    def generator_image_enclave(self, market: int) -> EnclaveIdentity:
        """An enclave identity of `market`'s Generator Image, registered with the dev
        authority's statement (the test holds its keys, as the image would)."""
        identity = EnclaveIdentity()
        image = bytes(self.client.markets.functions.market(market).call()[4])
        registry = bind(self.w3, "EnclaveRegistry", str(self.setup.deployment.enclave_registry))
        domain = Domain(self.setup.deployment.chain_id, registry.address)
        now_ms = int(self.w3.eth.get_block("latest")["timestamp"]) * 1000
        a = Authority(DEV_AUTHORITY_KEY).attest(identity, image, "test", domain, now_ms=now_ms)
        st = a.statement
        call = registry.functions.register(
            market, st.signing_key, st.encryption_key, st.image_id, st.timestamp_ms, a.signature
        )
        send(self.w3, self.setup.owner, call)
        return identity

    def request(
        self, market: int, *, max_price: int, value: int = 4, account: LocalAccount | None = None
    ) -> PostedRequest:
        requester = account or dev_account(5)
        self.client.approve_all(requester)
        signals = [value] if market != SQUARE_ROOT else [value * value, 1000]
        return self.client.create_request(
            requester, market, encode_signals(signals), max_price=max_price, proof_time=120
        )

    def state(self, posted: PostedRequest) -> RequestState:
        return self.client.task(posted).state

    def events(self, name: str) -> list[Any]:
        decoder = marketplace_decoder()
        logs = self.w3.eth.get_logs(
            {
                "fromBlock": self.setup.deployment.deploy_block,
                "toBlock": "latest",
                "address": self.setup.deployment.marketplace,
            }
        )
        return [e for e in (decoder.decode(log) for log in logs) if e.name == name]


def config_for(world: World, tmp_path: Path, **overrides: Any) -> MatcherConfig:
    path = tmp_path / "deployment.json"
    world.setup.deployment.save(path)
    values: dict[str, Any] = {
        "rpc_url": world.chain.url,
        "deployment": str(path),
        "state": str(tmp_path / "matcher.sqlite"),
        "poll_interval": 0.1,
        "api_port": 0,
    }
    values.update(overrides)
    return MatcherConfig.from_dict(values)
