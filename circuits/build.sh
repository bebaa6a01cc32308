#!/usr/bin/env bash
# Rebuild every circuit artifact from sources: a powers-of-tau ceremony (2^12), phase-2
# zkeys finished with a recorded beacon, verification keys and wasm witness generators.
# Outputs go to circuits/build/ with manifest.json (hashes). Tests and the demo use the
# committed outputs; this script runs only through `make circuits` (about 3 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SNARKJS="node $ROOT/node_modules/snarkjs/build/cli.cjs"
POWER=12
CIRCUITS=(poseidon_preimage square_root)
# Also set up for PLONK (a universal setup from the same ptau: no phase-2 contribution):
# the proofs of the market verified off-chain by the Proof Verification Image.
PLONK=(square_root)
OUT=circuits/build
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
entropy() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
# Public randomness for the beacons, recorded in the manifest: anyone can re-derive it.
BEACON=$(printf 'kalypso circuits %s' "$(date -u +%Y-%m-%d)" | sha256sum | cut -c1-64)
ITERATIONS=10

mkdir -p "$OUT"
echo "== powers of tau 2^$POWER"
$SNARKJS powersoftau new bn128 $POWER "$WORK/pot_0.ptau"
$SNARKJS powersoftau contribute "$WORK/pot_0.ptau" "$WORK/pot_1.ptau" --name="kalypso 1" -e="$(entropy)"
$SNARKJS powersoftau beacon "$WORK/pot_1.ptau" "$WORK/pot_beacon.ptau" "$BEACON" $ITERATIONS -n="kalypso beacon"
echo "== prepare phase 2 (the slow step, about 100 s)"
$SNARKJS powersoftau prepare phase2 "$WORK/pot_beacon.ptau" "$OUT/pot${POWER}_final.ptau"
$SNARKJS powersoftau verify "$OUT/pot${POWER}_final.ptau"

for name in "${CIRCUITS[@]}"; do
    echo "== $name"
    # circom2 runs as WASI and reads includes only below its working directory.
    npx circom2 "circuits/$name.circom" --r1cs --wasm --O2 -l node_modules -o "$WORK"
    cp "$WORK/$name.r1cs" "$OUT/$name.r1cs"
    cp "$WORK/${name}_js/$name.wasm" "$OUT/$name.wasm"
    $SNARKJS groth16 setup "$OUT/$name.r1cs" "$OUT/pot${POWER}_final.ptau" "$WORK/${name}_0.zkey"
    $SNARKJS zkey contribute "$WORK/${name}_0.zkey" "$WORK/${name}_1.zkey" --name="kalypso 1" -e="$(entropy)"
    $SNARKJS zkey beacon "$WORK/${name}_1.zkey" "$OUT/$name.zkey" "$BEACON" $ITERATIONS -n="kalypso beacon"
    $SNARKJS zkey verify "$OUT/$name.r1cs" "$OUT/pot${POWER}_final.ptau" "$OUT/$name.zkey"
    $SNARKJS zkey export verificationkey "$OUT/$name.zkey" "$OUT/$name.vkey.json"
done

for name in "${PLONK[@]}"; do
    echo "== $name (PLONK)"
    $SNARKJS plonk setup "$OUT/$name.r1cs" "$OUT/pot${POWER}_final.ptau" "$OUT/$name.plonk.zkey"
    $SNARKJS zkey export verificationkey "$OUT/$name.plonk.zkey" "$OUT/$name.plonk.vkey.json"
done

echo "== sample proofs (markets check one at creation)"
node circuits/samples.cjs
"$ROOT/.venv/bin/python" -m kalypso.circuits.manifest "$OUT" --beacon "$BEACON" --iterations $ITERATIONS --power $POWER --plonk "${PLONK[@]}"
echo "== done: $OUT/manifest.json"
