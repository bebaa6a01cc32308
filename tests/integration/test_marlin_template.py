"""The Marlin prover-template stand-in answers as the template does: a conformance table
of route x method x body -> status and body, each row cited to
docs/reference/marlin-prover-api.md (which cites Marlin's source and actix-web's)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak

from kalypso.circuits import circuit
from kalypso.devnet import free_port
from kalypso.market import encode_signals
from kalypso.provers.proof import Groth16Proof

LAYOUTS = ("prover", "ivs", "confidential")


class StandIn:
    def __init__(self, layout: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.provers.marlin_template", layout,
             str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("listening"), line + self.process.stderr.read()  # type: ignore[union-attr]
        self.address = line.split()[-1]
        self.url = f"http://127.0.0.1:{self.port}"

    def call(
        self, method: str, path: str, body: Any = None, *, content: bytes | None = None,
        content_type: str = "application/json",
    ) -> httpx.Response:  # fmt: skip
        if content is None and body is not None:
            content = httpx.Request("POST", "/", json=body).content
        return httpx.request(
            method, self.url + path, content=content, headers={"content-type": content_type},
            timeout=60,
        )  # fmt: skip

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, StandIn]]:
    running = {layout: StandIn(layout) for layout in LAYOUTS}
    yield running
    for server in running.values():
        server.stop()


def public(square: int, max_root: int) -> list[int]:
    """`public` as Marlin's circom markets carry it: abi.encode(uint256[N]) (§4)."""
    return list(encode(["uint256[2]"], [[square, max_root]]))


VALID, INVALID = public(49, 10), public(50, 10)
EMPTY = ""
#: (layout, method, path, body, status, answer): answer is the JSON body, or the text
#: the body starts with. Cited to sections of docs/reference/marlin-prover-api.md.
TABLE: list[tuple[str, str, str, Any, int, Any]] = [
    # §1 routes per layout; §3 unknown path or wrong method: an empty 404
    ("prover", "GET", "/api/test", None, 200, {"data": "Generator is running!"}),
    ("ivs", "GET", "/api/test", None, 200, {"data": "Running!"}),
    ("confidential", "GET", "/api/test", None, 200, {"data": "Running!"}),
    ("prover", "POST", "/api/checkInput", {"public": VALID}, 404, EMPTY),
    ("ivs", "POST", "/api/generateProof", {"public": VALID}, 404, EMPTY),
    ("ivs", "GET", "/api/benchmark", None, 404, EMPTY),
    ("prover", "GET", "/api/generateProof", None, 404, EMPTY),
    ("confidential", "PUT", "/api/checkInput", {"public": VALID}, 404, EMPTY),
    ("confidential", "GET", "/api/nope", None, 404, EMPTY),
    # §2 bodies, §3 verdicts: every verdict 200
    ("ivs", "POST", "/api/checkInput", {"public": VALID, "secrets": None}, 200, {"valid": True}),
    ("ivs", "POST", "/api/checkInput", {"public": INVALID}, 200, {"valid": False}),
    ("confidential", "POST", "/api/checkInput", {"public": VALID, "extra": 1}, 200,
     {"valid": True}),
    ("ivs", "POST", "/api/checkInput",
     {"public": VALID, "secrets": {"PlainSecrets": [123, 125]}}, 200, {"valid": True}),
    ("ivs", "POST", "/api/checkInput",
     {"public": VALID, "secrets": {"EncryptedSecrets": {"encrypted_data": [1], "acl": [2]}}},
     200, {"valid": True}),
    ("ivs", "POST", "/api/getAttestationForInvalidInputs",
     {"ask_id": "0x7", "public": VALID, "secrets": {"PlainSecrets": [1]}}, 200, {"valid": True}),
    ("ivs", "POST", "/api/verifyInputsAndProof",
     {"public_input": VALID, "private_input": None, "proof": [0] * 256}, 200,
     {"is_input_and_proof_valid": False}),
    ("ivs", "POST", "/api/checkEncryptedInputs",
     {"acl": [1], "encrypted_secrets": [2], "me_decryption_url": "", "market_id": "1"}, 417,
     {"message": "Unable to get response from matching engine", "data": None}),
    # §3 bodies that do not deserialize: 400 text/plain
    ("ivs", "POST", "/api/checkInput", {"public": "0x00"}, 400, "Json deserialize error"),
    ("ivs", "POST", "/api/checkInput", {"public": [256]}, 400, "Json deserialize error"),
    ("ivs", "POST", "/api/checkInput", {"secrets": None}, 400, "Json deserialize error"),
    ("ivs", "POST", "/api/checkInput", {"public": VALID, "secrets": {"Bogus": []}}, 400,
     "Json deserialize error"),
    ("ivs", "POST", "/api/checkInput", [1, 2], 400, "Json deserialize error"),
    ("ivs", "POST", "/api/getAttestationForInvalidInputs",
     {"ask_id": 7, "public": INVALID, "secrets": None}, 400, "Json deserialize error"),
]  # fmt: skip


@pytest.mark.parametrize(("layout", "method", "path", "body", "status", "answer"), TABLE)
def test_the_stand_in_answers_as_the_template(
    servers: dict[str, StandIn], layout: str, method: str, path: str, body: Any, status: int,
    answer: Any,
) -> None:  # fmt: skip
    response = servers[layout].call(method, path, body)
    assert response.status_code == status, response.text
    if isinstance(answer, dict):
        assert response.headers["content-type"] == "application/json"
        assert response.json() == answer
    elif answer == EMPTY:
        assert response.content == b""
    else:
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text.startswith(answer)


def test_a_body_that_is_not_json_or_not_typed_json_is_a_400(servers: dict[str, StandIn]) -> None:
    ivs = servers["ivs"]
    broken = ivs.call("POST", "/api/checkInput", content=b"{")
    assert (broken.status_code, broken.text[:22]) == (400, "Json deserialize error")
    typed = ivs.call("POST", "/api/checkInput", {"public": VALID}, content_type="text/plain")
    assert (typed.status_code, typed.text) == (400, "Content type error")
    assert ivs.call("POST", "/api/checkInput", {"public": VALID},
                    content_type="application/vnd.x+json").status_code == 200  # fmt: skip


def test_a_body_over_two_mebibytes_is_a_413(servers: dict[str, StandIn]) -> None:
    big = b'{"public": [' + b"0," * 1_100_000 + b"0]}"
    answer = servers["ivs"].call("POST", "/api/checkInput", content=big)
    assert answer.status_code == 413 and "larger than allowed (limit: 2097152" in answer.text


def test_the_proof_verifies_and_the_benchmark_times_one(servers: dict[str, StandIn]) -> None:
    for layout in ("prover", "confidential"):
        answer = servers[layout].call("POST", "/api/generateProof", {"public": VALID})
        assert answer.status_code == 200
        proof = Groth16Proof.from_calldata(bytes(answer.json()["proof"]), encode_signals([49, 10]))
        assert proof.verify_local(circuit("square_root").vkey_json())
    bench = servers["prover"].call("GET", "/api/benchmark").json()
    assert bench["data"] == "Success" and isinstance(bench["time_in_ms"], int)


def test_the_invalid_input_signature_is_over_the_ask_id_and_public_only(
    servers: dict[str, StandIn],
) -> None:
    """keccak256(abi.encode(uint256 askId, bytes public)), EIP-191 (§4): nothing binds it
    to a chain, a contract or the secrets, which is why Kalypso never uses it."""
    ivs = servers["ivs"]
    body = {"ask_id": "0x2a", "public": INVALID, "secrets": {"PlainSecrets": [1, 2]}}
    signature = bytes(ivs.call("POST", "/api/getAttestationForInvalidInputs", body).json()["proof"])
    digest = keccak(encode(["uint256", "bytes"], [42, bytes(INVALID)]))
    signer = Account.recover_message(encode_defunct(primitive=digest), signature=signature)
    assert len(signature) == 65 and signer == ivs.address


@pytest.mark.parametrize(
    ("layout", "path", "body"),
    [
        ("prover", "/api/generateProof", {"public": INVALID}),  # no witness: unwrap
        ("ivs", "/api/getAttestationForInvalidInputs",  # secrets null: unwrap (ivs.rs l.85)
         {"ask_id": "0x1", "public": INVALID, "secrets": None}),
    ],
)  # fmt: skip
def test_a_panic_aborts_the_process_and_the_caller_gets_no_answer(
    layout: str, path: str, body: Any
) -> None:
    server = StandIn(layout)
    try:
        with pytest.raises(httpx.RemoteProtocolError):
            server.call("POST", path, body)
        assert server.process.wait(timeout=10) == 134  # abort: the whole process is gone
    finally:
        server.stop()
