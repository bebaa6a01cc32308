"""The generator node: follow its tasks → prove → submit, never losing one.

Stages under one supervisor, each `async def ...(stop)`:

- **follow**: reads this generator's events (assigned, proven, invalid, discarded,
  slashed) and writes them with the follower's cursor to the journal in one
  transaction;
- **prove** (`kalypso.generator.prove_stage`): fetches each new task's request and
  proves it (a private one inside the market's Generator Image, the only place its
  inputs are opened) within the time its deadline leaves (snarkjs one at a time: its
  worker already uses every core; command and HTTP provers `max_parallel_proofs` at
  once). A task that cannot be finished in time any more is handed back (`discard`: a
  reduced penalty instead of a slash); faults are retried with a growing pause; a task
  whose deadline passes with nothing sent fails, reported once;
- **submit**: proofs ready for one market go in one `submit_proofs`, each checked
  with the market's verifier first; a batch that fails falls back to single
  submissions; a proof the verifier rejects fails its task loudly, once. Verdicts
  of invalid inputs are claimed through the market's input verifier;
- **watch**: metrics, and a warning when the gas balance runs low.

On start the journal is reconciled: proofs in progress start again, settlement
transactions of the last run are waited for, so nothing is submitted twice.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from eth_account.signers.local import LocalAccount

from kalypso.chain import LogBatch, LogFollower, Rollback, SenderPolicy, TxSender
from kalypso.contracts import artifact
from kalypso.daemon import (
    Binding,
    Stage,
    bind_deployment,
    run_until_stop,
    sleep_or_stop,
    supervise,
    until_ready,
)
from kalypso.errors import (
    ConfigError,
    ContractError,
    ProverError,
)
from kalypso.generator.config import GeneratorConfig, MarketConfig
from kalypso.generator.journal import Phase, Task, TaskJournal
from kalypso.generator.metrics import GeneratorMetrics
from kalypso.generator.onboard import MarketTerms, Onboarding, check_market_code, resolve_markets
from kalypso.generator.prove_stage import ProveStage
from kalypso.generator.proving import MarketProver, build_prover, check_reachable
from kalypso.generator.submitter import RETRY_PHASE, Submitter
from kalypso.logs import get_logger
from kalypso.market.events import marketplace_decoder
from kalypso.provers.snarkjs import SnarkjsWorker

log = get_logger("kalypso.generator")

#: the events that name this generator as their third indexed topic
EVENTS = ("TaskAssigned", "ProofSubmitted", "InvalidInputsProven", "TaskDiscarded", "TaskSlashed")
WATCH_INTERVAL = 10.0


def state_path(config: GeneratorConfig, chain_id: int, address: str) -> Path:
    if config.state is not None:
        return config.state
    return Path.home() / ".kalypso" / "generator" / f"{chain_id}-{address}.sqlite"


def _event_topics() -> list[str]:
    from eth_utils import event_abi_to_log_topic

    abi = artifact("ProofMarketplace").abi
    return [
        "0x" + event_abi_to_log_topic(e).hex()  # type: ignore[arg-type]
        for e in abi
        if e.get("type") == "event" and e.get("name") in EVENTS
    ]


class GeneratorNode:
    def __init__(
        self,
        config: GeneratorConfig,
        binding: Binding,
        account: LocalAccount,
        journal: TaskJournal,
        resolved: dict[int, tuple[MarketConfig, MarketTerms]],
        provers: dict[int, MarketProver],
        worker: SnarkjsWorker,
    ) -> None:
        self.config = config
        self.binding = binding
        self.w3 = binding.w3
        self.deployment = binding.deployment
        self.marketplace = binding.marketplace
        self.account = account
        self.address = account.address
        self.journal = journal
        self.resolved = resolved
        self.markets = {market_id: terms for market_id, (_, terms) in resolved.items()}
        self.provers = provers
        self.worker = worker
        #: the Generator Image keys last offered, by market (the node holds no key: private
        #: inputs are opened only inside a Generator Image, whose key the offer names)
        self.enclave_keys: dict[int, bytes | None] = {}
        self.metrics = GeneratorMetrics()
        self.sender = TxSender(self.w3, account, SenderPolicy(poll_interval=config.poll_interval))
        self.follower = LogFollower(
            self.w3,
            [self.deployment.marketplace],
            marketplace_decoder(),
            confirmations=config.confirmations,
            max_range=config.max_log_range,
            topics=[_event_topics(), None, None, "0x" + "00" * 12 + self.address[2:].lower()],
        )
        self.state = journal.follower_state(self.deployment.deploy_block)
        self.head = 0
        self._head_time = 0
        self._head_read = time.monotonic()
        self.ready = False
        self.started = time.time()
        self.failures: dict[str, tuple[float, str]] = {}
        self.work = asyncio.Event()  # new tasks to prove
        self.results = asyncio.Event()  # proofs or verdicts to submit
        self.draining = False
        self.gas_balance = 0
        self.submitter = Submitter(self)
        self.prove_stage = ProveStage(self)

    # ---- start and stop

    @classmethod
    async def open(cls, config: GeneratorConfig, account: LocalAccount) -> GeneratorNode:
        """Connect, check the config against the chain, build the provers, open the journal."""
        binding = await bind_deployment(
            config.rpc_url, config.deployment, account, role="generator", rate=config.rpc_rate
        )
        worker = SnarkjsWorker()
        provers: dict[int, MarketProver] = {}
        try:
            resolved = await resolve_markets(binding, config.markets)
            await check_market_code(binding.w3, binding.deployment, resolved)
            for market_id, (market, _) in resolved.items():  # each kept, to close on failure
                provers[market_id] = build_prover(market_id, market, worker)
            for market_prover in provers.values():
                await check_reachable(market_prover)
            deployment = binding.deployment
            identity = await binding.identity(generator=account.address)
            journal = TaskJournal(
                state_path(config, deployment.chain_id, account.address), identity
            )
        except BaseException:
            for built in provers.values():
                await built.close()
            await worker.close()
            await binding.close()
            raise
        return cls(config, binding, account, journal, resolved, provers, worker)

    async def close(self) -> None:
        for prover in self.provers.values():
            await prover.close()
        await self.worker.close()
        self.journal.close()
        await self.binding.close()

    def _onboarding(self) -> Onboarding:
        b = self.binding
        return Onboarding(self.config, self.sender, b.registry, b.token, self.journal.add_spending)

    async def onboard(self) -> None:
        """Register, stake, and join (or, paused, leave) the configured markets."""
        active = await self._onboarding().stake_and_compute(self.resolved)
        if active:
            await self.set_offers(joined=not self.journal.paused)

    async def set_offers(self, *, joined: bool) -> None:
        count = int(await self.binding.markets.functions.market_count().call())
        if joined:  # leaving needs no key (and its enclave may be gone already)
            self.enclave_keys = await self._enclave_keys()
        await self._onboarding().offers(self.resolved, count, self.enclave_keys, joined=joined)

    async def _follow_enclave_keys(self) -> None:
        """A restarted Generator Image has new keys: offer the new one at once, or every
        private task would be wrapped to a key no enclave holds any more."""
        if self.enclave_keys and await self._enclave_keys() != self.enclave_keys:
            log.warning("a Generator Image has a new key; updating the offers")
            await self.set_offers(joined=not self.journal.paused)

    async def _enclave_keys(self) -> dict[int, bytes | None]:
        """A market proven in a Generator Image takes the enclave's key as the offer key:
        secrets are re-wrapped to it, and only it can open them."""
        keys: dict[int, bytes | None] = {}
        for market_id, prover in self.provers.items():
            if prover.enclave is not None:
                attestation = await prover.enclave.attestation()
                keys[market_id] = bytes.fromhex(str(attestation["encryption_key"])[2:])
        return keys

    async def pause(self) -> None:
        """No new tasks (leave the markets on-chain); live ones are finished."""
        self.journal.set_paused(True)
        await self.set_offers(joined=False)
        log.info("paused: no new tasks; live ones are finished")

    async def resume(self) -> None:
        self.journal.set_paused(False)
        await self.set_offers(joined=True)
        log.info("resumed: taking tasks again")

    async def run(self, stop: asyncio.Event) -> None:
        """Onboard, recover, then run the stages until `stop` is set."""
        if any(p.config.prover == "snarkjs" for p in self.provers.values()):
            await self.worker.warm()  # the first task should not pay node's start-up
        wait = {"give_up": self.config.startup_timeout, "logger": log, "stop": stop}
        await until_ready("onboarding", self.onboard, **wait)
        await until_ready("recovery", lambda: self.recover(stop), **wait)
        if stop.is_set():
            return
        self.ready = True
        log.info(
            "generator ready",
            address=self.address,
            markets=sorted(self.markets),
            live_tasks=len(self.journal.live()),
            paused=self.journal.paused,
        )
        stages: dict[str, Stage] = {
            "follow": self.follow,
            "prove": self.prove_stage.run,
            "submit": self.submitter.run,
            "watch": self.watch,
        }
        tasks = [
            asyncio.create_task(
                supervise(name, stage, stop, self.failures, fatal=(ConfigError,), logger=log)
            )
            for name, stage in stages.items()
        ]
        try:
            await run_until_stop(tasks, stop)
        finally:
            # What is cut short is in the journal: the next start resumes it.
            running = [*self.prove_stage.proving.values(), *self.submitter.cancel()]
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def drain(self, stop: asyncio.Event) -> None:
        """Leave the markets, finish the live tasks, then set `stop` (SIGTERM)."""
        if self.draining:
            return
        self.draining = True
        log.info("draining: leaving the markets, finishing live tasks")
        delay = 1.0
        while not stop.is_set():  # an offer left live could be assigned, then slashed
            try:
                await self.set_offers(joined=False)
                break
            except ContractError as exc:  # the chain refuses it: trying again changes nothing
                log.error("could not leave the markets; draining anyway", error=str(exc))
                break
            except Exception as exc:  # the chain or its provider failed: try again
                log.warning("could not leave the markets yet", error=str(exc), retry_in=delay)
                await sleep_or_stop(stop, delay)
                delay = min(delay * 2, 30.0)
        while not stop.is_set() and self.journal.live():
            await sleep_or_stop(stop, self.config.poll_interval)
        stop.set()

    # ---- time

    def chain_now(self) -> float:
        """The chain's time now, from the last head read and the time since."""
        return self._head_time + (time.monotonic() - self._head_read)

    async def update_head(self) -> None:
        fresh = self.follower.fresh_for(self.config.poll_interval)
        block = self.follower.fresh_latest(fresh) or await self.w3.eth.get_block("latest")
        self.head, self._head_time = int(block["number"]), int(block["timestamp"])
        self._head_read = time.monotonic()
        self.submitter.clock.saw(self.head)

    # ---- recovery

    async def recover(self, stop: asyncio.Event) -> None:
        """Catch up with the chain and settle what the last run left half done."""
        await self.update_head()
        for task in self.journal.tasks([Phase.PROVING]):
            self.journal.move(task.id, Phase.FETCHED)  # the proof was lost with the process
        await self._settle_sent(stop)
        while not stop.is_set():
            item = await self.follower.step(self.state)
            if item is None:
                break
            self._apply(item)

    async def _settle_sent(self, stop: asyncio.Event) -> None:
        """Wait for the settlement transactions of the last run: mined ones are left to
        the follower; ones that never landed make their tasks ready to send again."""
        waiting = {t.id: t for t in self.journal.tasks([Phase.SUBMITTED])}
        deadline = time.monotonic() + self.sender.policy.receipt_timeout
        while waiting and not stop.is_set():
            mined, pooled = await self.sender.nonces()
            for task in list(waiting.values()):
                receipts = [await self.sender.receipt(h) for h in task.tx_hashes]
                landed = [r for r in receipts if r is not None]
                if any(r["status"] == 1 for r in landed):
                    del waiting[task.id]  # the follower brings its event
                elif landed or mined == pooled or time.monotonic() > deadline:
                    self.journal.move(task.id, RETRY_PHASE[task.action or "proof"])
                    del waiting[task.id]
            if waiting:
                await asyncio.sleep(self.sender.policy.poll_interval)

    # ---- follow

    async def follow(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            item = await self.follower.step(self.state)
            if item is None:
                await self.update_head()
                await sleep_or_stop(stop, self.follower.pause(self.config.poll_interval))
                continue
            self._apply(item)

    def _apply(self, item: LogBatch | Rollback) -> None:
        state = self.follower.advance(self.state, item)
        if isinstance(item, Rollback):
            log.warning("reorg: rolling back", to_block=item.to_block)
            self.journal.rollback(item.to_block, state)
            self.state = state
            self.sender.resync()
            for task_id in list(self.prove_stage.proving):
                if self.journal.get(task_id) is None:
                    self.prove_stage.cancel(task_id)
            return
        touched = self.journal.apply(item, state, self.address)
        self.state = state
        for task_id in touched:
            task = self.journal.get(task_id)
            if task is None:
                continue
            if task.phase == Phase.SEEN:
                log.info("task assigned", task_id=task.tag, market=task.market_id, price=task.price)
                self.work.set()
            else:
                self._settled(task)

    def _settled(self, task: Task) -> None:
        self.prove_stage.cancel(task.id)  # settled by someone else, or by us
        log.info("task settled", task_id=task.tag, phase=task.phase.value, payment=task.payment)
        self.metrics.update(self.journal)

    # ---- prove

    # ---- watch

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            balance = int(await self.w3.eth.get_balance(self.address))
            self.gas_balance = balance
            self.metrics.gas_balance.set(balance)
            if balance < self.config.low_gas_balance:
                log.warning(
                    "gas balance low: fund the generator or its proofs cannot be sent",
                    address=self.address,
                    wei=balance,
                )
            self.metrics.update(self.journal)
            try:
                await self._follow_enclave_keys()
            except ProverError as exc:
                log.warning("a Generator Image does not answer", error=str(exc))
            await sleep_or_stop(stop, WATCH_INTERVAL)
