"""The matcher's HTTP API over a stand-in daemon whose view is fed hand-made events."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import pytest
from eth_utils import to_checksum_address
from fastapi.testclient import TestClient

from kalypso.chain import FollowerState
from kalypso.daemon import jsonable
from kalypso.generator.operator.diagnosis import HINTS, diagnose
from kalypso.matching import Outcome, RuleCheck
from kalypso.matching.api import UNDECRYPTABLE, create_app
from kalypso.matching.config import MatcherConfig
from kalypso.matching.feed import ChainView
from kalypso.matching.metrics import MatcherMetrics
from kalypso.matching.model import PRICE_ABOVE_MAX, TOO_SLOW
from kalypso.matching.store import Inflight
from tests.unit.test_matcher_parts import G1, G2, G3, NOW, PENALTY, Chain, addr, replay, rid

ENGINE = addr(0xE0)
_MIXED = to_checksum_address("0x" + "ab" * 20)
BAD_CHECKSUM = _MIXED[:2] + _MIXED[2].swapcase() + _MIXED[3:]


def hex_id(i: int) -> str:
    return "0x" + rid(i).hex()


@dataclass
class Journal:
    """The store's `inflight()` (a real `MatcherStore` is bound to the thread that opened
    it, and `TestClient` runs the app in a thread of its own)."""

    records: list[Inflight] = field(default_factory=list)

    def inflight(self) -> list[Inflight]:
        return self.records


@dataclass
class StandIn:
    """The attributes of `Matcher` that the handlers read."""

    view: ChainView
    store: Journal
    config: MatcherConfig = field(default_factory=MatcherConfig)
    ready: bool = True
    head: int = 120
    head_time: int = NOW
    state: FollowerState = field(default_factory=lambda: FollowerState(101))
    started: float = field(default_factory=time.time)
    keeper: Any = None
    failures: dict[str, tuple[float, str]] = field(default_factory=dict)
    deployment: Any = field(default_factory=lambda: SimpleNamespace(chain_id=31337))
    account: Any = field(default_factory=lambda: SimpleNamespace(address=ENGINE))
    metrics: MatcherMetrics = field(default_factory=MatcherMetrics)


@pytest.fixture
def chain() -> Chain:
    """Market 0: G1 quotes 50 in 600 s, G2 30 in 3600 s, G3 nothing (registered only).
    Request 1 (max 40, 1200 s) fits neither offer; request 2 (max 100) is matched to G1;
    request 3 is private and cannot be decrypted."""
    c = Chain()
    c.market()
    c.generator(G1)
    c.offer(G1, price=50, proof_time=600)
    c.generator(G2)
    c.offer(G2, price=30, proof_time=3_600)
    c.generator(G3)
    c.request(1, max_price=40)
    c.request(2)
    c.request(3, secret=b"sealed")
    return c


@pytest.fixture
def matcher(chain: Chain) -> StandIn:
    view = replay(chain.events)
    view.book.match(NOW, 32)
    return StandIn(view, Journal([Inflight(0, [b"\x01" * 32], [rid(2)])]))


@pytest.fixture
def client(matcher: StandIn) -> TestClient:
    return TestClient(create_app(cast(Any, matcher)))


# ------------------------------------------------------------------------- health


def test_health_reports_the_daemon(client: TestClient, matcher: StandIn) -> None:
    body = client.get("/health").json()
    uptime = body.pop("uptime_s")
    assert body == {
        "status": "ok",
        "failing_stages": {},
        "chain_id": 31337,
        "address": ENGINE,
        "markets": "all",
        "encryption_key": None,
        "enclave": None,
        "head": 120,
        "next_block": 101,
        "lag_blocks": 20,
        "open_requests": 1,
        "pending_assignments": 1,
        "transactions_in_flight": 1,
    }
    assert 0 <= uptime < 60


def test_health_while_starting_and_for_a_shard(client: TestClient, matcher: StandIn) -> None:
    matcher.ready = False
    matcher.config = MatcherConfig(markets=(0, 4))
    matcher.state = FollowerState(500)
    body = client.get("/health").json()
    assert (body["status"], body["markets"], body["lag_blocks"]) == ("starting", [0, 4], 0)


def test_health_is_503_while_starting_or_after_a_recent_stage_failure(
    client: TestClient, matcher: StandIn
) -> None:
    assert client.get("/health").status_code == 200
    matcher.failures["assign"] = (time.time(), "[K-RPC-001] the node is down")
    degraded = client.get("/health")
    assert degraded.status_code == 503
    body = degraded.json()
    assert body["status"] == "degraded"
    assert body["failing_stages"] == {"assign": "[K-RPC-001] the node is down"}
    matcher.failures["assign"] = (time.time() - 3600, "long ago")
    assert client.get("/health").status_code == 200
    matcher.ready = False
    assert client.get("/health").status_code == 503


def test_health_reads_the_view_afresh(client: TestClient, matcher: StandIn) -> None:
    matcher.view = replay(Chain().events)  # a reorg replaces the view
    assert client.get("/health").json()["open_requests"] == 0


# ----------------------------------------------------------------------- requests


def test_a_priced_out_request_names_the_rule_each_generator_fails(client: TestClient) -> None:
    body = client.get(f"/requests/{hex_id(1)}").json()
    assert body["request_id"] == hex_id(1)
    assert (body["state"], body["parked_on"], body["market_id"]) == ("parked", "terms", 0)
    assert body["max_price"] == 40
    assert {c["generator"]: c["rule"] for c in body["checks"]} == {
        G1: PRICE_ABOVE_MAX,
        G2: TOO_SLOW,
    }
    assert all(c["rank"] is None for c in body["checks"])


def test_a_matched_request_shows_its_generator_and_ranks(client: TestClient) -> None:
    body = client.get(f"/requests/{rid(2).hex()}").json()  # the 0x is optional
    assert (body["state"], body["generator"]) == ("pending", G1)
    ranks = {c["generator"]: (c["rule"], c["rank"]) for c in body["checks"]}
    assert ranks == {G1: (None, 1), G2: (TOO_SLOW, None)}


def test_an_undecryptable_request_is_waiting(client: TestClient) -> None:
    body = client.get(f"/requests/{hex_id(3)}").json()
    assert body == {"request_id": hex_id(3), "state": "waiting", "reason": UNDECRYPTABLE}


def test_an_undecryptable_request_assigned_elsewhere_is_not_waiting(
    client: TestClient, matcher: StandIn, chain: Chain
) -> None:
    matcher.view.apply(chain.assign(3, G1))
    assert client.get(f"/requests/{hex_id(3)}").json()["state"] != "waiting"


@pytest.mark.parametrize("text", ["0x1234", "0x" + "zz" * 32, "0x" + "00" * 33, "hello"])
def test_a_malformed_request_id_is_400(client: TestClient, text: str) -> None:
    response = client.get(f"/requests/{text}")
    assert response.status_code == 400
    assert "32 bytes" in response.json()["detail"]


def test_an_unknown_request_is_404(client: TestClient) -> None:
    assert client.get(f"/requests/{hex_id(99)}").status_code == 404


def test_a_finished_request_is_still_explained(
    client: TestClient, matcher: StandIn, chain: Chain
) -> None:
    matcher.view.apply(chain.assign(2, G1))
    matcher.view.apply(chain.finish("ProofSubmitted", 2, G1))
    assert client.get(f"/requests/{hex_id(2)}").json()["state"] == "finished"


# --------------------------------------------------------------------- generators


def test_a_generator_by_lowercase_address(client: TestClient) -> None:
    body = client.get(f"/generators/{G1.lower()}").json()
    assert (body["generator"], body["status"]) == (G1, "active")
    assert (body["reserved_compute"], body["reserved_stake"]) == (1, PENALTY)
    (offer,) = body["offers"]
    assert (offer["market_id"], offer["price"], offer["has_key"]) == (0, 50, True)
    verdicts = {r["request_id"]: r["verdict"] for r in body["recent"]}
    assert verdicts == {hex_id(1): PRICE_ABOVE_MAX, hex_id(2): "assigned"}


@pytest.mark.parametrize(
    ("event", "verdict"),
    [
        ("ProofSubmitted", "fulfilled"),
        ("InvalidInputsProven", "invalid_inputs"),
        ("TaskSlashed", "slashed"),
    ],
)
def test_a_finished_task_shows_how_it_ended(
    client: TestClient, matcher: StandIn, chain: Chain, event: str, verdict: str
) -> None:
    """`generator why` once listed a slashed task as "assigned"."""
    matcher.view.apply(chain.assign(2, G1))
    matcher.view.apply(chain.finish(event, 2, G1))
    body = client.get(f"/generators/{G1}").json()
    assert {r["request_id"]: r["verdict"] for r in body["recent"]}[hex_id(2)] == verdict
    slashed = [f for f in diagnose(body) if "slashed" in f]
    assert slashed == (
        ["1 of the last 2 requests: slashed; " + HINTS["slashed"]] if verdict == "slashed" else []
    )


def test_a_generator_without_offers_has_no_verdicts(client: TestClient) -> None:
    body = client.get(f"/generators/{G3}").json()
    assert (body["status"], body["offers"], body["recent"]) == ("active", [], [])


def test_an_unknown_address_is_a_blank_generator(client: TestClient) -> None:
    body = client.get(f"/generators/{addr(0x99)}").json()
    assert (body["status"], body["stake"], body["offers"]) == ("unregistered", 0, [])


@pytest.mark.parametrize("text", ["0x1234", "not-an-address", "0x" + "g" * 40])
def test_a_non_address_is_400(client: TestClient, text: str) -> None:
    assert client.get(f"/generators/{text}").status_code == 400


def test_a_mixed_case_address_with_a_bad_checksum_is_400(client: TestClient) -> None:
    assert client.get(f"/generators/{BAD_CHECKSUM}").status_code == 400


# ------------------------------------------------------------------------ markets


def test_a_market_book(client: TestClient) -> None:
    body = client.get("/markets/0/book").json()
    assert (body["market_id"], body["penalty"], body["in_shard"]) == (0, PENALTY, True)
    assert (body["waiting"], body["parked"], body["pending"]) == (1, 1, 1)
    assert (body["parked_ids"], body["pending_ids"], body["queued_ids"]) == (
        [hex_id(1)],
        [hex_id(2)],
        [],
    )
    # equal reliability: 51 x 4200 (G1) beats 31 x 7200 (G2)
    assert [(o["generator"], o["rank"]) for o in body["offers"]] == [(G1, 1), (G2, 2)]


def test_an_unknown_market_is_404(client: TestClient) -> None:
    assert client.get("/markets/7/book").status_code == 404


def test_a_market_id_that_is_not_a_number_is_422(client: TestClient) -> None:
    assert client.get("/markets/zero/book").status_code == 422


# ------------------------------------------------------------------------ metrics


def test_metrics_are_prometheus_text(client: TestClient, matcher: StandIn) -> None:
    matcher.metrics.matches.inc(3)
    matcher.metrics.open_requests.labels(market="0").set(1)
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    assert "kalypso_matcher_matches_total 3.0" in response.text
    assert 'kalypso_matcher_open_requests{market="0"} 1.0' in response.text


# ----------------------------------------------------------------------- jsonable


class Colour(enum.Enum):
    RED = b"\xff"


def test_jsonable_writes_bytes_as_hex() -> None:
    assert jsonable(b"\x00\xab") == "0x00ab"
    assert jsonable(bytearray(b"\x01")) == "0x01"
    assert jsonable(b"") == "0x"


def test_jsonable_walks_containers_dataclasses_and_enums() -> None:
    value = {
        b"\x01": [RuleCheck(G1, None, 7, 1), (Outcome.FULFILLED, Colour.RED)],
        2: frozenset({b"\x02"}),
    }
    assert jsonable(value) == {
        "0x01": [
            {"generator": G1, "rule": None, "score": 7, "rank": 1},
            ["fulfilled", "0xff"],
        ],
        "2": ["0x02"],
    }


def test_jsonable_leaves_a_dataclass_type_alone() -> None:
    assert jsonable(RuleCheck) is RuleCheck
