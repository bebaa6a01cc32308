pragma circom 2.1.6;

// Knowledge of a Poseidon preimage: the private `preimage` hashes to the public `hash`.
// The private-input market: requesters encrypt the preimage to the matching engine.
include "circomlib/circuits/poseidon.circom";

template PoseidonPreimage() {
    signal input preimage;   // private
    signal output hash;      // public

    component h = Poseidon(1);
    h.inputs[0] <== preimage;
    hash <== h.out;
}

component main = PoseidonPreimage();
