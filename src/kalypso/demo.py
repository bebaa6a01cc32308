"""`make demo`: a tour of the whole system on a local chain, with real proofs, narrated.

The enclave images, the matching engine and two generator nodes run as their own
processes; this one is the app, asking for proofs through the SDK (`kalypso.sdk`) with
each pricing strategy, and shows who was paid what. It cleans up its processes at the
end or on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import warnings
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kalypso.circuits import circuit, plonk
from kalypso.contracts.client import MarketplaceClient
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.devnet import (
    ATTESTED_MARKET,
    PRIVATE_MARKET,
    Anvil,
    deploy_devnet,
    dev_account,
    free_port,
)
from kalypso.generator.process import GeneratorProcess
from kalypso.market import RequestState
from kalypso.provers.proof import Groth16Proof
from kalypso.provers.snarkjs import SnarkjsWorker
from kalypso.sdk import (
    AskUser,
    DevAuthorityWarning,
    FixedPrice,
    Kalypso,
    MarketPercentile,
    NoProofError,
    Question,
    UnprovableInputsError,
    Urgency,
)
from kalypso.sdk.pricing import Pricing, PricingContext
from kalypso.stack import DevnetStack

KAL = TOKEN_UNIT


class Narrator:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.step = 0

    def say(self, text: str) -> None:
        self.step += 1
        self.console.print(f"[bold cyan]{self.step:>2}.[/] {text}", highlight=False)

    def detail(self, text: str) -> None:
        self.console.print(f"    {text}", highlight=False)


def balances(console: Console, chain: MarketplaceClient, who: dict[str, str]) -> None:
    table = Table(header_style="bold", box=None, padding=(0, 2))
    for column in ("account", "internal balance", "wallet", "stake (free / total)"):
        table.add_column(column, justify="left" if column == "account" else "right")
    for name, address in who.items():
        stake = chain.generator(address)[3]
        free = chain.free_stake(address)
        table.add_row(
            name,
            kal(chain.balance(address)),
            kal(chain.token_balance(address)),
            f"{kal(free)} / {kal(stake)}" if stake else "-",
        )
    console.print(table)


def kal(amount: int) -> str:
    return f"{amount / KAL:,.2f} KAL"


def second_generator(workdir: Path, chain: Anvil, deployment: Path) -> GeneratorProcess:
    """Generator B: cheaper in square_root, and the one that will crash."""
    return GeneratorProcess(
        workdir,
        rpc_url=chain.url,
        deployment=deployment,
        account=dev_account(4),
        api_port=free_port(),
        stake=1_000 * KAL,
        compute=8,
        name="generator-b",
        markets={
            "square_root": {
                "price": 4 * KAL,
                "proof_time": 60,
                "circuit": "square_root",
                "solver": "square_root",
            }
        },
    )


def tour(
    console: Console,
    kalypso: Kalypso,
    chain: MarketplaceClient,
    stack: DevnetStack,
    generator_b: GeneratorProcess,
) -> None:
    n = Narrator(console)
    a, b = stack.generator.account.address, generator_b.account.address
    people = {
        "requester (the app)": kalypso.address,
        "generator A": a,
        "generator B": b,
        "matching engine": stack.matcher.account.address,
        "treasury": dev_account(0).address,
    }
    names: dict[str, str] = {a: "generator A", b: "generator B"}

    n.say("the markets, as the SDK reads them from the chain (kalypso.market list)")
    table = Table(header_style="bold", box=None, padding=(0, 2))
    for column in ("id", "name", "proofs", "private inputs", "offers"):
        table.add_column(column)
    for market in kalypso.markets():
        offers = ", ".join(
            f"{names.get(o.generator, o.generator[:8])} {kal(o.price)}"
            for o in kalypso.stats(market).offers
        )
        private = ", ".join(market.private_inputs) or "-"
        table.add_row(str(market.id), market.name, market.proof_system, private, offers or "-")
    console.print(table)

    n.say(f"the app ({kalypso.address[:10]}…) deposits 300 KAL, approving exactly that")
    kalypso.deposit("300 KAL")

    # -- private inputs, proven inside the Generator Image, decoded in the SDK
    n.say('a private request in one call: request_proof("poseidon_preimage", {"preimage": 42})')
    request = kalypso.request_proof(
        PRIVATE_MARKET, {"preimage": 42}, max_price="25 KAL", proof_time=120
    )
    n.detail(
        "the preflight ran the circuit on 42 and found its Poseidon hash; the preimage was "
        "sealed to the Matching Engine enclave's key, read from the enclave registry"
    )
    outcome = request.wait(timeout=60)
    proof = outcome.proof
    assert isinstance(proof, Groth16Proof)
    n.detail(
        f"generator A's Generator Image proved it; the SDK decoded a {type(proof).__name__} "
        f"from ProofSubmitted: hash {str(proof.public_signals[0])[:20]}…, verify_local "
        f"{proof.verify_local(circuit('poseidon_preimage').vkey_json())}"
    )
    n.detail(f"paid {kal(outcome.payment)}, refunded {kal(outcome.refund)} of the 25 escrowed")

    # -- pricing strategies
    n.say("three square roots, each priced by a different strategy (cap 8 KAL each)")

    def user(question: Question) -> str:
        n.detail(
            f"AskUser shows the user: suggested {question.show(question.suggestion.amount)} "
            f"({question.suggestion.basis}); the user types 6 KAL"
        )
        return "6 KAL"

    strategies: list[tuple[str, Pricing, int, int]] = [
        ("MarketPercentile()", MarketPercentile(), 49, 120),
        ("Urgency(base=FixedPrice(2 KAL))", Urgency(base=FixedPrice("2 KAL")), 64, 60),
        ("AskUser(...)", AskUser(user), 81, 120),
    ]
    placed = []
    for label, strategy, square, seconds in strategies:
        handle = kalypso.request_proof(
            "square_root",
            {"square": square, "max_root": 10},
            max_price="8 KAL",
            pricing=strategy,
            proof_time=seconds,
        )
        quote = handle.quote
        n.detail(f"{label}: offers {kal(handle.max_price)} — {quote.basis if quote else ''}")
        placed.append(handle)
    for handle in placed:
        done = handle.wait(timeout=60)
        assert done.proof is not None and done.generator is not None
        n.detail(
            f"√{done.proof.public_signals[0]} proven by {names[done.generator]} for "
            f"{kal(done.payment)} (B asks 4, A asks 5: the matcher ranks B first)"
        )

    n.say("a request offering 3 KAL, below every offer, re-priced by its strategy (+1 KAL a try)")

    def climbing(context: PricingContext) -> int:
        return (3 + context.attempt) * KAL

    cheap = kalypso.request_proof(
        "square_root",
        {"square": 100, "max_root": 10},
        max_price="8 KAL",
        pricing=climbing,
        proof_time=120,
    )
    done = cheap.wait(timeout=60, reprice_every=1)
    n.detail(f"matched once it offered {kal(cheap.max_price)}; paid {kal(done.payment)}")

    # -- inputs that cannot be proven
    n.say("inputs without a proof: the square root of 50")
    try:
        kalypso.request_proof("square_root", {"square": 50, "max_root": 10}, max_price="8 KAL")
    except UnprovableInputsError as refused:
        n.detail(f"the preflight refuses it: {refused}")
    n.detail("sent anyway (skip_preflight=True): a generator claims the inputs invalid")
    invalid = kalypso.request_proof(
        "square_root",
        {"square": 50, "max_root": 10},
        max_price="8 KAL",
        proof_time=120,
        skip_preflight=True,
    )
    verdict = invalid.wait(timeout=60)
    n.detail(
        f"{verdict.state.name}: the market's on-chain input verifier agreed; generator paid "
        f"{kal(verdict.payment)}, refunded {kal(verdict.refund)}"
    )
    hash_of_42 = proof.public_signals[0]
    mismatch = kalypso.request_proof(
        PRIVATE_MARKET,
        {"preimage": 43, "hash": hash_of_42},
        max_price="25 KAL",
        proof_time=120,
        skip_preflight=True,
    )
    try:
        mismatch.wait_for_proof(timeout=60)
    except NoProofError as ended:
        n.detail(
            f"a sealed preimage (43) that does not hash to the asked hash: "
            f"{ended.outcome.state.name}, attested by the Generator Image without revealing it"
        )

    # -- an attested market
    n.say(f"{ATTESTED_MARKET}: PLONK proofs, checked off-chain by a Proof Verification Image")
    attested = kalypso.request_proof(
        ATTESTED_MARKET, {"square": 144, "max_root": 20}, max_price="8 KAL", proof_time=120
    )
    plonk_proof = attested.wait_for_proof(timeout=60)
    ok = asyncio.run(_verify_plonk(plonk_proof))
    n.detail(
        f"the SDK decoded the real {type(plonk_proof).__name__} beside the enclave's "
        f"attestation; snarkjs verifies it: {ok}"
    )

    unprovable = kalypso.request_proof(
        ATTESTED_MARKET,
        {"square": 50, "max_root": 20},
        max_price="8 KAL",
        proof_time=120,
        skip_preflight=True,
    )
    judged = unprovable.wait(timeout=60)
    n.detail(
        f"√50 in the same market: {judged.state.name}, attested by its Input Verification "
        "Image (no contract here can judge these inputs)"
    )

    # -- a missed deadline
    n.say("generator B crashes (SIGKILL); its offer stays on-chain. Generator A pauses.")
    generator_b.kill()
    stack.generator.post("/pause")
    lost = kalypso.request_proof(
        "square_root", {"square": 121, "max_root": 20}, max_price="8 KAL", proof_time=60
    )
    deadline = time.monotonic() + 30
    while lost.status().state is not RequestState.ASSIGNED:
        assert time.monotonic() < deadline, "the request was never assigned"
        time.sleep(0.2)
    n.detail("the matcher assigns the next request to B, the only offer left; nobody proves it")
    chain.time_travel(61)
    slashed = lost.wait(timeout=30)
    n.detail(
        f"61 s later the app's wait() slashes it: {slashed.state.name}; the app is refunded "
        f"{kal(slashed.refund)} and keeps the bounty, {kal(slashed.bounty)} of B's "
        f"{kal(slashed.penalty)} penalty (the rest goes to the treasury)"
    )
    stack.generator.post("/resume")

    n.say("the app withdraws everything; the final balances")
    kalypso.withdraw()
    balances(console, chain, people)
    console.print(
        "[bold green]tour complete[/]: private, public and attested markets; fixed, "
        "market, urgency, user-decided and re-pricing strategies; invalid inputs shown "
        "three ways; a missed deadline slashed — four enclaves, a matcher and two "
        "generators running as processes"
    )


async def _verify_plonk(proof: object) -> bool:
    worker = SnarkjsWorker()
    try:
        body, public = proof.to_snarkjs()  # type: ignore[attr-defined]
        return await worker.verify("plonk", plonk("square_root").vkey_json(), body, public)
    finally:
        await worker.close()


def linger(console: Console, url: str) -> None:
    console.print(f"the chain and the dashboard ({url}/) keep running: Ctrl-C stops them")
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(1)


def main(console: Console | None = None, *, keep: bool = False) -> None:
    """The tour; `keep`: leave the chain and the dashboard up until Ctrl-C after it."""
    console = console or Console()
    started = time.monotonic()
    chain = Anvil()
    with tempfile.TemporaryDirectory(prefix="kalypso-demo-") as tmp:
        workdir = Path(tmp)
        try:
            with console.status("starting a local chain (anvil) and deploying…"):
                chain.start()
                setup = deploy_devnet(chain.web3())
                deployment = setup.deployment.save(workdir / "deployment.json")
            console.print(f"chain {chain.url}; marketplace {setup.deployment.marketplace}")
            # the app's SDK slashes missed deadlines itself in this tour
            stack = DevnetStack.build(workdir, chain.url, deployment, setup, slash_overdue=False)
            generator_b = second_generator(workdir, chain, deployment)
            try:
                stack.start(lambda name: console.status(f"starting the {name}…"))
                with console.status("starting generator B…"):
                    generator_b.start()
                for process in stack.enclaves.values():
                    console.print(f"enclave {process.name}: attested and registered on-chain")
                console.print(f"matching engine at {stack.matcher.url}")
                console.print(f"generator A ({stack.generator.account.address}) in every market")
                console.print(f"generator B ({generator_b.account.address}) in square_root")
                console.print(
                    f"[bold]dashboard: {stack.dashboard.url}/[/] — open it to watch the tour live",
                    highlight=False,
                )
                client = MarketplaceClient(chain.web3(), setup.deployment)
                with (
                    warnings.catch_warnings(),
                    Kalypso(chain.url, deployment, dev_account(3)) as kalypso,
                ):
                    warnings.simplefilter("ignore", DevAuthorityWarning)  # narrated instead
                    tour(console, kalypso, client, stack, generator_b)
                health = stack.dashboard.status("/health")
                console.print(
                    f"the dashboard followed it all: {health['requests']} requests indexed "
                    f"up to block {health['indexed_to']}"
                )
                if keep:
                    linger(console, stack.dashboard.url)
            except Exception:
                for daemon in (*stack.daemons, generator_b):
                    console.print(f"[dim]{daemon.name} log: {daemon.tail(5)}[/]", highlight=False)
                raise
            finally:
                generator_b.stop()
                stack.stop()
        finally:
            chain.stop()
    console.print(f"[dim]{time.monotonic() - started:.0f} s; every process stopped[/]")
