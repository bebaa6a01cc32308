"""Private inputs: the request-bound envelope and the X25519 keys it is sealed to."""

from kalypso.crypto.envelope import (
    MAX_PLAINTEXT,
    SecretContext,
    can_open,
    open_sealed,
    open_with,
    opens_to_signals,
    rewrap,
    seal,
)
from kalypso.crypto.keys import EncryptionKey, is_usable_public_key, load_ring, rotate

__all__ = [
    "MAX_PLAINTEXT",
    "EncryptionKey",
    "SecretContext",
    "can_open",
    "is_usable_public_key",
    "load_ring",
    "open_sealed",
    "open_with",
    "opens_to_signals",
    "rewrap",
    "rotate",
    "seal",
]
