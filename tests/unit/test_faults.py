"""The chain layer's judgement of failed calls, case by case, in real providers' words
(the simulator's `kalypso.testing.shapes`, which cites each), and on arbitrary input."""

from __future__ import annotations

import json
import random

import aiohttp
import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from kalypso.chain.faults import (
    Backoff,
    Kind,
    judge_answer,
    judge_exception,
    retry_after,
    send_outcome,
)
from kalypso.testing.shapes import (
    PERSONALITIES,
    UNAVAILABLE,
    range_refusal,
    rate_limited,
    results_refusal,
)


def judged(refusal: object) -> Kind:
    status, error = refusal.http_status, refusal.error()  # type: ignore[attr-defined]
    return judge_answer(status, {}, {"jsonrpc": "2.0", "id": 1, "error": error}).kind


@pytest.mark.parametrize("name", sorted(PERSONALITIES))
def test_every_providers_range_and_result_refusal_is_a_range_refusal(name: str) -> None:
    p = PERSONALITIES[name]
    assert judged(range_refusal(p, 500, 0, 10_000)) == Kind.RANGE
    assert judged(results_refusal(p, 10_000, 0, 10_000, 4_000)) == Kind.RANGE


@pytest.mark.parametrize("name", sorted(PERSONALITIES))
def test_every_providers_rate_limit_is_transient(name: str) -> None:
    refusal = rate_limited(PERSONALITIES[name], 1, 15, 10)
    verdict = judge_answer(refusal.http_status, {}, {"error": refusal.error()})
    assert verdict.kind == Kind.RATE_LIMITED and verdict.transient
    # the same text inside an HTTP 200 (QuickNode's batches, some gateways) is too
    assert judge_answer(200, {}, {"error": refusal.error()}).kind == Kind.RATE_LIMITED


def test_retry_after_is_honoured_in_seconds_dates_and_infuras_body() -> None:
    assert judge_answer(429, {"Retry-After": "3"}, None).retry_after == 3.0
    assert retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # past
    assert retry_after({"Retry-After": "soon"}) is None
    infura = rate_limited(PERSONALITIES["infura"], 2, 15, 10)
    assert judge_answer(429, {}, {"error": infura.error()}).retry_after == 2.0
    assert Backoff(first=0.1, cap=1).delay(0, hint=5) == 5  # the provider's wait wins


def test_gateways_and_no_backend_are_transient_and_may_have_sent() -> None:
    assert judge_answer(502, {}, None).kind == Kind.UNAVAILABLE  # an HTML page
    assert judge_answer(UNAVAILABLE.http_status, {}, {"error": UNAVAILABLE.error()}).transient
    assert judge_answer(503, {}, None).possibly_sent
    assert judge_answer(200, {}, None).kind == Kind.DROPPED  # a 200 that is not JSON


def test_answers_that_are_final() -> None:
    revert = {"error": {"code": 3, "message": "execution reverted: requests: not open"}}
    assert judge_answer(200, {}, revert).kind == Kind.FINAL
    busy = {"error": {"code": 3, "message": "execution reverted: pool: busy, try again"}}
    assert judge_answer(200, {}, busy).kind == Kind.FINAL  # a contract's words
    assert judge_answer(200, {}, {"result": "0x1"}).kind == Kind.OK
    bad = {"error": {"code": -32602, "message": "invalid argument 0: hex string"}}
    assert judge_answer(400, {}, bad).kind == Kind.FINAL


def test_exceptions_tell_unsent_from_possibly_sent() -> None:
    assert judge_exception(requests.ConnectTimeout()).kind == Kind.CONNECTION
    refused = requests.ConnectionError("Max retries exceeded: Connection refused")
    assert not judge_exception(refused).possibly_sent
    assert judge_exception(requests.ReadTimeout()).possibly_sent
    assert judge_exception(requests.exceptions.ChunkedEncodingError()).possibly_sent
    assert judge_exception(aiohttp.ServerDisconnectedError()).possibly_sent
    assert judge_exception(TimeoutError()).kind == Kind.TIMEOUT
    assert judge_exception(ValueError("a bug")).kind == Kind.FINAL


@pytest.mark.parametrize(
    ("message", "outcome"),
    [
        ("already known", "known"),  # geth, reth, nethermind
        ("known transaction: 0xabc", "known"),  # older geth
        ("transaction already imported", "known"),  # anvil
        ("ALREADY_EXISTS: already known", "known"),  # erigon
        ("AlreadyKnown", "known"),  # older nethermind
        ("Known transaction", "known"),  # besu
        ("nonce too low: next nonce 5, tx nonce 4", "nonce"),  # geth, reth
        ("INTERNAL_ERROR: nonce too low", "nonce"),  # erigon
        ("OldNonce", "nonce"),  # older nethermind
        ("replacement transaction underpriced", None),  # not accepted; the sender bumps
        ("transaction underpriced", None),  # definitely not sent
    ],
)
def test_send_answers_of_every_node(message: str, outcome: str | None) -> None:
    assert send_outcome(message) == outcome


def test_backoff_grows_is_capped_and_jittered() -> None:
    b, rng = Backoff(first=0.25, cap=2.0), random.Random(1)
    delays = [b.delay(n, rng=rng) for n in range(8)]
    assert all(0.125 <= d <= 2.0 for d in delays) and delays[-1] >= 1.0
    assert len({round(b.delay(3, rng=rng), 6) for _ in range(5)}) > 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


@given(
    status=st.integers(100, 599),
    header=st.one_of(st.none(), st.text(max_size=40)),
    body=json_values,
)
def test_any_answer_is_judged_without_raising(
    status: int, header: str | None, body: object
) -> None:
    headers = {} if header is None else {"Retry-After": header}
    verdict = judge_answer(status, headers, body)
    assert verdict.retry_after is None or verdict.retry_after >= 0
    json.dumps(verdict.kind.value)


@given(st.text(max_size=60))
def test_any_send_message_is_judged_without_raising(message: str) -> None:
    assert send_outcome(message) in ("known", "nonce", None)
