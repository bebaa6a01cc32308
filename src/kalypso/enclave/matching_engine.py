"""The Matching Engine Image: it holds the key requesters seal private inputs to.

Its encryption key is registered on-chain for the deployment's Matching Engine image,
and requesters read it from there (`EnclaveRegistry.matching_engine_key`), never from
an endpoint. The matcher daemon outside the enclave never holds the key; it asks:

- `POST /can_open` {chain_id, marketplace, request_id, envelope} → {"ok": bool}: the
  envelope is sealed to this enclave for that request and opens to a JSON object of
  private signals (so no request whose secret no generator could open is assigned);
- `POST /rewrap` {..., request, generator, recipient} → {"key_envelope": hex}: the
  content key re-wrapped to `recipient`. The enclave checks on-chain that `request`
  (its fields, as in `RequestCreated`) is what the marketplace committed for that id
  and carries this envelope, that `recipient` is `generator`'s current offer key in the
  request's market, and, in a market with a Generator Image, a registered key of that
  image, while the request is open. So a compromised matcher cannot have a secret
  re-wrapped to a key of its own choosing: at most to a generator of the request's own
  market (in a Generator Image market, to that image's enclaves only).
"""

from __future__ import annotations

from typing import Any

from fastapi import Body, FastAPI, HTTPException
from web3 import Web3

from kalypso.contracts.web3tx import bind
from kalypso.crypto import SecretContext, opens_to_signals, rewrap
from kalypso.enclave.images import ImageKind
from kalypso.enclave.service import Enclave, hex_bytes, request_from_json, uint256
from kalypso.errors import DecryptionError, KalypsoError
from kalypso.market import RequestState

GENERATOR_IMAGE_KIND = 0
OPEN = int(RequestState.OPEN)
#: routes are plain functions: FastAPI runs them in its thread pool, so the chain reads
#: they make never block the event loop
BODY = Body()


class MatchingEngineImage:
    kind = ImageKind.MATCHING_ENGINE

    def measured_config(self) -> dict[str, Any]:
        return {}

    def routes(self, app: FastAPI, enclave: Enclave) -> None:
        registry = bind(enclave.w3, "GeneratorRegistry", enclave.deployment.registry)
        marketplace = bind(enclave.w3, "ProofMarketplace", enclave.deployment.marketplace)
        markets = bind(enclave.w3, "MarketRegistry", enclave.deployment.market_registry)

        def context(body: dict[str, Any]) -> tuple[SecretContext, bytes]:
            try:
                ctx = SecretContext(
                    uint256(body["chain_id"]),
                    Web3.to_checksum_address(body["marketplace"]),
                    hex_bytes(body["request_id"], 32),
                )
                envelope = hex_bytes(body["envelope"])
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
        def can_open_route(body: dict[str, Any] = BODY) -> dict[str, Any]:
            ctx, envelope = context(body)
            return {"ok": opens_to_signals(envelope, enclave.identity.encryption, ctx)}

        @app.post("/rewrap")
        def rewrap_route(body: dict[str, Any] = BODY) -> dict[str, Any]:
            ctx, envelope = context(body)
            try:
                request_fields = request_from_json(body["request"])
                generator = Web3.to_checksum_address(body["generator"])
                recipient = hex_bytes(body["recipient"], 32)
            except (KeyError, TypeError, ValueError) as exc:
                raise HTTPException(400, f"give request, generator, recipient: {exc}") from None
            committed = bytes(marketplace.functions.request_hash(ctx.request_id).call())
            if committed != request_fields.commitment() or (
                request_fields.secret_hash != Web3.keccak(envelope)
            ):
                raise HTTPException(422, "the request is not the one committed on-chain")
            state = marketplace.functions.request_state(ctx.request_id).call()[0]
            now = int(enclave.w3.eth.get_block("latest")["timestamp"])
            if state != OPEN or request_fields.expiry < now:
                raise HTTPException(422, "the request is not open for assignment")
            market_id = request_fields.market_id
            offer = registry.functions.offers(generator, market_id).call()
            if not offer[0] or bytes(offer[4]) != recipient:
                raise HTTPException(
                    422, "the recipient is not the generator's offer key in this market"
                )
            image = bytes(markets.functions.market_image(market_id, GENERATOR_IMAGE_KIND).call())
            valid_until = enclave.registry.functions.key_valid_until(
                recipient, market_id, image
            ).call()
            # as the contract assigns: a live key of the image until the task's deadline
            if not any(image) or valid_until < now + request_fields.proof_time:
                raise HTTPException(
                    422,
                    "the recipient is not a key of the market's Generator Image that stays "
                    "valid until the task's deadline",
                )
            try:
                wrapped = rewrap(envelope, enclave.identity.encryption, recipient, ctx)
            except DecryptionError:
                raise HTTPException(422, "the envelope is not sealed to this enclave") from None
            except KalypsoError as exc:  # a low-order recipient key
                raise HTTPException(422, f"cannot wrap to the recipient: {exc}") from None
            return {"key_envelope": "0x" + wrapped.hex()}
