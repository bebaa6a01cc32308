"""The submit stage's batching decisions, over a real journal and a stand-in node."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from kalypso.generator.journal import Phase, TaskJournal
from kalypso.generator.submitter import MAX_PROOF_BATCH, BlockClock, Submitter
from kalypso.market import Request
from tests.unit.test_generator_parts import IDENTITY, ME, apply
from tests.unit.test_matcher_parts import Chain, rid

MARKET = 2
REQUEST = Request(MARKET, ME, ME, 10, 60, 10**9, b"\x00" * 32, b"\x00" * 32)


@pytest.fixture
def journal(tmp_path: Path) -> TaskJournal:
    return TaskJournal(tmp_path / "g.sqlite", IDENTITY)


def node(journal: TaskJournal, *, window: float = 2.0, now: float = 1_000) -> Any:
    config = SimpleNamespace(batch_window=window, submit_margin=5.0, poll_interval=0.1)
    markets = {MARKET: SimpleNamespace(input_verifier="0x" + "11" * 20)}
    return SimpleNamespace(journal=journal, config=config, markets=markets, chain_now=lambda: now)


def tasks_in(journal: TaskJournal, chain: Chain, ready: int, proving: int) -> None:
    for i in range(1, ready + proving + 1):
        args = {"market_id": MARKET, "price": 5, "deadline": 2_000, "generator_secret": b""}
        apply(journal, chain.emit("TaskAssigned", task_id=rid(i), generator=ME, **args))
        journal.fetched(rid(i), REQUEST, b"inputs", b"")
        if i <= ready:
            journal.move(rid(i), Phase.READY, proof=b"p" * 256)
        else:
            journal.move(rid(i), Phase.PROVING)


def ticking_clock(gap: float) -> BlockClock:
    """A clock that saw blocks `gap` seconds apart, the last one just now."""
    clock = BlockClock()
    start = time.monotonic() - 4 * gap
    for n in range(5):
        clock.number, clock.seen_at = n, start + n * gap
        if n:
            clock.gaps.append(gap)
    clock.seen_at = time.monotonic()
    return clock


def test_the_clock_needs_a_few_blocks_then_predicts_the_next() -> None:
    clock = BlockClock()
    assert clock.next_in() is None
    for n in (1, 2, 3, 4):
        clock.saw(n)
    assert clock.next_in() is not None
    assert 0.9 < cast(float, ticking_clock(1.0).next_in()) <= 1.0


def test_ready_proofs_wait_for_the_others_of_their_market_until_the_block(
    journal: TaskJournal,
) -> None:
    tasks_in(journal, Chain(), ready=2, proving=1)
    submitter = Submitter(node(journal))
    submitter.clock = ticking_clock(1.0)
    ready = journal.tasks([Phase.READY])
    assert submitter.units(ready) == []  # held: a third is proving and the block is far
    submitter.held_until[MARKET] = time.monotonic() - 0.01  # the hold ran out
    (unit,) = submitter.units(ready)
    assert unit[0] == "proof" and {t.id for t in unit[1]} == {rid(1), rid(2)}


@pytest.mark.parametrize(
    ("proving", "window", "gap"),
    [(0, 2.0, 1.0), (1, 0.0, 1.0), (1, 2.0, 0.1)],
    ids=["nothing else proving", "window off", "block due now"],
)
def test_no_hold_when_it_gains_nothing(
    journal: TaskJournal, proving: int, window: float, gap: float
) -> None:
    tasks_in(journal, Chain(), ready=1, proving=proving)
    submitter = Submitter(node(journal, window=window))
    submitter.clock = ticking_clock(gap)
    (unit,) = submitter.units(journal.tasks([Phase.READY]))
    assert [t.id for t in unit[1]] == [rid(1)]


def test_no_hold_near_the_deadline_or_without_a_clock(journal: TaskJournal) -> None:
    tasks_in(journal, Chain(), ready=1, proving=1)
    late = Submitter(node(journal, now=1_996))  # 4 s left, below the submit margin
    late.clock = ticking_clock(1.0)
    assert len(late.units(journal.tasks([Phase.READY]))) == 1
    fresh = Submitter(node(journal))  # no blocks seen yet: nothing to time a hold by
    assert len(fresh.units(journal.tasks([Phase.READY]))) == 1


def test_a_full_batch_goes_at_once_and_large_ones_split(journal: TaskJournal) -> None:
    tasks_in(journal, Chain(), ready=MAX_PROOF_BATCH + 2, proving=1)
    submitter = Submitter(node(journal))
    submitter.clock = ticking_clock(1.0)
    units = submitter.units(journal.tasks([Phase.READY]))
    assert [len(tasks) for _, tasks in units] == [MAX_PROOF_BATCH, 2]


def test_verdicts_and_solo_proofs_go_alone(journal: TaskJournal) -> None:
    tasks_in(journal, Chain(), ready=3, proving=0)
    journal.move(rid(3), Phase.INVALID)
    submitter = Submitter(node(journal))
    submitter.solo.add(rid(2))
    units = submitter.units(journal.tasks([Phase.READY, Phase.INVALID]))
    sent = {(action, tuple(t.id for t in tasks)) for action, tasks in units}
    assert sent == {("invalid", (rid(3),)), ("proof", (rid(1),)), ("proof", (rid(2),))}
