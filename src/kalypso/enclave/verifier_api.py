"""The attestation verifier over HTTP (`kalypso attest serve`); its client is
`kalypso.enclave.attester.NitroAttester`.

    POST /nonce    -> {"nonce": "0x…", "expires_in_s": 300}
    POST /attest   {"document": "0x…"} -> the statement and its signature, or 400 and
                   {"error": reason} when the document does not verify
    GET  /health   -> {"status": "ok", "authority": address, "chain_id", "registry", "root"}

An enclave has no network of its own: inside Nitro it reaches this service through a
vsock proxy on its host (docs/enclaves.md).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from kalypso.enclave.verifier import NONCE_TTL_S, AttestationVerifier


class _Document(BaseModel):
    document: str


def verifier_app(verifier: AttestationVerifier) -> FastAPI:
    app = FastAPI(title="Kalypso attestation verifier", docs_url=None, redoc_url=None)

    @app.post("/nonce")
    def nonce() -> dict[str, Any]:
        return {"nonce": "0x" + verifier.nonce().hex(), "expires_in_s": NONCE_TTL_S}

    @app.post("/attest", response_model=None)
    def attest(body: _Document) -> dict[str, Any] | JSONResponse:
        try:
            document = bytes.fromhex(body.document.removeprefix("0x"))
            verdict = verifier.attest(document)
        except ValueError as exc:  # AttestationError is one, and so is bad hex
            return JSONResponse({"error": str(exc)}, status_code=400)
        s = verdict.statement
        return {
            "signing_key": s.signing_key,
            "encryption_key": "0x" + s.encryption_key.hex(),
            "image_id": "0x" + s.image_id.hex(),
            "timestamp_ms": s.timestamp_ms,
            "signature": "0x" + verdict.signature.hex(),
            "module_id": verdict.module_id,
            "authority": verifier.address,
        }

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "authority": verifier.address,
            "chain_id": verifier.domain.chain_id,
            "registry": verifier.domain.registry,
            "root": "aws" if verifier.root is None else "test",
        }

    return app
