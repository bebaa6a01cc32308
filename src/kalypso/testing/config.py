"""What the provider simulator is told to do: limits, fault rates, and the named profiles.

A `SimulatorConfig` is immutable; the running simulator swaps in a new one when it is
reconfigured (`ProviderSimulator.configure`, `POST /_control`), so a change applies from
the next request on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from kalypso.testing.shapes import PERSONALITIES

#: Random faults, in the order one draw picks among them (their rates add up to at most 1).
FAULT_RATES = ("rate_429", "rate_503", "rate_502", "rate_drop", "rate_timeout")


@dataclass(frozen=True)
class SimulatorConfig:
    """Every knob of the simulator. Rates are probabilities per HTTP request (a batch is one).

    Contract (always on, whatever `faults_enabled` says):
    - `latency_ms`, `latency_jitter`: each answer waits `latency_ms` ± `latency_jitter`
      (a fraction of it), uniformly.
    - `max_block_range`: eth_getLogs over more blocks (to - from + 1) is refused.
    - `max_logs`: eth_getLogs that matches more logs is refused (the query runs first).
    - `requests_per_second`: a client label's budget; calls over it (counted one by one,
      batch items included, in a sliding second) get HTTP 429, or a per-item error in a batch.
    - `personality`: whose error texts and statuses to use (`shapes.PERSONALITIES`), or
      "rotate" to cycle through all of them.

    Faults (random, seeded, off when `faults_enabled` is False or the method is exempt):
    - `rate_429` (+ `rate_limit_burst` more 429s for that label, `retry_after_s` in the
      `Retry-After` header; `rate_limit_http=False` sends the same error with HTTP 200),
      `rate_503`, `rate_502`, `rate_drop` (half the body, then the connection closes),
      `rate_timeout` (no answer for `hang_s`, then the connection closes). None of these
      reaches the node.
    - `rate_send_after_forward`: a request with eth_sendRawTransaction is forwarded, the node
      takes the transaction, and the client sees a timeout, a 503 or a dropped connection
      (`send_after_forward_kinds`): the "possibly sent" case.
    - `rate_lag`: the request is served by a backend `1..lag_blocks` behind the head. It
      answers as of its head: a lower eth_blockNumber, "latest" reads at its head, no
      receipt, transaction or block above it, logs clamped to it (`lag_logs="clamp"`) or
      refused as geth does (`lag_logs="error"`).
    """

    seed: int = 0
    personality: str = "alchemy"
    latency_ms: float = 0.0
    latency_jitter: float = 0.25
    max_block_range: int | None = None
    max_logs: int | None = None
    requests_per_second: float | None = None
    faults_enabled: bool = True
    exempt_methods: frozenset[str] = frozenset()
    rate_429: float = 0.0
    rate_limit_burst: int = 1
    rate_limit_http: bool = True
    retry_after_s: int = 1
    rate_503: float = 0.0
    rate_502: float = 0.0
    rate_drop: float = 0.0
    rate_timeout: float = 0.0
    hang_s: float = 60.0
    rate_send_after_forward: float = 0.0
    send_after_forward_kinds: tuple[str, ...] = ("timeout", "503", "drop")
    rate_lag: float = 0.0
    lag_blocks: int = 2
    lag_logs: str = "clamp"

    def __post_init__(self) -> None:
        if self.personality != "rotate" and self.personality not in PERSONALITIES:
            raise ValueError(
                f"unknown personality {self.personality!r}: one of "
                f"{', '.join([*PERSONALITIES, 'rotate'])}"
            )
        rates = [*FAULT_RATES, "rate_send_after_forward", "rate_lag", "latency_jitter"]
        for name in rates:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if sum(getattr(self, name) for name in FAULT_RATES) > 1.0:
            raise ValueError(f"{' + '.join(FAULT_RATES)} must not exceed 1")
        if self.lag_logs not in ("clamp", "error"):
            raise ValueError("lag_logs is 'clamp' or 'error'")
        if not set(self.send_after_forward_kinds) <= {"timeout", "503", "drop"}:
            raise ValueError("send_after_forward_kinds: 'timeout', '503', 'drop'")
        if self.rate_send_after_forward and not self.send_after_forward_kinds:
            raise ValueError("rate_send_after_forward needs at least one kind")
        for name in ("max_block_range", "max_logs", "requests_per_second"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive (or None for no limit)")
        if self.lag_blocks < 1 or self.rate_limit_burst < 1 or self.retry_after_s < 0:
            raise ValueError("lag_blocks and rate_limit_burst are >= 1, retry_after_s >= 0")

    def with_changes(self, changes: dict[str, Any]) -> SimulatorConfig:
        """A copy with `changes` (JSON values accepted: lists for the set and the tuple)."""
        known = {f.name for f in fields(self)}
        if unknown := set(changes) - known:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values = dict(changes)
        if "exempt_methods" in values:
            values["exempt_methods"] = frozenset(values["exempt_methods"])
        if "send_after_forward_kinds" in values:
            values["send_after_forward_kinds"] = tuple(values["send_after_forward_kinds"])
        return replace(self, **values)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["exempt_methods"] = sorted(self.exempt_methods)
        data["send_after_forward_kinds"] = list(self.send_after_forward_kinds)
        return data


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    config: SimulatorConfig = field(default_factory=SimulatorConfig)


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("none", "a plain proxy that only counts calls"),
        Profile(
            "hosted",
            "a free-tier hosted provider (issue 18): eth_getLogs over 500 blocks refused "
            "(Alchemy's text), 10,000 logs at most, 10% HTTP 429 with Retry-After: 1, "
            "2% HTTP 503, 80 ms +-25% latency, 10% of requests served 1-2 blocks behind",
            SimulatorConfig(
                personality="alchemy",
                latency_ms=80.0,
                max_block_range=500,
                max_logs=10_000,
                rate_429=0.10,
                rate_503=0.02,
                rate_lag=0.10,
                lag_blocks=2,
            ),
        ),
        Profile(
            "strict",
            "everything a bad day brings: every provider's texts in turn, 100-block log "
            "ranges, 1,000 logs, 20 calls/s per client, 15% 429 in bursts of 3, 3% 503, "
            "2% 502, 2% dropped, 1% hanging 30 s, 10% of sent transactions answered with a "
            "failure after the node took them, 30% lagging, 150 ms +-50% latency",
            SimulatorConfig(
                personality="rotate",
                latency_ms=150.0,
                latency_jitter=0.5,
                max_block_range=100,
                max_logs=1_000,
                requests_per_second=20.0,
                rate_429=0.15,
                rate_limit_burst=3,
                rate_503=0.03,
                rate_502=0.02,
                rate_drop=0.02,
                rate_timeout=0.01,
                hang_s=30.0,
                rate_send_after_forward=0.10,
                rate_lag=0.30,
                lag_blocks=2,
            ),
        ),
    )
}


def profile(name: str, **overrides: Any) -> SimulatorConfig:
    """The named profile's config, with `overrides`."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: one of {', '.join(PROFILES)}")
    return PROFILES[name].config.with_changes(overrides)
