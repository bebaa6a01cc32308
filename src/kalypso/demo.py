"""The lifecycle end to end on a local chain, with real Groth16 proofs, narrated step by step.

The matching engine runs as its own process (`kalypso matcher`) and assigns every request;
this process plays the requester and the generator (until the generator daemon lands) so
each step can be shown with balances.
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

from kalypso.circuits import circuit
from kalypso.contracts.client import MarketplaceClient, PostedRequest
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.crypto import EncryptionKey, SecretContext, open_with, seal
from kalypso.devnet import Anvil, DevnetSetup, deploy_devnet, dev_account, free_port
from kalypso.errors import ChainError
from kalypso.market import RequestState, encode_signals, request_id
from kalypso.market.events import marketplace_decoder
from kalypso.matching.process import MatcherProcess
from kalypso.provers import InvalidInputs
from kalypso.provers.proof import Groth16Proof
from kalypso.provers.snarkjs import SnarkjsGroth16Prover, SnarkjsWorker


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


async def prove(prover: SnarkjsGroth16Prover, inputs: dict[str, int]) -> Groth16Proof:
    result = await prover.prove(inputs)
    assert isinstance(result, Groth16Proof), result
    return result


def wait_assigned(client: MarketplaceClient, posted: PostedRequest, timeout: float = 30) -> None:
    """Until the matcher's assignment of `posted` is on-chain."""
    deadline = time.monotonic() + timeout
    while client.task(posted).state != RequestState.ASSIGNED:
        if time.monotonic() > deadline:
            raise ChainError(f"the matcher did not assign request 0x{posted.id.hex()} in time")
        time.sleep(0.1)


def generator_secret(client: MarketplaceClient, posted: PostedRequest) -> bytes:
    """The key envelope the matcher put in the request's `TaskAssigned` event."""
    decoder = marketplace_decoder()
    logs = client.w3.eth.get_logs(
        {
            "address": client.marketplace.address,
            "fromBlock": posted.receipt["blockNumber"],
            "topics": [None, "0x" + posted.id.hex()],
        }
    )
    (event,) = [e for e in map(decoder.decode, logs) if e.name == "TaskAssigned"]
    return bytes(event["generator_secret"])


async def run_lifecycle(
    client: MarketplaceClient,
    setup: DevnetSetup,
    matcher: MatcherProcess,
    matcher_key: bytes,
    console: Console,
) -> None:
    markets = setup.deployment.markets
    preimage_market, root_market = markets["poseidon_preimage"], markets["square_root"]
    generator, requester = dev_account(2), dev_account(3)
    n = Narrator(console, client)
    people: list[tuple[str, LocalAccount | str]] = [
        ("requester", requester),
        ("generator", generator),
        ("matching engine", setup.matcher),
        ("treasury", setup.owner.address),
    ]
    generator_key = EncryptionKey.generate()  # the generator's key for private inputs
    chain_id = client.w3.eth.chain_id
    worker = SnarkjsWorker()
    preimage_prover = SnarkjsGroth16Prover.for_circuit("poseidon_preimage", worker=worker)
    root_prover = SnarkjsGroth16Prover.for_circuit("square_root", worker=worker)

    def assigned(market_id: int, signals: list[int], max_price: int) -> PostedRequest:
        """A request of the requester, once the matcher has assigned it."""
        posted = client.create_request(
            requester, market_id, encode_signals(signals), max_price=max_price, proof_time=120
        )
        wait_assigned(client, posted)
        return posted

    def private(
        market_id: int, signals: list[int], secret: dict[str, int], max_price: int
    ) -> tuple[PostedRequest, bytes]:
        """A request whose private signals are sealed to the matching engine's key."""
        salt = os.urandom(32)
        rid = request_id(chain_id, client.marketplace.address, requester.address, salt)
        plaintext = json.dumps(secret, sort_keys=True, separators=(",", ":")).encode()
        sealed = seal(
            plaintext, matcher_key, SecretContext(chain_id, client.marketplace.address, rid)
        )
        posted = client.create_request(
            requester,
            market_id,
            encode_signals(signals),
            max_price=max_price,
            proof_time=120,
            encrypted_secret=sealed,
            salt=salt,
        )
        return posted, sealed

    try:
        n.say(f"generator {generator.address[:10]}… registers: 1,000 KAL stake, 8 units of compute")
        client.approve_all(generator)
        client.register(generator, stake=1_000 * TOKEN_UNIT, compute=8)
        n.say(
            f"it joins market {preimage_market} (poseidon_preimage) at 10 KAL and market "
            f"{root_market} (square_root) at 5 KAL, proving within 60 s"
        )
        client.join_market(
            generator,
            preimage_market,
            price=10 * TOKEN_UNIT,
            proof_time=60,
            encryption_key=generator_key.public_bytes,
        )
        client.join_market(generator, root_market, price=5 * TOKEN_UNIT, proof_time=60)
        n.say(f"requester {requester.address[:10]}… deposits 300 KAL into the marketplace")
        client.approve_all(requester)
        client.deposit(requester, 300 * TOKEN_UNIT)
        n.balances(people)

        # -- a Poseidon preimage, proven with Groth16 and verified on-chain
        secret = {"preimage": 42}
        preflight = await worker.public_signals(circuit("poseidon_preimage").wasm, secret, 1)
        assert not isinstance(preflight, InvalidInputs), preflight
        n.say("requester asks for a proof that it knows a preimage of Poseidon hash")
        n.detail(f"{preflight[0]} (max 25 KAL, within 120 s)")
        first, sealed = private(preimage_market, preflight, secret, 25 * TOKEN_UNIT)
        n.detail(
            f"request 0x{first.id.hex()[:16]}…: 25 KAL escrowed; the preimage is sealed to the "
            f"matching engine's key ({len(sealed)} bytes of ciphertext on-chain, bound to "
            "this request)"
        )
        n.say("the matching engine (its own process) assigns it to the generator at its quote")
        wait_assigned(client, first)
        key_envelope = generator_secret(client, first)
        n.detail(
            f"deadline at block time {client.task(first).deadline}; 100 KAL of stake locked; "
            f"the content key re-wrapped to the generator's key ({len(key_envelope)} bytes)"
        )
        n.detail(
            "(the matcher here runs outside an enclave and could read the secret; the "
            "Matching Engine Image closes that)"
        )
        context = SecretContext(chain_id, client.marketplace.address, first.id)
        opened = json.loads(open_with(sealed, key_envelope, generator_key, context))
        n.say("the generator opens the preimage and proves it with snarkjs (Groth16, BN254)")
        started = time.perf_counter()
        proof = await prove(preimage_prover, opened)
        n.detail(f"proof in {time.perf_counter() - started:.2f} s")
        receipt = client.submit_proof(generator, first, proof.calldata())
        n.detail(
            f"verified on-chain by the market's Groth16Verifier: block "
            f"{receipt['blockNumber']}, {receipt['gasUsed']:,} gas; generator paid 10 KAL, "
            "requester refunded 15 KAL, stake released"
        )
        n.balances(people)

        # -- several proofs of one market in one batch
        squares = [49, 64, 81]
        n.say(f"requester asks for the square root of {squares[0]} (at most 10), offering 4 KAL")
        low = client.create_request(
            requester,
            root_market,
            encode_signals([squares[0], 10]),
            max_price=4 * TOKEN_UNIT,
            proof_time=120,
        )
        time.sleep(1)
        why = matcher.status(f"/requests/0x{low.id.hex()}")
        n.detail(f"the matcher's status endpoint says why it waits: {explain(why)}")
        n.say("the requester raises its max price to 8 KAL; the matcher assigns it")
        client.increase_max_price(requester, low, 8 * TOKEN_UNIT)
        low = low.with_max_price(8 * TOKEN_UNIT)
        wait_assigned(client, low)
        n.say(f"requester asks for square roots of {squares[1:]} too, 8 KAL each")
        batch = [low] + [assigned(root_market, [sq, 10], 8 * TOKEN_UNIT) for sq in squares[1:]]
        n.say("the generator proves all three and submits them in one transaction")
        proofs = [
            await prove(root_prover, {"square": s, "max_root": 10, "root": int(s**0.5)})
            for s in squares
        ]
        receipt = client.submit_proofs(
            generator, list(zip(batch, [p.calldata() for p in proofs], strict=True))
        )
        n.detail(
            f"one verify_batch (n + 3 pairings): {receipt['gasUsed']:,} gas, "
            f"{receipt['gasUsed'] // len(batch):,} per proof"
        )
        n.balances(people)

        # -- inputs that cannot be proven
        n.say("a request for the square root of 10 (at most 10): no such integer exists")
        invalid = assigned(root_market, [10, 10], 8 * TOKEN_UNIT)
        verdict = await root_prover.prove({"square": 10, "max_root": 10, "root": 3})
        assert isinstance(verdict, InvalidInputs)
        n.detail(f"the prover finds no witness: {verdict.reason.splitlines()[0][:70]}")
        client.submit_invalid_inputs(generator, invalid)
        n.detail(
            f"the market's input verifier agrees on-chain: task "
            f"{client.task(invalid).state.name}; generator paid, rest refunded"
        )

        # -- a missed deadline
        n.say("one more preimage request; this time the generator stays silent")
        silent, _ = private(preimage_market, preflight, secret, 25 * TOKEN_UNIT)
        wait_assigned(client, silent)
        client.time_travel(121)
        n.say("121 s later the deadline has passed: the matching engine slashes the task")
        deadline = time.monotonic() + 30
        while client.task(silent).state != RequestState.SLASHED:
            if time.monotonic() > deadline:
                raise ChainError("the matcher did not slash the overdue task")
            time.sleep(0.1)
        n.detail(
            "requester refunded in full; the 100 KAL penalty goes half to the matching "
            "engine (the bounty), half to the treasury"
        )
        n.balances(people)

        n.say("the requester withdraws its whole internal balance")
        client.withdraw(requester, client.balance(requester.address))
        n.detail(f"requester holds {kal(client.token_balance(requester.address))} in its wallet")
        states = [client.task(p).state for p in (first, *batch, invalid, silent)]
        assert states == [RequestState.FULFILLED] * 4 + [
            RequestState.INVALID_INPUTS,
            RequestState.SLASHED,
        ], states
        console.print(
            "[bold green]lifecycle complete[/]: real proofs verified on-chain (one and "
            "a batch), invalid inputs settled, a missed deadline slashed"
        )
    finally:
        await worker.close()


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
            matcher_key = EncryptionKey.generate()
            matcher = MatcherProcess(
                workdir,
                rpc_url=chain.url,
                deployment=deployment,
                account=setup.matcher,
                api_port=free_port(),
                encryption_key=matcher_key.save(workdir / "matcher.x25519"),
            )
            with console.status("starting the matching engine (kalypso matcher)…"):
                matcher.start()
            console.print(f"matching engine {setup.matcher.address} serving {matcher.url}")
            client = MarketplaceClient(chain.web3(), setup.deployment)
            try:
                asyncio.run(
                    run_lifecycle(client, setup, matcher, matcher_key.public_bytes, console)
                )
            except Exception:
                console.print(f"[dim]matcher log: {matcher.tail(5)}[/]", highlight=False)
                raise
            finally:
                matcher.stop()
        finally:
            chain.stop()
