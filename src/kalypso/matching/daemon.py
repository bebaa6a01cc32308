"""The matching-engine daemon: follow the chain → keep the book → assign in batches.

Three stages run under one supervisor, each `async def ...(stop)`:

- **follow**: reads the contracts' logs from the journal's cursor, writes them and
  the new cursor to SQLite in one transaction, then applies them to the book;
- **assign**: whenever the book has matches, sends them in `assign_batch`
  transactions of up to `batch_size` (several in flight under a burst), and hands
  back to the book whatever a failed transaction carried;
- **slash**: slashes tasks past their deadline (the matcher keeps the bounty), so no
  escrow, stake or compute stays locked.

A stage that fails on the chain (RPC down, a dropped transaction) is restarted
after a pause; a configuration error stops the daemon. On start the book is
rebuilt from the journal, transactions an earlier run left in flight are waited
for, and the follower catches up with the head before anything is matched, so a
restart never assigns a request twice or misses one.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import AsyncWeb3

from kalypso.chain import LogBatch, LogFollower, Rollback, SenderPolicy, TxSender
from kalypso.contracts import artifact
from kalypso.crypto import SecretContext, load_ring
from kalypso.daemon import (
    Stage,
    bind_deployment,
    run_until_stop,
    sleep_or_stop,
    supervise,
    until_ready,
)
from kalypso.deployment import Deployment
from kalypso.errors import ConfigError, ContractError, KalypsoError, MatcherKeyError
from kalypso.logs import get_logger
from kalypso.market.events import DecodedEvent, marketplace_decoder
from kalypso.matching import OrderBook
from kalypso.matching.assigner import Assigner
from kalypso.matching.config import MatcherConfig
from kalypso.matching.feed import ChainView
from kalypso.matching.metrics import MatcherMetrics
from kalypso.matching.secrets import EnclaveKeeper, LocalKeeper, SecretKeeper
from kalypso.matching.store import Inflight, MatcherStore

log = get_logger("kalypso.matcher")


def state_path(config: MatcherConfig, chain_id: int) -> Path:
    if config.state is not None:
        return config.state
    shard = "all" if config.markets is None else "-".join(map(str, config.markets))
    return Path.home() / ".kalypso" / "matcher" / f"{chain_id}-{shard}.sqlite"


class Matcher:
    def __init__(
        self,
        config: MatcherConfig,
        deployment: Deployment,
        account: LocalAccount,
        w3: AsyncWeb3[Any],
        store: MatcherStore,
        marketplace: Any,
        key_max_age: int | None = None,
    ) -> None:
        self.config = config
        #: the enclave registry's MAX_AGE: Generator Image keys expire that long after
        #: their attestation (None: the deployment has no enclave registry)
        self.key_max_age = key_max_age
        self.deployment = deployment
        self.account = account
        self.w3 = w3
        self.store = store
        self.metrics = MatcherMetrics()
        self.keeper: SecretKeeper | None = None
        if config.encryption_key is not None:
            self.keeper = LocalKeeper(load_ring(config.encryption_key))
        elif config.enclave_url is not None:
            self.keeper = EnclaveKeeper(config.enclave_url)
        #: request id -> whether its secret opens (asked once per process)
        self._openable: dict[bytes, bool] = {}
        self.view = self._fresh_view()
        followed = [deployment.marketplace, deployment.market_registry, deployment.registry]
        self.follower = LogFollower(
            w3,
            followed + ([deployment.enclave_registry] if deployment.enclave_registry else []),
            marketplace_decoder(),
            confirmations=config.confirmations,
            max_range=config.max_log_range,
        )
        self.sender = TxSender(
            w3,
            account,
            SenderPolicy(
                priority_fee_percent=config.priority_fee_percent,
                poll_interval=config.poll_interval,
            ),
        )
        self.marketplace = marketplace
        self.state = store.follower_state(deployment.deploy_block)
        self.head = 0
        self.head_time = 0
        self.started = time.time()
        self.ready = False
        #: set when the daemon must stop (the key lost its authorization)
        self.fatal: KalypsoError | None = None
        #: stage -> (unix time, error) of its last failure, for /health
        self.failures: dict[str, tuple[float, str]] = {}
        self.assigner = Assigner(self)

    # ---- start and stop

    @classmethod
    async def open(cls, config: MatcherConfig, account: LocalAccount) -> Matcher:
        """Connect, load the deployment, check the key is authorized, open the journal."""
        binding = await bind_deployment(
            config.rpc_url, config.deployment, account, role="matcher", rate=config.rpc_rate
        )
        try:
            deployment = binding.deployment
            await check_authorized(binding.marketplace, account.address, config.markets)
            identity = await binding.identity(
                signer=account.address,
                markets=list(config.markets) if config.markets is not None else "all",
            )
            store = MatcherStore(state_path(config, deployment.chain_id), identity)
            max_age = None
            if deployment.enclave_registry:
                enclaves = binding.w3.eth.contract(
                    address=to_checksum_address(deployment.enclave_registry),
                    abi=artifact("EnclaveRegistry").abi,
                )
                max_age = int(await enclaves.functions.MAX_AGE().call())
        except BaseException:
            await binding.close()
            raise
        return cls(config, deployment, account, binding.w3, store, binding.marketplace, max_age)

    async def close(self) -> None:
        self.store.close()
        await self.w3.provider.disconnect()

    async def run(self, stop: asyncio.Event) -> None:
        """Recover, then run the stages until `stop` is set or one fails fatally."""
        await until_ready(
            "recovery",
            lambda: self.recover(stop),
            give_up=self.config.startup_timeout,
            logger=log,
            stop=stop,
        )
        if stop.is_set():
            return
        self.ready = True
        log.info(
            "matcher ready",
            address=self.account.address,
            markets=self.config.markets or "all",
            next_block=self.state.next_block,
            open=self.view.book.open_count(),
        )
        stages: dict[str, Stage] = {"follow": self.follow, "assign": self.assigner.run}
        if self.config.slash_overdue:
            stages["slash"] = self.slash_overdue
        tasks = [
            asyncio.create_task(self._supervise(name, stage, stop))
            for name, stage in stages.items()
        ]
        try:
            await run_until_stop(tasks, stop)
        finally:
            # Transactions still in flight are in the journal: the next start settles them.
            for task in self.assigner.inflight:
                task.cancel()
            await asyncio.gather(*self.assigner.inflight, return_exceptions=True)

    async def _supervise(self, name: str, stage: Stage, stop: asyncio.Event) -> None:
        try:
            await supervise(
                name, stage, stop, self.failures, fatal=(ConfigError, MatcherKeyError), logger=log
            )
        except KalypsoError as exc:
            self.fatal = exc
            raise

    # ---- recovery

    def _fresh_view(self) -> ChainView:
        registry = self.deployment.enclave_registry
        return ChainView(
            OrderBook(markets=self.config.markets),
            can_decrypt=self.can_decrypt,
            engine=self.account.address,
            enclave_registry=to_checksum_address(registry) if registry else None,
            key_max_age=self.key_max_age,
        )

    def secret_context(self, request_id: bytes) -> SecretContext:
        return SecretContext(self.deployment.chain_id, self.deployment.marketplace, request_id)

    def can_decrypt(self, request_id: bytes, secret: bytes) -> bool:
        """Test-decrypt a private request: one the matcher cannot open is never assigned."""
        if self.keeper is None:
            return False
        if request_id not in self._openable:
            openable = self.keeper.can_open(self.secret_context(request_id), secret)
            if not openable:
                log.warning("private request not sealed to this matcher", request_id=request_id)
            self._openable[request_id] = openable
        return self._openable[request_id]

    def _test_decrypt(self, events: list[DecodedEvent]) -> None:
        """Ask before journaling a batch: an enclave that cannot answer now raises, and
        the batch is followed again, instead of its requests being dropped."""
        for event in events:
            if event.name == "RequestCreated" and event["encrypted_secret"]:
                self.can_decrypt(event["request_id"], event["encrypted_secret"])

    def _replay(self) -> None:
        self.view = self._fresh_view()
        for event in self.store.events():
            self._apply_event(event)

    async def recover(self, stop: asyncio.Event | None = None) -> None:
        await self.update_head()
        self._replay()
        await self._settle_inflight(stop)
        while not (stop and stop.is_set()):
            item = await self.follower.step(self.state)
            if item is None:
                break
            self._apply(item)
        await self.update_head()

    async def _settle_inflight(self, stop: asyncio.Event | None) -> None:
        """Wait until the transactions an earlier run sent are mined or gone.

        Matching before they land would assign their requests again (the contract would
        skip them, at a cost). A transaction is gone when its nonce was used by another
        or the node's pool no longer holds it.
        """
        records = {r.nonce: r for r in self.store.inflight()}
        if records:
            log.info("waiting for the transactions of the last run", count=len(records))
        deadline = time.monotonic() + self.sender.policy.receipt_timeout
        while records and time.monotonic() < deadline and not (stop and stop.is_set()):
            mined, pending = await self.sender.nonces()
            for nonce, record in list(records.items()):
                block = await self._mined_in(record)
                if block is not None:
                    # Its events must be followed before matching, or with confirmations
                    # its requests would look open and be matched again.
                    self.assigner.hold_until = max(self.assigner.hold_until, block)
                if block is not None or nonce < mined or nonce >= pending:
                    self.store.resolved(nonce)
                    del records[nonce]
            if records:
                await asyncio.sleep(self.sender.policy.poll_interval)
        for nonce in records:
            log.warning("a transaction of the last run is still pending", nonce=nonce)

    async def _mined_in(self, record: Inflight) -> int | None:
        """The block one of the record's transactions was mined in, if one was."""
        for tx_hash in record.hashes:
            if receipt := await self.sender.receipt(tx_hash):
                return int(receipt["blockNumber"])
        return None

    # ---- follow

    async def follow(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            item = await self.follower.step(self.state)
            if item is None:
                await self.update_head()
                await sleep_or_stop(stop, self.follower.pause(self.config.poll_interval))
                continue
            self._apply(item)
            if self.fatal is not None:
                raise self.fatal

    def _apply(self, item: LogBatch | Rollback) -> None:
        state = self.follower.advance(self.state, item)
        if isinstance(item, Rollback):
            log.warning("reorg: rolling back", to_block=item.to_block)
            self.store.rollback(item.to_block, state)
            self.state = state
            self._replay()
            self.assigner.book_rebuilt()
            self.sender.resync()  # our transactions in the undone blocks are gone
            self.metrics.reorgs.inc()
        else:
            self._test_decrypt(item.events)
            self.store.append(item, state)
            self.state = state
            self.assigner.followed(state.next_block)
            for event in item.events:
                self._apply_event(event)
                if event.name == "AssignSkipped" and event["engine"] == self.account.address:
                    self.metrics.skipped.inc()
                    log.info(
                        "assignment skipped",
                        request_id=event["request_id"],
                        generator=event["generator"],
                        reason=event["reason"],
                    )
                elif event.name == "TaskAssigned":
                    log.info(
                        "task assigned",
                        task_id="0x" + bytes(event["task_id"]).hex(),
                        generator=event["generator"],
                    )
            for log_entry, reason in item.malformed:
                self.metrics.malformed.inc()
                log.warning("malformed log skipped", reason=reason, log=repr(log_entry)[:200])
        self.assigner.progress.set()

    async def confirm_authorized(self) -> None:
        """One of our assignments reverted as from a stranger: stop (`MatcherKeyError`)
        only if the chain's `matching_engines` says this key was revoked. Nothing another
        address sends can make the matcher stop."""
        try:
            await check_authorized(self.marketplace, self.account.address, self.config.markets)
        except MatcherKeyError as exc:
            log.error("matching engine key revoked", error=str(exc))
            self.fatal = exc
            raise

    def _apply_event(self, event: DecodedEvent) -> None:
        self.metrics.events.labels(event.name).inc()
        try:
            self.view.apply(event)
        except (KeyError, ValueError) as exc:  # out of order or inconsistent: never a crash
            self.metrics.malformed.inc()
            log.warning("event not applicable, skipped", event_name=event.name, error=str(exc))

    async def update_head(self) -> None:
        fresh = self.follower.fresh_for(self.config.poll_interval)
        block = self.follower.fresh_latest(fresh) or await self.w3.eth.get_block("latest")
        self.head, self.head_time = int(block["number"]), int(block["timestamp"])
        self.metrics.head.set(self.head)
        self.metrics.lag.set(max(0, self.head - self.state.next_block + 1))
        self.metrics.pending.set(self.view.book.pending_count())
        for market in self.view.book.markets():
            self.metrics.open_requests.labels(str(market)).set(self.view.book.open_count(market))

    # ---- slash

    async def slash_overdue(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await sleep_or_stop(stop, self.config.poll_interval)
            due = self.view.overdue(self.head_time, self.config.markets)
            try:
                while due and not stop.is_set():
                    task_id, request = due[0]
                    await self._slash(task_id, request.as_tuple())
                    due.pop(0)
            finally:
                for task_id, _ in due:  # not tried yet, or failed on the chain
                    self.view.requeue_overdue(task_id)

    async def _slash(self, task_id: bytes, request: tuple[Any, ...]) -> None:
        try:
            await self.sender.send(self.marketplace.functions.slash(task_id, request))
        except ContractError as exc:  # finished meanwhile, or slashed by someone else
            log.info("slash not needed", task_id=task_id, reason=str(exc))
        else:
            self.metrics.slashes.inc()
            log.info("overdue task slashed", task_id=task_id)


async def check_authorized(marketplace: Any, address: str, markets: tuple[int, ...] | None) -> None:
    """Raise `MatcherKeyError` unless `address` may assign in every market of the shard."""
    functions = marketplace.functions
    if await functions.matching_engines(address).call():
        return
    if markets is None:
        raise MatcherKeyError(
            f"{address} is not an authorized matching engine: the marketplace owner must run "
            f"`kalypso admin set-matching-engine {address}`, or give this shard "
            "`markets = [...]` it is authorized for"
        )
    missing = [m for m in markets if not await functions.market_matching_engines(m, address).call()]
    if missing:
        raise MatcherKeyError(
            f"{address} may not assign in market(s) {', '.join(map(str, missing))}: the "
            "owner must authorize it (`kalypso admin set-market-matching-engine`) or use "
            "another key"
        )
