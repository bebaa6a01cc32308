"""The dashboard over a hand-written event history: the cache it derives, the pages and
their JSON twins, search, the live feed, reorgs, restarts and not-found pages."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kalypso.chain import BlockRef, FollowerState
from kalypso.dashboard import plots
from kalypso.dashboard.app import create_app
from kalypso.dashboard.indexer import Indexer
from kalypso.dashboard.store import DashboardStore
from kalypso.deployment import Deployment
from kalypso.market import encode_signals
from kalypso.market.events import DecodedEvent

UNIT = 10**18
MARKETPLACE = "0x" + "11" * 20
REGISTRY = "0x" + "22" * 20
CREATOR = "0x" + "33" * 20
REQUESTER = "0x" + "44" * 20
GEN = "0x5555555555555555555555555555555555555555"
SLASHER = "0x" + "66" * 20
START = 1_700_000_000
PROOF = encode(["uint256[8]"], [list(range(1, 9))])


def rid(n: int) -> bytes:
    return n.to_bytes(32, "big")


def hex_id(n: int) -> str:
    return "0x" + rid(n).hex()


class History:
    """Blocks of events fed to an indexer, one block a call, 12 s apart."""

    def __init__(self, indexer: Indexer) -> None:
        self.indexer = indexer
        self.block = 0

    def mine(self, *events: tuple[str, dict[str, Any]]) -> int:
        self.block += 1
        decoded = [
            DecodedEvent(name, args, MARKETPLACE, self.block, bhash(self.block), rid(900 + i), i)
            for i, (name, args) in enumerate(events)
        ]
        state = FollowerState(self.block + 1, (BlockRef(self.block, bhash(self.block)),))
        self.indexer.ingest(decoded, {self.block: START + 12 * self.block}, state)
        return self.block

    def market(self, market_id: int = 1, name: str = "square") -> None:
        metadata = {
            "name": name,
            "circuit": "square.circom",
            "proof_system": "groth16",
            "inputs": {"x": "public", "y": "private"},
            "public_signals": ["x"],
        }
        self.mine(
            (
                "MarketCreated",
                {
                    "market_id": market_id,
                    "creator": CREATOR,
                    "verifier": "0x" + "77" * 20,
                    "input_verifier": "0x" + "00" * 20,
                    "slashing_penalty": 5 * UNIT,
                    "generator_image": bytes(32),
                    "input_verification_image": b"\x01" * 32,
                    "proof_verification_image": bytes(32),
                    "public_inputs_count": 1,
                    "request_kinds": 1,
                    "fee": 0,
                    "metadata": json.dumps(metadata).encode(),
                },
            )
        )

    def generator(self, market_id: int = 1, price: int = 2 * UNIT) -> None:
        self.mine(
            (
                "GeneratorRegistered",
                {
                    "generator": GEN,
                    "index": 0,
                    "reward_address": GEN,
                    "declared_compute": 10,
                    "stake": 100 * UNIT,
                },
            ),
            (
                "OfferSet",
                {
                    "generator": GEN,
                    "market_id": market_id,
                    "joined": True,
                    "price": price,
                    "proof_time": 60,
                    "compute_per_request": 1,
                    "encryption_key": bytes(32),
                },
            ),
        )

    def request(self, n: int, market_id: int = 1, max_price: int = 3 * UNIT) -> None:
        self.mine(
            (
                "RequestCreated",
                {
                    "request_id": rid(n),
                    "market_id": market_id,
                    "requester": REQUESTER,
                    "refund_address": REQUESTER,
                    "max_price": max_price,
                    "proof_time": 120,
                    "expiry": START + 10_000,
                    "salt": rid(n),
                    "public_inputs": encode_signals([9]),
                    "encrypted_secret": b"",
                },
            )
        )

    def assign(self, n: int, price: int = 2 * UNIT, market_id: int = 1) -> None:
        args = {"price": price, "deadline": START + 12 * self.block + 200, "generator_secret": b""}
        self.mine(
            ("TaskAssigned", {"task_id": rid(n), "market_id": market_id, "generator": GEN} | args)
        )

    def prove(self, n: int, market_id: int = 1, payment: int = 2 * UNIT) -> None:
        args = {"payment": payment, "refund": UNIT, "proof": PROOF}
        self.mine(
            ("ProofSubmitted", {"task_id": rid(n), "market_id": market_id, "generator": GEN} | args)
        )

    def task(self, name: str, n: int, **args: Any) -> None:
        self.mine((name, {"task_id": rid(n), "market_id": 1, "generator": GEN} | args))


def bhash(block: int) -> bytes:
    return block.to_bytes(32, "big")


DEPLOYMENT = Deployment(
    chain_id=31337,
    deploy_block=0,
    token="0x" + "99" * 20,
    registry=REGISTRY,
    marketplace=MARKETPLACE,
    market_registry="0x" + "33" * 20,
    token_symbol="KAL",
    token_decimals=18,
    markets={"square": 1},
)


def open_indexer(path: Path) -> Indexer:
    return Indexer(DEPLOYMENT, DashboardStore(path, {"chain_id": 31337}))


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    indexer = open_indexer(tmp_path / "dashboard.sqlite")
    yield History(indexer)
    indexer.store.close()


@pytest.fixture
def lived(history: History) -> History:
    """One market, one generator; request 1 proven, 2 assigned, 3 open."""
    history.market()
    history.generator()
    for n in (1, 2, 3):
        history.request(n)
    history.assign(1)
    history.prove(1)
    history.assign(2)
    return history


@pytest.fixture
def client(lived: History) -> TestClient:
    return TestClient(create_app(lived.indexer))


# ---- the cache


def test_a_request_row_follows_its_lifecycle(lived: History) -> None:
    store = lived.indexer.store
    states = {row["id"]: row["state"] for row in store.requests(market_id=1)}
    assert states == {hex_id(1): "fulfilled", hex_id(2): "assigned", hex_id(3): "open"}
    row = store.request(hex_id(1))
    assert row is not None
    assert (row["generator"], int(row["price"]), int(row["payment"])) == (GEN, 2 * UNIT, 2 * UNIT)
    assert row["finished_at"] - row["assigned_at"] == 12
    assert [e.name for e in store.timeline(hex_id(1))] == [
        "RequestCreated",
        "TaskAssigned",
        "ProofSubmitted",
    ]


def test_a_discarded_task_reopens_and_a_slash_ends_it(lived: History) -> None:
    lived.task("TaskDiscarded", 2, penalty=UNIT)
    assert lived.indexer.store.request(hex_id(2))["state"] == "open"  # type: ignore[index]
    lived.assign(2)
    lived.task("TaskSlashed", 2, slasher=SLASHER, penalty=5 * UNIT, bounty=UNIT, refund=3 * UNIT)
    row = lived.indexer.store.request(hex_id(2))
    assert row is not None
    assert (row["state"], int(row["penalty"]), int(row["refund"])) == (
        "slashed",
        5 * UNIT,
        3 * UNIT,
    )


def test_a_rollback_derives_the_tables_again(lived: History) -> None:
    store = lived.indexer.store
    assigned_at = lived.block  # the block that assigned request 2
    store.rollback(assigned_at - 1, FollowerState(assigned_at))
    assert store.request(hex_id(2))["state"] == "open"  # type: ignore[index]
    assert store.request(hex_id(1))["state"] == "fulfilled"  # type: ignore[index]
    assert store.last_seq() < assigned_at * 1_000_000


def test_a_restart_replays_the_cache_into_the_same_view(lived: History, tmp_path: Path) -> None:
    before = lived.indexer.view.book.generator_view(GEN, START)
    lived.indexer.store.close()
    again = open_indexer(tmp_path / "dashboard.sqlite")
    try:
        assert again.view.book.generator_view(GEN, START) == before
        assert again.state.next_block == lived.block + 1
    finally:
        again.store.close()


def test_the_cache_refuses_another_deployment(lived: History, tmp_path: Path) -> None:
    from kalypso.errors import ConfigError

    lived.indexer.store.close()
    with pytest.raises(ConfigError, match="another deployment"):
        DashboardStore(tmp_path / "dashboard.sqlite", {"chain_id": 1})


# ---- pages


def test_the_home_page_lists_markets_generators_and_the_feed(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "square" in page.text and "Groth16, verified on chain" in page.text
    assert GEN in page.text
    assert page.text.count('class="event ') == 9  # every event, newest first
    assert "ProofSubmitted" in page.text


def test_the_market_page_shows_terms_offers_and_plots(client: TestClient) -> None:
    page = client.get("/markets/square")
    assert page.status_code == 200
    assert "5 KAL" in page.text  # the penalty
    assert "an attestation of its enclave images" in page.text
    assert page.text.count('class="dot"') == 2  # two tasks priced
    assert page.text.count('class="bar"') == 1  # one proof time
    model = client.get("/api/markets/1").json()
    assert model["summary"] | {"last_price": None} == {
        "id": 1,
        "name": "square",
        "circuit": "square.circom",
        "verifier_kind": "Groth16, verified on chain",
        "generators": 1,
        "open": 1,
        "assigned": 1,
        "requests": 3,
        "last_price": None,
        "name_note": None,
    }
    assert model["typical_proof_time"] == 12
    assert model["price_p50"]["shown"] == "2 KAL"
    assert [o["generator"] for o in model["offers"]] == [GEN]


def test_the_request_page_shows_timeline_amounts_and_the_decoded_proof(
    client: TestClient,
) -> None:
    page = client.get(f"/requests/{hex_id(1)}")
    assert page.status_code == 200
    for text in ("fulfilled", "RequestCreated", "TaskAssigned", "ProofSubmitted", "tx 0x"):
        assert text in page.text
    model = client.get(f"/api/requests/{hex_id(1)}").json()
    assert model["state"] == "fulfilled"
    assert model["public_signals"] == ["9"]
    assert (model["payment"]["shown"], model["refund"]["shown"]) == ("2 KAL", "1 KAL")
    assert model["proof"]["proof"]["pi_a"][:2] == ["1", "2"]
    assert model["proof"]["public_signals"] == ["9"]
    assert [e["name"] for e in model["timeline"]] == [
        "RequestCreated",
        "TaskAssigned",
        "ProofSubmitted",
    ]


def test_an_overdue_task_says_anyone_may_slash(lived: History) -> None:
    lived.indexer.head_time = START + 100_000
    page = TestClient(create_app(lived.indexer)).get(f"/requests/{hex_id(2)}")
    assert "anyone may slash" in page.text


def test_the_generator_page_shows_stake_tasks_earnings_and_reliability(
    client: TestClient,
) -> None:
    page = client.get(f"/generators/{GEN.lower()}")
    assert page.status_code == 200
    model = client.get(f"/api/generators/{GEN}").json()
    standing = model["standing"]
    assert standing["stake"] == 100 * UNIT
    assert standing["locked_stake"] == 5 * UNIT  # request 2's penalty, while it is live
    assert standing["used_compute"] == 1
    assert model["earned"]["shown"] == "2 KAL"
    assert model["totals"]["tasks"] == 2 and model["missed_deadlines"] == 0
    assert model["reliability"].startswith("1 of the last 20 outcomes")


def test_the_account_page_lists_a_requesters_requests(client: TestClient) -> None:
    model = client.get(f"/api/accounts/{REQUESTER}").json()
    assert {r["id"] for r in model["requests"]} == {hex_id(1), hex_id(2), hex_id(3)}


# ---- search and not found


@pytest.mark.parametrize(
    ("query", "where"),
    [
        (hex_id(2), f"/requests/{hex_id(2)}"),
        (hex_id(2)[2:].upper(), f"/requests/{hex_id(2)}"),
        (GEN.lower(), f"/generators/{GEN}"),
        (REQUESTER, f"/accounts/{REQUESTER.lower()}"),
        ("square", "/markets/1"),
        (" 1 ", "/markets/1"),
    ],
)
def test_search_finds_requests_addresses_and_markets(
    client: TestClient, query: str, where: str
) -> None:
    response = client.get("/search", params={"q": query}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].lower() == where.lower()


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/search?q=" + "0x" + "ab" * 32, "there is no request or task"),
        ("/search?q=nonsense", "there is no market 'nonsense'"),
        ("/search?q=0x" + "12" * 20, "has no request or event"),
        ("/search?q=", "search for a request"),
        ("/requests/0xzz", "there is no request or task"),
        ("/requests/" + hex_id(77), "there is no request or task"),
        ("/generators/0x1234", "is not an address"),
        ("/generators/" + REQUESTER, "has never registered as a generator"),
        ("/accounts/not-an-address", "is not an address"),
        ("/markets/99", "there is no market '99'"),
        ("/markets/-1", "there is no market '-1'"),
        ("/markets/" + "9" * 30, "there is no market '" + "9" * 30 + "'"),
        ("/markets/²", "there is no market '²'"),
        ("/no/such/page", "there is no such page"),
    ],
)
def test_bad_ids_and_addresses_get_a_clear_not_found_page(
    client: TestClient, path: str, message: str
) -> None:
    page = client.get(path)
    assert page.status_code == 404
    assert message in html.unescape(page.text)
    assert "Traceback" not in page.text and "<h1>Not found</h1>" in page.text


def test_attack_market_name_takeover_on_the_dashboard(history: History) -> None:
    """Markets 2 and 3 carry one name, market 4 the name the deployment gives market 1:
    search finds neither by the shared name, the recorded one by its name, and the home
    page shows every market with the contested names flagged."""
    history.market(1, "square")
    for market_id, name in ((2, "cube"), (3, "cube"), (4, "square")):
        history.market(market_id, name)
    client = TestClient(create_app(history.indexer))
    found = client.get("/search", params={"q": "square"}, follow_redirects=False)
    assert found.headers["location"] == "/markets/1"
    page = client.get("/search", params={"q": "cube"})
    assert page.status_code == 404
    assert "market name 'cube' is ambiguous: markets 2 and 3 both use it" in html.unescape(
        page.text
    )
    home = html.unescape(client.get("/").text)
    assert home.count("ambiguous: markets 2 and 3 both use it") == 2
    assert "not this market's name: the deployment file gives it to market 1" in home
    for market_id in (1, 2, 3, 4):
        assert f'href="/markets/{market_id}"' in home
    page = html.unescape(client.get("/markets/4").text)
    assert "Its name is contested (not this market's name" in page


def test_the_api_answers_not_found_in_json(client: TestClient) -> None:
    response = client.get("/api/requests/0x12")
    assert response.status_code == 404
    assert "there is no request or task" in response.json()["error"]


def test_a_failing_page_shows_an_error_page_not_a_stack_trace(
    lived: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kalypso.dashboard.pages import Pages

    def broken(self: Pages, key: str | int) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(Pages, "market", broken)
    page = TestClient(create_app(lived.indexer), raise_server_exceptions=False).get("/markets/1")
    assert page.status_code == 500
    assert "failed to build this page" in page.text and "secret internals" not in page.text


# ---- the live feed


def test_the_feed_gives_only_events_after_the_last_one_shown(lived: History) -> None:
    client = TestClient(create_app(lived.indexer))
    last = int(re.findall(r'data-seq="(\d+)"', client.get("/").text)[0])
    assert client.get(f"/feed?after={last}").text.strip() == ""
    lived.request(4)
    fresh = client.get(f"/feed?after={last}").text
    assert fresh.count("<li") == 1 and hex_id(4)[:8] in fresh
    assert client.get(f"/feed?after={10**30}&market_id={10**30}").text.strip() == ""
    only_two = client.get(f"/feed?subject={hex_id(2)}").text
    assert only_two.count("<li") == 2  # created, assigned


def test_health_reports_the_indexed_block(client: TestClient, lived: History) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["indexed_to"] == lived.block and health["requests"] == 3


# ---- plots


def test_plots_say_when_there_is_nothing_to_draw() -> None:
    assert "no task assigned yet" in plots.price_over_time([], str)
    assert "no proof submitted yet" in plots.histogram([])


def test_the_histogram_puts_every_value_in_a_bin() -> None:
    svg = plots.histogram([1, 1, 2, 30, 30, 30], bins=3)
    counts = [int(c) for c in re.findall(r": (\d+)</title></rect>", svg)]
    assert sum(counts) == 6 and counts == [3, 0, 3]


# ---- untrusted input


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=80) | st.from_regex(r"(0x)?[0-9a-fA-F]{38,66}", fullmatch=True))
@example(query="10000000000000000000")  # wider than SQLite's integers
@example(query="²")  # a digit int() does not read
def test_any_search_finds_a_page_or_says_not_found(client: TestClient, query: str) -> None:
    response = client.get("/search", params={"q": query}, follow_redirects=False)
    assert response.status_code in (303, 404)


@settings(max_examples=150)
@given(proof=st.binary(max_size=300), inputs=st.binary(max_size=100))
def test_any_proof_bytes_decode_or_show_raw(proof: bytes, inputs: bytes) -> None:
    from kalypso.dashboard.pages import _decoded
    from kalypso.sdk.markets import Market

    market = Market(1, "m", "0x" + "77" * 20, 0, None, bytes(32), bytes(32), bytes(32), "groth16")
    decoded = _decoded(market, proof, inputs)
    assert "proof" in decoded or decoded["raw"] == "0x" + proof.hex()


def test_trimming_keeps_the_pages_as_they_were(lived: History) -> None:
    before = TestClient(create_app(lived.indexer)).get(f"/api/generators/{GEN}").json()
    lived.indexer.head_time = START + 100_000
    lived.indexer.trim()
    assert not lived.indexer.view._deadlines
    after = TestClient(create_app(lived.indexer)).get(f"/api/generators/{GEN}").json()
    assert after["standing"]["locked_stake"] == before["standing"]["locked_stake"]
    assert after["totals"] == before["totals"]
