"""Who holds the key private inputs are sealed to: the matcher itself, or its enclave.

- `LocalKeeper`: a key file (`encryption_key = ...`). The matcher process can then read
  every secret; fine on a devnet, said plainly in the trust model.
- `EnclaveKeeper`: a Matching Engine Image (`enclave_url = ...`). The key never leaves
  the enclave, requesters read it from the on-chain registry, and the enclave re-wraps
  only to the chosen generator's on-chain key of the request's own market.

The matcher asks both the same two questions, synchronously (a local enclave answers in
about a millisecond). An enclave that cannot be reached raises `ChainError`, so the
stage that asked retries, rather than deciding that a request cannot be opened.
"""

from __future__ import annotations

import time
from typing import Protocol

import httpx

from kalypso.crypto import EncryptionKey, SecretContext, opens_to_signals, rewrap
from kalypso.daemon import jsonable
from kalypso.errors import ChainError, ConfigError, DecryptionError
from kalypso.market import Request

#: how long a call waits for an enclave that does not answer, in all
ENCLAVE_PATIENCE = 10.0


class SecretKeeper(Protocol):
    #: the X25519 key requests are sealed to
    public_key: bytes
    #: the Matching Engine enclave's signing address (None: a local key)
    enclave: str | None

    def can_open(self, context: SecretContext, envelope: bytes) -> bool: ...

    def rewrap(
        self,
        context: SecretContext,
        request: Request,
        envelope: bytes,
        generator: str,
        recipient: bytes,
    ) -> bytes:
        """A key envelope for `recipient`; `DecryptionError` (or another KalypsoError)
        when the secret cannot be re-wrapped to it."""
        ...


class LocalKeeper:
    """A key file and the keys it replaced (`kalypso key rotate`): requests are sealed to
    the newest, and those sealed before a rotation still open with a retired one."""

    enclave: str | None = None

    def __init__(self, keys: list[EncryptionKey]) -> None:
        if not keys:
            raise ConfigError("a local keeper needs a key")
        self.keys = keys
        self.public_key = keys[0].public_bytes

    def _opening(self, context: SecretContext, envelope: bytes) -> EncryptionKey | None:
        return next((k for k in self.keys if opens_to_signals(envelope, k, context)), None)

    def can_open(self, context: SecretContext, envelope: bytes) -> bool:
        return self._opening(context, envelope) is not None

    def rewrap(
        self,
        context: SecretContext,
        request: Request,
        envelope: bytes,
        generator: str,
        recipient: bytes,
    ) -> bytes:
        key = self._opening(context, envelope)
        if key is None:
            raise DecryptionError("the envelope opens with none of the matcher's keys")
        return rewrap(envelope, key, recipient, context)


class EnclaveKeeper:
    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(timeout=timeout)
        attestation = self._call("GET", "/attestation", None)
        self.public_key = bytes.fromhex(str(attestation["encryption_key"])[2:])
        self.enclave: str | None = str(attestation["signing_key"])
        if attestation.get("image") != "matcher":
            raise ConfigError(f"{url} is a {attestation.get('image')} enclave, not the matcher's")

    def can_open(self, context: SecretContext, envelope: bytes) -> bool:
        return bool(self._call("POST", "/can_open", _body(context, envelope))["ok"])

    def rewrap(
        self,
        context: SecretContext,
        request: Request,
        envelope: bytes,
        generator: str,
        recipient: bytes,
    ) -> bytes:
        body = _body(context, envelope) | {
            "request": jsonable(request),
            "generator": generator,
            "recipient": "0x" + recipient.hex(),
        }
        return bytes.fromhex(str(self._call("POST", "/rewrap", body)["key_envelope"])[2:])

    def _call(self, method: str, path: str, body: dict[str, object] | None) -> dict[str, object]:
        deadline = time.monotonic() + ENCLAVE_PATIENCE
        while True:
            try:
                answer = self.http.request(method, self.url + path, json=body)
                break
            except httpx.TransportError as exc:
                if time.monotonic() > deadline:
                    raise ChainError(f"the matching engine enclave at {self.url}: {exc}") from None
                time.sleep(0.2)
        if answer.status_code == 422:
            raise DecryptionError(f"the enclave refused: {answer.json().get('detail')}")
        if answer.status_code != 200:
            raise ChainError(f"the enclave answered {answer.status_code}: {answer.text[:200]}")
        result: dict[str, object] = answer.json()
        return result


def _body(context: SecretContext, envelope: bytes) -> dict[str, object]:
    return {
        "chain_id": context.chain_id,
        "marketplace": context.marketplace,
        "request_id": "0x" + context.request_id.hex(),
        "envelope": "0x" + envelope.hex(),
    }
