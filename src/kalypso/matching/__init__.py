"""Matching: which generator gets a request. The pure core (no I/O) is `OrderBook`.

How a request is assigned
=========================

**Who may take it.** Exactly the contract's assignment rules (`requests._assign`, then
`GeneratorRegistry.lock`), checked in this order; an explanation names the first rule a
generator fails with the contract's own reason string, the one an `AssignSkipped` event
would carry:

1. ``requests: expired`` — now > the request's expiry;
2. ``requests: price above max`` — the generator's price > the request's max price;
3. ``registry: not registered`` / ``registry: generator exiting``;
4. ``registry: not in market`` — no offer in the request's market;
5. ``registry: price is not the quote`` — never sent: the matcher always offers the quote;
6. ``registry: proof time too long`` — the offer's proof time > the request's;
7. ``registry: not enough compute`` — used + reserved + the offer's compute per request
   > declared compute;
8. ``registry: not enough free stake`` — locked + reserved + the market's penalty > stake.

"Reserved" is what the matcher's own sent-but-unconfirmed assignments hold, so it never
assigns beyond a generator's compute or stake while a batch is in flight. Then the
matcher's own rules: ``matching: no encryption key`` (a private request goes only to an
offer with a non-zero encryption key); ``matching: discarded by this generator`` (a
request a generator handed back is not offered to it again); and a generator the chain
skipped for a request is not offered it again until something about the generator changes
(the reason shown is the chain's).

**Order.** Requests are served first come, first served, by arrival (block, then log
index). Each takes the best-scoring eligible offer of its market.

**Score** (lower is better; an integer "effective price", so every matcher fed the same
events ranks the same way)::

    score = (price + 1) * (W + a * (W - successes)) * (T + proof_time)

- ``successes``: tasks the generator completed (proof or proven-invalid inputs) among its
  last W = 20 task outcomes; slashes *and discards* are failures, and **missing outcomes
  count as failures**, so a fresh address ranks like one that failed every task and gains
  nothing by starting over.
- ``a`` (failure weight, default 1): an unreliable generator's price counts up to 1 + a
  times; with a = 1 a newcomer must quote under half a perfect generator's price to be
  chosen over it, and otherwise gets the work the reliable ones have no room for.
- ``T`` (default 3600 s): the promised proof time t weighs (T + t) / T, so an offer of
  one hour counts twice the price of an instant one.
- ``+ 1`` keeps reliability and proof time relevant for a zero price.

Example (W = 20, a = 1, T = 3600): price 100, 600 s, 20 successes scores
101 * 20 * 4200 = 8,484,000; a newcomer at 60, 600 s scores 61 * 40 * 4200 = 10,248,000
and loses; at 49 it scores 8,400,000 and wins.

**Ties.** Among eligible offers with the best score, the smallest
keccak256(request id ‖ generator address) wins: deterministic, and spread over
generators rather than always favouring one address.

**Waiting.** A request no generator can take now is parked. It is looked at again only
when something could change the answer: an offer in its market is set, a generator that
suits it frees compute or stake, adds stake or compute, registers again, or the request's
max price rises. A request is dropped from the book when it expires unassigned (the
engine reports it so that it can be refunded with `cancel_expired`).
"""

from kalypso.matching.book import OrderBook
from kalypso.matching.model import RULES, Match, Offer, Outcome
from kalypso.matching.score import ScoreWeights, offer_score, tie_break
from kalypso.matching.views import (
    GeneratorView,
    MarketBookView,
    OfferView,
    RecentRequest,
    RequestView,
    RuleCheck,
)

__all__ = [
    "RULES",
    "GeneratorView",
    "MarketBookView",
    "Match",
    "Offer",
    "OfferView",
    "OrderBook",
    "Outcome",
    "RecentRequest",
    "RequestView",
    "RuleCheck",
    "ScoreWeights",
    "offer_score",
    "tie_break",
]
