"""The Kalypso SDK: ask for a proof, pay what a pricing strategy says under a hard cap,
and get the proof back decoded.

    from kalypso.sdk import Kalypso, MarketPercentile

    with Kalypso.from_env() as kalypso:
        kalypso.deposit("50 KAL")
        request = kalypso.request_proof(
            "poseidon_preimage", {"preimage": 42}, max_price="20 KAL", proof_time=120
        )
        proof = request.wait_for_proof(timeout=120)
        print(proof.public_signals)

`AsyncKalypso` is the same client for asyncio code.
"""

import logging

from kalypso.sdk.client import AsyncKalypso, AsyncProofRequest, DevAuthorityWarning
from kalypso.sdk.inputs import PreparedInputs, UnprovableInputsError
from kalypso.sdk.local import LocalKalypso
from kalypso.sdk.markets import Market, MarketStats, Offer
from kalypso.sdk.outcome import NoProofError, Outcome, Proof, RawProof, RequestStatus, WaitTimeout
from kalypso.sdk.pricing import (
    AskUser,
    FixedPrice,
    FixedTime,
    MarketPercentile,
    PricingContext,
    PricingError,
    PricingStrategy,
    Question,
    Quote,
    TypicalTime,
    Urgency,
)
from kalypso.sdk.sync import Kalypso, ProofRequest

# A library prints nothing unless the app configures logging (the CLI does).
logging.getLogger("kalypso.sdk").addHandler(logging.NullHandler())

__all__ = [
    "AskUser",
    "AsyncKalypso",
    "AsyncProofRequest",
    "DevAuthorityWarning",
    "FixedPrice",
    "FixedTime",
    "Kalypso",
    "LocalKalypso",
    "Market",
    "MarketPercentile",
    "MarketStats",
    "NoProofError",
    "Offer",
    "Outcome",
    "PreparedInputs",
    "PricingContext",
    "PricingError",
    "PricingStrategy",
    "Proof",
    "ProofRequest",
    "Question",
    "Quote",
    "RawProof",
    "RequestStatus",
    "TypicalTime",
    "UnprovableInputsError",
    "Urgency",
    "WaitTimeout",
]
