# pragma version ~=0.4.3
"""
@title Test verifier
@license Apache-2.0
@notice Accepts a "proof" of 256 bytes (a Groth16 proof's size, so it
        batches) that is keccak256(keccak256(public inputs) || task id ||
        generator) followed by 224 zero bytes: it is bound to its task like
        a real proof is to its inputs. For tests, benchmarks and the on-chain
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
    @param proof keccak256(keccak256(public_inputs) || task id || generator)
           and 224 zero bytes.
    @return True, or reverts.
    """
    assert len(proof) == 256 and keccak256(proof) == keccak256(concat(self._expected(keccak256(public_inputs), ctx), empty(bytes32), empty(bytes32), empty(bytes32), empty(bytes32), empty(bytes32), empty(bytes32), empty(bytes32))), "mock: bad proof"
    return True


@external
@view
def verify_batch(ctxs: DynArray[IVerifier.VerifyContext, 32], public_inputs: DynArray[uint256, 512], proofs: DynArray[uint256[8], 32]) -> bool:
    """
    @notice Check test proofs one by one, through each context's inputs hash.
    @param ctxs The tasks.
    @param public_inputs Their field-element inputs (unused).
    @param proofs Their proofs, each a row of 8 words.
    @return True, or reverts.
    """
    assert len(ctxs) == len(proofs), "mock: bad batch"
    for i: uint256 in range(len(ctxs), bound=32):
        row: uint256[8] = proofs[i]
        assert convert(row[0], bytes32) == self._expected(ctxs[i].inputs_hash, ctxs[i]) and row[1] == 0 and row[2] == 0 and row[3] == 0 and row[4] == 0 and row[5] == 0 and row[6] == 0 and row[7] == 0, "mock: bad proof"
    return True


@internal
@pure
def _expected(inputs_hash: bytes32, ctx: IVerifier.VerifyContext) -> bytes32:
    return keccak256(concat(inputs_hash, ctx.task_id, convert(ctx.generator, bytes20)))
