"""The matcher's journal in SQLite: every followed event, the follower's cursor, sent txs.

The orderbook is a pure function of the event log, so the journal keeps the log
itself: a restart (or a reorg) rebuilds the book by replaying it. The cursor is
written in the same transaction as the events it covers, so a crash never loses
or repeats an event. Transactions in flight are recorded when the node accepts
them, so a restart waits for them instead of assigning the same requests again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kalypso.chain import FollowerState, LogBatch
from kalypso.chain.journal import Journal
from kalypso.chain.sender import SentTx
from kalypso.market.events import DecodedEvent

SCHEMA = """
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


class MatcherStore(Journal):
    """One SQLite file per matcher shard, bound to one deployment and market set."""

    def __init__(self, path: Path, identity: dict[str, Any]) -> None:
        super().__init__(path, identity, SCHEMA, "matcher")

    # ---- the follower's cursor and the event log

    def append(self, batch: LogBatch, state: FollowerState) -> None:
        """Record a batch's events and the cursor after it, atomically."""
        with self.transaction():
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
            self.save_state(state)

    def rollback(self, to_block: int, state: FollowerState) -> None:
        with self.transaction():
            self.db.execute("DELETE FROM events WHERE block > ?", (to_block,))
            self.save_state(state)

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
