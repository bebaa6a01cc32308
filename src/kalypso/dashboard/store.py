"""The dashboard's SQLite cache: every followed event with its block time, and the tables
the pages read (markets, requests, generators), derived from the events.

The derived tables are a pure function of the event table: a reorg deletes the undone
events and derives them again. Amounts are uint256, wider than SQLite's integers, so
they are stored as decimal text and summed in Python.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kalypso.chain import FollowerState
from kalypso.chain.journal import Journal
from kalypso.market.events import DecodedEvent
from kalypso.matching.store import decode_event, encode_event

#: Room for log indexes within a block in an event's sequence number (as the matcher).
SEQ_PER_BLOCK = 1_000_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY, block INTEGER NOT NULL, log_index INTEGER NOT NULL,
    time INTEGER NOT NULL, name TEXT NOT NULL, tx TEXT NOT NULL,
    subject TEXT, market_id INTEGER, account TEXT, event TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_subject ON events (subject, seq);
CREATE INDEX IF NOT EXISTS events_account ON events (account, seq);
CREATE TABLE IF NOT EXISTS markets (
    id INTEGER PRIMARY KEY, creator TEXT NOT NULL, verifier TEXT NOT NULL,
    input_verifier TEXT NOT NULL, penalty TEXT NOT NULL, generator_image TEXT NOT NULL,
    input_verification_image TEXT NOT NULL, proof_verification_image TEXT NOT NULL,
    metadata BLOB NOT NULL, created_at INTEGER NOT NULL, tx TEXT NOT NULL,
    request_kinds INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, market_id INTEGER NOT NULL,
    requester TEXT NOT NULL, refund_address TEXT NOT NULL, max_price TEXT NOT NULL,
    proof_time INTEGER NOT NULL, expiry INTEGER NOT NULL, public_inputs BLOB NOT NULL,
    private INTEGER NOT NULL, created_at INTEGER NOT NULL, state TEXT NOT NULL,
    generator TEXT, price TEXT, deadline INTEGER, assigned_at INTEGER,
    finished_at INTEGER, payment TEXT, refund TEXT, penalty TEXT);
CREATE INDEX IF NOT EXISTS requests_market ON requests (market_id, seq);
CREATE INDEX IF NOT EXISTS requests_generator ON requests (generator, seq);
CREATE INDEX IF NOT EXISTS requests_requester ON requests (requester, seq);
CREATE TABLE IF NOT EXISTS generators (
    address TEXT PRIMARY KEY, registered_at INTEGER NOT NULL, reward_address TEXT NOT NULL);
"""

#: The largest integer SQLite stores; a larger id or cursor matches nothing.
SQLITE_MAX = 2**63 - 1

#: Request states as the pages name them.
OPEN, ASSIGNED, FULFILLED, INVALID, CANCELLED, EXPIRED, SLASHED = (
    "open",
    "assigned",
    "fulfilled",
    "invalid inputs",
    "cancelled",
    "expired",
    "slashed",
)

#: event name -> the state it ends a request in, and its amount columns
_ENDINGS = {
    "ProofSubmitted": (FULFILLED, ("payment", "refund")),
    "InvalidInputsProven": (INVALID, ("payment", "refund")),
    "RequestCancelled": (CANCELLED, ("refund",)),
    "RequestExpired": (EXPIRED, ("refund",)),
    "TaskSlashed": (SLASHED, ("penalty", "refund")),
}


def hex0x(value: bytes) -> str:
    return "0x" + value.hex()


def seq_of(event: DecodedEvent) -> int:
    return event.block_number * SEQ_PER_BLOCK + event.log_index


def _subject(event: DecodedEvent) -> str | None:
    """The request (task ids are request ids) an event is about."""
    for key in ("request_id", "task_id"):
        if key in event.args:
            return hex0x(event[key])
    return None


def account_of(event: DecodedEvent) -> str | None:
    """The account an event is about (its generator, requester, depositor or creator)."""
    for key in ("generator", "requester", "account", "creator"):
        if key in event.args:
            return str(event[key])
    return None


@dataclass(frozen=True)
class EventRow:
    """One followed event as the pages show it."""

    seq: int
    time: int
    event: DecodedEvent

    @property
    def name(self) -> str:
        return self.event.name

    @property
    def subject(self) -> str | None:
        return _subject(self.event)

    @property
    def account(self) -> str | None:
        return account_of(self.event)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> EventRow:
        """From the columns (seq, time, block, log_index, event)."""
        seq, time, block, log_index, text = row
        return cls(seq, time, decode_event(block, log_index, text))


class DashboardStore(Journal):
    """One SQLite file per deployment; any number of readers, one writer (the indexer)."""

    def __init__(self, path: Path, identity: dict[str, Any]) -> None:
        super().__init__(path, identity, SCHEMA, "dashboard", check_same_thread=False)
        self.db.row_factory = sqlite3.Row

    # ---- writing

    def append(
        self, events: Sequence[DecodedEvent], times: dict[int, int], state: FollowerState
    ) -> None:
        """Record a batch's events (`times`: block -> timestamp), derive the tables, and
        save the cursor after it, atomically."""
        with self.transaction():
            for event in events:
                self._record(event, times[event.block_number])
            self.save_state(state)

    def rollback(self, to_block: int, state: FollowerState) -> None:
        """Undo the blocks above `to_block` and derive the tables again."""
        with self.transaction():
            self.db.execute("DELETE FROM events WHERE block > ?", (to_block,))
            for table in ("markets", "requests", "generators"):
                self.db.execute(f"DELETE FROM {table}")
            for row in self.events():
                self._derive(row.event, row.time)
            self.save_state(state)

    def _record(self, event: DecodedEvent, time: int) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                seq_of(event),
                event.block_number,
                event.log_index,
                time,
                event.name,
                hex0x(event.transaction_hash),
                _subject(event),
                event.args.get("market_id"),
                account_of(event),
                encode_event(event),
            ),
        )
        self._derive(event, time)

    def _derive(self, e: DecodedEvent, time: int) -> None:
        db, name = self.db, e.name
        if name == "MarketCreated":
            db.execute(
                "INSERT OR REPLACE INTO markets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    e["market_id"],
                    e["creator"],
                    e["verifier"],
                    e["input_verifier"],
                    str(e["slashing_penalty"]),
                    hex0x(e["generator_image"]),
                    hex0x(e["input_verification_image"]),
                    hex0x(e["proof_verification_image"]),
                    e["metadata"],
                    time,
                    hex0x(e.transaction_hash),
                    e["request_kinds"],
                ),
            )
        elif name == "RequestCreated":
            db.execute(
                "INSERT OR REPLACE INTO requests (id, seq, market_id, requester, refund_address,"
                " max_price, proof_time, expiry, public_inputs, private, created_at, state)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    hex0x(e["request_id"]),
                    seq_of(e),
                    e["market_id"],
                    e["requester"],
                    e["refund_address"],
                    str(e["max_price"]),
                    e["proof_time"],
                    e["expiry"],
                    e["public_inputs"],
                    int(bool(e["encrypted_secret"])),
                    time,
                    OPEN,
                ),
            )
        elif name == "MaxPriceIncreased":
            db.execute(
                "UPDATE requests SET max_price = ? WHERE id = ?",
                (str(e["max_price"]), hex0x(e["request_id"])),
            )
        elif name == "TaskAssigned":
            db.execute(
                "UPDATE requests SET state = ?, generator = ?, price = ?, deadline = ?,"
                " assigned_at = ? WHERE id = ?",
                (ASSIGNED, e["generator"], str(e["price"]), e["deadline"], time, _subject(e)),
            )
        elif name == "TaskDiscarded":  # the request is open again
            db.execute(
                "UPDATE requests SET state = ?, generator = NULL, price = NULL, deadline = NULL,"
                " assigned_at = NULL WHERE id = ?",
                (OPEN, _subject(e)),
            )
        elif name in _ENDINGS:
            state, amounts = _ENDINGS[name]
            columns = "".join(f", {column} = ?" for column in amounts)
            db.execute(
                f"UPDATE requests SET state = ?, finished_at = ?{columns} WHERE id = ?",
                (state, time, *(str(e[column]) for column in amounts), _subject(e)),
            )
        elif name == "GeneratorRegistered":
            db.execute(
                "INSERT OR REPLACE INTO generators VALUES (?, ?, ?)",
                (e["generator"], time, e["reward_address"]),
            )
        elif name == "RewardAddressChanged":
            db.execute(
                "UPDATE generators SET reward_address = ? WHERE address = ?",
                (e["reward_address"], e["generator"]),
            )

    # ---- reading

    def events(self, after: int = -1) -> Iterator[EventRow]:
        """Every event after sequence number `after`, oldest first."""
        rows = self.db.execute(
            "SELECT seq, time, block, log_index, event FROM events WHERE seq > ? ORDER BY seq",
            (after,),
        )
        for row in rows:
            yield EventRow.from_row(row)

    def _event_rows(self, query: str, args: Iterable[Any]) -> list[EventRow]:
        return [EventRow.from_row(r) for r in self.db.execute(query, tuple(args))]

    def recent_events(
        self,
        limit: int,
        after: int = -1,
        *,
        subject: str | None = None,
        account: str | None = None,
        market_id: int | None = None,
    ) -> list[EventRow]:
        """The newest `limit` events after `after`, newest first (the live feed), of one
        request, account or market if given."""
        if max(abs(after), abs(market_id or 0)) > SQLITE_MAX:
            return []
        where: list[str] = ["seq > ?"]
        args: list[Any] = [after]
        for column, value in (("subject", subject), ("account", account), ("market_id", market_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        return self._event_rows(
            "SELECT seq, time, block, log_index, event FROM events"
            f" WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?",
            (*args, limit),
        )

    def timeline(self, request_id: str) -> list[EventRow]:
        return self._event_rows(
            "SELECT seq, time, block, log_index, event FROM events WHERE subject = ? ORDER BY seq",
            (request_id,),
        )

    def last_seq(self) -> int:
        row = self.db.execute("SELECT MAX(seq) FROM events").fetchone()
        return -1 if row[0] is None else int(row[0])

    def markets(self) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM markets ORDER BY id"))

    def market(self, market_id: int) -> sqlite3.Row | None:
        if market_id > SQLITE_MAX:
            return None
        row: sqlite3.Row | None = self.db.execute(
            "SELECT * FROM markets WHERE id = ?", (market_id,)
        ).fetchone()
        return row

    def state_counts(self) -> dict[int, dict[str, int]]:
        """market id -> request state -> how many."""
        counts: dict[int, dict[str, int]] = {}
        for market_id, state, n in self.db.execute(
            "SELECT market_id, state, COUNT(*) FROM requests GROUP BY market_id, state"
        ):
            counts.setdefault(market_id, {})[state] = n
        return counts

    def request(self, request_id: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.db.execute(
            "SELECT * FROM requests WHERE id = ?", (request_id,)
        ).fetchone()
        return row

    def requests(
        self,
        *,
        market_id: int | None = None,
        generator: str | None = None,
        requester: str | None = None,
        limit: int = 50,
    ) -> list[sqlite3.Row]:
        """The newest requests of a market, a generator or a requester."""
        column, value = next(
            (c, v)
            for c, v in (
                ("market_id", market_id),
                ("generator", generator),
                ("requester", requester),
            )
            if v is not None
        )
        return list(
            self.db.execute(
                f"SELECT * FROM requests WHERE {column} = ? ORDER BY seq DESC LIMIT ?",
                (value, limit),
            )
        )

    def prices(self, market_id: int, limit: int) -> list[tuple[int, int]]:
        """(assigned at, price) of the market's last `limit` tasks, oldest first."""
        rows = self.db.execute(
            "SELECT assigned_at, price FROM requests WHERE market_id = ? AND price IS NOT NULL"
            " ORDER BY seq DESC LIMIT ?",
            (market_id, limit),
        )
        return [(int(t), int(p)) for t, p in reversed(list(rows))]

    def proof_times(self, market_id: int, limit: int) -> list[int]:
        """Seconds from assignment to proof of the market's last `limit` proofs."""
        rows = self.db.execute(
            "SELECT finished_at - assigned_at FROM requests WHERE market_id = ? AND state = ?"
            " ORDER BY seq DESC LIMIT ?",
            (market_id, FULFILLED, limit),
        )
        return [int(r[0]) for r in rows]

    def generator_totals(self, address: str) -> dict[str, int]:
        """A generator's tasks by state, and what it earned (payments)."""
        totals: dict[str, int] = {"earned": 0, "tasks": 0}
        for state, payment in self.db.execute(
            "SELECT state, payment FROM requests WHERE generator = ?", (address,)
        ):
            totals[state] = totals.get(state, 0) + 1
            totals["tasks"] += 1
            totals["earned"] += int(payment or 0)
        return totals

    def generators(self) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM generators ORDER BY registered_at"))

    def generator(self, address: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.db.execute(
            "SELECT * FROM generators WHERE address = ?", (address,)
        ).fetchone()
        return row

    def is_requester(self, address: str) -> bool:
        row = self.db.execute("SELECT 1 FROM requests WHERE requester = ? LIMIT 1", (address,))
        return row.fetchone() is not None

    def request_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM requests").fetchone()[0])
