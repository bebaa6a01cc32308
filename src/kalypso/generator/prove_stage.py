"""The generator node's prove stage: each new task's request fetched, proven within the
time its deadline leaves, and checked with the market's verifier before it is sent.

Every phase ends: a proof ready, a verdict of invalid inputs, the task handed back
(`discard`, a reduced penalty instead of a slash) or, once the deadline has passed with
nothing sent, the task failed and reported once. Faults are retried with a backoff
that grows per task (never a hot loop), a crashed prover at most `MAX_ATTEMPTS` times.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import TYPE_CHECKING

from eth_utils import keccak, to_checksum_address
from web3.exceptions import ContractLogicError

from kalypso.chain import find_request
from kalypso.contracts import artifact
from kalypso.errors import ChainError, ProverError, ProverTimeout, VerdictRefused
from kalypso.generator.journal import Phase, Task
from kalypso.logs import get_logger
from kalypso.market import VerifyContext
from kalypso.provers import InvalidInputs

if TYPE_CHECKING:
    from kalypso.generator.daemon import GeneratorNode

log = get_logger("kalypso.generator")

#: a crashed prover is retried this often while the deadline allows
MAX_ATTEMPTS = 3
#: the first pause after a fault, doubled per fault of the same task up to the cap
RETRY_PAUSE = 1.0
MAX_RETRY_PAUSE = 30.0
#: phases where nothing is on its way to the chain: past the deadline, nothing can be
PREPARING = (Phase.SEEN, Phase.FETCHED, Phase.READY, Phase.INVALID, Phase.DISCARDING)


class ProveStage:
    def __init__(self, node: GeneratorNode) -> None:
        self.node = node
        self.journal = node.journal
        #: task id -> its proving coroutine
        self.proving: dict[bytes, asyncio.Task[None]] = {}
        #: task id -> faults in a row (the next pause grows with it)
        self.faults: dict[bytes, int] = {}
        #: snarkjs markets share the one worker; other provers run side by side
        self.snarkjs_slot = asyncio.Semaphore(1)
        self.slots = asyncio.Semaphore(node.config.max_parallel_proofs)

    async def run(self, stop: asyncio.Event) -> None:
        node = self.node
        while not stop.is_set():
            node.work.clear()
            self.fail_overdue()
            for task in self.journal.tasks([Phase.SEEN, Phase.FETCHED]):
                if task.id not in self.proving:
                    self.proving[task.id] = asyncio.create_task(self._prove(task))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(node.work.wait(), node.config.poll_interval * 4)

    def cancel(self, task_id: bytes) -> None:
        """Stop proving a task settled by someone else (slashed, or a reorg's replay)."""
        if proving := self.proving.get(task_id):
            proving.cancel()
        self.faults.pop(task_id, None)

    def fail_overdue(self) -> None:
        """A task whose deadline passed before anything was sent can only be slashed now:
        it fails, reported once with the phase it was stuck in and its last error."""
        now = self.node.chain_now()
        busy = self.node.submitter.sending
        for task in self.journal.tasks(list(PREPARING)):
            if now <= task.deadline or task.id in self.proving or task.id in busy:
                continue
            error = f"deadline passed while {task.phase.value}" + (
                f" ({task.error})" if task.error else ""
            )
            if self.journal.move(task.id, Phase.FAILED, only_from=[task.phase], error=error[:500]):
                log.error(
                    "task missed its deadline; it can be slashed",
                    task_id=task.tag,
                    phase=task.phase.value,
                    error=task.error,
                )
                self.node.metrics.failed.labels("deadline").inc()
                self.faults.pop(task.id, None)

    async def _pause(self, task: Task) -> None:
        """Wait before this task's next try: 1 s, 2 s, 4 s … up to 30 s, with jitter."""
        n = self.faults[task.id] = self.faults.get(task.id, 0) + 1
        delay = min(RETRY_PAUSE * 2 ** (n - 1), MAX_RETRY_PAUSE)
        await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    def _note(self, task: Task, back_to: Phase, error: str) -> None:
        """Keep the fault on the task (`fail_overdue` reports it); a task cut short while
        proving goes `back_to` where it is tried from again."""
        moved = self.journal.move(task.id, back_to, only_from=[Phase.PROVING], error=error[:500])
        if not moved:
            self.journal.move(task.id, Phase.SEEN, only_from=[Phase.SEEN], error=error[:500])

    async def _prove(self, task: Task) -> None:
        node = self.node
        try:
            await self._prove_task(task)
            self.faults.pop(task.id, None)
        except ChainError as exc:  # fetching or checking: the next round tries again
            log.warning("task waits for the chain", task_id=task.tag, error=str(exc))
            self._note(task, Phase.FETCHED, str(exc))
            await self._pause(task)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A task still SEEN has no fields to discard with: it is fetched again after
            # a pause, until it is fetched or its deadline fails it (`fail_overdue`).
            handed_back = node.journal.move(
                task.id,
                Phase.DISCARDING,
                only_from=[Phase.FETCHED, Phase.PROVING],
                error="the node crashed proving it",
            )
            if not handed_back:
                self._note(task, Phase.SEEN, repr(exc))
            what = "the task is handed back" if handed_back else "it is tried again"
            log.exception(f"proving crashed; {what}", task_id=task.tag)
            if not handed_back:
                await self._pause(task)
        finally:
            self.proving.pop(task.id, None)
            node.results.set()
            node.work.set()

    async def _prove_task(self, task: Task) -> None:
        node = self.node
        if task.phase == Phase.SEEN:
            record = await find_request(
                node.w3,
                node.deployment.marketplace,
                node.follower.decoder,
                task.id,
                from_block=node.deployment.deploy_block,
                to_block=task.assigned_block,
                window=node.follower.window,
            )
            if record is None:
                raise ChainError(f"no RequestCreated for task {task.tag} (yet)")
            self.journal.fetched(
                task.id, record.request, record.public_inputs, record.encrypted_secret
            )
            task = self.journal.get(task.id) or task
        prover = node.provers.get(task.market_id)
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
            budget = task.deadline - node.chain_now() - node.config.submit_margin
            if budget <= 0:
                self.journal.move(task.id, Phase.DISCARDING, error="no time left to prove")
                node.metrics.discards.labels("no time").inc()
                return
            if not self.journal.move(
                task.id, Phase.PROVING, only_from=[Phase.FETCHED], attempts=task.attempts + 1
            ):
                return
            started = time.monotonic()
            try:
                async with asyncio.timeout(budget):
                    result = await prover.prove_task(task, node.address)
            except (TimeoutError, ProverTimeout):
                log.warning("proof not ready in time; handing the task back", task_id=task.tag)
                self.journal.move(task.id, Phase.DISCARDING, error="the proof took too long")
                node.metrics.discards.labels("too slow").inc()
                return
            except VerdictRefused as exc:
                log.warning(
                    "an enclave refuses the verdict; handing the task back",
                    task_id=task.tag,
                    error=str(exc),
                )
                self.journal.move(task.id, Phase.DISCARDING, error=str(exc)[:500])
                node.metrics.discards.labels("refused").inc()
                return
            except ProverError as exc:
                node.metrics.prover_failures.inc()
                retry = task.attempts + 1 < MAX_ATTEMPTS
                log.warning("prover failed", task_id=task.tag, error=str(exc), retry=retry)
                await self._pause(task)
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
        node.metrics.proof_seconds.observe(seconds)
        proof = result.calldata()
        if not await self._verifies(task, proof):
            # Never sent, never retried: handing it back costs less than the slash waiting
            # for it, and frees the request for a generator whose artifacts are right.
            log.error(
                "the market's verifier rejects the prover's proof: handing the task back; "
                "check the prover's artifacts against the market (`kalypso generator fetch`)",
                task_id=task.tag,
            )
            node.metrics.failed.labels("proof").inc()
            self.journal.move(task.id, Phase.DISCARDING, error="the verifier rejected the proof")
            return
        self.journal.move(task.id, Phase.READY, proof=proof, proof_seconds=seconds)
        log.info("proof ready", task_id=task.tag, seconds=round(seconds, 3))

    def _context(self, task: Task) -> VerifyContext:
        """The verifier's context of a task whose request is fetched."""
        assert task.request is not None
        node = self.node
        return VerifyContext(
            node.deployment.chain_id,
            task.market_id,
            task.id,
            node.address,
            keccak(task.public_inputs),
            task.deadline - task.request.proof_time,
        )

    async def _verifies(self, task: Task, proof: bytes) -> bool:
        """The market's verifier accepts `proof` (an `eth_call`: no gas spent)."""
        verifier = self.node.w3.eth.contract(
            address=to_checksum_address(self.node.markets[task.market_id].verifier),
            abi=artifact("Groth16Verifier").abi,
        )
        call = verifier.functions.verify(self._context(task).as_tuple(), task.public_inputs, proof)
        try:
            return bool(await call.call())
        except ContractLogicError:
            return False
