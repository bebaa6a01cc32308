"""Proofs for the test verifier (`contracts/test/MockVerifier.vy`), for tests and the demo."""

from eth_utils import keccak, to_canonical_address


def mock_proof(public_inputs: bytes, task_id: bytes, generator: str) -> bytes:
    """What MockVerifier accepts: keccak256(inputs ‖ task id ‖ generator)."""
    return keccak(public_inputs + task_id + to_canonical_address(generator))
