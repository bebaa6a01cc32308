# pragma version ~=0.4.3
"""
@title Groth16 verifier (BN254) for one verifying key
@license Apache-2.0
@notice Verifies snarkjs Groth16 proofs of one circuit, singly or in
        batches, with the BN254 precompiles (0x06 add, 0x07 mul, 0x08
        pairing). The verifying key is fixed at deployment in immutables,
        read from code: measured (eth_estimateGas, anvil) for verify with 1
        and 2 inputs and verify_batch of 8, immutables 222,967 / 230,388 /
        637,928 gas against storage 262,922 / 274,543 / 681,939.
@dev Proof bytes: abi.encode(uint256[8]) = A.x, A.y, B.x.c1, B.x.c0, B.y.c1,
     B.y.c0, C.x, C.y (EIP-197 order for G2, as snarkjs' solidity calldata).
     Public inputs: abi.encode(uint256[]) in snarkjs `public.json` order.
     Every failure reverts with a reason: a verifier that returned False
     after a failed inner call would let `eth_estimateGas` under-estimate.
     The key's G2 points are also kept negated, so a check is one product
     e(A, B) e(alpha, -beta) e(vk_x, -gamma) e(C, -delta) == 1 with no
     negation per proof.
"""

from ..interfaces import IVerifier

implements: IVerifier


MAX_INPUTS: constant(uint256) = 30
MAX_BATCH: constant(uint256) = 32
# public inputs of a whole batch (IVerifier): 16 items of 30, or 32 of 16
MAX_BATCH_SIGNALS: constant(uint256) = 512
# BN254 base field (point coordinates) and scalar field (inputs, scalars)
Q: constant(uint256) = 21888242871839275222246405745257275088696311157297823662689037894645226208583
R: constant(uint256) = 21888242871839275222246405745257275088548364400416034343698204186575808495617
PROOF_BYTES: constant(uint256) = 256
# The Fiat-Shamir seed hashes the calldata in chunks; a batch's calldata is
# under 30 KiB (3 heads, 32 contexts, 512 inputs, 32 proofs).
CHUNK: constant(uint256) = 4096
SMALL_CHUNK: constant(uint256) = 512
MAX_CHUNKS: constant(uint256) = 8
# Batch coefficients: 2^128 plus 128 random bits, never zero and below R.
COEFFICIENT_BASE: constant(uint256) = 2**128
LOW_128: constant(uint256) = 2**128 - 1
EC_ADD: constant(address) = 0x0000000000000000000000000000000000000006
EC_MUL: constant(address) = 0x0000000000000000000000000000000000000007
PAIRING: constant(address) = 0x0000000000000000000000000000000000000008


ALPHA: public(immutable(uint256[2]))
BETA: public(immutable(uint256[4]))
GAMMA: public(immutable(uint256[4]))
DELTA: public(immutable(uint256[4]))
# A static array (read one point at a time from code) and its used length.
IC: public(immutable(uint256[2][MAX_INPUTS + 1]))
IC_LENGTH: public(immutable(uint256))
# beta, gamma, delta negated (y -> -y), for the pairing products
NEG_BETA: immutable(uint256[4])
NEG_GAMMA: immutable(uint256[4])
NEG_DELTA: immutable(uint256[4])


@deploy
def __init__(alpha: uint256[2], beta: uint256[4], gamma: uint256[4], delta: uint256[4], ic: DynArray[uint256[2], MAX_INPUTS + 1]):
    """
    @param alpha G1 point alpha.
    @param beta G2 point beta, EIP-197 order (x.c1, x.c0, y.c1, y.c0).
    @param gamma G2 point gamma, EIP-197 order.
    @param delta G2 point delta, EIP-197 order.
    @param ic IC[0..n]: one G1 point more than the public inputs.
    """
    assert len(ic) >= 1, "groth16: empty IC"
    ALPHA = alpha
    BETA = beta
    GAMMA = gamma
    DELTA = delta
    NEG_BETA = self._negate_g2(beta)
    NEG_GAMMA = self._negate_g2(gamma)
    NEG_DELTA = self._negate_g2(delta)
    points: uint256[2][MAX_INPUTS + 1] = empty(uint256[2][MAX_INPUTS + 1])
    for i: uint256 in range(len(ic), bound=MAX_INPUTS + 1):
        points[i] = ic[i]
    IC = points
    IC_LENGTH = len(ic)


@external
@view
def public_input_count() -> uint256:
    """
    @notice How many public inputs a proof of this key has.
    @return len(IC) - 1.
    """
    return IC_LENGTH - 1


@external
@view
def verify(ctx: IVerifier.VerifyContext, public_inputs: Bytes[2048], proof: Bytes[4096]) -> bool:
    """
    @notice Verify one proof; reverts unless it is valid.
    @param ctx The task (unused: a Groth16 proof is bound to its inputs,
           which the marketplace binds to the task).
    @param public_inputs abi.encode(uint256[]) of the public signals.
    @param proof abi.encode(uint256[8]) (see the file header).
    @return True.
    """
    p: uint256[8] = self._proof(proof)
    vk_x: uint256[2] = self._vk_x(self._signals(public_inputs))
    pairs: uint256[24] = [
        p[0], p[1], p[2], p[3], p[4], p[5],
        ALPHA[0], ALPHA[1], NEG_BETA[0], NEG_BETA[1], NEG_BETA[2], NEG_BETA[3],
        vk_x[0], vk_x[1], NEG_GAMMA[0], NEG_GAMMA[1], NEG_GAMMA[2], NEG_GAMMA[3],
        p[6], p[7], NEG_DELTA[0], NEG_DELTA[1], NEG_DELTA[2], NEG_DELTA[3],
    ]
    ok: bool = False
    out: Bytes[32] = b""
    ok, out = raw_call(PAIRING, abi_encode(pairs), max_outsize=32, is_static_call=True, revert_on_failure=False)
    assert ok and len(out) == 32, "groth16: point not on curve"
    assert extract32(out, 0, output_type=uint256) == 1, "groth16: invalid proof"
    return True


@external
@view
def verify_batch(ctxs: DynArray[IVerifier.VerifyContext, MAX_BATCH], public_inputs: DynArray[uint256, MAX_BATCH_SIGNALS], proofs: DynArray[uint256[8], MAX_BATCH]) -> bool:
    """
    @notice Verify n proofs at once with a random linear combination:
            n + 3 pairings instead of 4n. Reverts unless all are valid.
    @dev Fiat-Shamir: the seed hashes the whole calldata (every context,
         input and proof) before any coefficient is drawn; r_0 = 1 and
         r_i = 2^128 + 128 bits of keccak(seed, i), never zero, so no
         proof can be chosen to cancel another: a batch with a false proof
         passes with probability at most 2^-128. Checks
         prod e(r_i A_i, B_i) * e(sum(r_i) alpha, -beta)
         * e(sum(r_i vk_x_i), -gamma) * e(sum(r_i C_i), -delta) == 1, where
         sum(r_i vk_x_i) = sum_j IC_j * sum_i(r_i x_ij): 2(n - 1) + k + 2
         multiplications in all. Coordinates >= Q are rejected by the
         precompiles (EIP-196, EIP-197) every point goes through, as
         "groth16: point not on curve".
    @param ctxs The tasks (bound into the seed, unused otherwise).
    @param public_inputs The k public inputs of each proof, concatenated.
    @param proofs One row per proof: its 8 words (see the file header).
    @return True.
    """
    n: uint256 = len(ctxs)
    k: uint256 = IC_LENGTH - 1
    assert n > 0 and len(proofs) == n and len(public_inputs) == n * k, "groth16: bad batch"
    seed: bytes32 = self._calldata_hash()

    # One pairing pair per proof, (r_i A_i, B_i), and the three of the key.
    pairs: uint256[6][MAX_BATCH + 3] = empty(uint256[6][MAX_BATCH + 3])
    coefficients: uint256[MAX_BATCH] = empty(uint256[MAX_BATCH])
    p: uint256[8] = proofs[0]
    pairs[0] = [p[0], p[1], p[2], p[3], p[4], p[5]]
    # sum(r_i C_i) as the precompiles' raw output, fed back to the next addition
    c_sum: Bytes[64] = concat(convert(p[6], bytes32), convert(p[7], bytes32))
    coefficients[0] = 1
    # 1 plus up to 31 numbers below 2^129: far below R, never reduced
    r_sum: uint256 = 1
    ok: bool = False
    out: Bytes[64] = b""
    draw: uint256 = 0
    for i: uint256 in range(1, n, bound=MAX_BATCH):
        p = proofs[i]
        r: uint256 = 0
        if i & 1 == 1:
            draw = convert(keccak256(concat(seed, convert(i, bytes32))), uint256)
            r = COEFFICIENT_BASE | (draw & LOW_128)
        else:
            r = COEFFICIENT_BASE | (draw >> 128)
        coefficients[i] = r
        r_sum = unsafe_add(r_sum, r)
        ok, out = raw_call(EC_MUL, abi_encode(p[0], p[1], r), max_outsize=64, is_static_call=True, revert_on_failure=False)
        assert ok, "groth16: point not on curve"
        pairs[i] = [extract32(out, 0, output_type=uint256), extract32(out, 32, output_type=uint256), p[2], p[3], p[4], p[5]]
        ok, out = raw_call(EC_MUL, abi_encode(p[6], p[7], r), max_outsize=64, is_static_call=True, revert_on_failure=False)
        assert ok, "groth16: point not on curve"
        ok, c_sum = raw_call(EC_ADD, concat(c_sum, out), max_outsize=64, is_static_call=True, revert_on_failure=False)
        assert ok, "groth16: point not on curve"

    vk_x: uint256[2] = self._mul(IC[0], r_sum)
    for j: uint256 in range(k, bound=MAX_INPUTS):
        # sum_i r_i x_ij: input j of every proof, k words apart
        scalar: uint256 = 0
        index: uint256 = j
        for i: uint256 in range(n, bound=MAX_BATCH):
            x: uint256 = public_inputs[index]
            assert x < R, "groth16: input not in field"
            scalar = uint256_addmod(scalar, uint256_mulmod(coefficients[i], x, R), R)
            index = unsafe_add(index, k)
        if scalar != 0:
            vk_x = self._add(vk_x, self._mul(IC[j + 1], scalar))
    alpha: uint256[2] = self._mul(ALPHA, r_sum)
    pairs[n] = [alpha[0], alpha[1], NEG_BETA[0], NEG_BETA[1], NEG_BETA[2], NEG_BETA[3]]
    pairs[n + 1] = [vk_x[0], vk_x[1], NEG_GAMMA[0], NEG_GAMMA[1], NEG_GAMMA[2], NEG_GAMMA[3]]
    pairs[n + 2] = [extract32(c_sum, 0, output_type=uint256), extract32(c_sum, 32, output_type=uint256), NEG_DELTA[0], NEG_DELTA[1], NEG_DELTA[2], NEG_DELTA[3]]
    result: Bytes[32] = b""
    ok, result = raw_call(PAIRING, slice(abi_encode(pairs), 0, (n + 3) * 192), max_outsize=32, is_static_call=True, revert_on_failure=False)
    assert ok and len(result) == 32, "groth16: point not on curve"
    assert extract32(result, 0, output_type=uint256) == 1, "groth16: invalid proof in batch"
    return True


@internal
@view
def _signals(public_inputs: Bytes[2048]) -> DynArray[uint256, MAX_INPUTS]:
    assert len(public_inputs) == 64 + 32 * (IC_LENGTH - 1), "groth16: wrong input count"
    signals: DynArray[uint256, MAX_INPUTS] = abi_decode(public_inputs, DynArray[uint256, MAX_INPUTS])
    assert len(signals) == IC_LENGTH - 1, "groth16: wrong input count"
    for s: uint256 in signals:
        assert s < R, "groth16: input not in field"
    return signals


@internal
@pure
def _proof(proof: Bytes[4096]) -> uint256[8]:
    assert len(proof) == PROOF_BYTES, "groth16: bad proof length"
    p: uint256[8] = abi_decode(proof, uint256[8])
    for word: uint256 in p:
        assert word < Q, "groth16: proof point not in field"
    return p


@internal
@view
def _vk_x(signals: DynArray[uint256, MAX_INPUTS]) -> uint256[2]:
    acc: uint256[2] = IC[0]
    for j: uint256 in range(len(signals), bound=MAX_INPUTS):
        if signals[j] != 0:
            acc = self._add(acc, self._mul(IC[j + 1], signals[j]))
    return acc


@internal
@pure
def _negate_g2(point: uint256[4]) -> uint256[4]:
    # -(x, y) = (x, -y), y = (y.c1, y.c0) in EIP-197 order
    return [point[0], point[1], (Q - point[2]) % Q, (Q - point[3]) % Q]


@internal
@view
def _calldata_hash() -> bytes32:
    """
    @dev keccak over the calldata's length and its chunks, the last chunk
         ending at the calldata's end (overlapping the one before): every
         byte is covered, so two calldatas of one length with one seed
         would be a keccak collision.
    """
    size: uint256 = len(msg.data)
    assert size >= SMALL_CHUNK and size <= MAX_CHUNKS * CHUNK, "groth16: bad batch"
    seed: bytes32 = convert(size, bytes32)
    if size >= CHUNK:
        for c: uint256 in range((size + CHUNK - 1) // CHUNK, bound=MAX_CHUNKS):
            seed = keccak256(concat(seed, keccak256(slice(msg.data, min(c * CHUNK, size - CHUNK), CHUNK))))
    else:
        for c: uint256 in range((size + SMALL_CHUNK - 1) // SMALL_CHUNK, bound=CHUNK // SMALL_CHUNK):
            seed = keccak256(concat(seed, keccak256(slice(msg.data, min(c * SMALL_CHUNK, size - SMALL_CHUNK), SMALL_CHUNK))))
    return seed


# A precompile fails on a point off the curve (or out of G2's subgroup), or
# out of gas: every failure reverts here with a reason, never returns False.


@internal
@view
def _add(a: uint256[2], b: uint256[2]) -> uint256[2]:
    ok: bool = False
    out: Bytes[64] = b""
    words: uint256[4] = [a[0], a[1], b[0], b[1]]
    ok, out = raw_call(EC_ADD, abi_encode(words), max_outsize=64, is_static_call=True, revert_on_failure=False)
    assert ok and len(out) == 64, "groth16: point not on curve"
    return abi_decode(out, uint256[2])


@internal
@view
def _mul(a: uint256[2], s: uint256) -> uint256[2]:
    ok: bool = False
    out: Bytes[64] = b""
    words: uint256[3] = [a[0], a[1], s]
    ok, out = raw_call(EC_MUL, abi_encode(words), max_outsize=64, is_static_call=True, revert_on_failure=False)
    assert ok and len(out) == 64, "groth16: point not on curve"
    return abi_decode(out, uint256[2])
