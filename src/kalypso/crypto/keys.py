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

    def save(self, path: Path) -> Path:
        """Write the key with mode 0600 (created so; never briefly readable by others)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        raw = self._private.private_bytes_raw().hex() + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(raw)
        os.chmod(path, 0o600)
        return path

    @classmethod
    def load(cls, path: Path) -> EncryptionKey:
        try:
            mode = path.stat().st_mode
            text = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the encryption key {path}: {exc}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{path} is readable by others (mode {stat.S_IMODE(mode):o}): "
                f"run `chmod 600 {path}`"
            )
        try:
            raw = bytes.fromhex(text)
            return cls(X25519PrivateKey.from_private_bytes(raw))
        except ValueError:
            raise ConfigError(f"{path} is not an X25519 private key (64 hex digits)") from None
