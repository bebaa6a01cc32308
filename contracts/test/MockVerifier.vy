# pragma version ~=0.4.3
"""
@title Test verifier
@license Apache-2.0
@notice Accepts a "proof" that is exactly keccak256(public inputs ||
        task id || generator), so it is bound to its task like a real
        proof is to its inputs. For tests, benchmarks and the on-chain
        demo; never for a real market. Reverts on a wrong proof.
"""

from ..interfaces import IVerifier

implements: IVerifier


@external
@view
def verify(ctx: IVerifier.VerifyContext, public_inputs: Bytes[2048], proof: Bytes[4096]) -> bool:
    """
    @notice Check a test proof.
    @param ctx The task.
    @param public_inputs The inputs.
    @param proof 32 bytes: keccak256(public_inputs || task id || generator).
    @return True, or reverts.
    """
    self._check(ctx, public_inputs, proof)
    return True


@external
@view
def verify_batch(ctxs: DynArray[IVerifier.VerifyContext, 32], public_inputs: DynArray[Bytes[1024], 32], proofs: DynArray[Bytes[1024], 32]) -> bool:
    """
    @notice Check test proofs one by one.
    @param ctxs The tasks.
    @param public_inputs Their inputs.
    @param proofs Their proofs.
    @return True, or reverts.
    """
    assert len(ctxs) == len(public_inputs) and len(ctxs) == len(proofs), "mock: bad batch"
    for i: uint256 in range(len(ctxs), bound=32):
        self._check(ctxs[i], public_inputs[i], proofs[i])
    return True


@internal
@pure
def _check(ctx: IVerifier.VerifyContext, public_inputs: Bytes[2048], proof: Bytes[4096]):
    expected: bytes32 = keccak256(concat(public_inputs, ctx.task_id, convert(ctx.generator, bytes20)))
    assert len(proof) == 32 and extract32(proof, 0) == expected, "mock: bad proof"
