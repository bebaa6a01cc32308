"""Gas of every Kalypso lifecycle operation, measured on anvil, against Kalypso v1.

What is measured: one transaction per lifecycle operation on a fresh anvil devnet
(`deploy_devnet`: sample market 0 with the MockVerifier, one public input and the
ThresholdInputVerifier) — create_market (through the MarketRegistry), register (with
stake), join_market (a public market, and a private one with a Generator Image key),
deposit, create_request (escrow from the internal balance, and pulled with transferFrom),
increase_max_price, cancel_request, cancel_expired, assign and assign_batch (1, 8, 32
items), submit_proof and submit_proofs (1, 8, 16 items), submit_invalid_inputs, discard,
slash, the attested market's enclave rows, escrow withdraw, and a generator's
request_exit and withdraw. The MockVerifier's proof is 256 bytes (a Groth16 proof's size,
so that it batches; it was 32): calldata and `ProofSubmitted` carry it whole.

Then a request's whole life with a real Groth16 verifier (bench/lifecycle.py, the devnet's
square_root market and real snarkjs proofs): create_request + assign + submit_proof of one
request, and per request with assign_batch of 32 and submit_proofs of 16; the JSON keeps
each part. They have no v1 ratio: v1's figures are with a mock verifier.

Why receipts: the figure is `receipt["gasUsed"]`, what the sender pays — the 21,000
base, calldata and execution, less storage refunds. titanoboa's in-process gas counts
execution only, which flatters small calls and hides the cost of large calldata.

Steady state: figures are "warm" — storage a busy marketplace has already written is
non-zero (the requester's and the generator's internal balances; a generator's record, in
which used compute, locked stake and missed deadlines are packed beside its status and
stake, is non-zero from registration on). Where the first occurrence pays more because a
zero slot becomes non-zero — 22,100 gas instead of 5,000 — a separate "first" row shows
it: a requester's first deposit, a generator's first payment, the first slash by an
account with no internal balance (its bounty's credit). Assigning to an idle generator is
shown too: it writes no zero slot, so it costs what any assign costs. One-off writes of a
new deployment (the marketplace's first tokens, the treasury's first credit, the first
generator index) are paid before measuring.
Batch items are all for one generator when the contract requires it (submit_proofs) and
round-robin over the generators otherwise (assign_batch), with one single-generator
assign_batch row for comparison.

Reference: Kalypso v1 (Solidity, mock verifier). Batch rows of two or more items compare
their per-item figure with v1's per-item figure in a batch of 10; a batch of one compares
with the single operation. The project's goal is at most half of v1 for every operation.
bench/compare.py sets two runs' JSON side by side.

Run: `.venv/bin/python bench/gas.py`; writes bench/results/gas.json.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from rich.console import Console
from rich.table import Table
from web3.types import TxReceipt

from kalypso.circuits import plonk
from kalypso.contracts.client import MarketplaceClient, PostedRequest
from kalypso.contracts.deploy import SAMPLE_INPUT_LIMIT, TOKEN_UNIT
from kalypso.contracts.web3tx import bind, send
from kalypso.devnet import (
    ATTESTED_MARKET,
    PRIVATE_MARKET,
    SAMPLE_MARKET,
    Anvil,
    DevnetSetup,
    create_sample_market,
    deploy_devnet,
    dev_account,
)
from kalypso.enclave import DEV_AUTHORITY_KEY, Authority, Domain, EnclaveIdentity, TaskAttestation
from kalypso.market import encode_signals
from kalypso.market.attested import attested_proof, sample_image_ids
from kalypso.market.mock import mock_proof
from lifecycle import measure as measure_lifecycle

RESULTS = Path(__file__).resolve().parent / "results" / "gas.json"

KAL = TOKEN_UNIT
#: Generators: capacity and stake for well over 32 parallel tasks at the 100 KAL penalty.
GENERATOR_INDICES = (6, 7, 8, 9)
EXIT_GENERATOR_INDEX = 5
COMPUTE = 64
STAKE = 8_000 * KAL
GENERATOR_FUNDS = 10_000 * KAL
OFFER_PRICE = 10 * KAL
OFFER_PROOF_TIME = 60
#: Requests.
MAX_PRICE = 50 * KAL
PROOF_TIME = 3_600
EXPIRY_IN = 1_800
DEPOSIT = 10_000 * KAL
VALID_SIGNALS = (42,)
INVALID_SIGNALS = (2 * SAMPLE_INPUT_LIMIT,)
#: The contract's MAX_BATCH; round-robin over the four generators gives each 8 of 32.
MAX_BATCH = 32
BATCH_SIZES = (1, 8, MAX_BATCH)
#: The contract's MAX_PROOF_BATCH (the whole batch is copied to memory, so it is smaller).
MAX_PROOF_BATCH = 16
PROOF_BATCH_SIZES = (1, 8, MAX_PROOF_BATCH)
GOAL = 0.5
#: The Generator Image's kind in `market_image`.
GENERATOR_IMAGE = 0
#: Table width when printing to a pipe or file.
WIDTH = 100

#: Kalypso v1 (Solidity, mock verifier); the batch figures are per item in a batch of 10.
KALYPSO_V1: dict[str, int] = {
    "create_market": 487_000,
    "register": 248_000,
    "join_market": 205_000,
    "create_request": 371_000,
    "assign": 232_000,
    "assign_batch": 169_000,
    "submit_proof": 195_000,
    "submit_proofs": 129_000,
    "slash": 175_000,
    "cancel": 72_000,
}


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class Row:
    """One measured transaction (or batch) and its comparison with Kalypso v1."""

    operation: str
    gas: int
    items: int = 1
    reference_key: str | None = None
    #: What the row sums, by part (the lifecycle rows).
    parts: dict[str, int] = field(default_factory=dict)

    @property
    def per_item(self) -> int:
        return round(self.gas / self.items)

    @property
    def reference(self) -> int | None:
        return KALYPSO_V1[self.reference_key] if self.reference_key else None

    @property
    def ratio(self) -> float | None:
        return self.per_item / self.reference if self.reference else None

    @property
    def status(self) -> str:
        if self.ratio is None:
            return "-"
        return "ok" if self.ratio <= GOAL else "over"

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "gas": self.gas,
            "items": self.items,
            "per_item": self.per_item,
            "kalypso_v1": self.reference,
            "ratio": round(self.ratio, 3) if self.ratio is not None else None,
            "status": self.status,
            **({"parts": self.parts} if self.parts else {}),
        }


def gas_used(receipt: TxReceipt) -> int:
    """What the sender paid for the transaction."""
    return int(receipt["gasUsed"])


# -------------------------------------------------------------------- bench


@dataclass
class Bench:
    """The deployed contracts (through a client), the actors, and the rows measured so far."""

    client: MarketplaceClient
    setup: DevnetSetup
    rows: list[Row] = field(default_factory=list)
    salts: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.market_id = self.setup.deployment.markets[SAMPLE_MARKET]

    @property
    def owner(self) -> LocalAccount:
        return self.setup.owner

    @property
    def matcher(self) -> LocalAccount:
        return self.setup.matcher

    def record(
        self,
        operation: str,
        gas: int,
        *,
        items: int = 1,
        ref: str | None = None,
        parts: dict[str, int] | None = None,
    ) -> None:
        self.rows.append(Row(operation, gas, items, ref, dict(parts or {})))

    def fund(self, account: LocalAccount, amount: int) -> None:
        self.client.transfer(self.owner, account.address, amount)
        self.client.approve_all(account)

    # -- requests and tasks

    def new_request(
        self,
        requester: LocalAccount,
        *,
        signals: Sequence[int] = VALID_SIGNALS,
        proof_time: int = PROOF_TIME,
        expiry_in: int = EXPIRY_IN,
        market_id: int | None = None,
    ) -> PostedRequest:
        """Create a request; its receipt holds the gas of create_request."""
        posted = self.client.create_request(
            requester,
            self.market_id if market_id is None else market_id,
            encode_signals(list(signals)),
            max_price=MAX_PRICE,
            proof_time=proof_time,
            expires_in=expiry_in,
            salt=keccak(next(self.salts).to_bytes(32, "big")),
        )
        committed = self.client.marketplace.functions.request_hash(posted.id).call()
        assert committed == posted.request.commitment()
        return posted

    def new_requests(self, requester: LocalAccount, count: int) -> list[PostedRequest]:
        return [self.new_request(requester) for _ in range(count)]

    def assign(self, task: PostedRequest, generator: LocalAccount) -> int:
        return gas_used(self.client.assign(self.matcher, task, generator.address, OFFER_PRICE))

    def assign_batch(self, pairs: Sequence[tuple[PostedRequest, LocalAccount]]) -> int:
        items = [(task, generator.address, OFFER_PRICE, b"") for task, generator in pairs]
        receipt = self.client.assign_batch(self.matcher, items)
        assigned = self.client.marketplace.events.TaskAssigned().process_receipt(receipt)
        assert len(assigned) == len(pairs), f"{len(pairs) - len(assigned)} assignments skipped"
        return gas_used(receipt)

    def proof(self, task: PostedRequest, generator: LocalAccount) -> bytes:
        return mock_proof(task.public_inputs, task.id, generator.address)

    def submit(self, task: PostedRequest, generator: LocalAccount) -> int:
        return gas_used(self.client.submit_proof(generator, task, self.proof(task, generator)))

    def submit_batch(self, tasks: Sequence[PostedRequest], generator: LocalAccount) -> int:
        items = [(task, self.proof(task, generator)) for task in tasks]
        return gas_used(self.client.submit_proofs(generator, items))

    # -- enclaves

    @property
    def domain(self) -> Domain:
        deployment = self.setup.deployment
        return Domain(deployment.chain_id, str(deployment.enclave_registry))

    def register_enclave(self, market: int, identity: EnclaveIdentity, image: bytes) -> int:
        """Register (or refresh) an enclave's keys for `market`, attested by the dev
        authority now."""
        w3, registry = self.client.w3, str(self.setup.deployment.enclave_registry)
        now_ms = self.client.now() * 1000
        a = Authority(DEV_AUTHORITY_KEY).attest(
            identity, image, "bench", self.domain, now_ms=now_ms
        )
        s = a.statement
        call = bind(w3, "EnclaveRegistry", registry).functions.register(
            market, s.signing_key, s.encryption_key, s.image_id, s.timestamp_ms, a.signature
        )
        return gas_used(send(w3, self.owner, call))


# ------------------------------------------------------------------- phases
# Each phase records its rows in display order: the warm figure, then any cold one.


def create_market(bench: Bench) -> None:
    """A second market on the sample terms (market_count is already non-zero)."""
    _, receipt = create_sample_market(bench.client, bench.owner, name="bench")
    bench.record("create_market", gas_used(receipt), ref="create_market")


def register_generator(bench: Bench, generator: LocalAccount) -> tuple[int, int]:
    """Register with stake and join the sample market; returns both gas figures. The
    sample market takes public requests only, so the offer has no key (nodes hold none)."""
    client = bench.client
    register = gas_used(client.register(generator, stake=STAKE, compute=COMPUTE))
    join = client.join_market(
        generator, bench.market_id, price=OFFER_PRICE, proof_time=OFFER_PROOF_TIME
    )
    return register, gas_used(join)


def register_generators(bench: Bench, accounts: Sequence[LocalAccount]) -> None:
    """Fund, register and join; the last registration is the warm one (generator_count
    is already non-zero)."""
    for account in accounts:
        bench.fund(account, GENERATOR_FUNDS)
    register, join = 0, 0
    for account in accounts:
        register, join = register_generator(bench, account)
    bench.record("register (with stake)", register, ref="register")
    bench.record("join_market", join, ref="join_market")


def private_join(bench: Bench, generator: LocalAccount) -> None:
    """Join the private market (poseidon_preimage, proven in its Generator Image) with
    the key of a Generator Image enclave registered for it: the registry checks the key
    with the enclave registry and writes it beside the offer."""
    market = bench.setup.deployment.markets[PRIVATE_MARKET]
    image = bytes(bench.client.markets.functions.market_image(market, GENERATOR_IMAGE).call())
    enclave = EnclaveIdentity()
    bench.register_enclave(market, enclave, image)
    receipt = bench.client.join_market(
        generator,
        market,
        price=OFFER_PRICE,
        proof_time=OFFER_PROOF_TIME,
        encryption_key=enclave.encryption.public_bytes,
    )
    bench.record("join_market (Generator Image key)", gas_used(receipt), ref="join_market")


def deployment_warm_up(bench: Bench) -> None:
    """As on any live deployment, the marketplace already holds tokens and the treasury
    has an internal balance, so no measured row pays for those one-off first writes."""
    bench.client.approve_all(bench.owner)
    bench.client.deposit(bench.owner, KAL)


def deposits(bench: Bench, requester: LocalAccount) -> None:
    cold = gas_used(bench.client.deposit(requester, DEPOSIT))
    bench.record("deposit", gas_used(bench.client.deposit(requester, DEPOSIT)))
    bench.record("deposit (first: balance slot 0)", cold)


def create_requests(bench: Bench, requester: LocalAccount, puller: LocalAccount) -> None:
    """Escrow from the internal balance, then pulled with transferFrom (no deposit).

    A requester's first request is no dearer: pulling never writes its internal balance
    slot, and taking from the balance finds it non-zero after the deposit."""
    for account, how in ((requester, "internal balance"), (puller, "transferFrom")):
        bench.new_request(account)
        receipt = bench.new_request(account).receipt
        bench.record(f"create_request ({how})", gas_used(receipt), ref="create_request")


def open_request_changes(bench: Bench, requester: LocalAccount) -> None:
    """increase_max_price, then cancel_request, on an open request."""
    task = bench.new_request(requester)
    new_price = MAX_PRICE + 10 * KAL
    receipt = bench.client.increase_max_price(requester, task, new_price)
    bench.record("increase_max_price", gas_used(receipt))
    raised = task.with_max_price(new_price)
    bench.record("cancel_request", gas_used(bench.client.cancel(requester, raised)), ref="cancel")


def expire(bench: Bench, requester: LocalAccount) -> None:
    """A request never assigned, refunded by anyone after its expiry."""
    task = bench.new_request(requester, expiry_in=60)
    bench.client.time_travel(61)
    receipt = bench.client.cancel_expired(requester, task)
    bench.record("cancel_expired", gas_used(receipt), ref="cancel")


def assign_and_prove(
    bench: Bench, requester: LocalAccount, generators: Sequence[LocalAccount]
) -> None:
    """First figures happen on the way to the steady state:
    - a background task per generator keeps its used compute and locked stake non-zero;
      assigning it to the idle generator writes no zero slot (they are packed in the
      record with its status and stake), so it costs what any assign costs;
    - each generator's first payment makes its internal balance non-zero (cold submit).
    """
    cold_assign = cold_submit = 0
    for generator in generators:
        background = bench.new_request(requester)
        cold_assign = bench.assign(background, generator)
    for generator in generators:
        task = bench.new_request(requester)
        bench.assign(task, generator)
        cold_submit = bench.submit(task, generator)

    task = bench.new_request(requester)
    generator = generators[-1]
    bench.record("assign", bench.assign(task, generator), ref="assign")
    bench.record("assign (idle generator)", cold_assign, ref="assign")
    bench.record("submit_proof", bench.submit(task, generator), ref="submit_proof")
    bench.record("submit_proof (first payment)", cold_submit, ref="submit_proof")


def batch_ref(single: str, batch: str, items: int) -> str:
    """v1's batch figure is per item in a batch of 10; a batch of one is a single call."""
    return single if items == 1 else batch


def batches(bench: Bench, requester: LocalAccount, generators: Sequence[LocalAccount]) -> None:
    """assign_batch round-robin over the generators (and once all to one generator);
    submit_proofs by one generator, as the contract requires."""
    lead = generators[0]
    lead_tasks: dict[int, list[PostedRequest]] = {}
    for n in BATCH_SIZES:
        pairs = [
            (task, generators[i % len(generators)])
            for i, task in enumerate(bench.new_requests(requester, n))
        ]
        gas = bench.assign_batch(pairs)
        bench.record(f"assign_batch {n}", gas, items=n, ref=batch_ref("assign", "assign_batch", n))
        lead_tasks[n] = [task for task, g in pairs if g == lead]

    one_generator = bench.new_requests(requester, MAX_BATCH)
    gas = bench.assign_batch([(task, lead) for task in one_generator])
    bench.record(
        f"assign_batch {MAX_BATCH} (one generator)", gas, items=MAX_BATCH, ref="assign_batch"
    )

    # The lead's share of the round-robin batches of 1 and 32 (one in four), then half
    # of the batch assigned to it alone: proofs batch by MAX_PROOF_BATCH at most.
    proof_batches = (lead_tasks[1], lead_tasks[MAX_BATCH], one_generator[:MAX_PROOF_BATCH])
    assert tuple(len(tasks) for tasks in proof_batches) == PROOF_BATCH_SIZES
    for tasks in proof_batches:
        n = len(tasks)
        gas = bench.submit_batch(tasks, lead)
        ref = batch_ref("submit_proof", "submit_proofs", n)
        bench.record(f"submit_proofs {n}", gas, items=n, ref=ref)


def lifecycles(bench: Bench, requester: LocalAccount, generator: LocalAccount) -> None:
    """A request's whole life with a real Groth16 verifier (bench/lifecycle.py)."""
    for row in measure_lifecycle(bench.client, bench.matcher, requester, generator):
        bench.record(row.operation, row.gas, items=row.requests, parts=row.parts)


def invalid_inputs_and_discard(
    bench: Bench, requester: LocalAccount, generator: LocalAccount
) -> None:
    task = bench.new_request(requester, signals=INVALID_SIGNALS)
    bench.assign(task, generator)
    receipt = bench.client.submit_invalid_inputs(generator, task)
    bench.record("submit_invalid_inputs", gas_used(receipt))

    task = bench.new_request(requester)
    bench.assign(task, generator)
    bench.record("discard", gas_used(bench.client.discard(generator, task)))


def slashes(bench: Bench, requester: LocalAccount, generator: LocalAccount) -> None:
    """Two missed deadlines of one generator, slashed by the matcher, an account with no
    internal balance yet. The first slash credits its bounty to that zero balance slot
    (22,100 gas instead of 5,000); the generator's first missed deadline costs nothing
    more, its count is packed in the record's non-zero slot."""
    late = [bench.new_request(requester, proof_time=OFFER_PROOF_TIME) for _ in range(2)]
    for task in late:
        bench.assign(task, generator)
    bench.client.time_travel(OFFER_PROOF_TIME + 1)
    cold, warm = (gas_used(bench.client.slash(bench.matcher, task)) for task in late)
    bench.record("slash", warm, ref="slash")
    bench.record("slash (first by a new account)", cold, ref="slash")


def enclaves(bench: Bench, requester: LocalAccount, generator: LocalAccount) -> None:
    """The attested PLONK market: an Input and a Proof Verification enclave register (and
    one refreshes), then a proof attested by the PVS and invalid inputs attested by the
    IVS settle. The raw proof is the committed PLONK sample (768 bytes, 24 words)."""
    market = bench.setup.deployment.markets[ATTESTED_MARKET]
    domain = bench.domain
    pvs_image, ivs_image = sample_image_ids("square_root")
    pvs, ivs = EnclaveIdentity(), EnclaveIdentity()
    bench.record("register enclave (first key)", bench.register_enclave(market, pvs, pvs_image))
    bench.register_enclave(market, ivs, ivs_image)
    bench.client.time_travel(60)
    bench.record("register enclave (refresh)", bench.register_enclave(market, pvs, pvs_image))

    bench.client.join_market(generator, market, price=OFFER_PRICE, proof_time=OFFER_PROOF_TIME)
    sample = plonk("square_root").sample_proof()
    task = bench.new_request(requester, signals=sample.public_signals, market_id=market)
    bench.assign(task, generator)
    raw = sample.calldata()
    verdict = TaskAttestation(market, task.id, generator.address, keccak(task.public_inputs))
    signature = pvs.sign(domain, replace(verdict, proof_hash=keccak(raw)))
    receipt = bench.client.submit_proof(generator, task, attested_proof(raw, signature))
    # No v1 row compares: its figure is a mock verifier's 32-byte proof; this carries a
    # 768-byte PLONK proof and its attestation, logged in ProofSubmitted.
    bench.record("submit_proof (attested by the PVS)", gas_used(receipt))

    task = bench.new_request(requester, signals=(50, 10), market_id=market)
    bench.assign(task, generator)
    verdict = TaskAttestation(market, task.id, generator.address, keccak(task.public_inputs))
    receipt = bench.client.submit_invalid_inputs(generator, task, ivs.sign(domain, verdict))
    bench.record("submit_invalid_inputs (attested by the IVS)", gas_used(receipt))


def escrow_withdraw(bench: Bench, account: LocalAccount) -> None:
    bench.record("withdraw (escrow)", gas_used(bench.client.withdraw(account, KAL)))


def generator_exit(bench: Bench, generator: LocalAccount) -> None:
    """request_exit, then withdraw of the whole stake (no unbonding delay)."""
    client = bench.client
    bench.record("request_exit", gas_used(client.request_exit(generator)))
    bench.record("withdraw (generator stake)", gas_used(client.withdraw_stake(generator)))


# ------------------------------------------------------------------- report


def table(rows: Sequence[Row]) -> Table:
    out = Table(title="Kalypso gas per operation (anvil receipts; mock verifier but where named)")
    for name in ("operation", "gas", "per item", "Kalypso v1", "ratio", "goal <= 0.5"):
        out.add_column(name, justify="left" if name == "operation" else "right")
    for row in rows:
        out.add_row(
            row.operation,
            f"{row.gas:,}",
            f"{row.per_item:,}" if row.items > 1 else "",
            f"{row.reference:,}" if row.reference else "-",
            f"{row.ratio:.3f}" if row.ratio is not None else "-",
            {"ok": "[green]ok[/]", "over": "[red]over[/]"}.get(row.status, "-"),
        )
    return out


def write_json(bench: Bench, rows: Sequence[Row]) -> Path:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "source": "anvil receipts: gasUsed = 21,000 base + calldata + execution - refunds",
        "client": bench.client.w3.client_version,
        "verifier": "MockVerifier (256-byte proofs); the lifecycle rows: square_root's Groth16",
        "generators": len(GENERATOR_INDICES),
        "goal_ratio": GOAL,
        "kalypso_v1": KALYPSO_V1,
        "rows": [row.as_dict() for row in rows],
    }
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    return RESULTS


# --------------------------------------------------------------------- main


def measure(bench: Bench) -> None:
    """Drive the lifecycle; each phase records its rows in display order."""
    requester, puller = dev_account(2), dev_account(3)
    generators = [dev_account(i) for i in GENERATOR_INDICES]
    leaving = dev_account(EXIT_GENERATOR_INDEX)
    bench.client.approve_all(requester)
    bench.client.approve_all(puller)
    deployment_warm_up(bench)

    create_market(bench)
    register_generators(bench, [leaving, *generators])
    private_join(bench, generators[0])
    deposits(bench, requester)
    create_requests(bench, requester, puller)
    open_request_changes(bench, requester)
    expire(bench, requester)
    assign_and_prove(bench, requester, generators)
    batches(bench, requester, generators)
    lifecycles(bench, requester, generators[-1])
    invalid_inputs_and_discard(bench, requester, generators[1])
    slashes(bench, requester, generators[2])
    enclaves(bench, requester, generators[3])
    escrow_withdraw(bench, requester)
    generator_exit(bench, leaving)


def main() -> None:
    with Anvil() as chain:
        w3 = chain.web3()
        setup = deploy_devnet(w3)
        bench = Bench(MarketplaceClient(w3, setup.deployment), setup)
        measure(bench)
        rows = bench.rows
        path = write_json(bench, rows)
    console = Console()
    if not console.is_terminal:
        console = Console(width=WIDTH)
    console.print(table(rows))
    console.print(f"written to {path}")


if __name__ == "__main__":
    main()
