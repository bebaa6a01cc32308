"""The prove stage: every phase ends, and faults wait longer each time (never a hot loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kalypso.errors import ChainError
from kalypso.generator import prove_stage
from kalypso.generator.journal import Phase, TaskJournal
from kalypso.generator.metrics import GeneratorMetrics
from kalypso.generator.prove_stage import ProveStage
from tests.unit.test_generator_parts import IDENTITY, apply, assign
from tests.unit.test_matcher_parts import Chain, rid


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[TaskJournal]:
    j = TaskJournal(tmp_path / "g.sqlite", IDENTITY)
    yield j
    j.close()


def stage(journal: TaskJournal, now: float) -> ProveStage:
    node: Any = SimpleNamespace(
        journal=journal,
        chain_now=lambda: now,
        submitter=SimpleNamespace(sending=set()),
        metrics=GeneratorMetrics(),
        config=SimpleNamespace(max_parallel_proofs=1),
        work=asyncio.Event(),
        results=asyncio.Event(),
    )
    return ProveStage(node)


def test_a_task_past_its_deadline_with_nothing_sent_fails_once(journal: TaskJournal) -> None:
    chain = Chain()
    apply(journal, *(assign(chain, i) for i in (1, 2, 3, 4)))  # deadlines 1_001 … 1_004
    journal.move(rid(2), Phase.READY, proof=b"p", error="could not send")
    s = stage(journal, now=1_002.5)
    s.proving[rid(1)] = object()  # type: ignore[assignment]  # a prover still at it
    s.node.submitter.sending.add(rid(3))  # its transaction is on its way
    s.fail_overdue()
    phases = {t.id: t.phase for t in journal.tasks()}
    assert phases == {rid(1): Phase.SEEN, rid(2): Phase.FAILED, rid(3): Phase.SEEN,
                      rid(4): Phase.SEEN}  # fmt: skip
    task = journal.get(rid(2))
    assert task is not None and task.error == "deadline passed while ready (could not send)"
    s.fail_overdue()
    assert s.node.metrics.failed.labels("deadline")._value.get() == 1


async def test_a_request_not_found_is_retried_with_a_growing_pause(
    journal: TaskJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = Chain()
    apply(journal, assign(chain, 1))
    s = stage(journal, now=0)
    s.node.deployment = SimpleNamespace(marketplace="0x", deploy_block=0)
    s.node.follower = SimpleNamespace(decoder=None, window=None)
    s.node.w3 = None

    async def not_found(*_: Any, **__: Any) -> None:
        raise ChainError("eth_getLogs gave up")

    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    monkeypatch.setattr(prove_stage, "find_request", not_found)
    monkeypatch.setattr(prove_stage.asyncio, "sleep", sleep)
    for _ in range(7):
        task = journal.get(rid(1))
        assert task is not None
        await s._prove(task)
    caps = [min(2**n, 30) for n in range(7)]  # 1, 2, 4 … 30 s, each with jitter
    assert all(cap / 2 <= p <= cap for p, cap in zip(pauses, caps, strict=True))
    task = journal.get(rid(1))
    assert task is not None and task.phase == Phase.SEEN
    assert task.error == "[K-RPC-001] eth_getLogs gave up"  # what `fail_overdue` reports
