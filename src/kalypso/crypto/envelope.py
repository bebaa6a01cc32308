"""The private-input envelope: X25519 + HKDF-SHA256 + AES-256-GCM, bound to one request.

A requester seals a secret (the private signals) to the matching engine's key. The
secret is encrypted once under a random *content key*; only the content key is wrapped
to a recipient. The matching engine unwraps the content key and wraps it again to the
chosen generator's key (`rewrap`), never touching the secret itself; that small *key
envelope* travels in the assignment, and the generator opens the requester's envelope
with it.

Every ciphertext is bound to its request by associated data — (chain id, marketplace,
request id) — so moving it onto another request, chain or deployment makes it fail to
open. A key wrap also binds the recipient's public key. Formats (all lengths fixed but
the secret's):

    envelope     = 0x01 ‖ wrap (92 bytes) ‖ nonce (12) ‖ AES-GCM(content key, secret)
    key envelope = 0x02 ‖ wrap (92 bytes)
    wrap         = ephemeral X25519 key (32) ‖ nonce (12) ‖ AES-GCM(wrap key, content key) (48)

where wrap key = HKDF-SHA256(X25519(ephemeral, recipient), salt = ephemeral ‖ recipient,
info = label ‖ context), the label naming the envelope type ("kalypso/v1/seal" for the
requester's wrap, "kalypso/v1/rewrap" for the matcher's), so one cannot pass for the other.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_utils import is_address, to_canonical_address

from kalypso.crypto.keys import EncryptionKey
from kalypso.errors import ConfigError, DecryptionError
from kalypso.market.types import MAX_SECRET_BYTES

ENVELOPE = 0x01
KEY_ENVELOPE = 0x02
_NONCE = 12
_TAG = 16
_KEY = 32
_WRAP = 32 + _NONCE + _KEY + _TAG
ENVELOPE_OVERHEAD = 1 + _WRAP + _NONCE + _TAG
#: The largest secret that fits the contract's inline cap once sealed.
MAX_PLAINTEXT = MAX_SECRET_BYTES - ENVELOPE_OVERHEAD


SEAL_LABEL = b"kalypso/v1/seal"
REWRAP_LABEL = b"kalypso/v1/rewrap"


@dataclass(frozen=True)
class SecretContext:
    """What a ciphertext is bound to: one request of one marketplace on one chain."""

    chain_id: int
    marketplace: str
    request_id: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.chain_id < 2**256:
            raise ConfigError(f"chain id {self.chain_id} is out of range")
        if not is_address(self.marketplace):
            raise ConfigError(f"{self.marketplace!r} is not a marketplace address")
        if len(self.request_id) != 32:
            raise ConfigError("a request id is 32 bytes")

    def __bytes__(self) -> bytes:
        return (
            b"kalypso-secret-v1"
            + self.chain_id.to_bytes(32, "big")
            + to_canonical_address(self.marketplace)
            + self.request_id
        )


def seal(plaintext: bytes, recipient: bytes, context: SecretContext) -> bytes:
    """Encrypt `plaintext` for the holder of the X25519 public key `recipient`."""
    if len(plaintext) > MAX_PLAINTEXT:
        raise ConfigError(
            f"the secret is {len(plaintext)} bytes; at most {MAX_PLAINTEXT} fit the "
            f"{MAX_SECRET_BYTES}-byte inline cap once sealed"
        )
    aad = bytes(context)
    content_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(_NONCE)
    body = AESGCM(content_key).encrypt(nonce, plaintext, aad)
    return bytes([ENVELOPE]) + _wrap(content_key, recipient, aad, SEAL_LABEL) + nonce + body


def rewrap(envelope: bytes, key: EncryptionKey, recipient: bytes, context: SecretContext) -> bytes:
    """The matching engine's step: a key envelope that lets `recipient` open `envelope`.

    Raises `DecryptionError` if `envelope` is not sealed to `key` for this request.
    """
    aad = bytes(context)
    content_key = _unwrap(_envelope_parts(envelope)[0], key, aad, SEAL_LABEL)
    return bytes([KEY_ENVELOPE]) + _wrap(content_key, recipient, aad, REWRAP_LABEL)


def can_open(envelope: bytes, key: EncryptionKey, context: SecretContext) -> bool:
    """Whether `envelope` is sealed to `key` for this request: only its content key is
    unwrapped, the secret itself stays encrypted (the matching engine's check)."""
    try:
        _unwrap(_envelope_parts(envelope)[0], key, bytes(context), SEAL_LABEL)
    except DecryptionError:
        return False
    return True


def opens_to_signals(envelope: bytes, key: EncryptionKey, context: SecretContext) -> bool:
    """The matching engine's admission test of a private request: the whole envelope
    decrypts and holds a JSON object (of private signals, DESIGN §8). Checking only the
    content key would let a requester seal a valid key over a broken body, which no
    generator could open: it would be handed back or slashed, to the requester's gain."""
    try:
        value = json.loads(open_sealed(envelope, key, context))
    except (DecryptionError, ValueError):  # also UnicodeDecodeError
        return False
    return isinstance(value, dict)


def open_sealed(envelope: bytes, key: EncryptionKey, context: SecretContext) -> bytes:
    """Decrypt an envelope sealed to `key` (a test-decryption, for the matching engine)."""
    aad = bytes(context)
    wrap, nonce, body = _envelope_parts(envelope)
    return _decrypt(_unwrap(wrap, key, aad, SEAL_LABEL), nonce, body, aad)


def open_with(
    envelope: bytes, key_envelope: bytes, key: EncryptionKey, context: SecretContext
) -> bytes:
    """The generator's step: decrypt `envelope` with the key envelope made for `key`."""
    aad = bytes(context)
    if len(key_envelope) != 1 + _WRAP or key_envelope[0] != KEY_ENVELOPE:
        raise DecryptionError("not a Kalypso key envelope")
    content_key = _unwrap(key_envelope[1:], key, aad, REWRAP_LABEL)
    _, nonce, body = _envelope_parts(envelope)
    return _decrypt(content_key, nonce, body, aad)


def _wrap(content_key: bytes, recipient: bytes, aad: bytes, label: bytes) -> bytes:
    if len(recipient) != 32:
        raise ConfigError("an X25519 public key is 32 bytes")
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    try:
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
    except ValueError:  # a low-order point: no shared secret
        raise ConfigError(f"0x{recipient.hex()} is not a usable X25519 public key") from None
    wrap_key = _wrap_key(shared, ephemeral_public, recipient, aad, label)
    nonce = os.urandom(_NONCE)
    return ephemeral_public + nonce + AESGCM(wrap_key).encrypt(nonce, content_key, aad)


def _unwrap(wrap: bytes, key: EncryptionKey, aad: bytes, label: bytes) -> bytes:
    ephemeral_public, nonce, sealed = wrap[:32], wrap[32 : 32 + _NONCE], wrap[32 + _NONCE :]
    try:
        shared = key.exchange(ephemeral_public)
    except ValueError:  # a low-order point: X25519 refuses it
        raise DecryptionError("not a valid ephemeral key") from None
    wrap_key = _wrap_key(shared, ephemeral_public, key.public_bytes, aad, label)
    return _decrypt(wrap_key, nonce, sealed, aad)


def _wrap_key(shared: bytes, ephemeral: bytes, recipient: bytes, aad: bytes, label: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=_KEY,
        salt=ephemeral + recipient,
        info=label + aad,
    ).derive(shared)


def _decrypt(key: bytes, nonce: bytes, body: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(nonce, body, aad)
    except InvalidTag:
        raise DecryptionError(
            "cannot decrypt: wrong key, a tampered ciphertext, or one made for another "
            "request, marketplace or chain"
        ) from None


def _envelope_parts(envelope: bytes) -> tuple[bytes, bytes, bytes]:
    if len(envelope) < ENVELOPE_OVERHEAD or envelope[0] != ENVELOPE:
        raise DecryptionError("not a Kalypso secret envelope")
    wrap = envelope[1 : 1 + _WRAP]
    nonce = envelope[1 + _WRAP : 1 + _WRAP + _NONCE]
    return wrap, nonce, envelope[1 + _WRAP + _NONCE :]
