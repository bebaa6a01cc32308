"""The generator node: follow its tasks → prove → submit, never losing one.

Stages under one supervisor, each `async def ...(stop)`:

- **follow**: reads this generator's events (assigned, proven, invalid, discarded,
  slashed) and writes them with the follower's cursor to the journal in one
  transaction;
- **prove**: fetches each new task's request and proves it (a private one inside the
  market's Generator Image, the only place its inputs are opened)
  within the time its deadline leaves (snarkjs one at a time: its worker already uses
  every core; command and HTTP provers `max_parallel_proofs` at once). A
  task that cannot be finished in time any more is handed back (`discard`: a reduced
  penalty instead of a slash); a prover crash is retried while time allows;
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
import contextlib
import time
from pathlib import Path

from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3.exceptions import ContractLogicError

from kalypso.chain import LogBatch, LogFollower, Rollback, SenderPolicy, TxSender, find_request
from kalypso.chain.rpc import retrying
from kalypso.contracts import artifact
from kalypso.daemon import (
    Binding,
    Stage,
    bind_deployment,
    sleep_or_stop,
    supervise,
    until_ready,
)
from kalypso.errors import (
    ChainError,
    ConfigError,
    ContractError,
    ProverError,
    ProverTimeout,
)
from kalypso.generator.config import GeneratorConfig, MarketConfig
from kalypso.generator.journal import Phase, Task, TaskJournal
from kalypso.generator.metrics import GeneratorMetrics
from kalypso.generator.onboard import MarketTerms, Onboarding, check_market_code, resolve_markets
from kalypso.generator.proving import MarketProver, build_prover, check_reachable
from kalypso.generator.submitter import RETRY_PHASE, Submitter
from kalypso.logs import get_logger
from kalypso.market import VerifyContext
from kalypso.market.events import marketplace_decoder
from kalypso.provers import InvalidInputs
from kalypso.provers.snarkjs import SnarkjsWorker

log = get_logger("kalypso.generator")

#: the events that name this generator as their third indexed topic
EVENTS = ("TaskAssigned", "ProofSubmitted", "InvalidInputsProven", "TaskDiscarded", "TaskSlashed")
#: a crashed prover is retried this often while the deadline allows
MAX_ATTEMPTS = 3
RETRY_PAUSE = 1.0
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
        #: task id -> its proving coroutine
        self.proving: dict[bytes, asyncio.Task[None]] = {}
        #: snarkjs markets share the one worker; other provers run side by side
        self.snarkjs_slot = asyncio.Semaphore(1)
        self.slots = asyncio.Semaphore(config.max_parallel_proofs)
        self.work = asyncio.Event()  # new tasks to prove
        self.results = asyncio.Event()  # proofs or verdicts to submit
        self.draining = False
        self.gas_balance = 0
        self.submitter = Submitter(self)

    # ---- start and stop

    @classmethod
    async def open(cls, config: GeneratorConfig, account: LocalAccount) -> GeneratorNode:
        """Connect, check the config against the chain, build the provers, open the journal."""
        binding = await bind_deployment(
            config.rpc_url, config.deployment, account, role="generator", rate=config.rpc_rate
        )
        worker = SnarkjsWorker()
        try:
            resolved = await resolve_markets(binding, config.markets)
            await check_market_code(binding.w3, binding.deployment, resolved)
            provers = {
                market_id: build_prover(market_id, market, worker)
                for market_id, (market, _) in resolved.items()
            }
            for market, _ in resolved.values():
                await check_reachable(market)
            deployment = binding.deployment
            identity = await binding.identity(generator=account.address)
            journal = TaskJournal(
                state_path(config, deployment.chain_id, account.address), identity
            )
        except BaseException:
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
            "prove": self.prove_stage,
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
            await asyncio.gather(*tasks)
        finally:
            # What is cut short is in the journal: the next start resumes it.
            running = [*tasks, *self.proving.values(), *self.submitter.cancel()]
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
        fresh = max(self.config.poll_interval, self.follower.block_time)  # at most a block old
        block = self.follower.fresh_latest(fresh) or await retrying(
            lambda: self.w3.eth.get_block("latest"), what="eth_getBlock"
        )
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
            for task_id, proving in list(self.proving.items()):
                if self.journal.get(task_id) is None:
                    proving.cancel()
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
        if proving := self.proving.get(task.id):
            proving.cancel()  # settled by someone else (slashed, or a reorg's replay)
        log.info("task settled", task_id=task.tag, phase=task.phase.value, payment=task.payment)
        self.metrics.update(self.journal)

    # ---- prove

    async def prove_stage(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.work.clear()
            for task in self.journal.tasks([Phase.SEEN, Phase.FETCHED]):
                if task.id not in self.proving:
                    self.proving[task.id] = asyncio.create_task(self._prove(task))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.work.wait(), self.config.poll_interval * 4)

    async def _prove(self, task: Task) -> None:
        try:
            await self._prove_task(task)
        except ChainError as exc:  # fetching or checking: the next round tries again
            log.warning("task waits for the chain", task_id=task.tag, error=str(exc))
            self.journal.move(task.id, Phase.FETCHED, only_from=[Phase.PROVING])
            await asyncio.sleep(RETRY_PAUSE)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A task still SEEN has no fields to discard with: it is fetched again after
            # the pause (never in a hot loop), until the watch stage gives it up.
            handed_back = self.journal.move(
                task.id,
                Phase.DISCARDING,
                only_from=[Phase.FETCHED, Phase.PROVING],
                error="the node crashed proving it",
            )
            what = "the task is handed back" if handed_back else "it is tried again"
            log.exception(f"proving crashed; {what}", task_id=task.tag)
            if not handed_back:
                await asyncio.sleep(RETRY_PAUSE)
        finally:
            self.proving.pop(task.id, None)
            self.results.set()
            self.work.set()

    async def _prove_task(self, task: Task) -> None:
        if task.phase == Phase.SEEN:
            record = await find_request(
                self.w3,
                self.deployment.marketplace,
                self.follower.decoder,
                task.id,
                from_block=self.deployment.deploy_block,
                to_block=task.assigned_block,
                window=self.follower.window,
            )
            if record is None:
                raise ChainError(f"no RequestCreated for task {task.tag} (yet)")
            self.journal.fetched(
                task.id, record.request, record.public_inputs, record.encrypted_secret
            )
            task = self.journal.get(task.id) or task
        prover = self.provers.get(task.market_id)
        if prover is None:  # a market left from the config while it had live tasks
            self.journal.move(task.id, Phase.DISCARDING, error="market no longer configured")
            return
        if task.encrypted_secret and prover.enclave is None:
            # Not expected: the chain assigns a private task only to a Generator Image's key.
            error = "a private task outside a Generator Image"
            log.error("handing a private task back", task_id=task.tag, reason=error)
            self.journal.move(task.id, Phase.DISCARDING, error=error)
            return
        slot = self.snarkjs_slot if prover.config.prover == "snarkjs" else self.slots
        async with slot:  # the clock starts once the prover is free: proof_seconds is proving
            budget = task.deadline - self.chain_now() - self.config.submit_margin
            if budget <= 0:
                self.journal.move(task.id, Phase.DISCARDING, error="no time left to prove")
                self.metrics.discards.labels("no time").inc()
                return
            if not self.journal.move(
                task.id, Phase.PROVING, only_from=[Phase.FETCHED], attempts=task.attempts + 1
            ):
                return
            started = time.monotonic()
            try:
                async with asyncio.timeout(budget):
                    result = await prover.prove_task(task, self.address)
            except (TimeoutError, ProverTimeout):
                log.warning("proof not ready in time; handing the task back", task_id=task.tag)
                self.journal.move(task.id, Phase.DISCARDING, error="the proof took too long")
                self.metrics.discards.labels("too slow").inc()
                return
            except ProverError as exc:
                self.metrics.prover_failures.inc()
                retry = task.attempts + 1 < MAX_ATTEMPTS
                log.warning("prover failed", task_id=task.tag, error=str(exc), retry=retry)
                await asyncio.sleep(RETRY_PAUSE)
                phase = Phase.FETCHED if retry else Phase.DISCARDING
                self.journal.move(task.id, phase, error=str(exc)[:500])
                return
            seconds = time.monotonic() - started
        if isinstance(result, InvalidInputs):
            log.info("inputs cannot be proven", task_id=task.tag, reason=result.reason[:200])
            self.journal.move(
                task.id, Phase.INVALID, error=result.reason[:500], proof=result.evidence or None
            )
            return
        self.metrics.proof_seconds.observe(seconds)
        proof = result.calldata()
        if not await self._verifies(task, proof):
            # Never sent, never retried: handing it back costs less than the slash waiting
            # for it, and frees the request for a generator whose artifacts are right.
            log.error(
                "the market's verifier rejects the prover's proof: handing the task back; "
                "check the prover's artifacts against the market (`kalypso generator fetch`)",
                task_id=task.tag,
            )
            self.metrics.failed.labels("proof").inc()
            self.journal.move(task.id, Phase.DISCARDING, error="the verifier rejected the proof")
            return
        self.journal.move(task.id, Phase.READY, proof=proof, proof_seconds=seconds)
        log.info("proof ready", task_id=task.tag, seconds=round(seconds, 3))

    def _context(self, task: Task) -> VerifyContext:
        """The verifier's context of a task whose request is fetched."""
        assert task.request is not None
        return VerifyContext(
            self.deployment.chain_id,
            task.market_id,
            task.id,
            self.address,
            keccak(task.public_inputs),
            task.deadline - task.request.proof_time,
        )

    async def _verifies(self, task: Task, proof: bytes) -> bool:
        """The market's verifier accepts `proof` (an `eth_call`: no gas spent)."""
        verifier = self.w3.eth.contract(
            address=to_checksum_address(self.markets[task.market_id].verifier),
            abi=artifact("Groth16Verifier").abi,
        )
        call = verifier.functions.verify(self._context(task).as_tuple(), task.public_inputs, proof)
        try:
            return bool(await retrying(call.call, what="eth_call"))
        except ContractLogicError:
            return False

    # ---- watch

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            balance = int(
                await retrying(lambda: self.w3.eth.get_balance(self.address), what="eth_getBalance")
            )
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
