"""A daemon (`kalypso matcher`, `kalypso generator run`) as a child process, for
`kalypso devnet`, the demo and tests: started, waited for until healthy, stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
from eth_account.signers.local import LocalAccount

from kalypso.devnet import stop_process
from kalypso.errors import ChainError


class DaemonProcess:
    """`kalypso <args>` with its key (if it has one) in `key_env`; a context manager that
    stops it."""

    def __init__(
        self,
        name: str,
        args: list[str],
        *,
        workdir: Path,
        account: LocalAccount | None,
        key_env: str | None,
        api_port: int,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.args = args
        self.workdir = workdir
        self.account = account
        self.key_env = key_env
        #: the child's environment: the caller's, with these set
        self.env = dict(env or {})
        self.url = f"http://127.0.0.1:{api_port}"
        self.log = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Self:
        env = {**os.environ, **self.env}
        if self.account is not None and self.key_env is not None:
            env[self.key_env] = "0x" + self.account.key.hex().removeprefix("0x")
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kalypso.cli", *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ChainError(f"the {self.name} exited on start: {self.tail()}")
            try:
                health = httpx.get(f"{self.url}/health", timeout=1).json()
            except (httpx.HTTPError, ValueError):
                health = {}
            expected = None if self.account is None else self.account.address
            if expected is not None and health.get("address") not in (None, expected):
                self.stop()
                raise ChainError(f"another {self.name} already answers on {self.url}")
            if health.get("status") == "ok":
                return self
            time.sleep(0.1)
        self.stop()
        raise ChainError(
            f"the {self.name} did not become ready within {timeout:.0f} s: {self.tail()}"
        )

    def status(self, path: str) -> Any:
        return httpx.get(f"{self.url}{path}", timeout=5).json()

    def post(self, path: str) -> Any:
        return httpx.post(f"{self.url}{path}", timeout=120).json()

    def tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log.read_text().strip().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10) -> None:
        stop_process(self.process, timeout=timeout)

    def kill(self) -> None:
        """SIGKILL: no chance to clean up (for crash tests)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
