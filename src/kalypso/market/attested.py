"""Markets whose proofs are verified off-chain, by an enclave running the market's Proof
Verification Image; the enclave registry is their on-chain verifier.

A proof of such a market is `abi.encode(bytes raw_proof, bytes attestation)`: the
requester still receives the real proof (here a snarkjs PLONK proof) beside the
enclave's `ProofValid` signature over its hash and the task.
"""

from __future__ import annotations

import json

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount

from kalypso.circuits import circuit, plonk
from kalypso.contracts.client import MarketplaceClient
from kalypso.enclave.images import ImageKind, image_id
from kalypso.enclave.verdicts import InputVerificationImage, ProofVerificationImage
from kalypso.errors import ConfigError, DeploymentError
from kalypso.market.groth16 import METADATA_BOUND
from kalypso.market.types import MarketParams

#: The creation sample carries no real attestation (no task, no enclave yet).
SAMPLE_ATTESTATION = b"\x00" * 65


def attested_proof(raw_proof: bytes, signature: bytes) -> bytes:
    return abi_encode(["bytes", "bytes"], [raw_proof, signature])


def split_attested_proof(proof: bytes) -> tuple[bytes, bytes]:
    """(raw proof, attestation signature) of an attested market's proof bytes."""
    try:
        raw, signature = abi_decode(["bytes", "bytes"], proof, strict=True)
    except Exception as exc:
        raise ConfigError(f"not an attested proof (abi.encode(bytes, bytes)): {exc}") from None
    return bytes(raw), bytes(signature)


def sample_image_ids(circuit_name: str) -> tuple[bytes, bytes]:
    """The (Proof Verification, Input Verification) image ids `kalypso enclave pvs|ivs
    --circuit NAME` run as."""
    pvs = ProofVerificationImage.config_for("plonk", plonk(circuit_name).vkey_json())
    ivs = InputVerificationImage(circuit_name, circuit(circuit_name).public_signals)
    return (
        image_id(ImageKind.PROOF_VERIFICATION, pvs),
        image_id(ImageKind.INPUT_VERIFICATION, ivs.measured_config()),
    )


def create_plonk_market(
    client: MarketplaceClient,
    account: LocalAccount,
    circuit_name: str,
    *,
    name: str,
    slashing_penalty: int,
) -> int:
    """A market for a sample circuit's PLONK proofs, verified by the Proof Verification
    Image and with inputs judged by the Input Verification Image; returns its id."""
    registry = client.deployment.enclave_registry
    if registry is None:
        raise DeploymentError("the deployment has no enclave registry; redeploy")
    c, artifacts = circuit(circuit_name), plonk(circuit_name)
    pvs, ivs = sample_image_ids(circuit_name)
    metadata = {
        "name": name,
        "verifier": "attested",
        "proof_system": "plonk",
        **c.metadata(),
        "artifacts": {
            "wasm": c.hashes["wasm"],
            "plonk_zkey": artifacts.hashes["zkey"],
            "plonk_vkey": artifacts.hashes["vkey"],
        },
    }
    encoded = json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode()
    if len(encoded) > METADATA_BOUND:
        raise ConfigError(f"the market metadata is {len(encoded)} bytes, over {METADATA_BOUND}")
    sample = artifacts.sample_proof()
    params = MarketParams(
        verifier=registry,
        slashing_penalty=slashing_penalty,
        input_verification_image=ivs,
        proof_verification_image=pvs,
        public_inputs_count=len(c.public_signals),
    )
    market_id = client.market_count()
    client.create_market(
        account,
        params,
        encoded,
        sample.public_inputs(),
        attested_proof(sample.calldata(), SAMPLE_ATTESTATION),
    )
    return market_id
