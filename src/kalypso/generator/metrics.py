"""The generator's Prometheus metrics (its own registry, served on `/metrics`).

Money figures are read from the journal, the node's book of record, so they survive
restarts: revenue and penalties in token base units, gas in wei.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kalypso.generator.journal import Phase, TaskJournal


class GeneratorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.tasks = Gauge("kalypso_generator_tasks", "Tasks by phase", ["phase"], registry=r)
        self.proof_seconds = Histogram(
            "kalypso_generator_proof_seconds",
            "Time to prove one task",
            buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.revenue = Gauge(
            "kalypso_generator_revenue", "Payments received (token base units)", registry=r
        )
        self.penalties = Gauge(
            "kalypso_generator_penalties",
            "Stake lost to discards and slashes (token base units)",
            registry=r,
        )
        self.gas_spent = Gauge("kalypso_generator_gas_spent_wei", "Gas paid (wei)", registry=r)
        self.missed_deadlines = Gauge(
            "kalypso_generator_missed_deadlines", "Tasks slashed after their deadline", registry=r
        )
        self.gas_balance = Gauge(
            "kalypso_generator_gas_balance_wei", "The signing key's balance (wei)", registry=r
        )
        self.discards = Counter(
            "kalypso_generator_discards", "Tasks handed back, by reason", ["reason"], registry=r
        )
        self.prover_failures = Counter(
            "kalypso_generator_prover_failures", "Prover crashes and garbage answers", registry=r
        )
        self.failed = Counter(
            "kalypso_generator_refused_settlements",
            "Settlements the contract refused, by action",
            ["action"],
            registry=r,
        )

    def update(self, journal: TaskJournal) -> None:
        totals = journal.totals()
        for phase in Phase:
            self.tasks.labels(phase.value).set(totals.by_phase.get(phase.value, 0))
        self.revenue.set(totals.revenue)
        self.penalties.set(totals.penalties)
        self.gas_spent.set(totals.gas_wei)
        self.missed_deadlines.set(totals.by_phase.get(Phase.SLASHED.value, 0))
