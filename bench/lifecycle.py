"""Gas of a request's whole life with a real Groth16 verifier: the devnet's square_root market.

What is measured (anvil receipts, as in bench/gas.py: `gasUsed`, what the senders pay),
on the square_root market (`Groth16Verifier` of the circuit's key, the
`SquareRootInputVerifier`, two public inputs):

- one request: `create_request` (escrow from the internal balance) + `assign` +
  `submit_proof` (one Groth16 verification, 4 pairings), summed;
- batched, per request: 32 `create_request` + one `assign_batch` of 32 + two
  `submit_proofs` of 16 (`verify_batch`: n + 3 pairings for n proofs), summed and divided
  by 32. All 32 tasks go to one generator, because `submit_proofs` takes one generator's
  proofs.

Proofs are real: the committed snarkjs proofs of square_root (`tests/fixtures/
square_root_proofs.json`, 32 proofs of distinct inputs, as bench/verify.py uses). Each
request carries one proof's public signals, so its proof is the one the circuit's prover
made for exactly those inputs.

Steady state, as in bench/gas.py: the requester's internal balance is non-zero, and before
measuring the generator joins the market, takes a background task that stays live and is
paid once. There is no Kalypso v1 ratio: v1's figures are with a mock verifier.

Before and after: the script uses only client calls that exist on both sides of the
MarketRegistry change, so run with an older checkout's environment it measures the same
lifecycle on the older contracts (`/old/checkout/.venv/bin/python bench/lifecycle.py
--json before.json`; the older package is the one imported).

Run: `.venv/bin/python bench/lifecycle.py [--json PATH]`. bench/gas.py measures the same
rows within its own run and table.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from rich.console import Console
from rich.table import Table
from web3.types import TxReceipt

from kalypso.contracts.client import MarketplaceClient, PostedRequest
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.devnet import Anvil, deploy_devnet, dev_account
from kalypso.provers.proof import Groth16Proof

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "square_root_proofs.json"
MARKET = "square_root"

KAL = TOKEN_UNIT
PRICE = 5 * KAL
MAX_PRICE = 10 * KAL
OFFER_PROOF_TIME = 60
PROOF_TIME = 3_600
EXPIRY_IN = 1_800
#: The contract's MAX_BATCH and MAX_PROOF_BATCH.
ASSIGN_BATCH = 32
PROOF_BATCH = 16
#: For the standalone run: one generator with room for the batch and the background task.
STAKE = 8_000 * KAL
COMPUTE = 64
DEPOSIT = 10_000 * KAL
WIDTH = 100


@dataclass(frozen=True)
class Lifecycle:
    """The gas of `requests` requests' whole lives, by part (each part summed over them)."""

    operation: str
    requests: int
    parts: dict[str, int]

    @property
    def gas(self) -> int:
        return sum(self.parts.values())


def gas_used(receipt: TxReceipt) -> int:
    return int(receipt["gasUsed"])


def load_proofs() -> list[Groth16Proof]:
    return [
        Groth16Proof.from_snarkjs(p["proof"], p["public"]) for p in json.loads(FIXTURES.read_text())
    ]


class Square:
    """Requests, assignments and proofs of the square_root market, for one generator."""

    def __init__(
        self,
        client: MarketplaceClient,
        matcher: LocalAccount,
        requester: LocalAccount,
        generator: LocalAccount,
        market_id: int,
    ) -> None:
        self.client, self.matcher = client, matcher
        self.requester, self.generator = requester, generator
        self.market_id = market_id
        self.proofs: Iterator[Groth16Proof] = itertools.cycle(load_proofs())
        self.salts = (keccak(b"lifecycle" + i.to_bytes(32, "big")) for i in itertools.count())
        self.proof_of: dict[bytes, Groth16Proof] = {}

    def request(self) -> tuple[PostedRequest, int]:
        proof = next(self.proofs)
        posted = self.client.create_request(
            self.requester,
            self.market_id,
            proof.public_inputs(),
            max_price=MAX_PRICE,
            proof_time=PROOF_TIME,
            expires_in=EXPIRY_IN,
            salt=next(self.salts),
        )
        self.proof_of[posted.id] = proof
        return posted, gas_used(posted.receipt)

    def assign(self, task: PostedRequest) -> int:
        receipt = self.client.assign(self.matcher, task, self.generator.address, PRICE)
        return gas_used(receipt)

    def assign_batch(self, tasks: Sequence[PostedRequest]) -> int:
        items = [(task, self.generator.address, PRICE, b"") for task in tasks]
        receipt = self.client.assign_batch(self.matcher, items)
        assigned = self.client.marketplace.events.TaskAssigned().process_receipt(receipt)
        assert len(assigned) == len(tasks), f"{len(tasks) - len(assigned)} assignments skipped"
        return gas_used(receipt)

    def submit(self, task: PostedRequest) -> int:
        proof = self.proof_of[task.id].calldata()
        return gas_used(self.client.submit_proof(self.generator, task, proof))

    def submit_batch(self, tasks: Sequence[PostedRequest]) -> int:
        items = [(task, self.proof_of[task.id].calldata()) for task in tasks]
        return gas_used(self.client.submit_proofs(self.generator, items))


def measure(
    client: MarketplaceClient,
    matcher: LocalAccount,
    requester: LocalAccount,
    generator: LocalAccount,
) -> list[Lifecycle]:
    """The two lifecycles, for `generator` (registered, with room for 34 tasks) and
    `requester` (with a deposit of at least 34 max prices)."""
    market_id = client.deployment.markets[MARKET]
    client.join_market(generator, market_id, price=PRICE, proof_time=OFFER_PROOF_TIME)
    square = Square(client, matcher, requester, generator, market_id)

    # Warm-up: a background task that stays live, and a first paid proof.
    background, _ = square.request()
    square.assign(background)
    first, _ = square.request()
    square.assign(first)
    square.submit(first)

    task, create = square.request()
    assign = square.assign(task)
    single = Lifecycle(
        "lifecycle, Groth16: one request",
        1,
        {"create_request": create, "assign": assign, "submit_proof": square.submit(task)},
    )

    created = [square.request() for _ in range(ASSIGN_BATCH)]
    tasks = [task for task, _ in created]
    batched = Lifecycle(
        f"lifecycle, Groth16: {ASSIGN_BATCH} batched",
        ASSIGN_BATCH,
        {
            "create_request": sum(gas for _, gas in created),
            f"assign_batch {ASSIGN_BATCH}": square.assign_batch(tasks),
            f"submit_proofs {PROOF_BATCH}": sum(
                square.submit_batch(tasks[i : i + PROOF_BATCH])
                for i in range(0, ASSIGN_BATCH, PROOF_BATCH)
            ),
        },
    )
    return [single, batched]


def as_dict(lifecycle: Lifecycle) -> dict[str, Any]:
    """A row as bench/gas.py writes them (no v1 reference), with its parts."""
    return {
        "operation": lifecycle.operation,
        "gas": lifecycle.gas,
        "items": lifecycle.requests,
        "per_item": round(lifecycle.gas / lifecycle.requests),
        "kalypso_v1": None,
        "ratio": None,
        "status": "-",
        "parts": lifecycle.parts,
    }


def standalone() -> tuple[list[Lifecycle], str]:
    """A fresh devnet: one generator and one requester in the steady state of bench/gas.py."""
    with Anvil() as chain:
        w3 = chain.web3()
        setup = deploy_devnet(w3)
        client = MarketplaceClient(w3, setup.deployment)
        owner, requester, generator = setup.owner, dev_account(2), dev_account(9)
        for account in (owner, requester, generator):
            client.approve_all(account)
        client.deposit(owner, KAL)  # the marketplace's first tokens, as on a live deployment
        client.transfer(owner, generator.address, STAKE)
        client.register(generator, stake=STAKE, compute=COMPUTE)
        client.deposit(requester, DEPOSIT)
        return measure(client, setup.matcher, requester, generator), w3.client_version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the rows here (gas.json's shape)")
    args = parser.parse_args()
    rows, node = standalone()
    out = Table(title="Request lifecycle with a real Groth16 verifier (anvil receipts)")
    for name in ("operation", "part", "gas", "per request"):
        out.add_column(name, justify="left" if name in ("operation", "part") else "right")
    for row in rows:
        for part, gas in row.parts.items():
            out.add_row(row.operation, part, f"{gas:,}", f"{round(gas / row.requests):,}")
        out.add_row(row.operation, "all", f"{row.gas:,}", f"{round(row.gas / row.requests):,}")
    console = Console()
    if not console.is_terminal:
        console = Console(width=WIDTH)
    console.print(out)
    if args.json:
        document = {"client": node, "rows": [as_dict(row) for row in rows]}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        console.print(f"written to {args.json}")


if __name__ == "__main__":
    main()
