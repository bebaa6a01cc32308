"""The generator's submit stage: settlement transactions for proofs, verdicts and hand-backs.

Proofs of one market go in one `submit_proofs` (one `verify_batch`: ~60-80k gas a proof
instead of ~220k alone). A node proves one task at a time, so under load proofs become
ready one after another; sending each at once would batch nothing. So while other tasks
of the same market are still being proven, a ready proof is held until just before the
next block is due (at most `batch_window` seconds): it could not be mined earlier
anyway. A batch the contract refuses is sent one by one; so are the proofs of a batch
that reverted once mined.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections import defaultdict, deque
from typing import TYPE_CHECKING, Any

from kalypso.errors import ChainError, ContractError, KalypsoError
from kalypso.generator.journal import Phase, Task
from kalypso.logs import get_logger

if TYPE_CHECKING:
    from kalypso.generator.daemon import GeneratorNode

log = get_logger("kalypso.generator")

#: `submit_proofs` takes at most this many proofs, each of at most BATCH_PROOF_BYTES
MAX_PROOF_BATCH = 16
BATCH_PROOF_BYTES = 256
#: what a settlement transaction does -> the phase it leaves when it does not land
RETRY_PHASE = {"proof": Phase.READY, "invalid": Phase.INVALID, "discard": Phase.DISCARDING}
#: a held batch is sent this long before the next block is due
SEND_AHEAD = 0.25
IN_PROGRESS = (Phase.SEEN, Phase.FETCHED, Phase.PROVING)

Unit = tuple[str, list[Task]]


class BlockClock:
    """When the next block is due, from when new heads were seen (no clock on the chain
    says it: a block's timestamp has one-second resolution)."""

    def __init__(self) -> None:
        self.gaps: deque[float] = deque(maxlen=8)
        self.number = 0
        self.seen_at = 0.0

    def saw(self, number: int) -> None:
        now = time.monotonic()
        if self.number and number > self.number:
            self.gaps.append((now - self.seen_at) / (number - self.number))
        if number > self.number:
            self.number, self.seen_at = number, now

    def next_in(self) -> float | None:
        """Seconds until the next block is due; None until a few blocks were seen."""
        if len(self.gaps) < 3:
            return None
        return max(0.0, self.seen_at + statistics.median(self.gaps) - time.monotonic())


class Submitter:
    def __init__(self, node: GeneratorNode) -> None:
        self.node = node
        self.journal = node.journal
        #: task ids in a settlement transaction being waited for
        self.sending: set[bytes] = set()
        self.waiters: set[asyncio.Task[None]] = set()
        #: tasks whose batch reverted once: they are sent alone from then on
        self.solo: set[bytes] = set()
        #: market -> monotonic time its held proofs go out
        self.held_until: dict[int, float] = {}
        self.clock = BlockClock()

    async def run(self, stop: asyncio.Event) -> None:
        node = self.node
        while not stop.is_set():
            node.results.clear()
            ready = [
                t
                for t in self.journal.tasks([Phase.READY, Phase.INVALID, Phase.DISCARDING])
                if t.id not in self.sending
            ]
            for unit in self.units(ready):
                await self.send(unit)
            wake = node.config.poll_interval
            if self.held_until:
                wake = min(wake, max(0.01, min(self.held_until.values()) - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(node.results.wait(), wake)

    def cancel(self) -> list[asyncio.Task[None]]:
        for waiter in self.waiters:
            waiter.cancel()
        return list(self.waiters)

    # ---- what to send

    def units(self, tasks: list[Task]) -> list[Unit]:
        """Settlement transactions: proofs batched per market, the rest one by one."""
        batches: dict[int, list[Task]] = defaultdict(list)
        units: list[Unit] = []
        for task in tasks:
            if task.phase == Phase.READY:
                batchable = task.proof is not None and len(task.proof) <= BATCH_PROOF_BYTES
                if batchable and task.id not in self.solo:
                    batches[task.market_id].append(task)
                else:
                    units.append(("proof", [task]))
            elif task.phase == Phase.INVALID:
                # evidence: an enclave's attestation, kept where a ready proof would be
                shown = task.proof or self.node.markets[task.market_id].input_verifier
                units.append(("invalid" if shown else "discard", [task]))
            else:
                units.append(("discard", [task]))
        for market_id, batch in batches.items():
            if self._hold(market_id, batch):
                continue
            for i in range(0, len(batch), MAX_PROOF_BATCH):
                units.append(("proof", batch[i : i + MAX_PROOF_BATCH]))
        return units

    def _hold(self, market_id: int, ready: list[Task]) -> bool:
        """Hold a market's ready proofs for the batch, while that is free (see above)."""
        now = time.monotonic()
        if market_id not in self.held_until:
            proving = [t for t in self.journal.tasks(IN_PROGRESS) if t.market_id == market_id]
            next_in = self.clock.next_in()
            window = self.node.config.batch_window
            if not proving or next_in is None or len(ready) >= MAX_PROOF_BATCH or window <= 0:
                return False
            slack = min(t.deadline for t in ready) - self.node.chain_now()
            hold = min(next_in - SEND_AHEAD, window, slack - self.node.config.submit_margin)
            if hold <= 0:
                return False
            self.held_until[market_id] = now + hold
        if now < self.held_until[market_id]:
            return True
        del self.held_until[market_id]
        return False

    def _call(self, action: str, tasks: list[Task]) -> Any:
        functions = self.node.marketplace.functions
        items = [
            (t.id, t.request.as_tuple() if t.request else None, t.public_inputs, t.proof)
            for t in tasks
        ]
        if action == "proof" and len(items) > 1:
            return functions.submit_proofs(items)
        task_id, request, inputs, proof = items[0]
        if action == "proof":
            return functions.submit_proof(task_id, request, inputs, proof)
        if action == "invalid":
            return functions.submit_invalid_inputs(task_id, request, inputs, proof or b"")
        return functions.discard(task_id, request)

    # ---- sending

    async def send(self, unit: Unit) -> None:
        action, tasks = unit
        ids = [t.id for t in tasks]

        async def sent(tx: Any) -> None:
            self.journal.record_sent(ids, tx, action)

        try:
            pending = await self.node.sender.submit(self._call(action, tasks), on_sent=sent)
        except ContractError as exc:
            if len(tasks) > 1:
                log.warning("batch would revert; sending one by one", reason=exc.reason)
                for task in tasks:
                    await self.send((action, [task]))
                return
            self._refused(action, tasks[0], exc)
            return
        except ChainError as exc:
            log.warning("could not send; will retry", action=action, error=str(exc))
            return
        self.sending.update(ids)
        waiter = asyncio.create_task(self._wait(action, tasks, pending))
        self.waiters.add(waiter)
        waiter.add_done_callback(self.waiters.discard)

    async def _wait(self, action: str, tasks: list[Task], pending: Any) -> None:
        ids = [t.id for t in tasks]
        try:
            receipt = await self.node.sender.wait(pending)
        except ContractError as exc:  # reverted on-chain: raced by a settlement or deadline
            log.warning("settlement reverted", action=action, tasks=len(tasks), error=str(exc))
            if len(tasks) > 1:
                self.solo.update(ids)  # one bad item sinks a batch: find it alone
            for task in tasks:
                self.journal.move(task.id, RETRY_PHASE[action], only_from=[Phase.SUBMITTED])
        except KalypsoError as exc:  # dropped, or the node failed: send again
            log.warning("settlement not mined; will resend", action=action, error=str(exc))
            for task in tasks:
                self.journal.move(task.id, RETRY_PHASE[action], only_from=[Phase.SUBMITTED])
        else:
            fee = int(receipt["gasUsed"]) * int(receipt.get("effectiveGasPrice", 0))
            self.journal.add_gas(ids, fee)
            log.info(
                "settlement mined",
                action=action,
                tasks=len(tasks),
                gas=int(receipt["gasUsed"]),
                block=int(receipt["blockNumber"]),
            )
        finally:
            self.sending.difference_update(ids)
            self.node.results.set()

    def _refused(self, action: str, task: Task, exc: ContractError) -> None:
        """A settlement the contract refuses before anything is sent: never a retry loop."""
        log.error(
            "settlement refused by the contract", task_id=task.tag, action=action, reason=exc.reason
        )
        if action == "invalid":  # the input verifier disagrees: hand the task back
            error = f"invalid-inputs claim: {exc.reason}"
            self.journal.move(task.id, Phase.DISCARDING, error=error)
        else:
            self.journal.move(task.id, Phase.FAILED, error=exc.reason)
            self.node.metrics.failed.labels(action).inc()
