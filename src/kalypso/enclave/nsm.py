"""Attestation documents from the Nitro Secure Module, inside a Nitro enclave.

`NsmDevice` asks `/dev/nsm` through `aws-nsm-interface` (PyPI; `pip install
'kalypso[nitro]'`, only inside an enclave image). Anything with the same `document`
method can stand in for it: `kalypso.testing.nitro_ca.SimulatedNsm` does in tests.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from kalypso.errors import ConfigError

NSM_DEVICE = "/dev/nsm"


class DocumentSource(Protocol):
    def document(self, *, public_key: bytes, user_data: bytes, nonce: bytes) -> bytes:
        """A signed attestation document binding these three values."""
        ...


class NsmDevice:
    """The NSM of the enclave this runs in."""

    def document(self, *, public_key: bytes, user_data: bytes, nonce: bytes) -> bytes:
        nsm = _interface()
        if not os.path.exists(NSM_DEVICE):
            raise ConfigError(f"no {NSM_DEVICE}: this is not running inside a Nitro enclave")
        handle = nsm.open_nsm_device()
        try:
            answer = nsm.get_attestation_doc(
                handle, user_data=user_data, nonce=nonce, public_key=public_key
            )
        finally:
            nsm.close_nsm_device(handle)
        return bytes(answer["document"])


def _interface() -> Any:
    try:
        import aws_nsm_interface
    except ImportError:
        raise ConfigError(
            "asking the NSM for a document needs aws-nsm-interface: pip install "
            "'kalypso[nitro]' in the enclave image"
        ) from None
    return aws_nsm_interface
