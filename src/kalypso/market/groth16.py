"""Create a market for a Groth16 circuit: deploy its verifier, check a sample proof, record
the circuit's schema, artifact hashes and trusted-setup transcript in the metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from kalypso.circuits import Circuit, verify_artifacts
from kalypso.contracts.client import MarketplaceClient
from kalypso.contracts.web3tx import deploy
from kalypso.errors import ConfigError
from kalypso.market.types import MarketParams, RequestKinds
from kalypso.provers.proof import Groth16Proof, verifier_args

ZERO_ADDRESS = "0x" + "00" * 20
NO_IMAGE = b"\x00" * 32
#: `markets.METADATA_BOUND`: the most metadata bytes a market may carry
METADATA_BOUND = 4096


@dataclass(frozen=True)
class Groth16Market:
    market_id: int
    verifier: str


def deploy_groth16_verifier(client: MarketplaceClient, account: LocalAccount, c: Circuit) -> str:
    contract, _ = deploy(client.w3, account, "Groth16Verifier", *verifier_args(c.vkey_json()))
    return str(contract.address)


def market_metadata(c: Circuit, name: str) -> bytes:
    """Canonical JSON: what the SDK and generators read back from `MarketCreated`."""
    metadata = {"name": name, "verifier": "groth16", **c.metadata()}
    encoded = json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode()
    if len(encoded) > METADATA_BOUND:
        raise ConfigError(
            f"the market metadata is {len(encoded)} bytes, above the contract's "
            f"{METADATA_BOUND}; shorten the name, description or schema"
        )
    return encoded


def create_groth16_market(
    client: MarketplaceClient,
    account: LocalAccount,
    c: Circuit,
    *,
    name: str,
    slashing_penalty: int,
    input_verifier: str = ZERO_ADDRESS,
    generator_image: bytes = NO_IMAGE,
    input_verification_image: bytes = NO_IMAGE,
    all_inputs_provable: bool = False,
    request_kinds: RequestKinds = RequestKinds.PUBLIC,
    sample: Groth16Proof | None = None,
) -> Groth16Market:
    """Deploy the circuit's verifier and create its market; the sample proof (`sample`,
    else the circuit's committed one) must verify on-chain."""
    verify_artifacts(c)
    sample = sample if sample is not None else c.sample_proof()
    metadata = market_metadata(c, name)
    verifier = deploy_groth16_verifier(client, account, c)
    params = MarketParams(
        verifier=verifier,
        slashing_penalty=slashing_penalty,
        input_verifier=input_verifier,
        generator_image=generator_image,
        input_verification_image=input_verification_image,
        public_inputs_count=len(c.public_signals),
        all_inputs_provable=all_inputs_provable,
        request_kinds=request_kinds,
    )
    market_id = client.market_count()
    client.create_market(account, params, metadata, sample.public_inputs(), sample.calldata())
    return Groth16Market(market_id, verifier)
