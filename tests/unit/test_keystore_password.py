"""A keystore's password comes from the caller, the environment (a variable or a file it
names) or the terminal, in that order; without a terminal the error names the variables."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest
from eth_account import Account

from kalypso import keys
from kalypso.errors import ConfigError
from kalypso.keys import keystore_password, load_account, new_keystore

NAME = "KALYPSO_KEYSTORE_PASSWORD"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def no_password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (NAME, f"{NAME}_FILE", "KALYPSO_MATCHER_PASSWORD", "KALYPSO_MATCHER_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO())  # not a terminal


def asked(monkeypatch: pytest.MonkeyPatch, *answers: str) -> list[str]:
    """Put a terminal on stdin that answers `answers` in turn; the prompts it saw."""
    prompts: list[str] = []
    replies = iter(answers)

    def getpass(prompt: str) -> str:
        prompts.append(prompt)
        return next(replies)

    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr(keys.getpass, "getpass", getpass)
    return prompts


def keystore(tmp_path: Path, password: str) -> tuple[Path, str]:
    account = Account.create()
    path = tmp_path / "key.json"
    path.write_text(json.dumps(Account.encrypt(account.key, password, kdf="pbkdf2", iterations=2)))
    return path, account.address


def test_the_variable_comes_first_even_when_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    prompts = asked(monkeypatch, "typed")
    monkeypatch.setenv(f"{NAME}_FILE", "/nonexistent")
    monkeypatch.setenv(NAME, "")
    assert keystore_password("password for k") == ""
    assert prompts == []


def test_the_file_gives_its_first_line_without_the_newline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    for text in ("s3cret\n", "s3cret", "s3cret\r\nignored\n"):
        secret.write_text(text)
        monkeypatch.setenv(f"{NAME}_FILE", str(secret))
        assert keystore_password("password for k") == "s3cret"
    secret.write_text(" spaced \n")
    assert keystore_password("password for k") == " spaced "


def test_an_unreadable_file_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(f"{NAME}_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=f"cannot read the password file {NAME}_FILE=.*missing"):
        keystore_password("password for k")


@pytest.mark.parametrize("stdin", [io.StringIO(), None])
def test_without_a_terminal_the_error_names_both_variables(
    monkeypatch: pytest.MonkeyPatch, stdin: io.StringIO | None
) -> None:
    monkeypatch.setattr("sys.stdin", stdin)
    with pytest.raises(ConfigError) as raised:
        keystore_password("password for k.json", "KALYPSO_MATCHER_PASSWORD")
    text = str(raised.value)
    assert "no terminal" in text and "k.json" in text
    assert "KALYPSO_MATCHER_PASSWORD," in text and "KALYPSO_MATCHER_PASSWORD_FILE" in text


def test_a_terminal_is_asked_last_and_twice_for_a_new_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prompts = asked(monkeypatch, "pw", "pw")
    assert keystore_password("password for new", confirm=True) == "pw"
    assert prompts == ["password for new: ", "again: "]
    asked(monkeypatch, "pw", "other")
    with pytest.raises(ConfigError, match="differ"):
        keystore_password("password for new", confirm=True)


def test_load_account_reads_the_password_from_its_own_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path, address = keystore(tmp_path, "matcher pw")
    monkeypatch.setenv(NAME, "the app's, not the matcher's")
    monkeypatch.setenv("KALYPSO_MATCHER_PASSWORD", "matcher pw")
    account = load_account(None, path, password_env="KALYPSO_MATCHER_PASSWORD")
    assert account.address == address
    with pytest.raises(ConfigError, match="wrong password"):
        load_account(None, path)
    assert load_account(None, path, password="matcher pw").address == address  # given wins


def test_new_keystore_is_private_never_overwritten_and_opens(tmp_path: Path) -> None:
    path = tmp_path / "deployer.json"
    key = Account.create().key
    address = new_keystore(path, "pw", key=bytes(key))
    assert address == Account.from_key(key).address
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_text()
    with pytest.raises(ConfigError, match="never overwritten"):
        new_keystore(path, "other")
    assert path.read_text() == before
    assert load_account(None, path, password="pw").address == address
