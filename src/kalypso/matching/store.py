"""The matcher's journal in SQLite: every followed event, the follower's cursor, sent txs.

The orderbook is a pure function of the event log, so the journal keeps the log
itself: a restart (or a reorg) rebuilds the book by replaying it. The cursor is
written in the same transaction as the events it covers, so a crash never loses
or repeats an event. Transactions in flight are recorded when the node accepts
them, so a restart waits for them instead of assigning the same requests again.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kalypso.chain import BlockRef, FollowerState, LogBatch
from kalypso.chain.sender import SentTx
from kalypso.errors import ConfigError
from kalypso.market.events import DecodedEvent

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    block INTEGER NOT NULL, log_index INTEGER NOT NULL, event TEXT NOT NULL,
    PRIMARY KEY (block, log_index));
CREATE TABLE IF NOT EXISTS malformed (
    block INTEGER, log_index INTEGER, reason TEXT NOT NULL, raw TEXT NOT NULL, seen_at REAL);
CREATE TABLE IF NOT EXISTS inflight (
    nonce INTEGER PRIMARY KEY, hashes TEXT NOT NULL, request_ids TEXT NOT NULL,
    sent_at REAL NOT NULL);
"""


@dataclass(frozen=True)
class Inflight:
    nonce: int
    hashes: list[bytes]
    request_ids: list[bytes]


def _to_json(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"b": bytes(value).hex()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        return bytes.fromhex(value["b"])
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def encode_event(event: DecodedEvent) -> str:
    return json.dumps(
        {
            "name": event.name,
            "args": {k: _to_json(v) for k, v in event.args.items()},
            "address": event.address,
            "block_hash": event.block_hash.hex(),
            "tx": event.transaction_hash.hex(),
        }
    )


def decode_event(block: int, log_index: int, text: str) -> DecodedEvent:
    data = json.loads(text)
    args = {k: _from_json(v) for k, v in data["args"].items()}
    return DecodedEvent(
        data["name"],
        args,
        data["address"],
        block,
        bytes.fromhex(data["block_hash"]),
        bytes.fromhex(data["tx"]),
        log_index,
    )


class MatcherStore:
    """One SQLite file per matcher shard, bound to one deployment and market set."""

    def __init__(self, path: Path, identity: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = open(path.with_name(path.name + ".lock"), "w")  # noqa: SIM115
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            raise ConfigError(
                f"another matcher is running on {path}: stop it, or give this one its own "
                "`state` file"
            ) from None
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self._check_identity(identity)

    def close(self) -> None:
        self.db.close()
        self._lock.close()

    def _check_identity(self, identity: dict[str, Any]) -> None:
        wanted = json.dumps(identity, sort_keys=True)
        row = self.db.execute("SELECT value FROM meta WHERE key = 'identity'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('identity', ?)", (wanted,))
        elif row[0] != wanted:
            raise ConfigError(
                f"{self.path} is the journal of another deployment or shard ({row[0]}); "
                "give this matcher its own `state` file"
            )

    # ---- the follower's cursor and the event log

    def follower_state(self, start_block: int) -> FollowerState:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'follower'").fetchone()
        if row is None:
            return FollowerState(start_block)
        data = json.loads(row[0])
        recent = tuple(BlockRef(n, bytes.fromhex(h)) for n, h in data["recent"])
        return FollowerState(data["next_block"], recent)

    def _save_state(self, state: FollowerState) -> None:
        value = json.dumps(
            {
                "next_block": state.next_block,
                "recent": [[r.number, r.hash.hex()] for r in state.recent],
            }
        )
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('follower', ?)", (value,))

    def append(self, batch: LogBatch, state: FollowerState) -> None:
        """Record a batch's events and the cursor after it, atomically."""
        with self._transaction():
            self.db.executemany(
                "INSERT OR REPLACE INTO events VALUES (?, ?, ?)",
                [(e.block_number, e.log_index, encode_event(e)) for e in batch.events],
            )
            self.db.executemany(
                "INSERT INTO malformed VALUES (?, ?, ?, ?, ?)",
                [
                    (log.get("blockNumber"), log.get("logIndex"), reason, repr(log), time.time())
                    for log, reason in batch.malformed
                ],
            )
            self._save_state(state)

    def rollback(self, to_block: int, state: FollowerState) -> None:
        with self._transaction():
            self.db.execute("DELETE FROM events WHERE block > ?", (to_block,))
            self._save_state(state)

    def events(self) -> Iterator[DecodedEvent]:
        rows = self.db.execute(
            "SELECT block, log_index, event FROM events ORDER BY block, log_index"
        )
        for block, log_index, text in rows:
            yield decode_event(block, log_index, text)

    def malformed_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM malformed").fetchone()[0])

    # ---- transactions in flight

    def record_sent(self, tx: SentTx, request_ids: Iterable[bytes]) -> None:
        """A (re)signed assignment tx the node accepted; replacements add their hash."""
        row = self.db.execute("SELECT hashes FROM inflight WHERE nonce = ?", (tx.nonce,)).fetchone()
        hashes = json.loads(row[0]) if row else []
        hashes.append(tx.hash.hex())
        ids = json.dumps([r.hex() for r in request_ids])
        self.db.execute(
            "INSERT OR REPLACE INTO inflight VALUES (?, ?, ?, ?)",
            (tx.nonce, json.dumps(hashes), ids, time.time()),
        )

    def resolved(self, nonce: int) -> None:
        self.db.execute("DELETE FROM inflight WHERE nonce = ?", (nonce,))

    def inflight(self) -> list[Inflight]:
        rows = self.db.execute("SELECT nonce, hashes, request_ids FROM inflight ORDER BY nonce")
        return [
            Inflight(
                nonce,
                [bytes.fromhex(h) for h in json.loads(hashes)],
                [bytes.fromhex(r) for r in json.loads(ids)],
            )
            for nonce, hashes, ids in rows
        ]

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
