"""The private-input envelope: round trips, binding to the request, tampering, fuzzing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalypso.crypto import (
    MAX_PLAINTEXT,
    EncryptionKey,
    SecretContext,
    can_open,
    is_usable_public_key,
    open_sealed,
    open_with,
    rewrap,
    seal,
)
from kalypso.errors import ConfigError, DecryptionError
from kalypso.market.types import MAX_SECRET_BYTES

MARKETPLACE = "0x" + "ab" * 20
CONTEXT = SecretContext(31337, MARKETPLACE, b"\x01" * 32)
SECRET = b'{"preimage":"42"}'
MATCHER, GENERATOR, OTHER = (EncryptionKey.generate() for _ in range(3))


def test_requester_to_matcher_to_generator() -> None:
    envelope = seal(SECRET, MATCHER.public_bytes, CONTEXT)
    assert SECRET not in envelope
    assert open_sealed(envelope, MATCHER, CONTEXT) == SECRET
    key_envelope = rewrap(envelope, MATCHER, GENERATOR.public_bytes, CONTEXT)
    assert len(key_envelope) == 93  # fits the assignment's 256-byte generator secret
    assert open_with(envelope, key_envelope, GENERATOR, CONTEXT) == SECRET


def test_the_largest_secret_fits_the_contract_cap_and_a_larger_one_is_refused() -> None:
    assert len(seal(b"x" * MAX_PLAINTEXT, MATCHER.public_bytes, CONTEXT)) == MAX_SECRET_BYTES
    with pytest.raises(ConfigError, match="inline cap"):
        seal(b"x" * (MAX_PLAINTEXT + 1), MATCHER.public_bytes, CONTEXT)


@pytest.mark.parametrize(
    "moved",
    [
        SecretContext(31337, MARKETPLACE, b"\x02" * 32),
        SecretContext(1, MARKETPLACE, b"\x01" * 32),
        SecretContext(31337, "0x" + "cd" * 20, b"\x01" * 32),
    ],
    ids=["another request", "another chain", "another marketplace"],
)
def test_a_ciphertext_moved_to_another_request_does_not_open(moved: SecretContext) -> None:
    envelope = seal(SECRET, MATCHER.public_bytes, CONTEXT)
    key_envelope = rewrap(envelope, MATCHER, GENERATOR.public_bytes, CONTEXT)
    with pytest.raises(DecryptionError, match="another request"):
        open_sealed(envelope, MATCHER, moved)
    with pytest.raises(DecryptionError):
        rewrap(envelope, MATCHER, GENERATOR.public_bytes, moved)
    with pytest.raises(DecryptionError):
        open_with(envelope, key_envelope, GENERATOR, moved)


def test_the_wrong_key_does_not_open_it() -> None:
    envelope = seal(SECRET, MATCHER.public_bytes, CONTEXT)
    with pytest.raises(DecryptionError):
        open_sealed(envelope, OTHER, CONTEXT)
    key_envelope = rewrap(envelope, MATCHER, GENERATOR.public_bytes, CONTEXT)
    with pytest.raises(DecryptionError):
        open_with(envelope, key_envelope, OTHER, CONTEXT)
    with pytest.raises(DecryptionError):  # the matcher cannot use the generator's wrap
        open_with(envelope, key_envelope, MATCHER, CONTEXT)


def test_every_single_byte_change_is_detected() -> None:
    envelope = seal(SECRET, MATCHER.public_bytes, CONTEXT)
    key_envelope = rewrap(envelope, MATCHER, GENERATOR.public_bytes, CONTEXT)
    for i in range(len(envelope)):
        tampered = envelope[:i] + bytes([envelope[i] ^ 1]) + envelope[i + 1 :]
        with pytest.raises(DecryptionError):
            open_sealed(tampered, MATCHER, CONTEXT)
    for i in range(len(key_envelope)):
        tampered = key_envelope[:i] + bytes([key_envelope[i] ^ 1]) + key_envelope[i + 1 :]
        with pytest.raises(DecryptionError):
            open_with(envelope, tampered, GENERATOR, CONTEXT)


@given(st.binary(max_size=1200), st.binary(max_size=200))
def test_the_decoders_raise_only_a_decryption_error_on_any_bytes(
    envelope: bytes, key_envelope: bytes
) -> None:
    attempts = (
        lambda: open_sealed(envelope, MATCHER, CONTEXT),
        lambda: rewrap(envelope, MATCHER, GENERATOR.public_bytes, CONTEXT),
        lambda: open_with(envelope, key_envelope, GENERATOR, CONTEXT),
    )
    for attempt in attempts:
        with pytest.raises(DecryptionError):
            attempt()


def test_a_key_file_is_written_private_and_a_readable_one_refused(tmp_path: Path) -> None:
    path = MATCHER.save(tmp_path / "keys" / "matcher.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert EncryptionKey.load(path).public_bytes == MATCHER.public_bytes
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        EncryptionKey.load(path)
    path.write_text("not hex\n")
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match="not an X25519 private key"):
        EncryptionKey.load(path)


def test_a_low_order_ephemeral_key_is_a_decryption_error() -> None:
    envelope = bytes([1]) + bytes(len(seal(SECRET, MATCHER.public_bytes, CONTEXT)) - 1)
    with pytest.raises(DecryptionError, match="ephemeral"):
        open_sealed(envelope, MATCHER, CONTEXT)


LOW_ORDER = [bytes(32), b"\x01" + bytes(31), bytes(31) + b"\x80"]


@pytest.mark.parametrize("key", LOW_ORDER, ids=["zero", "one", "top bit"])
def test_a_low_order_recipient_key_is_refused_with_a_config_error(key: bytes) -> None:
    assert not is_usable_public_key(key)
    with pytest.raises(ConfigError, match="not a usable X25519 public key"):
        seal(SECRET, key, CONTEXT)
    envelope = seal(SECRET, MATCHER.public_bytes, CONTEXT)
    with pytest.raises(ConfigError, match="not a usable X25519 public key"):
        rewrap(envelope, MATCHER, key, CONTEXT)


@given(st.binary(min_size=32, max_size=32))
def test_any_recipient_key_either_seals_or_is_a_config_error(key: bytes) -> None:
    try:
        seal(SECRET, key, CONTEXT)
    except ConfigError:
        assert not is_usable_public_key(key)
    else:
        assert is_usable_public_key(key)


def test_a_key_envelope_cannot_pass_for_an_envelope() -> None:
    envelope = seal(SECRET, MATCHER.public_bytes, CONTEXT)
    key_envelope = rewrap(envelope, MATCHER, GENERATOR.public_bytes, CONTEXT)
    disguised = bytes([1]) + key_envelope[1:] + envelope[1 + 92 :]
    with pytest.raises(DecryptionError):
        open_sealed(disguised, GENERATOR, CONTEXT)
    assert can_open(envelope, MATCHER, CONTEXT)
    assert not can_open(disguised, GENERATOR, CONTEXT)


@pytest.mark.parametrize(
    ("chain_id", "marketplace", "request_id", "message"),
    [
        (-1, MARKETPLACE, b"\x01" * 32, "chain id"),
        (2**256, MARKETPLACE, b"\x01" * 32, "chain id"),
        (1, "0x12", b"\x01" * 32, "marketplace address"),
        (1, MARKETPLACE, b"\x01" * 31, "32 bytes"),
    ],
)
def test_a_malformed_context_is_a_config_error(
    chain_id: int, marketplace: str, request_id: bytes, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        SecretContext(chain_id, marketplace, request_id)


def test_a_key_file_is_never_written_through_a_link_nor_over_a_file(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")  # dangling
    with pytest.raises(ConfigError, match="exists"):
        MATCHER.save(link)
    assert not (tmp_path / "elsewhere").exists()
    path = MATCHER.save(tmp_path / "k")
    with pytest.raises(ConfigError, match="exists"):
        GENERATOR.save(path)
    GENERATOR.save(path, overwrite=True)
    assert EncryptionKey.load(path).public_bytes == GENERATOR.public_bytes
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    target = tmp_path / "target"
    MATCHER.save(target)
    (tmp_path / "to-target").symlink_to(target)
    with pytest.raises(ConfigError, match="cannot read"):
        EncryptionKey.load(tmp_path / "to-target")


def test_a_key_file_that_is_not_text_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_bytes(b"\xff" * 64)
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match="not an X25519 private key"):
        EncryptionKey.load(path)
