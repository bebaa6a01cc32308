"""The offer score (an integer "effective price", lower is better) and the tie-break.

See the package docstring for the formula and why it is shaped this way.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils import keccak


@dataclass(frozen=True)
class ScoreWeights:
    """How reliability and promised proof time weigh against price.

    `failure_weight` (a): a generator with no success in the window has its price
    multiplied by 1 + a; one with every outcome a success, by 1.
    `time_scale` (T, seconds): a promised proof time t multiplies the price by (T + t) / T.
    """

    failure_weight: int = 1
    time_scale: int = 3600

    def __post_init__(self) -> None:
        if self.failure_weight < 0:
            raise ValueError("failure_weight must be >= 0")
        if self.time_scale < 1:
            raise ValueError("time_scale must be >= 1")


#: The default weights.
DEFAULT_WEIGHTS = ScoreWeights()


def offer_score(
    price: int, proof_time: int, successes: int, window: int, weights: ScoreWeights
) -> int:
    """(price + 1) * (W + a*(W - successes)) * (T + proof_time): integers, so every
    matcher fed the same events ranks offers the same way."""
    failures = window - successes
    return (
        (price + 1)
        * (window + weights.failure_weight * failures)
        * (weights.time_scale + proof_time)
    )


def tie_break(request_id: bytes, generator: str) -> bytes:
    """keccak256(request_id ‖ generator's 20 address bytes); the smallest wins a tie."""
    return keccak(request_id + bytes.fromhex(generator[2:]))
