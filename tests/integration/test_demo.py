"""`make demo` is the tour a new user sees first: it runs to the end and stops its processes."""

from __future__ import annotations

import subprocess
import sys


def test_the_demo_tour_completes_and_cleans_up() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kalypso.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for step in ("verify_local True", "MarketPercentile()", "AskUser", "snarkjs verifies it: True"):
        assert step in done.stdout, step
    assert "SLASHED" in done.stdout and "tour complete" in done.stdout
    assert "every process stopped" in done.stdout
    assert "dashboard: http://127.0.0.1:" in done.stdout
    assert "the dashboard followed it all" in done.stdout
