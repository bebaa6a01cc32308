"""The SDK against anvil with the devnet's daemons (enclaves, matcher, generator node) running:
what an app developer does, end to end, with real proofs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3.types import RPCEndpoint

from kalypso.circuits import circuit, plonk
from kalypso.contracts.client import MarketplaceClient
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.devnet import ATTESTED_MARKET, PRIVATE_MARKET, dev_account
from kalypso.errors import ConfigError
from kalypso.market import RequestState
from kalypso.provers.plonk import PlonkProof
from kalypso.provers.proof import Groth16Proof
from kalypso.provers.snarkjs import SnarkjsWorker
from kalypso.sdk import (
    AskUser,
    AsyncKalypso,
    DevAuthorityWarning,
    FixedPrice,
    Kalypso,
    MarketPercentile,
    NoProofError,
    Question,
    Quote,
    UnprovableInputsError,
    Urgency,
)
from kalypso.sdk.pricing import PricingContext
from tests.integration.conftest import SdkDevnet

# the devnet's Matching Engine key is attested by the public dev authority: warned of once
pytestmark = pytest.mark.filterwarnings("ignore::kalypso.sdk.DevAuthorityWarning")
ROOT = Path(__file__).resolve().parents[2]
KAL = TOKEN_UNIT


@pytest.fixture(scope="module")
def kalypso(sdk_devnet: SdkDevnet) -> Iterator[Kalypso]:
    with Kalypso(sdk_devnet.url, sdk_devnet.deployment, dev_account(3)) as client:
        client.deposit("500 KAL")
        yield client


def readme_example() -> str:
    """The first Python block of the README: the ten lines a new user copies."""
    match = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert match, "the README has no Python example"
    return match.group(1)


def test_the_readme_example_gets_a_proof_from_the_devnet(sdk_devnet: SdkDevnet) -> None:
    env = {**os.environ, **sdk_devnet.env(dev_account(5))}
    done = subprocess.run(
        [sys.executable, "-c", readme_example()],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"Poseidon\(42\) = \d{20,}", done.stdout), done.stdout
    assert re.search(r"left in the marketplace: [\d,.]+ KAL", done.stdout), done.stdout


def test_a_private_request_is_proven_and_the_proof_verifies(kalypso: Kalypso) -> None:
    c = circuit("poseidon_preimage")
    request = kalypso.request_proof(
        "poseidon_preimage", {"preimage": 7}, max_price="20 KAL", proof_time=120
    )
    outcome = request.wait(timeout=60)
    assert outcome.fulfilled and isinstance(outcome.proof, Groth16Proof)
    assert outcome.proof.verify_local(c.vkey_json())
    assert outcome.payment == 10 * KAL and outcome.refund == 10 * KAL
    assert request.status().state is RequestState.FULFILLED


async def test_one_call_private_request_through_the_generator_image_warns_of_the_dev_authority(
    sdk_devnet: SdkDevnet,
) -> None:
    client = await AsyncKalypso.connect(sdk_devnet.url, sdk_devnet.deployment, dev_account(3))
    async with client:
        with pytest.warns(DevAuthorityWarning, match="not confidential"):
            request = await client.request_proof(
                PRIVATE_MARKET, {"preimage": 42}, max_price="25 KAL", proof_time=120
            )
        proof = await request.wait_for_proof(timeout=60)
    assert isinstance(proof, Groth16Proof)
    assert proof.verify_local(circuit("poseidon_preimage").vkey_json())


async def test_an_attested_plonk_market_returns_the_real_proof(kalypso: Kalypso) -> None:
    request = kalypso.request_proof(
        ATTESTED_MARKET, {"square": 144, "max_root": 20}, max_price="8 KAL", proof_time=120
    )
    proof = request.wait_for_proof(timeout=60)
    assert isinstance(proof, PlonkProof) and proof.public_signals == (144, 20)
    worker = SnarkjsWorker()
    try:
        assert await worker.verify("plonk", plonk("square_root").vkey_json(), *proof.to_snarkjs())
    finally:
        await worker.close()


def test_inputs_without_a_proof_end_in_the_invalid_inputs_verdict(kalypso: Kalypso) -> None:
    request = kalypso.request_proof(
        "square_root",
        {"square": 10, "max_root": 10},
        max_price="8 KAL",
        proof_time=120,
        skip_preflight=True,
    )
    with pytest.raises(NoProofError) as raised:
        request.wait_for_proof(timeout=60)
    outcome = raised.value.outcome
    assert outcome.state is RequestState.INVALID_INPUTS
    assert outcome.payment == 5 * KAL and outcome.refund == 3 * KAL


def test_the_preflight_refuses_unprovable_inputs_before_any_money_moves(
    kalypso: Kalypso, sdk_devnet: SdkDevnet
) -> None:
    client = MarketplaceClient.connect(sdk_devnet.url, sdk_devnet.deployment)
    before = kalypso.balance(), kalypso.wallet_balance(), client.w3.eth.block_number
    with pytest.raises(UnprovableInputsError, match="not a perfect square; nothing was sent"):
        kalypso.request_proof("square_root", {"square": 50, "max_root": 10}, max_price="8 KAL")
    with pytest.raises(UnprovableInputsError, match="not the 5 you gave"):
        kalypso.request_proof("poseidon_preimage", {"preimage": 1, "hash": 5}, max_price="8 KAL")
    with pytest.raises(ConfigError, match="has no input 'preimge'"):
        kalypso.request_proof("poseidon_preimage", {"preimge": 1}, max_price="8 KAL")
    assert (kalypso.balance(), kalypso.wallet_balance(), client.w3.eth.block_number) == before


def test_each_pricing_strategy_offers_the_price_it_documents(kalypso: Kalypso) -> None:
    market = "poseidon_preimage"
    stats = kalypso.stats(market)
    assert stats.prices and stats.active_generators == 1  # earlier tests made history
    p90 = stats.price_percentile(0.9)
    assert p90 is not None
    questions: list[Question] = []

    def ask(question: Question) -> str:
        questions.append(question)
        return "12 KAL"

    def custom(context: PricingContext) -> Quote:
        return Quote(13 * KAL, "thirteen")

    cases = [
        (FixedPrice(11 * KAL), "20 KAL", 11 * KAL),
        (MarketPercentile(p=0.9, markup=0.2), "30 KAL", int(p90 * 1.2)),
        (Urgency(base=FixedPrice(5 * KAL), reference_time=600), "20 KAL", 15 * KAL),  # x3 cap
        (AskUser(ask), "20 KAL", 12 * KAL),
        (custom, "20 KAL", 13 * KAL),
        (FixedPrice(30 * KAL), "14 KAL", 14 * KAL),  # every strategy is capped
    ]
    requests = []
    for strategy, cap, expected in cases:
        request = kalypso.request_proof(
            market, {"preimage": 3}, max_price=cap, pricing=strategy, proof_time=120
        )
        assert request.max_price == expected, strategy
        requests.append(request)
    assert questions[0].kind == "price" and questions[0].cap == 20 * KAL
    assert questions[0].suggestion.amount <= 20 * KAL
    for request in requests:
        assert request.wait(timeout=90).fulfilled


def test_an_unmatched_request_is_repriced_within_its_cap(kalypso: Kalypso) -> None:
    def climbing(context: PricingContext) -> int:
        return (4 + 2 * context.attempt) * KAL  # the generator asks 5

    request = kalypso.request_proof(
        "square_root",
        {"square": 81, "max_root": 10},
        max_price="7 KAL",
        pricing=climbing,
        proof_time=120,
    )
    assert request.max_price == 4 * KAL
    time.sleep(1)
    assert request.status().state is RequestState.OPEN
    outcome = request.wait(timeout=60, reprice_every=0.5)
    assert outcome.fulfilled and request.max_price == 6 * KAL
    assert outcome.payment == 5 * KAL and outcome.refund == 1 * KAL
    with pytest.raises(ConfigError, match="above the request's cap"):
        request.increase_max_price("8 KAL")


def test_a_request_nobody_takes_expires_and_is_refunded(
    kalypso: Kalypso, sdk_devnet: SdkDevnet
) -> None:
    before = kalypso.balance()
    waiting = kalypso.request_proof("mock", [5], max_price="3 KAL", proof_time=60)
    expiring = kalypso.request_proof("mock", [6], max_price="2 KAL", proof_time=60, expires_in=2)
    assert kalypso.balance() == before - 5 * KAL
    cancelled = waiting.cancel()
    assert cancelled.state is RequestState.CLOSED and cancelled.refund == 3 * KAL
    time.sleep(3)
    sdk_devnet.chain.web3().provider.make_request(RPCEndpoint("evm_mine"), [])
    assert expiring.status().expired
    outcome = expiring.wait(timeout=10)
    assert outcome.state is RequestState.CLOSED and outcome.refund == 2 * KAL
    assert kalypso.balance() == before
    with pytest.raises(NoProofError, match="closed unassigned"):
        expiring.wait_for_proof(timeout=10)


def test_a_request_is_reattached_by_id_after_a_restart(
    kalypso: Kalypso, sdk_devnet: SdkDevnet
) -> None:
    placed = kalypso.request_proof(
        "square_root", {"square": 64, "max_root": 10}, max_price="6 KAL", proof_time=120
    )
    with Kalypso(sdk_devnet.url, sdk_devnet.deployment, dev_account(3)) as restarted:
        again = restarted.request("0x" + placed.id.hex())
        assert again.market.name == "square_root" and again.max_price == 6 * KAL
        proof = again.wait_for_proof(timeout=60)
        assert isinstance(proof, Groth16Proof) and proof.public_signals == (64, 10)
        with pytest.raises(ConfigError, match="no request 0x"):
            restarted.request("0x" + "ab" * 32)


def test_markets_are_named_and_carry_statistics(kalypso: Kalypso) -> None:
    names = [m.name for m in kalypso.markets()]
    assert names[:3] == ["mock", "poseidon_preimage", "square_root"]
    market = kalypso.market("square_root")
    assert market.id == 2 and market.inputs["root"] == "private"
    assert kalypso.market(2) == market
    stats = kalypso.stats(market)
    assert stats.offers[0].price == 5 * KAL and stats.typical_proof_time is not None
    with pytest.raises(ConfigError, match="unknown market 'nope'"):
        kalypso.market("nope")


def test_deposit_approves_exactly_and_withdraw_takes_it_all(sdk_devnet: SdkDevnet) -> None:
    with Kalypso(sdk_devnet.url, sdk_devnet.deployment, dev_account(4)) as client:
        wallet = client.wallet_balance()
        client.deposit("1.5 KAL")
        chain = MarketplaceClient.connect(sdk_devnet.url, sdk_devnet.deployment)
        allowance = chain.token.functions.allowance(client.address, chain.marketplace.address)
        assert allowance.call() == 0  # exactly what was pulled, nothing left standing
        assert client.balance() == 1_500_000_000_000_000_000
        client.withdraw()
        assert client.balance() == 0 and client.wallet_balance() == wallet
        with pytest.raises(ConfigError, match="nothing to withdraw"):
            client.withdraw()


def test_a_missed_deadline_is_slashed_and_the_requester_paid_back(
    kalypso: Kalypso, sdk_devnet: SdkDevnet
) -> None:
    chain = MarketplaceClient.connect(sdk_devnet.url, sdk_devnet.deployment)
    lazy, node = dev_account(4), sdk_devnet.stack.generator
    node.post("/pause")
    try:
        chain.approve_all(lazy)
        chain.register(lazy, stake=1_000 * KAL, compute=8)
        chain.join_market(lazy, 2, price=4 * KAL, proof_time=60)
        before = kalypso.balance()
        request = kalypso.request_proof(
            "square_root", {"square": 49, "max_root": 10}, max_price="8 KAL", proof_time=60
        )
        deadline = time.monotonic() + 20
        while (status := request.status()).state is not RequestState.ASSIGNED:
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        assert status.generator == lazy.address and not status.overdue
        chain.time_travel(61)
        slashed = kalypso.watch_and_slash(seconds=5)  # the matcher here leaves it to us
        assert [o.request_id for o in slashed] == [request.id]
        outcome = request.wait(timeout=10)
        assert outcome.state is RequestState.SLASHED and outcome.generator == lazy.address
        assert outcome.refund == 8 * KAL and outcome.penalty == 100 * KAL
        assert outcome.bounty > 0
        assert kalypso.balance() == before + outcome.bounty  # refunded in full, plus the bounty
    finally:
        chain.request_exit(lazy)
        node.post("/resume")
