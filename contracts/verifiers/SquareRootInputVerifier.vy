# pragma version ~=0.4.3
"""
@title Input verifier of the square_root market
@license Apache-2.0
@notice Decides on-chain whether a square_root task's public inputs
        (square, max_root) are unprovable: the circuit needs a root with
        root * root == square and root <= max_root < 2^16, which exists iff
        max_root < 2^16, square is a perfect square and its root is at most
        max_root.
"""

from ..interfaces import IInputVerifier
from ..interfaces import IVerifier

implements: IInputVerifier

ROOT_LIMIT: constant(uint256) = 2**16


@external
@view
def inputs_invalid(ctx: IVerifier.VerifyContext, public_inputs: Bytes[2048], evidence: Bytes[4096]) -> bool:
    """
    @notice Whether no witness exists for these public inputs.
    @param ctx The task (unused: the rule depends on the inputs alone).
    @param public_inputs abi.encode(uint256[2]) as [square, max_root].
    @param evidence Unused.
    @return True when the inputs cannot be proven.
    """
    values: DynArray[uint256, 30] = abi_decode(public_inputs, DynArray[uint256, 30])
    if len(values) != 2:
        return True
    square: uint256 = values[0]
    max_root: uint256 = values[1]
    if max_root >= ROOT_LIMIT:
        return True
    root: uint256 = isqrt(square)
    return root * root != square or root > max_root
