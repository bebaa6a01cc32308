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


def test_rotate_keeps_retired_keys_that_still_open_what_was_sealed_to_them(
    tmp_path: Path,
) -> None:
    from kalypso.crypto import SecretContext, load_ring, seal
    from kalypso.matching.secrets import LocalKeeper

    path = tmp_path / "matcher.x25519"
    runner.invoke(app, ["key", "new", str(path)])
    context = SecretContext(31337, "0x" + "ab" * 20, b"\x01" * 32)
    sealed = [seal(b'{"x": 1}', EncryptionKey.load(path).public_bytes, context)]
    for _ in range(4):
        rotated = runner.invoke(app, ["key", "rotate", str(path), "--keep", "2"])
        assert rotated.exit_code == 0, rotated.output
        assert rotated.output.startswith("0x" + EncryptionKey.load(path).public_bytes.hex())
        sealed.append(seal(b'{"x": 1}', EncryptionKey.load(path).public_bytes, context))
    ring = load_ring(path)
    assert len(ring) == 3 and ring[0].public_bytes == EncryptionKey.load(path).public_bytes
    assert stat.S_IMODE(path.with_name("matcher.x25519.1").stat().st_mode) == 0o600
    assert not path.with_name("matcher.x25519.3").exists()
    keeper = LocalKeeper(ring)
    opens = [keeper.can_open(context, envelope) for envelope in sealed]
    assert opens == [False, False, True, True, True]  # the two oldest keys are gone
    recipient = EncryptionKey.generate()
    assert keeper.rewrap(context, None, sealed[2], "", recipient.public_bytes)  # type: ignore[arg-type]


def test_rotate_refuses_what_is_not_a_key(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_text("not a key\n")
    path.chmod(0o600)
    refused = runner.invoke(app, ["key", "rotate", str(path)])
    assert refused.exit_code != 0 and path.read_text() == "not a key\n"
    assert not path.with_name("k.1").exists()
