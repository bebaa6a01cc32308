"""X25519 encryption keys (one purpose: private inputs; never used to sign).

A key file holds the 32-byte private key in hex and must be readable by its owner only
(mode 0600), like an SSH key: a readable one is refused rather than used.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from kalypso.errors import ConfigError


class EncryptionKey:
    def __init__(self, private: X25519PrivateKey) -> None:
        self._private = private
        self.public_bytes = private.public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> EncryptionKey:
        return cls(X25519PrivateKey.generate())

    def exchange(self, public: bytes) -> bytes:
        """X25519 shared secret with `public` (ValueError on an invalid point)."""
        return self._private.exchange(X25519PublicKey.from_public_bytes(public))

    def save(self, path: Path, *, overwrite: bool = False) -> Path:
        """Write the key, mode 0600 from its creation, never through a symlink.

        Without `overwrite` an existing file (or link) at `path` is an error; with it the
        key is written to a new file beside it and renamed over the old one.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        target = path.with_name(f".{path.name}.{os.getpid()}.tmp") if overwrite else path
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        try:
            fd = os.open(target, flags, 0o600)
        except FileExistsError:
            raise ConfigError(f"{path} exists; not overwriting a key") from None
        with os.fdopen(fd, "w") as out:
            out.write(self._private.private_bytes_raw().hex() + "\n")
            out.flush()
            os.fsync(out.fileno())
        if overwrite:
            os.replace(target, path)
        return path

    @classmethod
    def load(cls, path: Path) -> EncryptionKey:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            raise ConfigError(f"cannot read the encryption key {path}: {exc}") from None
        with os.fdopen(fd, "rb") as src:
            mode = os.fstat(src.fileno()).st_mode
            data = src.read(200)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{path} is readable by others (mode {stat.S_IMODE(mode):o}): "
                f"run `chmod 600 {path}`"
            )
        try:
            raw = bytes.fromhex(data.decode().strip())
            return cls(X25519PrivateKey.from_private_bytes(raw))
        except ValueError:  # also UnicodeDecodeError
            raise ConfigError(f"{path} is not an X25519 private key (64 hex digits)") from None


def retired_paths(path: Path) -> list[Path]:
    """The keys `rotate` retired from `path`, newest first: `path.1`, `path.2`, …"""
    found = []
    index = 1
    while (candidate := path.with_name(f"{path.name}.{index}")).exists():
        found.append(candidate)
        index += 1
    return found


def load_ring(path: Path) -> list[EncryptionKey]:
    """The key at `path` and the ones it replaced, newest first: envelopes sealed before
    a rotation still open with the retired keys."""
    return [EncryptionKey.load(p) for p in (path, *retired_paths(path))]


def rotate(path: Path, *, keep: int = 3) -> EncryptionKey:
    """Replace the key at `path` with a new one, keeping the last `keep` retired keys
    beside it (`path.1` the newest) for what was sealed to them; older ones are deleted.

    The new key is written in full before anything moves; the old one is renamed to
    `path.1` and the new one into place right after, so a crash leaves at most a stray
    `.new` file, never a lost key."""
    if keep < 1:
        raise ConfigError("keep at least one retired key: requests sealed to it are live")
    EncryptionKey.load(path)  # refuse to rotate what is not a readable key
    fresh = EncryptionKey.generate()
    staged = fresh.save(path.with_name(f"{path.name}.new"), overwrite=True)

    def numbered(index: int) -> Path:
        return path.with_name(f"{path.name}.{index}")

    retired = retired_paths(path)
    for old in retired[keep - 1 :]:
        old.unlink()
    for index in range(min(len(retired), keep - 1), 0, -1):
        os.replace(numbered(index), numbered(index + 1))
    os.replace(path, numbered(1))
    os.replace(staged, path)
    return fresh


def is_usable_public_key(key: bytes) -> bool:
    """Whether `key` is an X25519 public key a secret can be wrapped to (not low-order)."""
    if len(key) != 32:
        return False
    try:
        X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(key))
    except ValueError:
        return False
    return True
