"""SDK pricing: every strategy gives the price (and response time) it documents, under the cap."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalypso.amounts import parse_amount
from kalypso.sdk.local import _market
from kalypso.sdk.markets import MarketStats, Offer
from kalypso.sdk.pricing import (
    AskUser,
    FixedPrice,
    FixedTime,
    MarketPercentile,
    PricingContext,
    PricingError,
    Question,
    Quote,
    TimeContext,
    TypicalTime,
    Urgency,
    price,
    quote_of,
    response_time,
    strategy_and_cap,
)

KAL = 10**18
MARKET = _market(0, "poseidon_preimage")
OFFERS = (Offer("0xa", 500, 30), Offer("0xb", 300, 120), Offer("0xc", 400, 60))


def stats(
    prices: tuple[int, ...] = (),
    offers: tuple[Offer, ...] = (),
    seconds: tuple[int, ...] = (),
) -> MarketStats:
    return MarketStats(0, 0, offers, prices, seconds, 2.0)


def ctx(
    s: MarketStats | None = None,
    *,
    proof_time: int = 60,
    max_price: int = 100 * KAL,
    attempt: int = 0,
) -> PricingContext:
    return PricingContext(MARKET, s or stats(), proof_time, max_price, attempt)


SHOW = ctx().show


def tctx(s: MarketStats | None = None, *, floor: int = 10, ceiling: int = 3600) -> TimeContext:
    return TimeContext(MARKET, s or stats(), floor, ceiling)


@dataclass
class Asker:
    """An `Ask` that records the questions and gives a fixed answer."""

    answer: int | str | None
    questions: list[Question] = field(default_factory=list)

    def __call__(self, question: Question) -> int | str | None:
        self.questions.append(question)
        return self.answer


# ---- prices


def test_fixed_price_in_token_units_and_base_units() -> None:
    assert FixedPrice("2.5 KAL")(ctx()) == Quote(25 * KAL // 10, "fixed price 2.5 KAL")
    assert FixedPrice(7)(ctx()).amount == 7


HISTORY = tuple(i * 1000 for i in range(1, 11))  # 1000 … 10000


@pytest.mark.parametrize(
    ("strategy", "attempt", "expected"),
    [
        # nearest rank: p90 of 10 prices is the 9th, 9000; x (1 + 0.1)
        (MarketPercentile(), 0, 9900),
        # each re-pricing adds a step: 9000 x (1 + 0.1 + 2 x 0.25)
        (MarketPercentile(), 2, 14400),
        # p50 of 10 is the 5th, 5000
        (MarketPercentile(p=0.5, markup=0.0), 0, 5000),
        (MarketPercentile(p=0.5, markup=0.2, step=0.5), 1, 8500),
        (MarketPercentile(p=1.0, markup=0.0), 0, 10000),
        (MarketPercentile(p=0.01, markup=0.0), 0, 1000),
    ],
)
def test_market_percentile_with_history(
    strategy: MarketPercentile, attempt: int, expected: int
) -> None:
    quote = strategy(ctx(stats(HISTORY, OFFERS), attempt=attempt))
    assert quote.amount == expected
    assert quote.basis.startswith(f"p{round(strategy.p * 100)} of 10 recent prices")


def test_market_percentile_without_history_takes_the_cheapest_offer_in_time() -> None:
    # the 300 offer promises 120 s: too slow for 60 s; of 500 (30 s) and 400 (60 s), 400
    quote = MarketPercentile()(ctx(stats(offers=OFFERS), proof_time=60))
    assert quote.amount == 440
    assert quote.basis.startswith("cheapest offer within 60 s")
    assert MarketPercentile()(ctx(stats(offers=OFFERS), proof_time=120)).amount == 330
    assert MarketPercentile()(ctx(stats(offers=OFFERS), proof_time=60, attempt=1)).amount == 540


@pytest.mark.parametrize("attempt", [0, 3])
def test_market_percentile_with_nothing_to_go_by_offers_the_cap(attempt: int) -> None:
    cap = 42 * KAL
    # no history, and no offer fast enough
    for s in (stats(), stats(offers=OFFERS)):
        quote = MarketPercentile()(ctx(s, proof_time=10, max_price=cap, attempt=attempt))
        assert quote == Quote(cap, "no prices or offers to go by: the cap")


@pytest.mark.parametrize(
    ("proof_time", "expected", "factor"),
    [
        (300, 2000, "2.00"),  # 600 / 300
        (60, 3000, "3.00"),  # 10, clamped to max_multiplier
        (600, 1000, "1.00"),
        (1200, 1000, "1.00"),  # 0.5, clamped to 1
        (400, 1500, "1.50"),
    ],
)
def test_urgency_multiplies_by_reference_over_proof_time_clamped(
    proof_time: int, expected: int, factor: str
) -> None:
    quote = Urgency(FixedPrice(1000), reference_time=600, max_multiplier=3.0)(
        ctx(proof_time=proof_time)
    )
    assert quote.amount == expected
    assert quote.basis == f"fixed price {SHOW(1000)}, x {factor} for a {proof_time} s guarantee"


def test_urgency_defaults_to_the_median_price() -> None:
    # p50 of HISTORY (5000), no markup, x 2 for 300 s against 600 s
    assert Urgency()(ctx(stats(HISTORY), proof_time=300)).amount == 10000


# ---- asking the user


@pytest.mark.parametrize(
    ("answer", "amount"),
    [("3 KAL", 3 * KAL), ("3", 3 * KAL), (7, 7), ("15 base", 15), (" 0.5 KAL ", KAL // 2)],
)
def test_ask_user_reads_the_answer(answer: int | str, amount: int) -> None:
    asker = Asker(answer)
    quote = AskUser(asker, FixedPrice("2 KAL"))(ctx(attempt=1))
    assert quote == Quote(amount, "chosen by the user (suggested 2 KAL)")
    (question,) = asker.questions
    assert question.kind == "price"
    assert question.suggestion == Quote(2 * KAL, "fixed price 2 KAL")
    assert question.cap == 100 * KAL
    assert question.attempt == 1
    assert question.market is MARKET
    assert question.show(question.cap) == "100 KAL"


def test_ask_user_declining_sends_nothing() -> None:
    with pytest.raises(PricingError, match="declined"):
        AskUser(Asker(None))(ctx())


def test_ask_user_answer_above_the_cap_is_refused() -> None:
    with pytest.raises(PricingError, match="above the cap 100 KAL"):
        AskUser(Asker("101 KAL"))(ctx())


def test_ask_user_sees_the_suggestion_capped() -> None:
    asker = Asker("1 KAL")
    AskUser(asker, FixedPrice("500 KAL"))(ctx(max_price=100 * KAL))
    (question,) = asker.questions
    assert question.suggestion.amount == 100 * KAL
    assert question.suggestion.basis == "fixed price 500 KAL; capped at max_price"


def test_ask_user_zero_is_not_a_price() -> None:
    with pytest.raises(PricingError):
        price(AskUser(Asker(0)), ctx())


# ---- custom strategies and what any strategy may give


def test_plain_callable_giving_an_int_or_a_quote() -> None:
    assert price(lambda c: 1234, ctx()) == Quote(1234, "custom strategy")
    mine = Quote(99, "my own reason")
    assert price(lambda c: mine, ctx()) == mine
    assert price(lambda c: c.max_price // 2, ctx(max_price=10)).amount == 5


@pytest.mark.parametrize("bad", [0, -1, True, False, 1.5, 10.0, "5", None])
def test_bad_strategy_results_are_refused(bad: Any) -> None:
    with pytest.raises(PricingError, match="not a positive amount"):
        quote_of(lambda c: bad, ctx())
    with pytest.raises(PricingError, match="not a positive amount"):
        price(lambda c: Quote(bad, "bad"), ctx())


def test_price_caps_at_max_price_and_says_so() -> None:
    assert price(FixedPrice(500), ctx(max_price=200)) == Quote(
        200, f"fixed price {SHOW(500)}; capped at max_price"
    )
    assert price(FixedPrice(200), ctx(max_price=200)) == Quote(200, f"fixed price {SHOW(200)}")
    assert price(FixedPrice(10), ctx(max_price=200)).amount == 10


def _amount(value: int | str) -> int:
    return parse_amount(value)


def test_strategy_and_cap_rules() -> None:
    # no strategy: offer the cap
    assert strategy_and_cap(None, "5 KAL", _amount) == (FixedPrice(5 * KAL), 5 * KAL)
    # an amount is a fixed price, under the cap
    assert strategy_and_cap("3 KAL", "5 KAL", _amount) == (FixedPrice(3 * KAL), 5 * KAL)
    # a fixed price with no cap is its own cap
    assert strategy_and_cap(7, None, _amount) == (FixedPrice(7), 7)
    assert strategy_and_cap(FixedPrice("2 KAL"), None, _amount) == (
        FixedPrice("2 KAL"),
        2 * KAL,
    )
    # a strategy is kept as is
    strategy = MarketPercentile()
    assert strategy_and_cap(strategy, 10, _amount) == (strategy, 10)

    def custom(c: PricingContext) -> int:
        return 1

    assert strategy_and_cap(custom, "1 KAL", _amount) == (custom, KAL)


@pytest.mark.parametrize("pricing", [None, MarketPercentile(), Urgency()])
def test_strategy_and_cap_needs_a_cap_unless_fixed(pricing: Any) -> None:
    with pytest.raises(PricingError, match="give max_price"):
        strategy_and_cap(pricing, None, _amount)


@pytest.mark.parametrize("cap", [0, "0 KAL", "0 base"])
def test_strategy_and_cap_refuses_a_zero_cap(cap: int | str) -> None:
    with pytest.raises(PricingError, match="more than zero"):
        strategy_and_cap(None, cap, _amount)


# ---- response times


def test_response_time_int_and_fixed_time() -> None:
    assert response_time(60, tctx()) == 60
    assert response_time(FixedTime(120), tctx()) == 120


@pytest.mark.parametrize(
    ("s", "strategy", "expected"),
    [
        # median of the history (20 s) x 3
        (stats(seconds=(10, 20, 30)), TypicalTime(), 60),
        (stats(seconds=(10, 20, 30), offers=OFFERS), TypicalTime(factor=2.0), 40),
        # no history: the slowest live offer's promise
        (stats(offers=OFFERS), TypicalTime(), 120),
        # neither: the default
        (stats(), TypicalTime(), 300),
        (stats(), TypicalTime(default=90), 90),
        # never under the floor (10 s)
        (stats(seconds=(1, 2, 3)), TypicalTime(), 10),
        (stats(offers=(Offer("0xa", 1, 5),)), TypicalTime(), 10),
        (stats(), TypicalTime(default=3), 10),
        # never over the ceiling (3600 s)
        (stats(seconds=(2000,)), TypicalTime(), 3600),
        (stats(), TypicalTime(default=10**6), 3600),
    ],
)
def test_typical_time(s: MarketStats, strategy: TypicalTime, expected: int) -> None:
    assert strategy(tctx(s)) == expected
    assert response_time(strategy, tctx(s)) == expected


@pytest.mark.parametrize(("answer", "seconds"), [("90", 90), ("90s", 90), (" 90 s ", 90), (90, 90)])
def test_ask_user_for_seconds(answer: int | str, seconds: int) -> None:
    asker = Asker(answer)
    s = stats(seconds=(10, 20, 30))
    assert response_time(AskUser(asker), tctx(s, floor=10, ceiling=3600)) == seconds
    (question,) = asker.questions
    assert question.kind == "proof_time"
    assert question.suggestion.amount == 60
    assert question.cap == 3600
    assert question.floor == 10


def test_ask_user_for_seconds_declined() -> None:
    with pytest.raises(PricingError, match="declined to choose a response time"):
        response_time(AskUser(Asker(None)), tctx())


@pytest.mark.parametrize("junk", ["soon", "1.5", "90 min", "", "s"])
def test_ask_user_for_seconds_junk(junk: str) -> None:
    with pytest.raises(PricingError, match="is not a number of seconds"):
        response_time(AskUser(Asker(junk)), tctx())


@pytest.mark.parametrize(
    "choice",
    [5, FixedTime(9), AskUser(Asker("5")), AskUser(Asker("0s"))],
)
def test_response_time_below_the_floor(choice: Any) -> None:
    with pytest.raises(PricingError, match=r"shorter than a few block times .*at least 10 s"):
        response_time(choice, tctx(floor=10))


@pytest.mark.parametrize(
    ("choice", "seconds"),
    [(3601, 3601), (FixedTime(10_000), 10_000), (AskUser(Asker("3601s")), 3601)],
)
def test_response_time_above_the_ceiling(choice: Any, seconds: int) -> None:
    with pytest.raises(PricingError, match=f"of {seconds} s is above the maximum 3600 s"):
        response_time(choice, tctx(ceiling=3600))


@pytest.mark.parametrize("bad", [True, 60.0, "60"])
def test_response_time_is_whole_seconds(bad: Any) -> None:
    with pytest.raises(PricingError, match="whole seconds"):
        response_time(FixedTime(bad), tctx())
    if isinstance(bad, bool):
        with pytest.raises(PricingError, match="whole seconds"):
            response_time(bad, tctx())


def test_response_time_floor_and_ceiling_are_inclusive() -> None:
    assert response_time(10, tctx(floor=10, ceiling=20)) == 10
    assert response_time(20, tctx(floor=10, ceiling=20)) == 20


# ---- the cap holds for any strategy

AMOUNTS = st.integers(min_value=1, max_value=2**256)


@st.composite
def strategies(draw: st.DrawFn) -> Callable[[PricingContext], Any]:
    kind = draw(st.sampled_from(["fixed", "percentile", "urgency", "int", "quote"]))
    if kind == "fixed":
        return FixedPrice(draw(AMOUNTS))
    if kind == "percentile":
        return MarketPercentile(
            p=draw(st.floats(min_value=0.01, max_value=1.0)),
            markup=draw(st.floats(min_value=0.0, max_value=5.0)),
            step=draw(st.floats(min_value=0.0, max_value=1.0)),
        )
    if kind == "urgency":
        return Urgency(FixedPrice(draw(AMOUNTS)), max_multiplier=draw(st.floats(1.0, 10.0)))
    amount = draw(AMOUNTS)
    return (lambda c: amount) if kind == "int" else (lambda c: Quote(amount, "q"))


@given(
    strategy=strategies(),
    cap=AMOUNTS,
    prices=st.lists(AMOUNTS, max_size=20),
    offers=st.lists(st.builds(Offer, st.just("0xg"), AMOUNTS, st.integers(1, 1000)), max_size=5),
    proof_time=st.integers(1, 10_000),
    attempt=st.integers(0, 10),
)
def test_price_is_positive_and_never_above_the_cap(
    strategy: Callable[[PricingContext], Any],
    cap: int,
    prices: list[int],
    offers: list[Offer],
    proof_time: int,
    attempt: int,
) -> None:
    s = stats(tuple(prices), tuple(offers))
    quote = price(strategy, ctx(s, proof_time=proof_time, max_price=cap, attempt=attempt))
    assert 0 < quote.amount <= cap


@given(output=st.integers(min_value=-(2**256), max_value=2**257), cap=AMOUNTS)
def test_any_int_output_is_capped_or_refused(output: int, cap: int) -> None:
    if output <= 0:
        with pytest.raises(PricingError):
            price(lambda c: output, ctx(max_price=cap))
    else:
        assert 0 < price(lambda c: output, ctx(max_price=cap)).amount <= cap


def test_ask_user_refuses_an_answer_that_is_not_an_amount_as_a_pricing_error() -> None:
    with pytest.raises(PricingError, match="the answer is not an amount"):
        AskUser(Asker("lots"))(ctx())
