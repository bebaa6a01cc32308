"""The preflight: the public signals a witness gives, without a proof, or InvalidInputs."""

from __future__ import annotations

from kalypso.circuits import circuit
from kalypso.provers import InvalidInputs
from kalypso.provers.snarkjs import SnarkjsWorker
from tests.zk import prove


async def test_preflight_gives_the_proofs_public_signals() -> None:
    worker = SnarkjsWorker()
    try:
        signals = await worker.public_signals(
            circuit("poseidon_preimage").wasm, {"preimage": 42}, 1
        )
        roots = await worker.public_signals(
            circuit("square_root").wasm, {"square": 49, "max_root": 10, "root": 7}, 2
        )
        invalid = await worker.public_signals(
            circuit("square_root").wasm, {"square": 10, "max_root": 10, "root": 3}, 2
        )
    finally:
        await worker.close()
    assert signals == list(prove("poseidon_preimage", {"preimage": 42}).public_signals)
    assert roots == [49, 10]
    assert isinstance(invalid, InvalidInputs) and "Assert Failed" in invalid.reason
