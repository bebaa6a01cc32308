"""How a request ended, and its proof decoded into a typed object.

`decode_proof` reads the bytes of a `ProofSubmitted` event the way the market's
metadata says they are made: a Groth16 proof (`uint256[8]`), an attested PLONK proof
(`abi.encode(raw proof, enclave attestation)`), or opaque bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from kalypso.errors import ConfigError, KalypsoError
from kalypso.market import RequestState, decode_signals
from kalypso.market.attested import split_attested_proof
from kalypso.provers.plonk import PlonkProof
from kalypso.provers.proof import Groth16Proof
from kalypso.sdk.markets import Market


@dataclass(frozen=True)
class RawProof:
    """The proof of a market whose proof system the SDK does not know."""

    proof: bytes
    inputs: bytes

    @property
    def public_signals(self) -> tuple[int, ...]:
        """The inputs as signals when they are an ABI `uint256[]`, else none."""
        try:
            return tuple(decode_signals(self.inputs))
        except ConfigError:
            return ()

    def calldata(self) -> bytes:
        return self.proof

    def public_inputs(self) -> bytes:
        return self.inputs


Proof = Groth16Proof | PlonkProof | RawProof


def decode_proof(market: Market, proof: bytes, public_inputs: bytes) -> Proof:
    """The typed proof of `market` from its on-chain bytes and the request's inputs."""
    if market.proof_system == "groth16":
        return Groth16Proof.from_calldata(proof, public_inputs)
    if market.proof_system == "plonk":
        raw, _ = split_attested_proof(proof)
        return PlonkProof.from_calldata(raw, public_inputs)
    return RawProof(proof, public_inputs)


@dataclass(frozen=True)
class Outcome:
    """The end of a request: proven, inputs shown invalid, refunded unassigned
    (cancelled or expired), or slashed."""

    request_id: bytes
    state: RequestState
    proof: Proof | None = None
    generator: str | None = None
    #: to the generator
    payment: int = 0
    #: back to the requester's internal balance
    refund: int = 0
    #: taken from the generator's stake (a slash)
    penalty: int = 0
    #: of the penalty, to whoever slashed
    bounty: int = 0
    #: the transaction that settled it
    transaction: bytes | None = None

    @property
    def fulfilled(self) -> bool:
        return self.state is RequestState.FULFILLED

    def describe(self) -> str:
        rid = f"request 0x{self.request_id.hex()}"
        match self.state:
            case RequestState.FULFILLED:
                return f"{rid} proven by {self.generator}"
            case RequestState.INVALID_INPUTS:
                return f"{rid}: {self.generator} showed its inputs have no proof"
            case RequestState.SLASHED:
                return f"{rid}: {self.generator} missed its deadline and was slashed"
            case _:
                return f"{rid} closed unassigned (cancelled or expired) and refunded"


class NoProofError(KalypsoError):
    """`wait_for_proof` ended without a proof; `.outcome` says how (and the refund)."""

    code = "K-SDK-003"

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        super().__init__(f"no proof: {outcome.describe()}")


class WaitTimeout(KalypsoError, TimeoutError):
    """The request is still live after the wait's timeout; wait again or cancel it."""

    code = "K-SDK-004"


@dataclass(frozen=True)
class RequestStatus:
    request_id: bytes
    state: RequestState
    market_id: int
    max_price: int
    proof_time: int
    expiry: int
    #: while assigned or after: the generator, its price and deadline
    generator: str | None
    price: int
    deadline: int
    #: the chain's clock when read
    now: int

    @property
    def expired(self) -> bool:
        return self.state is RequestState.OPEN and self.now > self.expiry

    @property
    def overdue(self) -> bool:
        return self.state is RequestState.ASSIGNED and self.now > self.deadline
