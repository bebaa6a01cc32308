"""The generator's task journal in SQLite: every task it owns, in which phase, and what
it earned and spent.

Phases: seen → fetched → proving → ready (a proof), invalid (a verdict) or
discarding (to be handed back) → submitted (a settlement transaction in flight) →
confirmed, invalid_claimed or discarded; slashed (deadline missed) or failed (the
contract refused the settlement: never retried) otherwise. The settlement phases come
only from the contract's events, written in the same transaction as the follower's
cursor, so a crash never loses a task or settles one twice. Proofs are journaled
before they are sent; private inputs never are.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from kalypso.chain import FollowerState, LogBatch
from kalypso.chain.journal import Journal
from kalypso.chain.sender import SentTx
from kalypso.market import Request


class Phase(StrEnum):
    SEEN = "seen"
    FETCHED = "fetched"
    PROVING = "proving"
    READY = "ready"
    INVALID = "invalid"
    DISCARDING = "discarding"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    INVALID_CLAIMED = "invalid_claimed"
    DISCARDED = "discarded"
    SLASHED = "slashed"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in FINAL


FINAL = frozenset(
    {Phase.CONFIRMED, Phase.INVALID_CLAIMED, Phase.DISCARDED, Phase.SLASHED, Phase.FAILED}
)
#: The event that settles a task, and the phase it leaves the task in.
SETTLED_BY = {
    "ProofSubmitted": Phase.CONFIRMED,
    "InvalidInputsProven": Phase.INVALID_CLAIMED,
    "TaskDiscarded": Phase.DISCARDED,
    "TaskSlashed": Phase.SLASHED,
}

# Amounts are TEXT: token amounts reach 2^96, beyond SQLite's 64-bit integers.
SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id BLOB PRIMARY KEY, market_id INTEGER NOT NULL, phase TEXT NOT NULL,
    price TEXT NOT NULL, deadline INTEGER NOT NULL, assigned_block INTEGER NOT NULL,
    generator_secret BLOB NOT NULL, request TEXT, public_inputs BLOB, encrypted_secret BLOB,
    proof BLOB, action TEXT, tx_hashes TEXT NOT NULL DEFAULT '[]', settled_block INTEGER,
    payment TEXT NOT NULL DEFAULT '0', penalty TEXT NOT NULL DEFAULT '0',
    gas_cost TEXT NOT NULL DEFAULT '0', attempts INTEGER NOT NULL DEFAULT 0,
    proof_seconds REAL, error TEXT, updated_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS tasks_phase ON tasks (phase);
CREATE TABLE IF NOT EXISTS spending (at REAL NOT NULL, what TEXT NOT NULL, wei TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Task:
    """A task of this generator as the journal holds it."""

    id: bytes
    market_id: int
    phase: Phase
    price: int
    deadline: int
    assigned_block: int
    generator_secret: bytes
    request: Request | None = None
    public_inputs: bytes = b""
    encrypted_secret: bytes = b""
    proof: bytes | None = None
    #: what the transaction in flight does: "proof", "invalid" or "discard"
    action: str | None = None
    tx_hashes: list[bytes] = field(default_factory=list)
    payment: int = 0
    penalty: int = 0
    gas_cost: int = 0
    attempts: int = 0
    proof_seconds: float | None = None
    error: str | None = None

    @property
    def tag(self) -> str:
        return "0x" + self.id.hex()


@dataclass(frozen=True)
class Totals:
    """What the journal says the node earned and spent (token base units and wei)."""

    revenue: int
    penalties: int
    gas_wei: int
    by_phase: dict[str, int]


def _request_json(request: Request) -> str:
    return json.dumps([v.hex() if isinstance(v, bytes) else v for v in request.as_tuple()])


def _request_from(text: str) -> Request:
    market, requester, refund, max_price, proof_time, expiry, inputs, secret = json.loads(text)
    return Request(
        market, requester, refund, max_price, proof_time, expiry,
        bytes.fromhex(inputs), bytes.fromhex(secret),
    )  # fmt: skip


_COLUMNS = (
    "task_id, market_id, phase, price, deadline, assigned_block, generator_secret, request, "
    "public_inputs, encrypted_secret, proof, action, tx_hashes, payment, penalty, gas_cost, "
    "attempts, proof_seconds, error"
)


def _task(row: tuple[Any, ...]) -> Task:
    (task_id, market_id, phase, price, deadline, block, secret, request, inputs, sealed,
     proof, action, hashes, payment, penalty, gas, attempts, seconds, error) = row  # fmt: skip
    return Task(
        id=bytes(task_id),
        market_id=market_id,
        phase=Phase(phase),
        price=int(price),
        deadline=deadline,
        assigned_block=block,
        generator_secret=bytes(secret),
        request=_request_from(request) if request else None,
        public_inputs=bytes(inputs or b""),
        encrypted_secret=bytes(sealed or b""),
        proof=bytes(proof) if proof is not None else None,
        action=action,
        tx_hashes=[bytes.fromhex(h) for h in json.loads(hashes)],
        payment=int(payment),
        penalty=int(penalty),
        gas_cost=int(gas),
        attempts=attempts,
        proof_seconds=seconds,
        error=error,
    )


class TaskJournal(Journal):
    """One SQLite file per generator key and deployment."""

    def __init__(self, path: Path, identity: dict[str, Any]) -> None:
        super().__init__(path, identity, SCHEMA, "generator")

    # ---- followed events

    def apply(self, batch: LogBatch, state: FollowerState, generator: str) -> list[bytes]:
        """Record a batch of this generator's events and the cursor after it, atomically.

        Returns the ids of the tasks it newly assigned or settled.
        """
        touched: list[bytes] = []
        with self.transaction():
            for event in batch.events:
                if event.args.get("generator") != generator:
                    continue
                task_id = bytes(event["task_id"])
                if event.name == "TaskAssigned":
                    changed = self.db.execute(
                        "INSERT OR IGNORE INTO tasks (task_id, market_id, phase, price, deadline,"
                        " assigned_block, generator_secret, updated_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            task_id,
                            event["market_id"],
                            Phase.SEEN.value,
                            str(event["price"]),
                            event["deadline"],
                            event.block_number,
                            bytes(event["generator_secret"]),
                            time.time(),
                        ),
                    )
                elif event.name in SETTLED_BY:
                    # a row assigned before the journal began (a fresh state file) is absent
                    changed = self.db.execute(
                        "UPDATE tasks SET phase = ?, settled_block = ?, payment = ?,"
                        " penalty = ?, updated_at = ? WHERE task_id = ?"
                        " AND settled_block IS NOT ?",
                        (
                            SETTLED_BY[event.name].value,
                            event.block_number,
                            str(event.args.get("payment", 0)),
                            str(event.args.get("penalty", 0)),
                            time.time(),
                            task_id,
                            event.block_number,
                        ),
                    )
                else:
                    continue
                if changed.rowcount:  # an event read again (after a restart) changes nothing
                    touched.append(task_id)
            self.save_state(state)
        return touched

    def rollback(self, to_block: int, state: FollowerState) -> None:
        """Undo what blocks after `to_block` did: their assignments are gone, their
        settlements are waited for again."""
        with self.transaction():
            self.db.execute("DELETE FROM tasks WHERE assigned_block > ?", (to_block,))
            self.db.execute(
                "UPDATE tasks SET phase = ?, settled_block = NULL, payment = '0', penalty = '0'"
                " WHERE settled_block > ?",
                (Phase.SUBMITTED.value, to_block),
            )
            self.save_state(state)

    # ---- tasks

    def get(self, task_id: bytes) -> Task | None:
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM tasks WHERE task_id = ?", (task_id,)
        ).fetchone()
        return _task(row) if row else None

    def tasks(self, phases: Iterable[Phase] | None = None, limit: int | None = None) -> list[Task]:
        """Tasks in `phases` (default: every phase), soonest deadline first."""
        query = f"SELECT {_COLUMNS} FROM tasks"
        args: list[Any] = []
        if phases is not None:
            wanted = [p.value for p in phases]
            query += f" WHERE phase IN ({', '.join('?' * len(wanted))})"
            args.extend(wanted)
        query += " ORDER BY deadline, task_id"
        if limit is not None:
            query += " LIMIT ?"
            args.append(limit)
        return [_task(row) for row in self.db.execute(query, args)]

    def live(self) -> list[Task]:
        return self.tasks([p for p in Phase if not p.is_final])

    def fetched(self, task_id: bytes, request: Request, inputs: bytes, secret: bytes) -> None:
        self.db.execute(
            "UPDATE tasks SET phase = ?, request = ?, public_inputs = ?, encrypted_secret = ?,"
            " updated_at = ? WHERE task_id = ? AND phase = ?",
            (
                Phase.FETCHED.value,
                _request_json(request),
                inputs,
                secret,
                time.time(),
                task_id,
                Phase.SEEN.value,
            ),
        )

    def move(
        self, task_id: bytes, phase: Phase, *, only_from: Iterable[Phase] = (), **values: Any
    ) -> bool:
        """Set a live task's phase (and `values`: proof, action, error, proof_seconds,
        attempts); False when it is settled meanwhile or not in `only_from`."""
        sets = ", ".join(f"{name} = ?" for name in ["phase", *values, "updated_at"])
        final = [p.value for p in FINAL]
        marks = ", ".join("?" * len(final))
        query = f"UPDATE tasks SET {sets} WHERE task_id = ? AND phase NOT IN ({marks})"
        args: list[Any] = [phase.value, *values.values(), time.time(), task_id, *final]
        allowed = [p.value for p in only_from]
        if allowed:
            query += f" AND phase IN ({', '.join('?' * len(allowed))})"
            args.extend(allowed)
        return self.db.execute(query, args).rowcount == 1

    def record_sent(self, task_ids: Iterable[bytes], tx: SentTx, action: str) -> None:
        """A settlement transaction the node accepted (and every fee bump of it)."""
        with self.transaction():
            for task_id in task_ids:
                row = self.db.execute(
                    "SELECT tx_hashes FROM tasks WHERE task_id = ?", (task_id,)
                ).fetchone()
                hashes = json.loads(row[0]) if row else []
                hashes.append(tx.hash.hex())
                self.db.execute(
                    "UPDATE tasks SET phase = CASE WHEN phase IN (?, ?, ?, ?, ?) THEN phase"
                    " ELSE ? END, action = ?, tx_hashes = ?, updated_at = ? WHERE task_id = ?",
                    (*[p.value for p in FINAL], Phase.SUBMITTED.value, action,
                     json.dumps(hashes), time.time(), task_id),
                )  # fmt: skip

    def add_gas(self, task_ids: list[bytes], wei: int) -> None:
        """Charge a mined transaction's fee to its tasks, split evenly."""
        share, rest = divmod(wei, max(1, len(task_ids)))
        with self.transaction():
            for i, task_id in enumerate(task_ids):
                row = self.db.execute(
                    "SELECT gas_cost FROM tasks WHERE task_id = ?", (task_id,)
                ).fetchone()
                if row is not None:
                    total = int(row[0]) + share + (rest if i == 0 else 0)
                    self.db.execute(
                        "UPDATE tasks SET gas_cost = ? WHERE task_id = ?", (str(total), task_id)
                    )

    def add_spending(self, what: str, wei: int) -> None:
        """Gas spent outside tasks (registering, joining markets)."""
        self.db.execute("INSERT INTO spending VALUES (?, ?, ?)", (time.time(), what, str(wei)))

    def totals(self) -> Totals:
        revenue = penalties = gas = 0
        phases: dict[str, int] = {}
        for phase, payment, penalty, cost in self.db.execute(
            "SELECT phase, payment, penalty, gas_cost FROM tasks"
        ):
            revenue, penalties, gas = (
                revenue + int(payment),
                penalties + int(penalty),
                gas + int(cost),
            )
            phases[phase] = phases.get(phase, 0) + 1
        gas += sum(int(wei) for (wei,) in self.db.execute("SELECT wei FROM spending"))
        return Totals(revenue, penalties, gas, phases)

    # ---- operator switches

    @property
    def paused(self) -> bool:
        return self.get_meta("paused") == "1"

    def set_paused(self, paused: bool) -> None:
        self.set_meta("paused", "1" if paused else "0")
