"""The matcher as a child process (for `kalypso devnet`, the demo and tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount

from kalypso.devnet import stop_process
from kalypso.errors import ChainError


class MatcherProcess:
    """`kalypso matcher` in its own process; a context manager that stops it on exit."""

    def __init__(
        self,
        workdir: Path,
        *,
        rpc_url: str,
        deployment: Path,
        account: LocalAccount,
        api_port: int,
        poll_interval: float = 0.2,
        encryption_key: Path | None = None,
    ) -> None:
        self.workdir = workdir
        self.url = f"http://127.0.0.1:{api_port}"
        self.log = workdir / "matcher.log"
        self.config = workdir / "matcher.toml"
        self.config.write_text(
            f'rpc_url = "{rpc_url}"\n'
            f'deployment = "{deployment}"\n'
            f'state = "{workdir / "matcher.sqlite"}"\n'
            f"poll_interval = {poll_interval}\n"
            f"api_port = {api_port}\n"
            + (f'encryption_key = "{encryption_key}"\n' if encryption_key else "")
        )
        self.account = account
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> MatcherProcess:
        env = {
            **os.environ,
            "KALYPSO_MATCHER_KEY": "0x" + self.account.key.hex().removeprefix("0x"),
        }
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kalypso.cli", "matcher", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ChainError(f"the matcher exited on start: {self.tail()}")
            try:
                health = httpx.get(f"{self.url}/health", timeout=1).json()
            except (httpx.HTTPError, ValueError):
                health = {}
            if health.get("address") not in (None, self.account.address):
                self.stop()
                raise ChainError(f"another matcher already answers on {self.url}")
            if health.get("status") == "ok":
                return self
            time.sleep(0.1)
        self.stop()
        raise ChainError(f"the matcher did not become ready within {timeout:.0f} s: {self.tail()}")

    def status(self, path: str) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(f"{self.url}{path}", timeout=5).json()
        return answer

    def tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log.read_text().strip().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        stop_process(self.process, timeout=10)

    def __enter__(self) -> MatcherProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
