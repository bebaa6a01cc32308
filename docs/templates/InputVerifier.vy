# pragma version ~=0.4.3
"""
@title Input verifier template for a Kalypso market
@license Apache-2.0
@notice A market's on-chain input verifier decides whether a task's public
        inputs have no proof. The marketplace calls `inputs_invalid` with a
        static call from `submit_invalid_inputs`; when it returns True the
        task ends as INVALID_INPUTS, the generator is paid its price and the
        rest of the escrow is refunded. False (or a revert) refuses the claim
        and the generator must prove or hand the task back.

        The example rule is for a circuit that proves knowledge of the
        inverse of its first public signal `x` (`x * inverse === 1`): no
        inverse of zero exists, so x == 0 is provably invalid and every other
        value is provable.

        REPLACE every part marked "REPLACE" with your circuit's rule. Compile
        with the repository's `contracts/` folder on the search path (it holds
        `interfaces/`), for example `vyper -p contracts InputVerifier.vy`.
@custom:security Return True only for inputs that no witness satisfies: a
        True for provable inputs pays the generator for nothing and denies the
        requester its proof. The rule must be total and deterministic (a view
        over the inputs alone): it cannot read the private inputs, which the
        chain never sees, so a market with private inputs needs a Generator
        Image instead. `evidence` is chosen by the generator, so a rule that
        reads it must check it (for example a witness of invalidity) and never
        trust it. The marketplace has already checked, at `create_request`,
        that the inputs are the ABI encoding of exactly the market's number
        of field elements, each below the BN254 scalar field modulus; the
        count check below only guards against attaching this verifier to a
        market of another circuit.
"""

from interfaces import IInputVerifier
from interfaces import IVerifier

implements: IInputVerifier


# IVerifier's bound on a market's public inputs (markets.MAX_SIGNALS).
MAX_SIGNALS: constant(uint256) = 30

# REPLACE (or keep): the number of public signals of your circuit, the length
# of snarkjs' public.json, equal to the market's `public_inputs_count`.
PUBLIC_SIGNALS: public(immutable(uint256))


@deploy
def __init__(public_signals: uint256):
    """
    @param public_signals How many public signals the circuit has (1 to 30).
    """
    assert public_signals > 0 and public_signals <= MAX_SIGNALS, "myverifier: bad signal count"
    PUBLIC_SIGNALS = public_signals


@external
@view
def inputs_invalid(ctx: IVerifier.VerifyContext, public_inputs: Bytes[2048], evidence: Bytes[4096]) -> bool:
    """
    @notice Whether no proof exists for these public inputs.
    @dev Called by ProofMarketplace.submit_invalid_inputs (static call).
    @param ctx The task: chain id, market, task id, generator, keccak256 of
           the inputs, assignment time. Unused: the rule depends on the
           inputs alone.
    @param public_inputs abi.encode(uint256[]) of the public signals, in
           snarkjs public.json order.
    @param evidence Unused here; given by the generator (empty from
           `kalypso generator run`).
    @return True when the inputs cannot be proven.
    """
    signals: DynArray[uint256, MAX_SIGNALS] = self._signals(public_inputs)
    # REPLACE: your circuit's rule. Here: `x * inverse === 1` has no witness
    # for x == 0.
    return signals[0] == 0


@internal
@view
def _signals(public_inputs: Bytes[2048]) -> DynArray[uint256, MAX_SIGNALS]:
    """
    @dev The public signals, checked to be exactly PUBLIC_SIGNALS words.
    """
    assert len(public_inputs) == 64 + 32 * PUBLIC_SIGNALS, "myverifier: wrong input count"
    signals: DynArray[uint256, MAX_SIGNALS] = abi_decode(public_inputs, DynArray[uint256, MAX_SIGNALS])
    assert len(signals) == PUBLIC_SIGNALS, "myverifier: wrong input count"
    return signals
