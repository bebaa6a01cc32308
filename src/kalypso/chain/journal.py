"""The base of the daemons' SQLite journals: one file per daemon, locked, bound to one
deployment, holding the log follower's cursor.

A daemon writes what it derived from a batch of logs and the cursor after it in one
transaction (`transaction()`), so a crash never loses or repeats an event.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kalypso.chain.follower import BlockRef, FollowerState
from kalypso.errors import ConfigError

_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"


class Journal:
    """An exclusive SQLite journal; `role` names the daemon in errors."""

    def __init__(
        self,
        path: Path,
        identity: dict[str, Any],
        schema: str,
        role: str,
        *,
        check_same_thread: bool = True,
    ) -> None:
        """`check_same_thread=False` for a journal one event loop uses from whichever
        thread runs it (a web app under a test client)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.role = role
        self._lock: Any = open(path.with_name(path.name + ".lock"), "w")  # noqa: SIM115
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            raise ConfigError(
                f"another {role} is running on {path}: stop it, or give this one its own "
                "`state` file"
            ) from None
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=check_same_thread)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_META + schema)
        self._check_identity(identity)

    @classmethod
    def read_only(cls, path: Path) -> Any:
        """The journal of a daemon that may be running, for reading (no lock taken)."""
        if not path.is_file():
            raise ConfigError(f"no journal at {path}: has the daemon run with this config?")
        journal = cls.__new__(cls)
        journal.path = path
        journal._lock = None
        journal.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        return journal

    def identity(self) -> dict[str, Any]:
        text = self.get_meta("identity")
        return dict(json.loads(text)) if text else {}

    def close(self) -> None:
        self.db.close()
        if self._lock is not None:
            self._lock.close()

    def _check_identity(self, identity: dict[str, Any]) -> None:
        wanted = json.dumps(identity, sort_keys=True)
        row = self.db.execute("SELECT value FROM meta WHERE key = 'identity'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('identity', ?)", (wanted,))
        elif row[0] != wanted:
            raise ConfigError(
                f"{self.path} is the journal of another deployment, shard or key ({row[0]}); "
                f"give this {self.role} its own `state` file"
            )

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def follower_state(self, start_block: int) -> FollowerState:
        text = self.get_meta("follower")
        if text is None:
            return FollowerState(start_block)
        data = json.loads(text)
        recent = tuple(BlockRef(n, bytes.fromhex(h)) for n, h in data["recent"])
        return FollowerState(data["next_block"], recent)

    def save_state(self, state: FollowerState) -> None:
        """The follower's cursor; call inside the `transaction()` of what it covers."""
        value = {
            "next_block": state.next_block,
            "recent": [[r.number, r.hash.hex()] for r in state.recent],
        }
        self.set_meta("follower", json.dumps(value))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
