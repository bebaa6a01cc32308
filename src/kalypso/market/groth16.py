"""Create a market for a Groth16 circuit: deploy its verifier, check a sample proof, record
the circuit's schema, artifact hashes and trusted-setup transcript in the metadata.

Two transactions, so a run cut short between them leaves a verifier and no market:
`create_resuming` notes the deployment before it is broadcast, and a re-run of the same
action (`kalypso.cli.once`) reuses the verifier once it is mined instead of paying for
another.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import TxReceipt

from kalypso.circuits import Circuit, verify_artifacts
from kalypso.contracts.client import MarketplaceClient
from kalypso.contracts.web3tx import Signing, deploy, landed
from kalypso.errors import ChainError, ConfigError, KalypsoError
from kalypso.market.events import marketplace_decoder
from kalypso.market.types import MarketParams, RequestKinds
from kalypso.provers.proof import Groth16Proof, verifier_args

ZERO_ADDRESS = "0x" + "00" * 20
NO_IMAGE = b"\x00" * 32
#: `markets.METADATA_BOUND`: the most metadata bytes a market may carry
METADATA_BOUND = 4096
#: the function the action log records for the verifier's deployment
DEPLOY_VERIFIER = "deploy Groth16Verifier"
#: the action's note of that deployment's hash, kept for a re-run
VERIFIER_TX = "verifier_tx"

OnSent = Callable[[bytes, int, str], None]


@dataclass(frozen=True)
class Groth16Market:
    market_id: int
    verifier: str
    #: the verifier was given (one an earlier, cut-short run deployed), not deployed now
    reused_verifier: bool = False


def deploy_groth16_verifier(
    client: MarketplaceClient, account: LocalAccount, c: Circuit, on_sent: OnSent | None = None
) -> str:
    """Deploy the circuit's verifier; `on_sent` gets the function `DEPLOY_VERIFIER`."""
    contract, _ = deploy(
        client.w3, account, "Groth16Verifier", *verifier_args(c.vkey_json()), on_sent=on_sent
    )
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


def groth16_terms(
    c: Circuit,
    *,
    slashing_penalty: int,
    input_verifier: str = ZERO_ADDRESS,
    generator_image: bytes = NO_IMAGE,
    input_verification_image: bytes = NO_IMAGE,
    all_inputs_provable: bool = False,
    request_kinds: RequestKinds = RequestKinds.PUBLIC,
) -> MarketParams:
    """The market's terms for circuit `c`, its verifier still to be deployed (zero)."""
    return MarketParams(
        verifier=ZERO_ADDRESS,
        slashing_penalty=slashing_penalty,
        input_verifier=input_verifier,
        generator_image=generator_image,
        input_verification_image=input_verification_image,
        public_inputs_count=len(c.public_signals),
        all_inputs_provable=all_inputs_provable,
        request_kinds=request_kinds,
    )


def create_action(name: str, c: Circuit, terms: MarketParams) -> dict[str, Any]:
    """The arguments that make two runs of `market create` one action: the metadata (the
    name, schema, artifact and transcript hashes) and the terms, not the file paths nor
    the verifier, which a run deploys."""
    return {
        "name": name,
        "metadata_sha256": hashlib.sha256(market_metadata(c, name)).hexdigest(),
        "slashing_penalty": terms.slashing_penalty,
        "input_verifier": terms.input_verifier,
        "generator_image": "0x" + terms.generator_image.hex(),
        "input_verification_image": "0x" + terms.input_verification_image.hex(),
        "all_inputs_provable": terms.all_inputs_provable,
        "request_kinds": int(terms.request_kinds),
    }


def created_market_id(receipt: TxReceipt, registry: str) -> int:
    """The id in the `MarketCreated` log that `registry` wrote in `receipt`."""
    topic = marketplace_decoder().topic("MarketCreated")
    for log in receipt["logs"]:
        topics = log["topics"]
        if (
            topics
            and bytes(topics[0]) == topic
            and Web3.to_checksum_address(log["address"]) == Web3.to_checksum_address(registry)
        ):
            return int.from_bytes(bytes(topics[1]), "big")
    tx = "0x" + bytes(receipt["transactionHash"]).hex()
    raise ChainError(f"transaction {tx} created no market (no MarketCreated log)")


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
    terms = groth16_terms(
        c,
        slashing_penalty=slashing_penalty,
        input_verifier=input_verifier,
        generator_image=generator_image,
        input_verification_image=input_verification_image,
        all_inputs_provable=all_inputs_provable,
        request_kinds=request_kinds,
    )
    return create_with_terms(client, account, c, name, terms, sample=sample)


def create_with_terms(
    client: MarketplaceClient,
    account: LocalAccount,
    c: Circuit,
    name: str,
    terms: MarketParams,
    *,
    sample: Groth16Proof | None = None,
    verifier: str | None = None,
    on_sent: OnSent | None = None,
) -> Groth16Market:
    """Create the market of `terms` (`groth16_terms`) with `verifier`, deploying one when
    None; `on_sent` gets each transaction before it is broadcast."""
    verify_artifacts(c)
    sample = sample if sample is not None else c.sample_proof()
    metadata = market_metadata(c, name)
    reused = verifier is not None
    if verifier is None:
        verifier = deploy_groth16_verifier(client, account, c, on_sent)
    params = replace(terms, verifier=verifier)
    receipt = client.create_market(
        account, params, metadata, sample.public_inputs(), sample.calldata(), on_sent=on_sent
    )
    return Groth16Market(created_market_id(receipt, client.markets.address), verifier, reused)


def earlier_verifier(w3: Web3, tx: str | None) -> str | None:
    """The verifier that an earlier run's deployment `tx` made, once mined (None: none
    was sent, or it never landed or failed: deploy one)."""
    if tx is None:
        return None
    receipt = landed(w3, [bytes.fromhex(tx.removeprefix("0x"))])
    if receipt is None or receipt["status"] != 1 or not receipt["contractAddress"]:
        return None
    return Web3.to_checksum_address(receipt["contractAddress"])


def create_resuming(
    client: MarketplaceClient,
    signer: Signing,
    c: Circuit,
    name: str,
    terms: MarketParams,
    sample: Groth16Proof | None,
    notes: dict[str, Any],
    note: Callable[[str, Any], None],
) -> Groth16Market:
    """`create_with_terms` as `kalypso.cli.once`'s run: it reuses the verifier an earlier
    run of the action noted (`notes`), and notes its own deployment before broadcasting
    it. An error after that deployment was mined, before `create_market` was signed,
    says the re-run reuses it (after, `once` speaks of `create_market`)."""
    verifier = earlier_verifier(client.w3, notes.get(VERIFIER_TX))
    deployed: list[str] = []
    signed: list[str] = []

    def on_sent(tx: bytes, nonce: int, function: str) -> None:
        signed.append(function)
        if function == DEPLOY_VERIFIER:
            deployed.append("0x" + tx.hex())
            note(VERIFIER_TX, deployed[-1])
        if signer.on_sent is not None:
            signer.on_sent(tx, nonce, function)

    try:
        return create_with_terms(
            client, signer.account, c, name, terms,
            sample=sample, verifier=verifier, on_sent=on_sent,
        )  # fmt: skip
    except KalypsoError as exc:
        if deployed and signed[-1] == DEPLOY_VERIFIER and _mined(client.w3, deployed[-1]):
            exc.args = (
                f"{exc.args[0] if exc.args else exc} (after the verifier's deployment "
                f"{deployed[-1]} was mined: running the command again reuses it)",
            )
        raise


def _mined(w3: Web3, tx: str) -> bool:
    """Whether `tx` was mined and succeeded, asked once (an error path: no waiting)."""
    try:
        receipt = w3.eth.get_transaction_receipt(tx)  # type: ignore[arg-type]
    except Exception:  # not found, or the node not answering: say nothing more
        return False
    return bool(receipt["status"] == 1)
