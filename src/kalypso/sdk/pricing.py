"""Pricing strategies: how much a request offers, and how long it gives the generator.

A strategy turns the market's statistics into a `Quote` (an amount and the reason for
it). Three kinds, as the spec asks: fixed (`FixedPrice`), computed at runtime
(`MarketPercentile`, `Urgency`, any `PricingStrategy` subclass or plain callable), and
asked of the end user (`AskUser`). Every quote is capped by the caller's hard
`max_price`; a request that stays unmatched is re-priced by asking the same strategy
again with `attempt` one higher, never above that cap. Response times are chosen the
same way (`FixedTime`, `TypicalTime`, `AskUser`). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from kalypso.amounts import format_amount, parse_amount
from kalypso.errors import ConfigError
from kalypso.sdk.markets import Market, MarketStats


class PricingError(ConfigError):
    """A strategy gave no usable price or time (or the user declined to give one)."""

    code = "K-SDK-002"


@dataclass(frozen=True)
class Quote:
    amount: int
    #: why this amount, in words (shown to users, logged)
    basis: str


@dataclass(frozen=True)
class PricingContext:
    """What a strategy is given."""

    market: Market
    stats: MarketStats
    #: the response time the request will carry, seconds
    proof_time: int
    #: the caller's hard cap, base units
    max_price: int
    #: 0 for the first price, then 1, 2, … each time an unmatched request is re-priced
    attempt: int = 0
    #: the request's current max price when re-pricing
    current: int | None = None
    token_symbol: str = "KAL"
    token_decimals: int = 18

    def show(self, amount: int) -> str:
        return format_amount(amount, self.token_decimals, self.token_symbol)


class PricingStrategy(Protocol):
    def __call__(self, context: PricingContext) -> Quote | int: ...


#: Any strategy: a `PricingStrategy`, or a callable giving a Quote or an amount.
Pricing = PricingStrategy | Callable[[PricingContext], Quote | int]


@dataclass(frozen=True)
class FixedPrice:
    """Always `amount`: base units, or text in token units ("2.5 KAL")."""

    amount: int | str

    def __call__(self, context: PricingContext) -> Quote:
        amount = parse_amount(self.amount, context.token_decimals, context.token_symbol)
        return Quote(amount, f"fixed price {context.show(amount)}")


@dataclass(frozen=True)
class MarketPercentile:
    """The `p` quantile of recent clearing prices plus `markup`; each re-pricing adds
    `step` more. With no history: the cheapest live offer that meets the proof time,
    plus the markup; with no offer either: the cap."""

    p: float = 0.9
    markup: float = 0.1
    step: float = 0.25

    def __call__(self, context: PricingContext) -> Quote:
        factor = 1 + self.markup + self.step * context.attempt
        recent = context.stats.price_percentile(self.p)
        if recent is not None:
            basis = f"p{round(self.p * 100)} of {len(context.stats.prices)} recent prices"
            base = recent
        else:
            offer = context.stats.cheapest_offer(context.proof_time)
            if offer is None:
                return Quote(context.max_price, "no prices or offers to go by: the cap")
            basis, base = f"cheapest offer within {context.proof_time} s", offer
        amount = int(base * factor)
        return Quote(amount, f"{basis} ({context.show(base)}) x {factor:.2f}")


@dataclass(frozen=True)
class Urgency:
    """Pays more for shorter proof times: `base`'s quote times `reference_time /
    proof_time`, between 1 and `max_multiplier`."""

    base: Pricing = MarketPercentile(p=0.5, markup=0.0)
    reference_time: int = 600
    max_multiplier: float = 3.0

    def __call__(self, context: PricingContext) -> Quote:
        quote = quote_of(self.base, context)
        factor = min(self.max_multiplier, max(1.0, self.reference_time / context.proof_time))
        return Quote(
            int(quote.amount * factor),
            f"{quote.basis}, x {factor:.2f} for a {context.proof_time} s guarantee",
        )


@dataclass(frozen=True)
class Question:
    """What `AskUser` shows: the suggestion, its basis, the market and the cap."""

    kind: Literal["price", "proof_time"]
    suggestion: Quote
    market: Market
    stats: MarketStats
    #: the cap on the answer (max price; for a time, the longest allowed)
    cap: int
    #: the shortest time allowed (a time question only)
    floor: int = 0
    attempt: int = 0
    token_symbol: str = "KAL"
    token_decimals: int = 18

    def show(self, amount: int) -> str:
        return format_amount(amount, self.token_decimals, self.token_symbol)


#: Given the question, the user's answer (an amount or seconds, or text like "3 KAL");
#: None declines (nothing is sent).
Ask = Callable[[Question], int | str | None]


@dataclass(frozen=True)
class AskUser:
    """Ask the end user, showing them `suggest`'s quote and its basis."""

    ask: Ask
    suggest: Pricing = MarketPercentile()

    def __call__(self, context: PricingContext) -> Quote:
        suggestion = capped(quote_of(self.suggest, context), context.max_price)
        question = Question(
            "price",
            suggestion,
            context.market,
            context.stats,
            context.max_price,
            attempt=context.attempt,
            token_symbol=context.token_symbol,
            token_decimals=context.token_decimals,
        )
        answer = self.ask(question)
        if answer is None:
            raise PricingError("the user declined to price the request: nothing was sent")
        try:
            amount = parse_amount(answer, context.token_decimals, context.token_symbol)
        except ConfigError as error:
            raise PricingError(f"the answer is not an amount: {error.args[0]}") from None
        if amount > context.max_price:
            raise PricingError(
                f"the user's price {context.show(amount)} is above the cap "
                f"{context.show(context.max_price)}: nothing was sent"
            )
        return Quote(amount, f"chosen by the user (suggested {context.show(suggestion.amount)})")


def strategy_and_cap(
    pricing: Pricing | int | str | None,
    max_price: int | str | None,
    amount: Callable[[int | str], int],
) -> tuple[Pricing, int]:
    """The strategy to run and the hard cap: an amount is a `FixedPrice`; without a
    strategy the request offers the cap; without a cap only a fixed price will do."""
    strategy = pricing if pricing is None or callable(pricing) else FixedPrice(amount(pricing))
    if max_price is None:
        if not isinstance(strategy, FixedPrice):
            raise PricingError("give max_price: the hard cap every pricing strategy stays under")
        return strategy, amount(strategy.amount)
    cap = amount(max_price)
    if cap <= 0:
        raise PricingError("max_price must be more than zero")
    return strategy or FixedPrice(cap), cap


def quote_of(strategy: Pricing, context: PricingContext) -> Quote:
    """Run any strategy and check what it gave."""
    answer = strategy(context)
    quote = answer if isinstance(answer, Quote) else Quote(answer, "custom strategy")
    if isinstance(quote.amount, bool) or not isinstance(quote.amount, int) or quote.amount <= 0:
        raise PricingError(f"the pricing strategy gave {quote.amount!r}, not a positive amount")
    return quote


def capped(quote: Quote, max_price: int) -> Quote:
    if quote.amount <= max_price:
        return quote
    return Quote(max_price, f"{quote.basis}; capped at max_price")


def price(strategy: Pricing, context: PricingContext) -> Quote:
    """The strategy's quote, never above the hard cap."""
    return capped(quote_of(strategy, context), context.max_price)


# ---- response times


@dataclass(frozen=True)
class TimeContext:
    market: Market
    stats: MarketStats
    #: the shortest guarantee allowed (a few block times)
    floor: int
    #: the longest
    ceiling: int


class TimeStrategy(Protocol):
    def __call__(self, context: TimeContext) -> int: ...


@dataclass(frozen=True)
class FixedTime:
    seconds: int

    def __call__(self, context: TimeContext) -> int:
        return self.seconds


@dataclass(frozen=True)
class TypicalTime:
    """`factor` times the market's typical proof time, or the slowest live offer's
    promise, or `default` seconds without either."""

    factor: float = 3.0
    default: int = 300

    def __call__(self, context: TimeContext) -> int:
        typical = context.stats.typical_proof_time
        promised = [o.proof_time for o in context.stats.offers]
        if typical is not None:
            seconds = int(typical * self.factor)
        else:
            seconds = max(promised) if promised else self.default
        return min(context.ceiling, max(context.floor, seconds))


#: A response time: seconds, a time strategy, or `AskUser` (asked for seconds).
ProofTime = int | TimeStrategy | AskUser
#: The default response time: three times the market's typical proof time.
TYPICAL_TIME = TypicalTime()


def response_time(choice: ProofTime, context: TimeContext) -> int:
    """The proof time a request will carry, checked against the floor and ceiling."""
    if isinstance(choice, AskUser):
        suggestion = TypicalTime()(context)
        answer = choice.ask(
            Question(
                "proof_time",
                Quote(suggestion, "3 x the typical proof time"),
                context.market,
                context.stats,
                context.ceiling,
                context.floor,
            )
        )
        if answer is None:
            raise PricingError("the user declined to choose a response time: nothing was sent")
        try:
            seconds = int(str(answer).strip().removesuffix("s").strip())
        except ValueError:
            raise PricingError(f"{answer!r} is not a number of seconds") from None
    elif isinstance(choice, int):
        seconds = choice
    else:
        seconds = choice(context)
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise PricingError(f"a proof time is whole seconds, got {seconds!r}")
    if seconds < context.floor:
        raise PricingError(
            f"a proof time of {seconds} s is shorter than a few block times on this chain "
            f"(at least {context.floor} s): give the generator time to get a proof included"
        )
    if seconds > context.ceiling:
        raise PricingError(f"a proof time of {seconds} s is above the maximum {context.ceiling} s")
    return seconds
