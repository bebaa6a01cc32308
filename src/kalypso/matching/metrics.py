"""The matcher's Prometheus metrics (its own registry, served on `/metrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class MatcherMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.open_requests = Gauge(
            "kalypso_matcher_open_requests",
            "Requests in the book, by market",
            ["market"],
            registry=r,
        )
        self.pending = Gauge(
            "kalypso_matcher_pending_assignments", "Assignments sent, not yet seen", registry=r
        )
        self.matches = Counter("kalypso_matcher_matches", "Assignments sent", registry=r)
        self.skipped = Counter(
            "kalypso_matcher_assign_skipped", "Assignments the contract skipped", registry=r
        )
        self.batch_size = Histogram(
            "kalypso_matcher_batch_size",
            "Assignments per transaction",
            buckets=(1, 2, 4, 8, 16, 24, 32),
            registry=r,
        )
        self.lag = Gauge(
            "kalypso_matcher_lag_blocks", "Blocks between the head and the follower", registry=r
        )
        self.head = Gauge("kalypso_matcher_head_block", "Latest block seen", registry=r)
        self.tx_failures = Counter(
            "kalypso_matcher_tx_failures", "Transactions that failed or were dropped", registry=r
        )
        self.expired = Counter(
            "kalypso_matcher_expired",
            "Requests that expired before anyone could take them",
            registry=r,
        )
        self.slashes = Counter("kalypso_matcher_slashes", "Overdue tasks slashed", registry=r)
        self.events = Counter(
            "kalypso_matcher_events", "Contract events followed", ["event"], registry=r
        )
        self.malformed = Counter(
            "kalypso_matcher_malformed_logs", "Logs that did not decode (skipped)", registry=r
        )
        self.reorgs = Counter("kalypso_matcher_reorgs", "Rollbacks after a reorg", registry=r)
