"""A command that signs, made safe to run again: its unfinished action is on disk.

Before a command sends anything it records the action (the command, its arguments, the
account, the chain) and then every transaction it signs (hash, nonce, function). If it
crashes, or its provider fails, after a transaction was sent, running the same command
again finds that record: a transaction of the action's own function that was mined (or
is still pending) is reported instead of sending another; one that never landed is sent
again. Values a re-run must reuse (a request's salt, so the same request id) are
recorded with the action. A finished action is forgotten: running the command again
later is a new action. `--new` starts a new one deliberately.

One SQLite file per chain and account under `~/.kalypso/actions/`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    key TEXT PRIMARY KEY,
    command TEXT NOT NULL,
    args TEXT NOT NULL,
    started REAL NOT NULL,
    notes TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS sent (
    key TEXT NOT NULL,
    hash TEXT NOT NULL,
    nonce INTEGER NOT NULL,
    function TEXT NOT NULL,
    PRIMARY KEY (key, hash)
);
"""


def default_path(chain_id: int, account: str) -> Path:
    return Path.home() / ".kalypso" / "actions" / f"{chain_id}-{account}.sqlite"


def action_key(command: str, args: dict[str, Any]) -> str:
    """The same command with the same arguments is the same action."""
    return command + " " + json.dumps(args, sort_keys=True, default=str)


@dataclass(frozen=True)
class SentRecord:
    hash: bytes
    nonce: int
    function: str


@dataclass(frozen=True)
class Action:
    key: str
    command: str
    args: dict[str, Any]
    started: float
    notes: dict[str, Any] = field(default_factory=dict)
    sent: tuple[SentRecord, ...] = ()

    def of(self, functions: tuple[str, ...]) -> list[SentRecord]:
        """The transactions calling one of `functions`, newest first (fee bumps add
        versions)."""
        return [s for s in reversed(self.sent) if s.function in functions]


class ActionLog:
    """The unfinished actions of one account on one chain."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The SDK reports sends from its event loop's thread while the command's thread
        # waits on it: one user at a time, so the connection may cross threads.
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def unfinished(self, key: str) -> Action | None:
        row = self.db.execute(
            "SELECT command, args, started, notes FROM actions WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        sent = self.db.execute(
            "SELECT hash, nonce, function FROM sent WHERE key = ? ORDER BY rowid", (key,)
        ).fetchall()
        return Action(
            key,
            row[0],
            json.loads(row[1]),
            row[2],
            json.loads(row[3]),
            tuple(SentRecord(bytes.fromhex(h), n, f) for h, n, f in sent),
        )

    def begin(self, key: str, command: str, args: dict[str, Any]) -> Action:
        """Start (or restart, forgetting the old record) the action `key`."""
        self.finish(key)
        self.db.execute(
            "INSERT INTO actions (key, command, args, started) VALUES (?, ?, ?, ?)",
            (key, command, json.dumps(args, sort_keys=True, default=str), time.time()),
        )
        return Action(key, command, args, time.time())

    def note(self, key: str, name: str, value: Any) -> None:
        action = self.unfinished(key)
        if action is not None:
            notes = {**action.notes, name: value}
            self.db.execute("UPDATE actions SET notes = ? WHERE key = ?", (json.dumps(notes), key))

    def sent(self, key: str, tx_hash: bytes, nonce: int, function: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO sent (key, hash, nonce, function) VALUES (?, ?, ?, ?)",
            (key, tx_hash.hex(), nonce, function),
        )

    def finish(self, key: str) -> None:
        self.db.execute("DELETE FROM sent WHERE key = ?", (key,))
        self.db.execute("DELETE FROM actions WHERE key = ?", (key,))
