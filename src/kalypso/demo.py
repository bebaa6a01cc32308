"""The lifecycle end to end on a local chain, with real Groth16 proofs, narrated step by step.

The matching engine (`kalypso matcher`) and a generator node (`kalypso generator run`) run
as their own processes; this one plays the requester (and, for the missed deadline, a
generator that never proves) and shows each step with balances.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.table import Table

from kalypso.circuits import circuit, plonk
from kalypso.contracts.client import MarketplaceClient, PostedRequest
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.crypto import SecretContext, seal
from kalypso.devnet import (
    ATTESTED_MARKET,
    ENCLAVE_MARKET,
    Anvil,
    DevnetSetup,
    deploy_devnet,
    dev_account,
)
from kalypso.enclave.process import matching_engine_key
from kalypso.errors import ChainError
from kalypso.generator.process import GeneratorProcess
from kalypso.market import RequestState, encode_signals, request_id
from kalypso.market.attested import split_attested_proof
from kalypso.matching.process import MatcherProcess
from kalypso.provers import InvalidInputs
from kalypso.provers.plonk import PlonkProof
from kalypso.provers.snarkjs import SnarkjsWorker
from kalypso.stack import DevnetStack


def kal(amount: int) -> str:
    return f"{amount / TOKEN_UNIT:,.2f} KAL"


class Narrator:
    def __init__(self, console: Console, client: MarketplaceClient) -> None:
        self.console = console
        self.client = client
        self.step = 0

    def say(self, text: str) -> None:
        self.step += 1
        self.console.print(f"[bold cyan]{self.step:>2}.[/] {text}")

    def detail(self, text: str) -> None:
        self.console.print(f"    {text}", highlight=False)

    def balances(self, who: Iterable[tuple[str, LocalAccount | str]]) -> None:
        table = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
        for column in ("account", "internal balance", "stake (free / total)"):
            table.add_column(column, justify="right" if column != "account" else "left")
        for name, account in who:
            address = account if isinstance(account, str) else account.address
            stake = self.client.generator(address)[3]
            stake_text = f"{kal(self.client.free_stake(address))} / {kal(stake)}" if stake else "—"
            table.add_row(name, kal(self.client.balance(address)), stake_text)
        self.console.print(table)


def wait_state(
    client: MarketplaceClient, posted: PostedRequest, *states: RequestState, timeout: float = 60
) -> RequestState:
    """Until the request is in one of `states` (the daemons move it along)."""
    deadline = time.monotonic() + timeout
    while (state := client.task(posted).state) not in states:
        if time.monotonic() > deadline:
            raise ChainError(
                f"request 0x{posted.id.hex()} stayed {state.name}, not {[s.name for s in states]}"
            )
        time.sleep(0.1)
    return state


def generator_task(generator: GeneratorProcess, posted: PostedRequest) -> dict[str, Any]:
    """The generator node's own record of the task (its API)."""
    answer: dict[str, Any] = generator.status(f"/tasks/0x{posted.id.hex()}")
    return answer


async def run_lifecycle(
    client: MarketplaceClient,
    setup: DevnetSetup,
    matcher: MatcherProcess,
    generator: GeneratorProcess,
    console: Console,
) -> None:
    markets = setup.deployment.markets
    preimage_market, root_market = markets[ENCLAVE_MARKET], markets["square_root"]
    requester, lazy = dev_account(3), dev_account(4)
    n = Narrator(console, client)
    people: list[tuple[str, LocalAccount | str]] = [
        ("requester", requester),
        ("generator", generator.account),
        ("matching engine", setup.matcher),
        ("treasury", setup.owner.address),
    ]
    chain_id = client.w3.eth.chain_id
    # The key to seal to comes from the enclave registry; the matcher only names its enclave.
    enclave = matcher.status("/health")["enclave"]
    matcher_key = matching_engine_key(client.w3, setup.deployment, enclave)

    def request(market_id: int, signals: list[int], max_price: int) -> PostedRequest:
        return client.create_request(
            requester, market_id, encode_signals(signals), max_price=max_price, proof_time=120
        )

    def private(market_id: int, signals: list[int], secret: dict[str, int]) -> PostedRequest:
        """A request whose private signals are sealed to the matching engine's key."""
        salt = os.urandom(32)
        rid = request_id(chain_id, client.marketplace.address, requester.address, salt)
        plaintext = json.dumps(secret, sort_keys=True, separators=(",", ":")).encode()
        context = SecretContext(chain_id, client.marketplace.address, rid)
        return client.create_request(
            requester,
            market_id,
            encode_signals(signals),
            max_price=25 * TOKEN_UNIT,
            proof_time=120,
            encrypted_secret=seal(plaintext, matcher_key, context),
            salt=salt,
        )

    g = client.generator(generator.account.address)
    n.say(
        f"the generator node ({generator.account.address[:10]}…, its own process) registered "
        f"itself from its config: {kal(g[3])} stake, {g[5]} units of compute"
    )
    n.detail(
        f"it joined market {preimage_market} ({ENCLAVE_MARKET}, proven inside its Generator "
        f"Image enclave) at 10 KAL, {root_market} (square_root) at 5 KAL and "
        f"{markets[ATTESTED_MARKET]} ({ATTESTED_MARKET}) at 6 KAL, proving within 60 s"
    )
    n.say(f"requester {requester.address[:10]}… deposits 300 KAL into the marketplace")
    client.approve_all(requester)
    client.deposit(requester, 300 * TOKEN_UNIT)
    n.balances(people)

    # -- a Poseidon preimage, private, proven with Groth16 and verified on-chain
    worker = SnarkjsWorker()
    try:
        secret = {"preimage": 42}
        preflight = await worker.public_signals(circuit("poseidon_preimage").wasm, secret, 1)
    finally:
        await worker.close()
    assert not isinstance(preflight, InvalidInputs), preflight
    n.say("requester asks for a proof that it knows a preimage of Poseidon hash")
    n.detail(f"{preflight[0]} (max 25 KAL, within 120 s)")
    first = private(preimage_market, preflight, secret)
    n.detail(
        f"request 0x{first.id.hex()[:16]}…: 25 KAL escrowed; the preimage is sealed to the "
        f"Matching Engine enclave's key (read from the enclave registry for {enclave[:10]}…) "
        "and bound to this request"
    )
    n.say(
        "the matcher assigns it; its enclave checks on-chain that the generator's key is a "
        "registered Generator Image key and re-wraps the content key to it; the generator "
        "node hands the task to that enclave, which opens the preimage and proves it with "
        "snarkjs; the node submits the proof"
    )
    wait_state(client, first, RequestState.FULFILLED)
    task = generator_task(generator, first)
    n.detail(
        f"proved in {task['proof_seconds']:.2f} s, verified on-chain by the market's "
        f"Groth16Verifier; generator paid 10 KAL, requester refunded 15 KAL"
    )
    n.detail(
        "(the matcher process never held the key; but on a devnet the 'enclave' is a plain "
        "process attested by a public dev key, so this shows the flow, not confidentiality)"
    )
    n.balances(people)

    # -- a price too low, then raised; then proofs batched
    squares = [49, 64, 81]
    n.say(f"requester asks for the square root of {squares[0]} (at most 10), offering 4 KAL")
    low = request(root_market, [squares[0], 10], 4 * TOKEN_UNIT)
    time.sleep(1)
    why = matcher.status(f"/requests/0x{low.id.hex()}")
    n.detail(f"the matcher's status endpoint says why it waits: {explain(why)}")
    n.say("the requester raises its max price to 8 KAL; the matcher assigns it")
    client.increase_max_price(requester, low, 8 * TOKEN_UNIT)
    low = low.with_max_price(8 * TOKEN_UNIT)
    n.say(f"requester asks for square roots of {squares[1:]} too, 8 KAL each")
    batch = [low] + [request(root_market, [sq, 10], 8 * TOKEN_UNIT) for sq in squares[1:]]
    for posted in batch:
        wait_state(client, posted, RequestState.FULFILLED)
    hashes = {generator_task(generator, p)["transactions"][-1] for p in batch}
    n.detail(
        f"the generator found the roots and proved all three: {len(hashes)} transaction(s) "
        "(proofs ready in the same round share one submit_proofs and one verify_batch)"
    )
    n.balances(people)

    # -- inputs that cannot be proven
    n.say("a request for the square root of 10 (at most 10): no such integer exists")
    invalid = request(root_market, [10, 10], 8 * TOKEN_UNIT)
    wait_state(client, invalid, RequestState.INVALID_INPUTS)
    reason = generator_task(generator, invalid)["error"]
    n.detail(f"the generator finds no witness ({reason}) and claims it invalid")
    n.detail("the market's input verifier agrees on-chain: generator paid, rest refunded")

    # -- a private preimage that does not match its hash
    n.say("a private request whose sealed preimage (43) does not hash to the requested hash")
    mismatch = private(preimage_market, preflight, {"preimage": 43})
    wait_state(client, mismatch, RequestState.INVALID_INPUTS)
    n.detail(
        "only the Generator Image sees the preimage: it finds no proof of the requested hash "
        "and signs an InputsInvalid attestation, which the marketplace checks against the "
        "enclave registry; generator paid, rest refunded, the preimage never left the enclave"
    )

    # -- a market verified off-chain by the Proof Verification Image
    attested_market = markets[ATTESTED_MARKET]
    n.say(
        f"market {attested_market} ({ATTESTED_MARKET}) takes PLONK proofs, which no contract "
        "here verifies: its Proof Verification Image checks them off-chain"
    )
    plonk_request = request(attested_market, [144, 20], 8 * TOKEN_UNIT)
    wait_state(client, plonk_request, RequestState.FULFILLED)
    raw, _ = split_attested_proof(proof_of(client, plonk_request))
    proof = PlonkProof.from_calldata(raw, plonk_request.public_inputs)
    worker = SnarkjsWorker()
    try:
        ok = await worker.verify("plonk", plonk("square_root").vkey_json(), *proof.to_snarkjs())
    finally:
        await worker.close()
    n.detail(
        "the generator proved with PLONK, the enclave signed ProofValid over the proof's hash, "
        f"and the requester decodes the real proof from ProofSubmitted: snarkjs says {ok}"
    )
    unprovable = request(attested_market, [50, 20], 8 * TOKEN_UNIT)
    wait_state(client, unprovable, RequestState.INVALID_INPUTS)
    n.detail(
        "a square root of 50 in the same market: the Input Verification Image attests that no "
        "root exists, and the generator is paid for showing it"
    )
    n.balances(people)

    # -- a missed deadline
    n.say(
        "the operator pauses the generator node (`kalypso generator pause`): it leaves its markets"
    )
    generator.post("/pause")
    n.say("a second generator joins the square_root market at 4 KAL, but never proves anything")
    client.approve_all(lazy)
    client.register(lazy, stake=1_000 * TOKEN_UNIT, compute=8)
    client.join_market(lazy, root_market, price=4 * TOKEN_UNIT, proof_time=60)
    people.append(("lazy generator", lazy))
    silent = request(root_market, [49, 10], 8 * TOKEN_UNIT)
    wait_state(client, silent, RequestState.ASSIGNED)
    n.detail(f"the matcher assigns request 0x{silent.id.hex()[:16]}… to it, the only offer left")
    client.time_travel(121)
    n.say("121 s later the deadline has passed: the matching engine slashes the task")
    wait_state(client, silent, RequestState.SLASHED, timeout=30)
    n.detail(
        "requester refunded in full; the lazy generator's 100 KAL penalty goes half to the "
        "matching engine (the bounty), half to the treasury"
    )
    generator.post("/resume")
    n.detail("the operator resumes the generator node: it joins its markets again")
    n.balances(people)

    n.say("the requester withdraws its whole internal balance")
    client.withdraw(requester, client.balance(requester.address))
    n.detail(f"requester holds {kal(client.token_balance(requester.address))} in its wallet")
    console.print(
        "[bold green]lifecycle complete[/]: real proofs verified on-chain (one and a "
        "batch) and off-chain by an enclave, invalid inputs settled three ways (on-chain "
        "verifier, Generator Image, Input Verification Image), a missed deadline slashed — "
        "by the matcher, the generator and four enclave images running as processes"
    )


def proof_of(client: MarketplaceClient, posted: PostedRequest) -> bytes:
    """The proof bytes of a request's `ProofSubmitted` event, as the SDK reads them."""
    events = client.marketplace.events.ProofSubmitted.get_logs(
        from_block=0, argument_filters={"task_id": posted.id}
    )
    return bytes(events[-1]["args"]["proof"])


def explain(status: dict[str, Any]) -> str:
    """The first failed rule of each generator in a matcher's `/requests/{id}` answer."""
    rules = [
        f"generator {str(c.get('generator'))[:10]}… fails “{c.get('rule')}”"
        for c in status.get("checks") or []
        if c.get("rule")
    ]
    return "; ".join(rules) or str(status.get("state"))


def main(console: Console | None = None) -> None:
    console = console or Console()
    chain = Anvil()
    with tempfile.TemporaryDirectory(prefix="kalypso-demo-") as tmp:
        workdir = Path(tmp)
        try:
            with console.status("starting a local chain (anvil) and deploying…"):
                chain.start()
                setup = deploy_devnet(chain.web3())
                deployment = setup.deployment.save(workdir / "deployment.json")
            console.print(
                f"chain {chain.url} (id {setup.deployment.chain_id}); "
                f"marketplace {setup.deployment.marketplace}"
            )
            stack = DevnetStack.build(workdir, chain.url, deployment, setup)
            try:
                stack.start(lambda name: console.status(f"starting the {name}…"))
                for process in stack.enclaves.values():
                    console.print(
                        f"{process.name} {process.signing_key}: keys made at start, attested "
                        "by the dev authority, registered on-chain"
                    )
                matcher, generator = stack.matcher, stack.generator
                console.print(f"matching engine {setup.matcher.address} serving {matcher.url}")
                console.print(f"generator node {generator.account.address} serving {generator.url}")
                client = MarketplaceClient(chain.web3(), setup.deployment)
                asyncio.run(run_lifecycle(client, setup, matcher, generator, console))
            except Exception:
                for daemon in stack.daemons:
                    console.print(f"[dim]{daemon.name} log: {daemon.tail(5)}[/]", highlight=False)
                raise
            finally:
                stack.stop()
        finally:
            chain.stop()
