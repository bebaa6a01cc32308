# pragma version ~=0.4.3
"""
@title Groth16 verifier (BN254) for one verifying key
@license Apache-2.0
@notice Verifies snarkjs Groth16 proofs of one circuit, singly or in
        batches, with the BN254 precompiles (0x06 add, 0x07 mul, 0x08
        pairing). The verifying key is fixed at deployment in immutables
        (read from code, cheaper than storage).
@dev Proof bytes: abi.encode(uint256[8]) = A.x, A.y, B.x.c1, B.x.c0, B.y.c1,
     B.y.c0, C.x, C.y (EIP-197 order for G2, as snarkjs' solidity calldata).
     Public inputs: abi.encode(uint256[]) in snarkjs `public.json` order.
     Every failure reverts with a reason: a verifier that returned False
     after a failed inner call would let `eth_estimateGas` under-estimate.
"""

from ..interfaces import IVerifier

implements: IVerifier


MAX_INPUTS: constant(uint256) = 30
MAX_BATCH: constant(uint256) = 32
# BN254 base field (point coordinates) and scalar field (inputs, scalars)
Q: constant(uint256) = 21888242871839275222246405745257275088696311157297823662689037894645226208583
R: constant(uint256) = 21888242871839275222246405745257275088548364400416034343698204186575808495617
PROOF_BYTES: constant(uint256) = 256
PAIRING_WORDS: constant(uint256) = (MAX_BATCH + 3) * 6
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
    a: uint256[2] = self._negate(p[0], p[1])
    pairs: uint256[24] = [
        a[0], a[1], p[2], p[3], p[4], p[5],
        ALPHA[0], ALPHA[1], BETA[0], BETA[1], BETA[2], BETA[3],
        vk_x[0], vk_x[1], GAMMA[0], GAMMA[1], GAMMA[2], GAMMA[3],
        p[6], p[7], DELTA[0], DELTA[1], DELTA[2], DELTA[3],
    ]
    ok: bool = False
    out: Bytes[32] = b""
    ok, out = raw_call(PAIRING, abi_encode(pairs), max_outsize=32, is_static_call=True, revert_on_failure=False)
    assert ok and len(out) == 32, "groth16: point not on curve"
    assert extract32(out, 0, output_type=uint256) == 1, "groth16: invalid proof"
    return True


@external
@view
def verify_batch(ctxs: DynArray[IVerifier.VerifyContext, MAX_BATCH], public_inputs: DynArray[Bytes[1024], MAX_BATCH], proofs: DynArray[Bytes[1024], MAX_BATCH]) -> bool:
    """
    @notice Verify n proofs at once with a random linear combination:
            n + 3 pairings instead of 4n. Reverts unless all are valid.
    @dev The coefficients r_i = keccak(seed, i) come from a seed that
         hashes every input and proof (Fiat-Shamir, as a hash chain so no
         large buffer is built), so no proof can be chosen to cancel
         another. Checks prod e(-r_i A_i, B_i) * e(sum(r_i) alpha, beta)
         * e(sum(r_i vk_x_i), gamma) * e(sum(r_i C_i), delta) == 1, where
         sum(r_i vk_x_i) = sum_j IC_j * sum_i(r_i x_ij) takes one
         multiplication per IC point, not per proof and input.
    @param ctxs The tasks (unused, as in `verify`).
    @param public_inputs One abi.encode(uint256[]) per proof.
    @param proofs One abi.encode(uint256[8]) per proof.
    @return True.
    """
    n: uint256 = len(proofs)
    assert n > 0 and len(public_inputs) == n, "groth16: bad batch"
    seed: bytes32 = empty(bytes32)
    for i: uint256 in range(n, bound=MAX_BATCH):
        seed = keccak256(concat(seed, keccak256(public_inputs[i]), keccak256(proofs[i])))
    scalars: uint256[MAX_INPUTS + 1] = empty(uint256[MAX_INPUTS + 1])
    sum_c: uint256[2] = [0, 0]
    # the pairing input as words: (G1 x, y, G2 x.c1, x.c0, y.c1, y.c0) per pair
    words: DynArray[uint256, PAIRING_WORDS] = []
    for i: uint256 in range(n, bound=MAX_BATCH):
        r: uint256 = convert(keccak256(concat(seed, convert(i, bytes32))), uint256) % R
        p: uint256[8] = self._proof(proofs[i])
        signals: DynArray[uint256, MAX_INPUTS] = self._signals(public_inputs[i])
        scalars[0] = uint256_addmod(scalars[0], r, R)
        for j: uint256 in range(len(signals), bound=MAX_INPUTS):
            scalars[j + 1] = uint256_addmod(scalars[j + 1], uint256_mulmod(r, signals[j], R), R)
        a: uint256[2] = self._mul(self._negate(p[0], p[1]), r)
        words.append(a[0])
        words.append(a[1])
        words.append(p[2])
        words.append(p[3])
        words.append(p[4])
        words.append(p[5])
        sum_c = self._add(sum_c, self._mul([p[6], p[7]], r))
    vk_x: uint256[2] = [0, 0]
    for j: uint256 in range(IC_LENGTH, bound=MAX_INPUTS + 1):
        if scalars[j] != 0:
            vk_x = self._add(vk_x, self._mul(IC[j], scalars[j]))
    alpha: uint256[2] = self._mul(ALPHA, scalars[0])
    for word: uint256 in [alpha[0], alpha[1], BETA[0], BETA[1], BETA[2], BETA[3], vk_x[0], vk_x[1], GAMMA[0], GAMMA[1], GAMMA[2], GAMMA[3], sum_c[0], sum_c[1], DELTA[0], DELTA[1], DELTA[2], DELTA[3]]:
        words.append(word)
    encoded: Bytes[PAIRING_WORDS * 32 + 32] = abi_encode(words, ensure_tuple=False)
    ok: bool = False
    out: Bytes[32] = b""
    ok, out = raw_call(PAIRING, slice(encoded, 32, len(words) * 32), max_outsize=32, is_static_call=True, revert_on_failure=False)
    assert ok and len(out) == 32, "groth16: point not on curve"
    assert extract32(out, 0, output_type=uint256) == 1, "groth16: invalid proof in batch"
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
def _negate(x: uint256, y: uint256) -> uint256[2]:
    if x == 0 and y == 0:
        return [0, 0]
    return [x, (Q - y) % Q]


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
