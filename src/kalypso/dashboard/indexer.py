"""Follow the deployment with the matcher's log follower into the dashboard's cache.

Each batch of events lands in SQLite with its blocks' timestamps and the cursor after
it, in one transaction, and feeds a `ChainView`, the matcher's own orderbook: so the
generator pages show stake, compute and reliability exactly as a matcher fed the same
events sees them. A restart replays the cached events; a reorg undoes its blocks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from web3 import AsyncWeb3

from kalypso.chain import FollowerState, LogFollower, Rollback, known_block
from kalypso.daemon import bind_deployment, sleep_or_stop
from kalypso.dashboard.store import DashboardStore
from kalypso.deployment import Deployment
from kalypso.logs import get_logger
from kalypso.market.events import DecodedEvent, marketplace_decoder
from kalypso.matching import OrderBook
from kalypso.matching.feed import ChainView

log = get_logger("kalypso.dashboard")


def default_state(chain_id: int) -> Path:
    return Path.home() / ".kalypso" / "dashboard" / f"{chain_id}.sqlite"


class Indexer:
    """The cache, the view derived from it, and (when following a chain) the follower."""

    def __init__(
        self,
        deployment: Deployment,
        store: DashboardStore,
        *,
        w3: AsyncWeb3[Any] | None = None,
        confirmations: int = 0,
        max_range: int = 2_000,
    ) -> None:
        self.deployment = deployment
        self.store = store
        self.w3 = w3
        self.follower = (
            None
            if w3 is None
            else LogFollower(
                w3,
                [deployment.marketplace, deployment.market_registry, deployment.registry],
                marketplace_decoder(),
                confirmations=confirmations,
                max_range=max_range,
            )
        )
        self.state = store.follower_state(deployment.deploy_block)
        #: the chain's head and its timestamp when last looked at
        self.head = 0
        self.head_time = 0
        #: the last follower failure, shown on every page until a step succeeds
        self.failure: str | None = None
        self.view = self._replay()

    @classmethod
    async def open(
        cls, rpc_url: str, deployment: Path | None, state: Path | None, **options: Any
    ) -> Indexer:
        """Connect to a checked deployment and open (or create) its cache."""
        binding = await bind_deployment(rpc_url, deployment, None, role="dashboard")
        try:
            d = binding.deployment
            store = DashboardStore(state or default_state(d.chain_id), await binding.identity())
        except BaseException:
            await binding.close()
            raise
        return cls(d, store, w3=binding.w3, **options)

    async def close(self) -> None:
        self.store.close()
        if self.w3 is not None:
            await self.w3.provider.disconnect()

    def _replay(self) -> ChainView:
        view = ChainView(OrderBook())
        for row in self.store.events():
            view.apply(row.event)
        return view

    # ---- indexing

    def ingest(
        self, events: Sequence[DecodedEvent], times: dict[int, int], state: FollowerState
    ) -> None:
        """Cache a batch (block -> timestamp in `times`) and apply it to the view."""
        self.store.append(events, times, state)
        self.state = state
        for event in events:
            self.view.apply(event)
        if times:
            self.head_time = max(self.head_time, max(times.values()))

    async def step(self) -> bool:
        """Apply the follower's next batch or rollback; False when there was nothing new."""
        assert self.follower is not None and self.w3 is not None
        item = await self.follower.step(self.state)
        if item is None:
            return False
        state = self.follower.advance(self.state, item)
        if isinstance(item, Rollback):
            log.warning("reorg: rolling back", to_block=item.to_block)
            self.store.rollback(item.to_block, state)
            self.state = state
            self.view = self._replay()
            return True
        blocks = {e.block_number for e in item.events}
        assert self.w3 is not None
        times = {n: int((await known_block(self.w3, n))["timestamp"]) for n in blocks}
        self.ingest(item.events, times, state)
        self.head = max(self.head, item.to_block)
        return True

    async def update_head(self) -> None:
        assert self.w3 is not None
        block = await self.w3.eth.get_block("latest")
        self.head, self.head_time = int(block["number"]), int(block["timestamp"])

    def trim(self) -> None:
        """Drop what the view keeps only for acting on the chain (the deadline and expiry
        heaps a matcher drains as it slashes and matches), so a long run stays its size."""
        self.view.overdue(self.head_time)
        self.view.book.match(self.head_time, limit=0)

    async def run(self, stop: asyncio.Event, poll_interval: float = 1.0) -> None:
        """Follow the chain until `stop`; a failing endpoint is retried, never fatal."""
        while not stop.is_set():
            try:
                while not stop.is_set() and await self.step():
                    await asyncio.sleep(0)  # let pages be served while catching up
                await self.update_head()
                self.trim()
                self.failure = None
            except Exception as exc:  # an RPC outage: keep serving the cache
                if self.failure is None:
                    log.warning("following the chain failed; retrying", error=str(exc))
                self.failure = str(exc) or type(exc).__name__
            await sleep_or_stop(stop, poll_interval)
