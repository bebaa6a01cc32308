"""The marketplace's domain types, shared by the SDK, the matcher, generators and tools.

Wire shapes are defined once here, next to the contract structs they mirror.
"""

from kalypso.market.types import (
    BN254_SCALAR_FIELD,
    MAX_INPUTS_BYTES,
    MAX_PROOF_TIME,
    MAX_SECRET_BYTES,
    GeneratorStatus,
    MarketParams,
    Request,
    RequestKinds,
    RequestState,
    TaskState,
    VerifyContext,
    decode_signals,
    encode_signals,
    request_id,
)

__all__ = [
    "BN254_SCALAR_FIELD",
    "MAX_INPUTS_BYTES",
    "MAX_PROOF_TIME",
    "MAX_SECRET_BYTES",
    "GeneratorStatus",
    "MarketParams",
    "Request",
    "RequestKinds",
    "RequestState",
    "TaskState",
    "VerifyContext",
    "decode_signals",
    "encode_signals",
    "request_id",
]
