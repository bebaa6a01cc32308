"""A `command` prover of the square_root circuit that misbehaves on purpose, by input:

square 4: crashes (exit 3); square 9: hangs; square 16: prints garbage; square 36: a
forged proof (right public signals, A and C swapped) that the verifier rejects; anything
else: a real Groth16 proof, after sleeping KALYPSO_TEST_PROVER_SLEEP seconds (default 0).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time


async def prove(inputs: dict[str, str]) -> dict[str, object]:
    from kalypso.provers import InvalidInputs
    from kalypso.provers.snarkjs import SnarkjsGroth16Prover

    prover = SnarkjsGroth16Prover.for_circuit("square_root")
    try:
        result = await prover.prove({k: int(v) for k, v in inputs.items()})
    finally:
        await prover.close()
    if isinstance(result, InvalidInputs):
        return {"invalid_inputs": result.reason}
    proof, public = result.to_snarkjs()
    return {"proof": proof, "public_signals": public}


def main() -> None:
    inputs = json.load(sys.stdin)["inputs"]
    square = int(inputs["square"])
    if square == 4:
        print("boom", file=sys.stderr)
        sys.exit(3)
    if square == 9:
        time.sleep(3600)
    if square == 16:
        print("this is not a proof")
        return
    time.sleep(float(os.environ.get("KALYPSO_TEST_PROVER_SLEEP", "0")))
    answer = asyncio.run(prove(inputs))
    if square == 36:
        proof: dict[str, object] = answer["proof"]  # type: ignore[assignment]
        proof["pi_a"], proof["pi_c"] = proof["pi_c"], proof["pi_a"]
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
