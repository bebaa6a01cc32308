"""The attestation verifier: a Nitro document in, a signed `Enclave` statement out.

This is the attestation authority of a real deployment (the address `kalypso deploy
--attestation-authority` names). An enclave asks it for a nonce, asks its NSM for a
document binding its X25519 encryption key (`public_key`, 32 bytes), its signing
address (`user_data`, 20 bytes) and that nonce, and sends the document. The verifier
checks it against the AWS root *now* (`kalypso.enclave.nitro`), that the nonce is one it
issued and has not seen back, that the document is minutes old at most, and maps the
PCRs to the image id (`nitro_image_id`). It then signs the EIP-712 `Enclave` statement
(keys, image id, the document's timestamp) in the registry's domain: the registry
checks that signature and the statement's age, and the market's image list decides
whether the image may serve it.

The signing key is long-lived (a keystore): a new key is a new authority, which takes
the registry's timelock to install.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from eth_utils import to_checksum_address

from kalypso.enclave import nitro
from kalypso.enclave.images import nitro_image_id
from kalypso.enclave.statements import Domain, EnclaveStatement, address_of, sign
from kalypso.errors import AttestationError

#: seconds a nonce stays valid, and the most kept waiting at once (the oldest go first)
NONCE_TTL_S = 300.0
MAX_NONCES = 10_000
#: the oldest document taken, and how far ahead of our clock one may be (clock skew)
MAX_DOCUMENT_AGE_MS = 5 * 60_000
MAX_SKEW_MS = 60_000


@dataclass(frozen=True)
class Verdict:
    """A verified enclave: the statement for the registry and the authority's signature."""

    statement: EnclaveStatement
    signature: bytes
    module_id: str


class AttestationVerifier:
    """Checks Nitro documents and signs statements with `key` for the registry `domain`.

    `root` replaces AWS's root (tests only); `clock` returns seconds since the epoch."""

    def __init__(
        self,
        key: bytes,
        domain: Domain,
        *,
        root: x509.Certificate | None = None,
        allow_debug: bool = False,
        max_age_ms: int = MAX_DOCUMENT_AGE_MS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self.address = address_of(key)
        self.domain = domain
        self.root = root
        self.allow_debug = allow_debug
        self.max_age_ms = max_age_ms
        self._clock = clock
        self._nonces: dict[bytes, float] = {}  # issued, unused: expiry

    def nonce(self) -> bytes:
        """A fresh 32-byte nonce, good for one document within `NONCE_TTL_S`."""
        now = self._clock()
        while self._nonces:  # oldest first: issued in order, all with the same TTL
            oldest = next(iter(self._nonces))
            if self._nonces[oldest] > now and len(self._nonces) < MAX_NONCES:
                break
            del self._nonces[oldest]
        nonce = secrets.token_bytes(32)
        self._nonces[nonce] = now + NONCE_TTL_S
        return nonce

    def attest(self, document: bytes) -> Verdict:
        """The signed statement for `document`; `AttestationError` saying why not."""
        now_ms = int(self._clock() * 1000)
        doc = nitro.verify(document, at_ms=now_ms, root=self.root, allow_debug=self.allow_debug)
        age = now_ms - doc.timestamp_ms
        if age > self.max_age_ms or age < -MAX_SKEW_MS:
            raise AttestationError(
                f"the document was made {age / 1000:.0f} s ago: it must be at most "
                f"{self.max_age_ms / 1000:.0f} s old (and no more than "
                f"{MAX_SKEW_MS / 1000:.0f} s ahead of this verifier's clock)"
            )
        if doc.public_key is None or len(doc.public_key) != 32:
            raise AttestationError("public_key must be the enclave's 32-byte X25519 key")
        if doc.user_data is None or len(doc.user_data) != 20:
            raise AttestationError("user_data must be the enclave's 20-byte signing address")
        if doc.nonce is None or self._nonces.get(doc.nonce, 0.0) <= now_ms / 1000:
            raise AttestationError(
                "the document's nonce was not issued by this verifier, expired, or was used: "
                "ask POST /nonce for a fresh one"
            )
        del self._nonces[doc.nonce]  # last: a document refused leaves its nonce usable
        statement = EnclaveStatement(
            signing_key=to_checksum_address(doc.user_data),
            encryption_key=doc.public_key,
            image_id=nitro_image_id(doc.pcrs),
            timestamp_ms=doc.timestamp_ms,
        )
        return Verdict(statement, sign(self.domain, statement, self._key), doc.module_id)
