"""The Matching Engine Image: it holds the key requesters seal private inputs to.

Its encryption key is registered on-chain for the deployment's Matching Engine image,
and requesters read it from there (`EnclaveRegistry.matching_engine_key`), never from
an endpoint. The matcher daemon outside the enclave never holds the key; it asks:

- `POST /can_open` {chain_id, marketplace, request_id, envelope} → {"ok": bool}: the
  envelope is sealed to this enclave for that request (only the content key is
  unwrapped; the secret stays encrypted);
- `POST /rewrap` {..., request, generator, recipient} → {"key_envelope": hex}: the
  content key re-wrapped to `recipient`. The enclave checks on-chain that `request`
  (its fields, as in `RequestCreated`) is what the marketplace committed for that id
  and carries this envelope, that `recipient` is `generator`'s current offer key in the
  request's market, and, in a market with a Generator Image, a registered key of that
  image. So a compromised matcher cannot have a secret re-wrapped to a key of its own
  choosing: at most to a generator of the request's own market.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi import Request as HttpRequest
from web3 import Web3

from kalypso.contracts.web3tx import bind
from kalypso.crypto import SecretContext, can_open, rewrap
from kalypso.enclave.images import ImageKind
from kalypso.enclave.service import Enclave, _hex, request_from_json
from kalypso.enclave.verdicts import _json
from kalypso.errors import DecryptionError

GENERATOR_IMAGE_KIND = 0


class MatchingEngineImage:
    kind = ImageKind.MATCHING_ENGINE

    def measured_config(self) -> dict[str, Any]:
        return {}

    def routes(self, app: FastAPI, enclave: Enclave) -> None:
        registry = bind(enclave.w3, "GeneratorRegistry", enclave.deployment.registry)
        marketplace = bind(enclave.w3, "ProofMarketplace", enclave.deployment.marketplace)

        def context(body: dict[str, Any]) -> tuple[SecretContext, bytes]:
            try:
                ctx = SecretContext(
                    int(body["chain_id"]),
                    Web3.to_checksum_address(body["marketplace"]),
                    _hex(body["request_id"], 32),
                )
                envelope = _hex(body["envelope"])
            except (KeyError, TypeError, ValueError) as exc:
                detail = f"give chain_id, marketplace, request_id, envelope: {exc}"
                raise HTTPException(400, detail) from None
            if (ctx.chain_id, ctx.marketplace) != (
                enclave.deployment.chain_id,
                Web3.to_checksum_address(enclave.deployment.marketplace),
            ):
                raise HTTPException(422, "this enclave serves another deployment")
            return ctx, envelope

        @app.post("/can_open")
        async def can_open_route(request: HttpRequest) -> dict[str, Any]:
            ctx, envelope = context(await _json(request))
            return {"ok": can_open(envelope, enclave.identity.encryption, ctx)}

        @app.post("/rewrap")
        async def rewrap_route(request: HttpRequest) -> dict[str, Any]:
            body = await _json(request)
            ctx, envelope = context(body)
            try:
                request_fields = request_from_json(body["request"])
                generator = Web3.to_checksum_address(body["generator"])
                recipient = _hex(body["recipient"], 32)
            except (KeyError, TypeError, ValueError) as exc:
                raise HTTPException(400, f"give request, generator, recipient: {exc}") from None
            committed = bytes(marketplace.functions.request_hash(ctx.request_id).call())
            if committed != request_fields.commitment() or (
                request_fields.secret_hash != Web3.keccak(envelope)
            ):
                raise HTTPException(422, "the request is not the one committed on-chain")
            market_id = request_fields.market_id
            offer = registry.functions.offers(generator, market_id).call()
            if not offer[0] or bytes(offer[4]) != recipient:
                raise HTTPException(
                    422, "the recipient is not the generator's offer key in this market"
                )
            image = bytes(
                marketplace.functions.market_image(market_id, GENERATOR_IMAGE_KIND).call()
            )
            if (
                any(image)
                and not enclave.registry.functions.is_enclave_key(
                    recipient, market_id, image
                ).call()
            ):
                raise HTTPException(
                    422, "the recipient is not a key of the market's Generator Image"
                )
            try:
                wrapped = rewrap(envelope, enclave.identity.encryption, recipient, ctx)
            except DecryptionError:
                raise HTTPException(422, "the envelope is not sealed to this enclave") from None
            return {"key_envelope": "0x" + wrapped.hex()}
