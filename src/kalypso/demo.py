"""The on-chain lifecycle, end to end on a local chain, narrated step by step.

Proofs here go through the test verifier (`MockVerifier`); the real Groth16 markets
and the matcher and generator daemons join the demo as they land.
"""

from __future__ import annotations

from collections.abc import Iterable

from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.table import Table

from kalypso.contracts.client import MarketplaceClient
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.devnet import SAMPLE_MARKET, Anvil, DevnetSetup, deploy_devnet, dev_account
from kalypso.market import RequestState, encode_signals
from kalypso.market.mock import mock_proof


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

    def balances(self, who: Iterable[tuple[str, LocalAccount | str]]) -> None:
        table = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
        for column in ("account", "internal balance", "stake (free / total)"):
            table.add_column(column, justify="right" if column != "account" else "left")
        for name, account in who:
            address = account if isinstance(account, str) else account.address
            generator = self.client.generator(address)
            stake = generator[3]
            stake_text = f"{kal(self.client.free_stake(address))} / {kal(stake)}" if stake else "—"
            table.add_row(name, kal(self.client.balance(address)), stake_text)
        self.console.print(table)


def run_lifecycle(client: MarketplaceClient, setup: DevnetSetup, console: Console) -> None:
    market_id = setup.deployment.markets[SAMPLE_MARKET]
    matcher, generator, requester, watcher = (
        setup.matcher,
        dev_account(2),
        dev_account(3),
        dev_account(4),
    )
    n = Narrator(console, client)
    people: list[tuple[str, LocalAccount | str]] = [
        ("requester", requester),
        ("generator", generator),
        ("watcher", watcher),
        ("treasury", setup.owner.address),
    ]

    n.say(
        f"generator {generator.address[:10]}… registers with 1,000 KAL stake and 4 units of compute"
    )
    client.approve_all(generator)
    client.register(generator, stake=1_000 * TOKEN_UNIT, compute=4)
    n.say(f"it joins market {market_id} ({SAMPLE_MARKET}): 10 KAL per proof, proves within 60 s")
    client.join_market(generator, market_id, price=10 * TOKEN_UNIT, proof_time=60)

    n.say(f"requester {requester.address[:10]}… deposits 200 KAL into the marketplace")
    client.approve_all(requester)
    client.deposit(requester, 200 * TOKEN_UNIT)
    n.balances(people)

    n.say("requester asks for a proof of input 42: max 25 KAL, answer within 120 s")
    first = client.create_request(
        requester, market_id, encode_signals([42]), max_price=25 * TOKEN_UNIT, proof_time=120
    )
    console.print(f"    request id 0x{first.id.hex()} — 25 KAL escrowed")
    n.say("the matching engine assigns it to the generator at its 10 KAL quote")
    client.assign(matcher, first, generator.address, 10 * TOKEN_UNIT)
    task = client.task(first)
    console.print(
        f"    task live: deadline at block time {task.deadline} (100 KAL of stake locked)"
    )
    n.balances(people)
    n.say("the generator proves it and submits the proof on-chain")
    receipt = client.submit_proof(
        generator, first, mock_proof(first.public_inputs, first.id, generator.address)
    )
    console.print(
        f"    accepted in block {receipt['blockNumber']} ({receipt['gasUsed']:,} gas): "
        "generator paid 10 KAL, requester refunded 15 KAL, stake released"
    )
    n.balances(people)

    n.say("a second request (input 43); this time the generator stays silent")
    second = client.create_request(
        requester, market_id, encode_signals([43]), max_price=25 * TOKEN_UNIT, proof_time=120
    )
    client.assign(matcher, second, generator.address, 10 * TOKEN_UNIT)
    client.time_travel(121)
    n.say("121 s later the deadline has passed: a watcher slashes the task")
    client.slash(watcher, second)
    console.print(
        "    requester refunded in full; the 100 KAL penalty goes half to the watcher, "
        "half to the treasury"
    )
    n.balances(people)

    n.say("a third request asks for input 2,000,000, which the circuit cannot prove")
    third = client.create_request(
        requester, market_id, encode_signals([2_000_000]), max_price=25 * TOKEN_UNIT, proof_time=120
    )
    client.assign(matcher, third, generator.address, 10 * TOKEN_UNIT)
    n.say("the generator shows the inputs invalid through the market's input verifier")
    client.submit_invalid_inputs(generator, third)
    console.print(f"    task state: {client.task(third).state.name}; generator paid, rest refunded")
    n.balances(people)

    n.say("the requester withdraws its whole internal balance")
    client.withdraw(requester, client.balance(requester.address))
    console.print(
        f"    requester holds {kal(client.token_balance(requester.address))} in its wallet"
    )
    states = [client.task(p).state for p in (first, second, third)]
    assert states == [RequestState.FULFILLED, RequestState.SLASHED, RequestState.INVALID_INPUTS]
    console.print(
        "[bold green]lifecycle complete[/]: proof paid, missed deadline slashed, "
        "invalid inputs settled"
    )


def main(console: Console | None = None) -> None:
    console = console or Console()
    with console.status("starting a local chain (anvil) and deploying…"), Anvil() as chain:
        w3 = chain.web3()
        setup = deploy_devnet(w3)
        console.print(
            f"chain {chain.url} (id {setup.deployment.chain_id}); "
            f"marketplace {setup.deployment.marketplace}"
        )
        run_lifecycle(MarketplaceClient(w3, setup.deployment), setup, console)
