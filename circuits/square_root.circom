pragma circom 2.1.6;

// A bounded square root: the prover knows `root` with root * root == square and
// root <= max_root < 2^16. The public inputs can be unprovable (square is not a perfect
// square, its root exceeds max_root, or max_root >= 2^16); the market's on-chain input
// verifier (contracts/verifiers/SquareRootInputVerifier.vy) decides that directly.
include "circomlib/circuits/bitify.circom";
include "circomlib/circuits/comparators.circom";

template SquareRoot(BITS) {
    signal input square;     // public
    signal input max_root;   // public
    signal input root;       // private

    root * root === square;

    component root_bits = Num2Bits(BITS);
    root_bits.in <== root;
    component max_bits = Num2Bits(BITS);
    max_bits.in <== max_root;

    component within = LessEqThan(BITS);
    within.in[0] <== root;
    within.in[1] <== max_root;
    within.out === 1;
}

component main {public [square, max_root]} = SquareRoot(16);
