"""A command that signs, run again after a crash, reports its transaction instead of
sending another (`kalypso.cli.once` over `kalypso.chain.actions`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kalypso.chain.actions import ActionLog, action_key, default_path
from kalypso.cli.once import once
from kalypso.errors import ChainError

ADDRESS = "0x" + "ab" * 20
TX = b"\x11" * 32


class Crash(BaseException):
    """The process dies (SIGKILL, power): nothing after it runs."""


class FakeKalypso:
    chain_id = 4242
    address = ADDRESS

    def __init__(self, mined: set[bytes] | None = None, reverted: bool = False) -> None:
        self.mined = mined or set()
        self.status = 0 if reverted else 1
        self.on_sent: Any = None

    def record(self, on_sent: Any) -> None:
        self.on_sent = on_sent

    def landed(self, hashes: list[bytes]) -> dict[str, Any] | None:
        for h in hashes:
            if h in self.mined:
                return {"transactionHash": h, "blockNumber": 7, "logs": [], "status": self.status}
        return None

    def send(self, function: str, tx: bytes = TX) -> str:
        self.on_sent(tx, 3, function)
        return "sent"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def crashed_after_sending(k: FakeKalypso) -> None:
    def run(*_: Any) -> str:
        k.send("approve", b"\x22" * 32)
        k.send("withdraw")
        raise Crash

    with pytest.raises(Crash):
        once(k, "withdraw", {"amount": 5}, function="withdraw", new=False, run=run)


def test_a_rerun_reports_the_mined_transaction_and_sends_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    k = FakeKalypso()
    crashed_after_sending(k)
    k.mined.add(TX)
    calls: list[str] = []
    done = once(k, "withdraw", {"amount": 5}, function="withdraw", new=False, run=calls.append)
    assert done is None and calls == []
    out = capsys.readouterr().out
    assert "already done" in out and "0x" + TX.hex() in out and "block 7" in out
    log = ActionLog(default_path(4242, ADDRESS))
    assert log.unfinished(action_key("withdraw", {"amount": 5})) is None  # forgotten


def test_an_approval_alone_is_not_the_action(capsys: pytest.CaptureFixture[str]) -> None:
    k = FakeKalypso(mined={b"\x22" * 32})  # only the approve landed
    crashed_after_sending(k)
    assert (
        once(
            k,
            "withdraw",
            {"amount": 5},
            function="withdraw",
            new=False,
            run=lambda *_: k.send("withdraw"),
        )
        == "sent"
    )


def test_new_sends_again_and_a_different_command_is_another_action() -> None:
    k = FakeKalypso()
    crashed_after_sending(k)
    k.mined.add(TX)
    assert (
        once(
            k,
            "withdraw",
            {"amount": 5},
            function="withdraw",
            new=True,
            run=lambda *_: k.send("withdraw"),
        )
        == "sent"
    )
    crashed_after_sending(k)
    assert (
        once(
            k,
            "withdraw",
            {"amount": 6},
            function="withdraw",
            new=False,
            run=lambda *_: k.send("withdraw"),
        )
        == "sent"
    )


def test_a_rerun_reuses_what_the_first_run_recorded() -> None:
    k = FakeKalypso()

    def first(notes: dict[str, Any], note: Any) -> None:
        note("salt", "aa" * 32)
        k.send("create_request")
        raise Crash

    with pytest.raises(Crash):
        once(k, "request create", {"m": 1}, function="create_request", new=False, run=first)
    seen: list[dict[str, Any]] = []
    once(
        k,
        "request create",
        {"m": 1},
        function="create_request",
        new=False,
        run=lambda notes, note: seen.append(dict(notes)),
    )
    assert seen == [{"salt": "aa" * 32}]  # not mined: sent again, with the same request id


def test_an_error_after_the_transaction_was_mined_says_so() -> None:
    k = FakeKalypso(mined={TX})

    def run(*_: Any) -> None:
        k.send("withdraw")
        raise ChainError("eth_call failed 9 times")

    with pytest.raises(ChainError, match=r"after its transaction 0x1111.* was mined in block 7"):
        once(k, "withdraw", {"amount": 5}, function="withdraw", new=False, run=run)


def test_an_error_before_anything_was_sent_leaves_no_record() -> None:
    k = FakeKalypso()

    def run(*_: Any) -> None:
        raise ChainError("requests: not open")

    with pytest.raises(ChainError):
        once(k, "request cancel", {"r": 1}, function="cancel_request", new=False, run=run)
    log = ActionLog(default_path(4242, ADDRESS))
    assert log.unfinished(action_key("request cancel", {"r": 1})) is None


def test_a_reverted_transaction_is_not_done_and_the_rerun_sends_again() -> None:
    """Mined but reverted: nothing happened, so `already done` would be a lie."""
    k = FakeKalypso(mined={TX}, reverted=True)
    crashed_after_sending(k)
    again = once(k, "withdraw", {"amount": 5}, function="withdraw", new=False,
                 run=lambda *_: k.send("withdraw"))  # fmt: skip
    assert again == "sent"
