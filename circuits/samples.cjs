// Sample proofs of the sample circuits, checked by the marketplace when a market is created.
// Run by circuits/build.sh from the repository root.
const snarkjs = require(process.cwd() + "/node_modules/snarkjs");
const fs = require("fs");
(async () => {
  const samples = { poseidon_preimage: { preimage: 1 }, square_root: { square: 49, max_root: 10, root: 7 } };
  for (const [name, input] of Object.entries(samples)) {
    const { proof, publicSignals } = await snarkjs.groth16.fullProve(
      input, `circuits/build/${name}.wasm`, `circuits/build/${name}.zkey`);
    fs.writeFileSync(`circuits/build/${name}.sample.json`, JSON.stringify({ input, proof, public: publicSignals }, null, 1) + "\n");
  }
  for (const name of ["square_root"]) {  // the PLONK circuits of build.sh
    const { proof, publicSignals } = await snarkjs.plonk.fullProve(
      samples[name], `circuits/build/${name}.wasm`, `circuits/build/${name}.plonk.zkey`);
    fs.writeFileSync(`circuits/build/${name}.plonk.sample.json`, JSON.stringify({ input: samples[name], proof, public: publicSignals }, null, 1) + "\n");
  }
  process.exit(0);
})();
