"""Test helpers over a titanoboa deployment: fund accounts, create markets, requests, tasks."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import boa
from eth_utils import keccak

from kalypso.contracts.deploy import BoaDeployment
from kalypso.market import (
    MarketParams,
    Request,
    RequestKinds,
    TaskState,
    encode_signals,
    request_id,
)
from kalypso.market.mock import mock_proof

__all__ = [
    "PENALTY",
    "TEST_GENERATOR_IMAGE",
    "UNIT",
    "Kal",
    "events",
    "inline_verifier",
    "live",
    "mock_proof",
    "now",
    "prove",
    "state",
]

UNIT = 10**18
TEST_GENERATOR_IMAGE = keccak(b"test/generator-image")
PENALTY = 100 * UNIT
ZERO = "0x" + "00" * 20


@dataclass
class Kal:
    d: BoaDeployment

    @property
    def market(self) -> Any:
        return self.d.marketplace

    @property
    def markets(self) -> Any:
        return self.d.markets

    @property
    def registry(self) -> Any:
        return self.d.registry

    @property
    def token(self) -> Any:
        return self.d.token

    def fund(self, who: str, amount: int = 10_000 * UNIT, approve: bool = True) -> None:
        self.token.transfer(who, amount, sender=self.d.owner)
        if approve:
            self.token.approve(self.market.address, 2**256 - 1, sender=who)
            self.token.approve(self.registry.address, 2**256 - 1, sender=who)

    def create_market(
        self,
        penalty: int = PENALTY,
        *,
        input_verifier: bool = True,
        public_inputs_count: int = 1,
        creator: str | None = None,
        private: bool = False,
    ) -> int:
        """A market of the test verifier; `private`: it takes secrets too, opened by a
        (test) Generator Image."""
        params = MarketParams(
            verifier=self.d.mock_verifier.address,
            slashing_penalty=penalty,
            input_verifier=self.d.input_verifier.address if input_verifier else ZERO,
            public_inputs_count=public_inputs_count,
            all_inputs_provable=not input_verifier,
            generator_image=TEST_GENERATOR_IMAGE if private else b"\x00" * 32,
            request_kinds=RequestKinds.BOTH if private else RequestKinds.PUBLIC,
        )
        sample = encode_signals([7] * public_inputs_count) if public_inputs_count else b"\x01"
        creator = creator or self.d.owner
        proof = mock_proof(sample, b"\x00" * 32, creator)
        return int(
            self.markets.create_market(
                params.as_tuple(), b'{"name":"test"}', sample, proof, 2**256 - 1, sender=creator
            )
        )

    def register(
        self,
        generator: str,
        market_id: int,
        *,
        stake: int = 1_000 * UNIT,
        compute: int = 10,
        price: int = 10 * UNIT,
        proof_time: int = 600,
        compute_per_request: int = 1,
    ) -> None:
        self.fund(generator, stake + 1_000 * UNIT)
        self.registry.register(generator, compute, stake, sender=generator)
        self.registry.join_market(
            market_id, price, proof_time, compute_per_request, b"\x00" * 32, sender=generator
        )

    def request(
        self,
        requester: str,
        market_id: int,
        *,
        signals: list[int] | None = None,
        max_price: int = 50 * UNIT,
        proof_time: int = 3600,
        expiry_in: int = 600,
        secret: bytes = b"",
        salt: bytes | None = None,
    ) -> tuple[bytes, Request, bytes]:
        inputs = encode_signals(signals if signals is not None else [42])
        salt = salt or os.urandom(32)
        expiry = boa.env.evm.patch.timestamp + expiry_in
        rid = self.market.create_request(
            market_id,
            salt,
            max_price,
            proof_time,
            expiry,
            requester,
            inputs,
            secret,
            sender=requester,
        )
        assert rid == request_id(boa.env.evm.patch.chain_id, self.market.address, requester, salt)
        req = Request.new(
            market_id=market_id,
            requester=requester,
            refund_address=requester,
            max_price=max_price,
            proof_time=proof_time,
            expiry=expiry,
            public_inputs=inputs,
            encrypted_secret=secret,
        )
        return rid, req, inputs

    def assign(self, rid: bytes, req: Request, generator: str, price: int = 10 * UNIT) -> None:
        self.market.assign(rid, req.as_tuple(), generator, price, b"", sender=self.d.owner)

    def total_held(self) -> int:
        return int(self.token.balanceOf(self.market.address)) + int(
            self.token.balanceOf(self.registry.address)
        )


def events(contract: Any, name: str) -> list[Any]:
    """Events named `name` of the last transaction (call right after it)."""
    return [e for e in contract.get_logs() if type(e).__name__ == name]


def now() -> int:
    return int(boa.env.evm.patch.timestamp)


def state(kal: Kal, rid: bytes) -> TaskState:
    return TaskState.from_tuple(kal.market.request_state(rid))


def live(
    kal: Kal, requester: str, market_id: int, generator: str, **kw: Any
) -> tuple[bytes, Request, bytes]:
    """A request of `requester` assigned to `generator` at its quote."""
    rid, req, inputs = kal.request(requester, market_id, **kw)
    kal.assign(rid, req, generator)
    return rid, req, inputs


def prove(kal: Kal, rid: bytes, req: Request, inputs: bytes, generator: str) -> None:
    """Submit the proof the test verifier accepts, as the generator."""
    proof = mock_proof(inputs, rid, generator)
    kal.market.submit_proof(rid, req.as_tuple(), inputs, proof, sender=generator)


def inline_verifier(verdict: str) -> Any:
    """Deploy a verifier whose `verify` returns the Vyper expression `verdict` (over `ctx`)."""
    return boa.loads(
        f"""
# pragma version ~=0.4.3
struct VerifyContext:
    chain_id: uint256
    market_id: uint256
    task_id: bytes32
    generator: address
    inputs_hash: bytes32
    assigned_at: uint256

@external
@view
def verify(ctx: VerifyContext, public_inputs: Bytes[2048], proof: Bytes[4096]) -> bool:
    return {verdict}
"""
    )
