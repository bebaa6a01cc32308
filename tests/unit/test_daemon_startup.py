"""A daemon's start-up waits for a chain that does not answer yet, a line per try, and
gives up after its `startup_timeout` with an error that says so."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kalypso.daemon import until_ready
from kalypso.errors import ChainError, ConfigError, DeploymentError


class Lines:
    def __init__(self) -> None:
        self.warnings: list[dict[str, Any]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.warnings.append({"event": event, **fields})


def failing(times: int, error: Exception) -> Any:
    calls = {"n": 0}

    async def start() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise error
        return "ready"

    return start


async def test_it_waits_for_the_chain_and_logs_each_try(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asyncio, "sleep", _instant)
    log = Lines()
    start = failing(3, ChainError("eth_chainId failed 4 times"))
    assert await until_ready("connecting", start, give_up=60, logger=log) == "ready"
    assert [w["retry_in"] for w in log.warnings] == [1.0, 2.0, 4.0]
    assert all(w["event"] == "waiting for the chain" for w in log.warnings)


async def test_it_gives_up_after_its_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asyncio, "sleep", _instant)
    start = failing(100, ChainError("HTTP 503"))
    with pytest.raises(ChainError, match=r"connecting: .* within 5 s \(startup_timeout\)"):
        await until_ready("connecting", start, give_up=5, logger=Lines())


@pytest.mark.parametrize("error", [DeploymentError("stale file"), ConfigError("bad key")])
async def test_what_waiting_cannot_fix_is_raised_at_once(error: Exception) -> None:
    log = Lines()
    with pytest.raises(type(error)):
        await until_ready("connecting", failing(1, error), give_up=60, logger=log)
    assert log.warnings == []


async def test_a_stop_ends_the_wait() -> None:
    stop = asyncio.Event()
    stop.set()
    with pytest.raises(ChainError):
        await until_ready(
            "connecting", failing(5, ChainError("down")), give_up=60, logger=Lines(), stop=stop
        )


async def _instant(_: float) -> None:
    return None
