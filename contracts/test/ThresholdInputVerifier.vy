# pragma version ~=0.4.3
"""
@title Threshold input verifier (test)
@license Apache-2.0
@notice A market's on-chain input verifier for a range statement: the
        inputs, an ABI `uint256[]`, are unprovable when their first value
        is at or above `LIMIT`. Real ones follow the same interface.
"""

from ..interfaces import IInputVerifier
from ..interfaces import IVerifier

implements: IInputVerifier

LIMIT: public(immutable(uint256))


@deploy
def __init__(limit: uint256):
    LIMIT = limit


@external
@view
def inputs_invalid(ctx: IVerifier.VerifyContext, public_inputs: Bytes[2048], evidence: Bytes[4096]) -> bool:
    """
    @notice Whether the first input is out of range.
    @param ctx The task (unused: the rule depends on the inputs alone).
    @param public_inputs ABI `uint256[]`.
    @param evidence Unused.
    @return True when the inputs cannot be proven.
    """
    values: DynArray[uint256, 30] = abi_decode(public_inputs, DynArray[uint256, 30])
    return len(values) > 0 and values[0] >= LIMIT
