"""What the provider simulator counted: calls per method and per client label, faults, refusals.

The simulator's event loop writes; tests and the rehearsal read from other threads, so
every access holds one lock. `snapshot()` is the shape `GET /_stats` returns:

    {"requests": 12, "calls": 15, "forwarded": 13,
     "methods": {"eth_blockNumber": 4, ...},
     "faults": {"rate_limited": 1, "lagged": 2, ...},
     "refusals": {"range": 1, ...},
     "labels": {"matcher": {"requests": 8, "calls": 9, "methods": {...},
                            "faults": {...}, "refusals": {...}}, ...}}

`requests` counts HTTP requests (a batch is one), `calls` JSON-RPC calls (each batch item),
`forwarded` the calls that reached the node. Fault kinds: rate_limited, budget, unavailable,
bad_gateway, drop, timeout, send_after_forward, lagged; and upstream_error when the node
could not be reached (answered with a 502). Refusal kinds: range, results,
beyond_head.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Counts:
    requests: int = 0
    calls: int = 0
    methods: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "calls": self.calls,
            "methods": dict(sorted(self.methods.items())),
            "faults": dict(sorted(self.faults.items())),
            "refusals": dict(sorted(self.refusals.items())),
        }


class ProviderStats:
    """Thread-safe counters, overall and per client label."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = _Counts()
        self._labels: dict[str, _Counts] = {}
        self._forwarded = 0

    def _both(self, label: str) -> tuple[_Counts, _Counts]:
        return self._total, self._labels.setdefault(label, _Counts())

    def request(self, label: str, methods: Iterable[str]) -> None:
        names = list(methods)
        with self._lock:
            for counts in self._both(label):
                counts.requests += 1
                counts.calls += len(names)
                counts.methods.update(names)

    def fault(self, label: str, kind: str) -> None:
        with self._lock:
            for counts in self._both(label):
                counts.faults[kind] += 1

    def refusal(self, label: str, kind: str) -> None:
        with self._lock:
            for counts in self._both(label):
                counts.refusals[kind] += 1

    def forwarded(self, calls: int) -> None:
        with self._lock:
            self._forwarded += calls

    def reset(self) -> None:
        with self._lock:
            self._total = _Counts()
            self._labels = {}
            self._forwarded = 0

    def calls(self, method: str | None = None, label: str | None = None) -> int:
        """JSON-RPC calls received, of `method` and from `label` when given."""
        with self._lock:
            counts = self._total if label is None else self._labels.get(label, _Counts())
            return counts.calls if method is None else counts.methods[method]

    def faults(self, kind: str | None = None, label: str | None = None) -> int:
        """Faults injected, of `kind` and on `label` when given."""
        with self._lock:
            counts = self._total if label is None else self._labels.get(label, _Counts())
            return sum(counts.faults.values()) if kind is None else counts.faults[kind]

    def refusals(self, kind: str | None = None, label: str | None = None) -> int:
        """eth_getLogs refusals, of `kind` (range, results, beyond_head) when given."""
        with self._lock:
            counts = self._total if label is None else self._labels.get(label, _Counts())
            return sum(counts.refusals.values()) if kind is None else counts.refusals[kind]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            data = self._total.to_json()
            data["forwarded"] = self._forwarded
            data["labels"] = {name: c.to_json() for name, c in sorted(self._labels.items())}
            return data
