"""`kalypso key new|show`: a private key file and its public half."""

from __future__ import annotations

import stat
from pathlib import Path

from typer.testing import CliRunner

from kalypso.cli import app
from kalypso.crypto import EncryptionKey

runner = CliRunner()


def test_new_writes_a_private_key_file_and_show_prints_its_public_key(tmp_path: Path) -> None:
    path = tmp_path / "matcher.x25519"
    made = runner.invoke(app, ["key", "new", str(path)])
    assert made.exit_code == 0, made.output
    public = "0x" + EncryptionKey.load(path).public_bytes.hex()
    assert made.output.startswith(public)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    shown = runner.invoke(app, ["key", "show", str(path)])
    assert shown.output.strip() == public


def test_new_refuses_to_overwrite_a_key_without_force(tmp_path: Path) -> None:
    path = tmp_path / "k"
    runner.invoke(app, ["key", "new", str(path)])
    before = path.read_text()
    again = runner.invoke(app, ["key", "new", str(path)])
    assert again.exit_code != 0 and path.read_text() == before
    assert runner.invoke(app, ["key", "new", str(path), "--force"]).exit_code == 0
    assert path.read_text() != before
