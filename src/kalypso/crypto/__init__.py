"""Private inputs: the request-bound envelope and the X25519 keys it is sealed to."""

from kalypso.crypto.envelope import (
    MAX_PLAINTEXT,
    SecretContext,
    open_sealed,
    open_with,
    rewrap,
    seal,
)
from kalypso.crypto.keys import EncryptionKey

__all__ = [
    "MAX_PLAINTEXT",
    "EncryptionKey",
    "SecretContext",
    "open_sealed",
    "open_with",
    "rewrap",
    "seal",
]
