"""SDK markets: percentiles, statistics from events, and markets read from the chain."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from kalypso.circuits import circuit
from kalypso.errors import ConfigError, InvalidInputsError
from kalypso.market.events import DecodedEvent
from kalypso.sdk.markets import NO_IMAGE, ZERO_ADDRESS, Market, MarketStats, Offer, percentile

CREATOR = "0x" + "c0" * 20
VERIFIER = "0x" + "5e" * 20
INPUT_VERIFIER = "0x" + "1f" * 20
GENERATOR = "0x" + "9e" * 20
OFFERS = (Offer("0xa", 500, 30), Offer("0xb", 300, 120), Offer("0xc", 400, 60))

# ---- percentiles


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([5, 1, 3, 2, 4], 0.5, 3),  # rank ceil(2.5) = 3
        ([5, 1, 3, 2, 4], 1.0, 5),
        ([5, 1, 3, 2, 4], 0.2, 1),  # rank 1
        ([5, 1, 3, 2, 4], 0.21, 2),  # rank ceil(1.05) = 2
        ([5, 1, 3, 2, 4], 0.001, 1),
        ([1, 2, 3, 4], 0.5, 2),  # nearest rank: no interpolation
        ([1, 2, 3, 4], 0.75, 3),
        (list(range(1, 11)), 0.9, 9),
        (list(range(1, 101)), 0.95, 95),
        (list(range(1, 101)), 0.99, 99),
        ([7], 0.01, 7),
        ([7, 7, 7], 0.5, 7),
    ],
)
def test_percentile_is_the_nearest_rank(values: list[int], p: float, expected: int) -> None:
    assert percentile(values, p) == expected


def test_percentile_of_nothing_is_none() -> None:
    assert percentile([], 0.5) is None
    assert percentile((), 1.0) is None


@pytest.mark.parametrize("p", [0, 0.0, -0.1, 1.0001, 2, 90])
def test_percentile_refuses_p_outside_0_1(p: float) -> None:
    with pytest.raises(ConfigError, match="a percentile is in \\(0, 1\\]"):
        percentile([1, 2, 3], p)
    with pytest.raises(ConfigError):
        percentile([], p)


def test_percentile_rank_is_exact_for_decimal_p() -> None:
    assert percentile(list(range(1, 101)), 0.55) == 55
    assert percentile(list(range(1, 101)), 0.07) == 7


@given(
    values=st.lists(st.integers(0, 10**30), min_size=1, max_size=50),
    p=st.floats(min_value=0.001, max_value=1.0),
    q=st.floats(min_value=0.001, max_value=1.0),
)
def test_percentile_is_a_member_and_monotone(values: list[int], p: float, q: float) -> None:
    low, high = sorted((p, q))
    result = percentile(values, low)
    assert result in values
    assert min(values) <= result <= (percentile(values, high) or 0) <= max(values)
    assert percentile(values, 1.0) == max(values)


# ---- statistics from events


def rid(n: int) -> bytes:
    return n.to_bytes(32, "big")


def event(name: str, block: int = 1, **args: Any) -> DecodedEvent:
    return DecodedEvent(name, args, "0x" + "aa" * 20, block, b"\x00" * 32, b"\x00" * 32, 0)


def created(n: int, *, expiry: int = 2000, proof_time: int = 100) -> DecodedEvent:
    return event(
        "RequestCreated",
        request_id=rid(n),
        market_id=0,
        requester=CREATOR,
        refund_address=CREATOR,
        max_price=10**18,
        proof_time=proof_time,
        expiry=expiry,
        salt=b"\x01" * 32,
        public_inputs=b"",
        encrypted_secret=b"",
    )


def assigned(n: int, *, price: int, deadline: int) -> DecodedEvent:
    return event(
        "TaskAssigned",
        task_id=rid(n),
        market_id=0,
        generator=GENERATOR,
        price=price,
        deadline=deadline,
        generator_secret=b"",
    )


def proven(n: int) -> DecodedEvent:
    return event(
        "ProofSubmitted",
        task_id=rid(n),
        market_id=0,
        generator=GENERATOR,
        payment=1,
        refund=0,
        proof=b"\x00" * 256,
    )


def closed(name: str, n: int) -> DecodedEvent:
    return event(name, request_id=rid(n), market_id=0, refund=10**18)


def stats_of(events: list[DecodedEvent], **kw: Any) -> MarketStats:
    options: dict[str, Any] = {"now": 1000, "proof_timestamps": {}, "block_time": 2.0} | kw
    return MarketStats.from_events(0, events, OFFERS, **options)


def test_from_events_counts_open_requests_and_reads_prices_and_times() -> None:
    events = [
        created(1, proof_time=100),
        assigned(1, price=50, deadline=700),  # assigned at 600
        proven(1),  # at 650: 50 s
        created(2),  # open
        created(3, expiry=900),  # expired (now 1000), never assigned: not open
        created(4),
        closed("RequestCancelled", 4),
        created(5),
        closed("RequestExpired", 5),
        created(6, expiry=1000),  # still assignable at its expiry
        created(7, proof_time=60),
        assigned(7, price=70, deadline=860),  # assigned at 800
        proven(7),  # at 900: 100 s
        assigned(8, price=30, deadline=900),  # its RequestCreated is older than the window
        proven(8),
        created(9),
        assigned(9, price=40, deadline=950),
        proven(9),  # no timestamp for this one
        created(10, proof_time=100),
        assigned(10, price=60, deadline=500),  # assigned at 400
        proven(10),  # a timestamp before the assignment counts as 0 s
    ]
    stamps = {rid(1): 650, rid(7): 900, rid(8): 950, rid(10): 390}
    stats = stats_of(events, proof_timestamps=stamps)
    assert stats.market_id == 0
    assert stats.open_requests == 2  # 2 and 6
    assert stats.prices == (50, 70, 30, 40, 60)
    assert stats.proof_seconds == (50, 100, 0)
    assert stats.typical_proof_time == 50
    assert stats.block_time == 2.0
    assert stats.offers == OFFERS
    assert stats.active_generators == 3
    assert stats.price_p50 == 50
    assert stats.price_p90 == 70


def test_from_events_caps_the_history() -> None:
    events: list[DecodedEvent] = []
    stamps = {}
    for n in range(10):
        events += [created(n, proof_time=100), assigned(n, price=n + 1, deadline=200), proven(n)]
        stamps[rid(n)] = 100 + n  # assigned at 100: n seconds
    stats = stats_of(events, proof_timestamps=stamps, history=3)
    assert stats.prices == (8, 9, 10)
    assert stats.proof_seconds == (7, 8, 9)
    assert stats.open_requests == 0
    none = stats_of(events, proof_timestamps=stamps, history=0)
    assert none.prices == () and none.proof_seconds == ()


def test_from_events_with_no_events() -> None:
    stats = MarketStats.from_events(3, [], [], now=0, proof_timestamps={}, block_time=12.0)
    assert stats == MarketStats(3, 0, (), (), (), 12.0)
    assert stats.price_p50 is None and stats.typical_proof_time is None
    assert stats.cheapest_offer(10**6) is None


def test_from_events_counts_a_discarded_task_as_open_again() -> None:
    events = [
        created(1),
        assigned(1, price=50, deadline=700),
        event("TaskDiscarded", task_id=rid(1), market_id=0, generator=GENERATOR, penalty=1),
    ]
    assert stats_of(events).open_requests == 1


@pytest.mark.parametrize(
    ("proof_time", "expected"), [(10, None), (29, None), (30, 500), (60, 400), (120, 300)]
)
def test_cheapest_offer_meeting_the_proof_time(proof_time: int, expected: int | None) -> None:
    assert stats_of([]).cheapest_offer(proof_time) == expected


# ---- markets from the chain


def terms(metadata: bytes, **kw: Any) -> tuple[Any, ...]:
    t = {
        "creator": CREATOR,
        "verifier": VERIFIER,
        "input_verifier": ZERO_ADDRESS,
        "penalty": 5 * 10**18,
        "gen_image": NO_IMAGE,
        "ivs": NO_IMAGE,
        "pvs": NO_IMAGE,
        "count": 1,
        "hash": keccak(metadata),
        "kinds": 1,
    } | kw
    return tuple(t.values())


def meta(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


SQUARE_META = meta(name="meta-name", verifier="groth16", **circuit("square_root").metadata())


def test_from_chain_reads_terms_and_schema() -> None:
    market = Market.from_chain(3, terms(SQUARE_META), SQUARE_META, {"sq": 3, "other": 4})
    assert market.id == 3
    assert market.name == "sq"
    assert market.verifier == VERIFIER
    assert market.slashing_penalty == 5 * 10**18
    assert market.input_verifier is None
    assert market.generator_image == NO_IMAGE and not market.proves_in_enclave
    assert market.proof_system == "groth16"
    assert market.inputs == {"square": "public", "max_root": "public", "root": "private"}
    assert market.public_signals == ["square", "max_root"]
    assert market.private_inputs == ["root"]
    assert market.circuit == "square_root"
    assert market.metadata == json.loads(SQUARE_META)


def test_from_chain_images_and_input_verifier() -> None:
    image = b"\x11" * 32
    market = Market.from_chain(
        0,
        terms(b"", input_verifier=INPUT_VERIFIER, gen_image=image, ivs=image, pvs=image),
        b"",
        {},
    )
    assert market.input_verifier == INPUT_VERIFIER
    assert market.proves_in_enclave
    assert market.generator_image == market.input_verification_image == image
    assert market.proof_verification_image == image


@pytest.mark.parametrize(
    ("names", "metadata", "expected"),
    [
        ({"sq": 3}, SQUARE_META, "sq"),
        ({"a": 3, "b": 3}, SQUARE_META, "a"),  # the deployment's first name for it
        ({"sq": 4}, SQUARE_META, "meta-name"),  # another market's name
        ({}, SQUARE_META, "meta-name"),
        ({}, meta(verifier="groth16"), "3"),
        ({}, b"", "3"),
    ],
)
def test_from_chain_name(names: dict[str, int], metadata: bytes, expected: str) -> None:
    assert Market.from_chain(3, terms(metadata), metadata, names).name == expected


@pytest.mark.parametrize(
    ("metadata", "system"),
    [
        (meta(verifier="groth16"), "groth16"),
        (meta(verifier="attested", proof_system="plonk"), "plonk"),
        (meta(proof_system="groth16", verifier="attested"), "groth16"),
        (meta(verifier="attested"), "opaque"),
        (meta(proof_system="stark"), "opaque"),
        (meta(name="x"), "opaque"),
        (b"", "opaque"),
        (b"not json", "opaque"),
        (b"[1, 2]", "opaque"),
    ],
)
def test_from_chain_proof_system(metadata: bytes, system: str) -> None:
    market = Market.from_chain(0, terms(metadata), metadata, {})
    assert market.proof_system == system


@pytest.mark.parametrize(
    "metadata",
    [
        b"",
        b"not json",
        meta(inputs={"a": "private"}),  # no public_signals
        meta(inputs=["a"], public_signals=["a"]),
        meta(inputs={"a": "public"}, public_signals="a"),
    ],
)
def test_from_chain_without_a_usable_schema_takes_raw_signals(metadata: bytes) -> None:
    market = Market.from_chain(0, terms(metadata), metadata, {})
    assert market.inputs == {} and market.public_signals == []
    assert market.circuit is None


def test_from_chain_refuses_metadata_that_does_not_match_its_hash() -> None:
    tampered = SQUARE_META.replace(b"square", b"cube")
    with pytest.raises(ConfigError, match="market 3's metadata does not match its on-chain hash"):
        Market.from_chain(3, terms(SQUARE_META), tampered, {})


def test_from_chain_refuses_an_unknown_market() -> None:
    with pytest.raises(ConfigError, match="there is no market 7"):
        Market.from_chain(7, terms(b"", creator=ZERO_ADDRESS, hash=b"\x00" * 32), b"", {})


def test_a_market_says_what_each_party_can_lose() -> None:
    market = Market.from_chain(3, terms(SQUARE_META, penalty=100), SQUARE_META, {})
    lines = market.stakes(lambda amount: f"{amount} base")
    assert "loses 100 base of stake" in lines[1] and "loses 20 base, to the treasury" in lines[1]
    assert "never to the requester" in lines[1] and "max price" in lines[0]


@pytest.mark.parametrize(
    ("kinds", "private", "message"),
    [(1, True, "public inputs only"), (2, False, "private requests only")],
)
def test_a_request_of_a_kind_the_market_does_not_take_is_refused(
    kinds: int, private: bool, message: str
) -> None:
    market = Market.from_chain(3, terms(SQUARE_META, kinds=kinds), SQUARE_META, {})
    with pytest.raises(InvalidInputsError, match=message):
        market.check_takes(private)
    market.check_takes(not private)
