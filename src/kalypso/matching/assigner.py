"""The matcher's assign stage: the book's matches → `assign_batch` transactions.

Matches go out in batches of up to `batch_size`, up to `MAX_INFLIGHT` transactions at
once; each batch's matches stay reserved in the book until its events are followed,
and go back to the book if its transaction fails. A mined batch stays in the journal
until the follower has passed its block, so a restart never matches its requests again.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from eth_utils import event_abi_to_log_topic

from kalypso.chain.sender import PendingTx, SentTx
from kalypso.contracts import artifact
from kalypso.errors import ChainError, KalypsoError, MatcherKeyError
from kalypso.logs import get_logger
from kalypso.matching import Match
from kalypso.matching.model import NO_LIVE_KEY

if TYPE_CHECKING:
    from kalypso.matching.daemon import Matcher

log = get_logger("kalypso.matcher")

#: Assignment transactions in flight at once under a burst.
MAX_INFLIGHT = 16
#: Gas of an assignment batch beyond its items (21,000 base, call overhead).
BATCH_GAS_BASE = 40_000
#: Batches smaller than this do not teach the gas per item (fixed costs dominate).
LEARN_FROM_ITEMS = 4
UNUSABLE_KEY = "matching: unusable encryption key"
#: Seconds by which the block that mines an assignment may follow the head we saw.
KEY_MARGIN = 60
#: What the marketplace reverts with when the sender may not assign.
NOT_AN_ENGINE = "requests: not a matching engine"
ASSIGNED = event_abi_to_log_topic(
    next(e for e in artifact("ProofMarketplace").abi if e.get("name") == "TaskAssigned")  # type: ignore[arg-type]
)


class Assigner:
    def __init__(self, matcher: Matcher) -> None:
        self.m = matcher
        #: set when the book may have new matches (new events, a batch settled)
        self.progress = asyncio.Event()
        self.inflight: set[asyncio.Task[None]] = set()
        #: no matching until the follower has passed this block (the last run's batches)
        self.hold_until = -1
        #: bumped when a reorg rebuilds the book: older in-flight batches leave it alone
        self._epoch = 0
        #: nonce -> block of our mined batches whose events are not followed yet
        self._unfollowed: dict[int, int] = {}
        #: matches reserved in the book, waiting one round to fill a batch (see `_round`)
        self._held: list[Match] = []
        #: the most gas an assignment took in a receipt (see `_gas_for`)
        self._gas_per_item: int | None = None

    def book_rebuilt(self) -> None:
        """A reorg replaced the book. Batches in flight belong to the old one; their
        requests may be matched again (the contract skips a duplicate): rare, and it
        costs only gas."""
        self._epoch += 1
        self._held = []

    def followed(self, next_block: int) -> None:
        """The follower reached `next_block`: mined batches below it leave the journal."""
        for nonce, block in list(self._unfollowed.items()):
            if block < next_block:
                self.m.store.resolved(nonce)
                del self._unfollowed[nonce]

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._wait_progress(stop)
            await self.m.update_head()
            await self._round()

    async def _round(self) -> None:
        """Send what the book matches now, in full batches.

        Under a burst (this round fills at least one batch) a partial last batch waits
        one round, reserved, to fill up with the next block's requests; it then goes
        out whatever its size, so no request waits more than one extra block.
        """
        if self.m.state.next_block <= self.hold_until:
            return  # the last run's assignments are not followed yet (see `Matcher.recover`)
        size = self.m.config.batch_size
        held, self._held = self._held, []
        room = size * max(0, MAX_INFLIGHT - len(self.inflight)) - len(held)
        fresh = self.m.view.book.match(self.m.head_time + 1, room) if room > 0 else []
        for request_id, _ in self.m.view.book.take_expired():
            self.m.metrics.expired.inc()
            log.info("request expired unassigned", request_id=request_id)
        pool = held + fresh
        batches = [pool[i : i + size] for i in range(0, len(pool), size)]
        if len(batches) > 1 and len(batches[-1]) < size and not held:
            self._held = batches.pop()
        await asyncio.gather(*(self._send_batch(batch) for batch in batches))

    async def _send_batch(self, matches: list[Match]) -> None:
        epoch = self._epoch
        try:
            items = await self._items(matches)
        except ChainError as exc:  # the enclave is unreachable: not the generators' fault
            self._failed(matches, exc, epoch)
            raise
        matches = [m for m in matches if m.request_id in items]
        if not matches:
            return
        ids = [m.request_id for m in matches]

        async def record(tx: SentTx) -> None:
            self.m.store.record_sent(tx, ids)

        try:
            call = self.m.marketplace.functions.assign_batch(list(items.values()))
            pending = await self.m.sender.submit(
                call, gas=self._gas_for(len(matches)), on_sent=record
            )
        except Exception as exc:  # any failure hands the matches back to the book
            self._failed(matches, exc, epoch)
            if NOT_AN_ENGINE in str(exc):
                await self.m.confirm_authorized()
            if isinstance(exc, ChainError):
                raise
            return
        log.info("assignments sent", count=len(matches), nonce=pending.nonce)
        task = asyncio.create_task(self._confirm(pending, matches, epoch))
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)

    def _gas_for(self, items: int) -> int | None:
        """A gas limit for an assignment batch without simulating it, once one was measured.

        Simulating every batch (`eth_estimateGas`) costs a round trip per batch on the
        critical path of a burst; an assignment's gas barely varies, so the highest gas
        per item seen in receipts, with a margin, bounds the next batches. None (estimate)
        until a receipt has been seen, and again after any failed batch.
        """
        if self._gas_per_item is None:
            return None
        return BATCH_GAS_BASE + items * self._gas_per_item * 3 // 2

    async def _confirm(self, pending: PendingTx, matches: list[Match], epoch: int) -> None:
        """Wait for a batch's receipt. Cancelled (shutdown), it stays in the journal for the
        next start to settle; mined, it stays there until the follower has passed its
        block (its outcome reaches the book through the events); failed, its matches go
        back to the book here."""
        try:
            receipt = await self.m.sender.wait(pending)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(matches, exc, epoch)
            self.m.store.resolved(pending.nonce)
            if NOT_AN_ENGINE in str(exc):
                with contextlib.suppress(MatcherKeyError):  # the follow stage raises it
                    await self.m.confirm_authorized()
        else:
            assigned = sum(1 for log in receipt["logs"] if bytes(log["topics"][0]) == ASSIGNED)
            if assigned == len(matches) >= LEARN_FROM_ITEMS:
                per_item = max(0, int(receipt["gasUsed"]) - BATCH_GAS_BASE) // len(matches)
                self._gas_per_item = max(self._gas_per_item or 0, per_item)
            self.m.metrics.matches.inc(assigned)
            self.m.metrics.batch_size.observe(len(matches))
            # Out of the journal only once its events are followed (see `followed`).
            self._unfollowed[pending.nonce] = int(receipt["blockNumber"])
        self.progress.set()

    def _failed(self, matches: list[Match], exc: Exception, epoch: int) -> None:
        self._gas_per_item = None  # perhaps out of gas: simulate the next batches again
        self.m.metrics.tx_failures.inc()
        if epoch == self._epoch:  # after a reorg the book no longer holds these
            self.m.view.book.assignment_failed([m.request_id for m in matches])
        log.warning("assignment transaction failed", count=len(matches), error=str(exc))

    async def _items(self, matches: list[Match]) -> dict[bytes, tuple[Any, ...]]:
        """The `assign_batch` items, by request id. A private request carries the key
        envelope that lets the chosen generator open its secret (the content key
        re-wrapped to the generator's key for this market; the secret itself is never
        decrypted here). A match whose generator key cannot take a wrap goes back to the
        book, not offered to that generator again, instead of failing the batch. The
        re-wrap runs in a thread: an enclave answers over HTTP and reads the chain."""
        items: dict[bytes, tuple[Any, ...]] = {}
        for m in matches:
            secret = self.m.view.secrets.get(m.request_id)
            wrapped = b""
            if secret and not self._key_lives(m):
                log.info("offer key expires before the deadline", generator=m.generator)
                self.m.view.book.assign_skipped(m.request_id, m.generator, NO_LIVE_KEY)
                continue
            if secret:
                assert self.m.keeper is not None  # the book only holds ones it can open
                context = self.m.secret_context(m.request_id)
                try:
                    wrapped = await asyncio.to_thread(
                        self.m.keeper.rewrap,
                        context,
                        m.request,
                        secret,
                        m.generator,
                        m.encryption_key,
                    )
                except ChainError:
                    raise
                except KalypsoError as exc:
                    log.warning(
                        "cannot wrap to the generator", generator=m.generator, error=str(exc)
                    )
                    self.m.view.book.assign_skipped(m.request_id, m.generator, UNUSABLE_KEY)
                    continue
            items[m.request_id] = (
                m.request_id,
                m.request.as_tuple(),
                m.generator,
                m.price,
                wrapped,
            )
        return items

    def _key_lives(self, m: Match) -> bool:
        """As the contract assigns: a private task's offer key is a Generator Image key
        valid until the deadline, counted from a block a little later than the head."""
        until = self.m.view.key_valid_until(m.request.market_id, m.encryption_key)
        deadline = self.m.head_time + KEY_MARGIN + m.request.proof_time
        return until is None or until >= deadline

    async def _wait_progress(self, stop: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.progress.wait(), self.m.config.poll_interval)
        self.progress.clear()
