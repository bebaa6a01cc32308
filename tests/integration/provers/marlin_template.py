"""A stand-in for a prover built on Marlin's Kalypso prover template, square_root circuit.

It answers as the template's actix-web servers answer, status codes and all. Each
behaviour cites docs/reference/marlin-prover-api.md, which cites Marlin's source
(kalypso-unified `generator/src/generator.rs`, `ivs/src/ivs.rs`, the models, and
actix-web's defaults):

- layouts (§1): `prover`, the non-confidential prover (GET /api/test, GET /api/benchmark,
  POST /api/generateProof); `ivs`, the input verification server (GET /api/test and five
  POST routes); `confidential`, all eight routes on one port;
- bodies (§2): serde JSON, `Vec<u8>` as arrays of 0-255, `secrets` null or an externally
  tagged `{"PlainSecrets": [...]}` / `{"EncryptedSecrets": {...}}`, unknown fields ignored;
- answers (§3): every verdict 200 JSON; a body that does not deserialize 400 text/plain
  `Json deserialize error: …`; a content type that is not JSON 400 `Content type error`;
  a body over 2 MiB 413; an unknown path or a wrong method 404 with an empty body;
- a prover that cannot prove panics, and the template builds with `panic = "abort"`:
  the process dies and the connection closes with no answer (§3).

`public` is `abi.encode(uint256[2])` (square, max_root), as Marlin's circom wrappers
decode a fixed array (§4). A confidential prover gets the private input `root` as
`PlainSecrets` (Kalypso's private-input JSON, `{"root":"7"}`) and proves with it; without
secrets it finds the root itself, as a non-confidential prover of public inputs must.

Run: `python -m tests.integration.provers.marlin_template LAYOUT PORT`; it prints
`listening` when ready.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak

LIMIT = 2_097_152  # actix-web's JsonConfig default (§3)
Handler = Callable[[Any], Awaitable[web.Response]]


class Deserialize(Exception):
    """What serde would refuse: actix answers 400 `Json deserialize error: …`."""


def u8s(value: Any, field: str) -> bytes:
    if not isinstance(value, list) or not all(
        isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in value
    ):
        raise Deserialize(f"invalid type: expected a sequence of u8 at field `{field}`")
    return bytes(value)


def secrets_of(body: dict[str, Any]) -> tuple[str, bytes] | None:
    """`Option<Secrets>`: null or absent is None; else one externally tagged variant."""
    value = body.get("secrets")
    if value is None:
        return None
    if isinstance(value, dict) and len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "PlainSecrets":
            return tag, u8s(inner, "PlainSecrets")
        if tag == "EncryptedSecrets" and isinstance(inner, dict):
            return tag, u8s(inner.get("encrypted_data"), "encrypted_data")
    raise Deserialize("unknown variant, expected `PlainSecrets` or `EncryptedSecrets`")


def signals(public: bytes) -> tuple[int, int] | None:
    """(square, max_root) from abi.encode(uint256[2]); None when not 64 bytes."""
    if len(public) != 64:
        return None
    return int.from_bytes(public[:32], "big"), int.from_bytes(public[32:], "big")


def secret_root(secrets: tuple[str, bytes] | None) -> int | None:
    """The root a requester sealed (`{"root":"7"}`, Kalypso's private-input JSON), given
    as PlainSecrets to a confidential prover; None for secrets that carry none."""
    if secrets is None or secrets[0] != "PlainSecrets":
        return None
    try:
        return int(json.loads(secrets[1])["root"])
    except (ValueError, KeyError, TypeError):
        return None


def witness(public: bytes, root: int | None) -> dict[str, int] | None:
    """The circuit's inputs for `public`, with the secret root or the one the circuit's
    own solver finds; None when the circuit has no witness for them."""
    from kalypso.circuits.solvers import MAX_ROOT_BOUND, square_root
    from kalypso.provers import InvalidInputs

    values = signals(public)
    if values is None:
        return None
    inputs = {"square": values[0], "max_root": values[1]}
    if root is None:
        solved = square_root(inputs)
        return None if isinstance(solved, InvalidInputs) else {**inputs, **solved}
    if root * root != values[0] or not 0 <= root <= values[1] < MAX_ROOT_BOUND:
        return None
    return {**inputs, "root": root}


def provable(public: bytes, secrets: tuple[str, bytes] | None = None) -> bool:
    return witness(public, secret_root(secrets)) is not None


def panic(why: str) -> None:
    """`panic = "abort"`: the whole process dies; the caller gets no answer (§3)."""
    print(f"thread 'actix-rt|system:0|arbiter:0' panicked: {why}", file=sys.stderr, flush=True)
    os._exit(134)


def answer(body: dict[str, Any], status: int = 200) -> web.Response:
    """actix's `HttpResponse::…().json(..)`: compact JSON, `application/json`, no charset."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    return web.Response(body=raw, status=status, headers={"Content-Type": "application/json"})


def ok(body: dict[str, Any]) -> web.Response:
    return answer(body)


class Template:
    def __init__(self, layout: str) -> None:
        self.key = Account.create()
        prover = {
            ("GET", "/api/benchmark"): self.benchmark,
            ("POST", "/api/generateProof"): self.generate_proof,
        }
        ivs = {
            ("POST", "/api/checkInput"): self.check_input,
            ("POST", "/api/getAttestationForInvalidInputs"): self.attest_invalid,
            ("POST", "/api/checkEncryptedInputs"): self.check_encrypted,
            ("POST", "/api/verifyInputsAndProof"): self.verify_inputs_and_proof,
            ("POST", "/api/signInputsAndProofForNonConfidentialInputs"): self.sign_proof,
        }
        greeting = "Generator is running!" if layout == "prover" else "Running!"

        async def test(_: Any) -> web.Response:
            return ok({"data": greeting})

        routes: dict[tuple[str, str], Handler] = {("GET", "/api/test"): test}
        if layout in ("prover", "confidential"):
            routes |= prover
        if layout in ("ivs", "confidential"):
            routes |= ivs
        self.routes = routes

    async def handle(self, request: web.BaseRequest) -> web.Response:
        handler = self.routes.get((request.method, request.path))
        if handler is None:  # no default service: an empty 404, for a wrong method too
            return web.Response(status=404)
        if request.method == "GET":
            return await handler(None)
        kind = request.content_type
        if not (kind.endswith("/json") or kind.endswith("+json")):
            return web.Response(status=400, text="Content type error")
        length = request.content_length
        if length is not None and length > LIMIT:
            said = f"JSON payload ({length} bytes) is larger than allowed (limit: {LIMIT} bytes)."
            return web.Response(status=413, text=said)
        raw = await request.content.read(LIMIT + 1)
        if len(raw) > LIMIT:
            return web.Response(
                status=413, text=f"JSON payload has exceeded limit ({LIMIT} bytes)."
            )
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise Deserialize("invalid type: expected a struct")
            return await handler(body)
        except (ValueError, Deserialize) as exc:
            return web.Response(status=400, text=f"Json deserialize error: {exc}")

    # ---- the prover's routes (generator.rs)

    async def benchmark(self, _: Any) -> web.Response:
        started = time.monotonic()
        await self.prove(encode(["uint256[2]"], [[49, 10]]), None)
        return ok({"data": "Success", "time_in_ms": int((time.monotonic() - started) * 1000)})

    async def generate_proof(self, body: dict[str, Any]) -> web.Response:
        public = u8s(body.get("public"), "public")
        proof = await self.prove(public, secrets_of(body))
        return ok({"proof": list(proof)})

    async def prove(self, public: bytes, secrets: tuple[str, bytes] | None) -> bytes:
        from kalypso.provers import InvalidInputs
        from kalypso.provers.snarkjs import SnarkjsGroth16Prover

        if signals(public) is None:
            panic("called `Result::unwrap()` on an `Err` value: abi decode")
        inputs = witness(public, secret_root(secrets))
        if inputs is None:
            panic("called `Result::unwrap()` on an `Err` value: no witness")
            raise AssertionError  # unreachable
        prover = SnarkjsGroth16Prover.for_circuit("square_root")
        try:
            result = await prover.prove(inputs)
        finally:
            await prover.close()
        if isinstance(result, InvalidInputs):
            panic("called `Result::unwrap()` on an `Err` value: no witness")
            raise AssertionError  # unreachable
        return result.calldata()

    # ---- the IVS routes (ivs.rs)

    async def check_input(self, body: dict[str, Any]) -> web.Response:
        public = u8s(body.get("public"), "public")
        return ok({"valid": provable(public, secrets_of(body))})

    async def attest_invalid(self, body: dict[str, Any]) -> web.Response:
        ask_id = body.get("ask_id")
        if not isinstance(ask_id, str):
            raise Deserialize("invalid type: expected a 0x-prefixed hex string at `ask_id`")
        try:
            ask = int(ask_id, 16)
        except ValueError:
            raise Deserialize("invalid hex character in `ask_id`") from None
        public = u8s(body.get("public"), "public")
        secrets = secrets_of(body)
        if provable(public, secrets):
            return ok({"valid": True})
        if secrets is None or secrets[0] != "PlainSecrets":
            panic("called `Option::unwrap()` on a `None` value")  # ivs.rs l.85
        digest = keccak(encode(["uint256", "bytes"], [ask, public]))
        signed = self.key.sign_message(encode_defunct(primitive=digest))
        return ok({"proof": list(signed.signature)})

    async def check_encrypted(self, body: dict[str, Any]) -> web.Response:
        u8s(body.get("acl"), "acl")
        u8s(body.get("encrypted_secrets"), "encrypted_secrets")
        said = {"message": "Unable to get response from matching engine", "data": None}
        return answer(said, 417)  # ivs.rs l.149-155: the matching engine is not reachable

    async def verify_inputs_and_proof(self, body: dict[str, Any]) -> web.Response:
        proof = u8s(body.get("proof"), "proof")
        public = body.get("public_input")
        valid = public is not None and self.verifies(u8s(public, "public_input"), proof)
        return ok({"is_input_and_proof_valid": valid})

    async def sign_proof(self, body: dict[str, Any]) -> web.Response:
        public = u8s(body.get("public_input"), "public_input")
        proof = u8s(body.get("proof"), "proof")
        if not self.verifies(public, proof):
            return ok({"is_input_and_proof_valid": False})
        digest = keccak(encode(["bytes", "bytes"], [public, proof]))
        return ok(
            {"proof": list(self.key.sign_message(encode_defunct(primitive=digest)).signature)}
        )

    def verifies(self, public: bytes, proof: bytes) -> bool:
        from kalypso.circuits import circuit
        from kalypso.market import encode_signals
        from kalypso.provers.proof import Groth16Proof

        values = signals(public)
        if values is None or len(proof) != 256:
            return False
        decoded = Groth16Proof.from_calldata(proof, encode_signals(list(values)))
        return decoded.verify_local(circuit("square_root").vkey_json())


async def serve(layout: str, port: int) -> None:
    template = Template(layout)
    server = web.Server(template.handle)
    runner = web.ServerRunner(server)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"listening {layout} on {port}, attesting as {template.key.address}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    layout, port = sys.argv[1], int(sys.argv[2])
    if layout not in ("prover", "ivs", "confidential"):
        sys.exit("layout: prover | ivs | confidential")
    asyncio.run(serve(layout, port))
