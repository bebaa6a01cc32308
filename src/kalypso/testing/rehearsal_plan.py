"""The rehearsal's sizes, its report and verdict, and how it runs one `kalypso` command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kalypso.testing.config import SimulatorConfig, profile

#: a command that takes longer is stuck: the rehearsal fails instead of hanging
COMMAND_TIMEOUT = 400


@dataclass(frozen=True)
class Plan:
    #: requests besides the doomed one, through the SDK and the CLI together
    requests: int
    cli_requests: int
    #: empty blocks mined after the deployment, for every reader to page through
    history: int
    simulator: SimulatorConfig
    #: every key made and every wallet funded by `kalypso` commands (the short version
    #: makes one of each that way, the rest by library, to fit in make test)
    every_command: bool = True
    #: the doomed request's proof time, s (generator B offers 2 s less). Too short for
    #: the provider's latency, and B hands the task back in time instead of being slashed
    doomed_proof_time: int = 12


#: `make rehearsal`: the hosted profile as it is (issue 18's provider)
FULL = Plan(requests=20, cli_requests=4, history=3_000, simulator=profile("hosted"))
#: `make test`'s short version: the same faults, less latency, fewer requests
SHORT = Plan(
    requests=3,
    cli_requests=1,
    history=600,
    simulator=profile("hosted", latency_ms=10.0, retry_after_s=0),
    every_command=False,
    doomed_proof_time=8,
)


@dataclass
class Report:
    reasons: list[str] = field(default_factory=list)
    commands: int = 0
    expected: int = 0
    fulfilled: int = 0
    slashed: int = 0
    stuck: int = 0
    #: seconds from `kalypso matcher` / `generator run` to a healthy API, by daemon
    startup: dict[str, float] = field(default_factory=dict)
    #: seconds each step took
    steps: dict[str, float] = field(default_factory=dict)
    #: the simulator's counters by client label
    rpc: dict[str, Any] = field(default_factory=dict)

    def fail(self, reason: str) -> None:
        self.reasons.append(reason)

    def verdict(self) -> str:
        reasons = list(self.reasons)
        if self.fulfilled < self.expected:
            reasons.append(f"{self.expected - self.fulfilled} of {self.expected} not fulfilled")
        if not self.slashed:
            reasons.append("the killed generator was not slashed")
        return "pass" if not reasons else "fail: " + "; ".join(reasons)

    def render(self) -> str:
        lines = [
            f"commands run: {self.commands}",
            f"requests fulfilled {self.fulfilled} / slashed {self.slashed} / stuck {self.stuck}"
            f" (expected {self.expected} fulfilled and 1 slashed)",
            f"start-up to ready (s): {self.startup}",
            f"steps (s): {self.steps}",
            f"{'client':<12} {'calls':>7} {'retried':>8} {'range refusals':>15}",
        ]
        for label, counts in sorted(self.rpc.items()):
            faults = sum(counts.get("faults", {}).values())
            refusals = counts.get("refusals", {}).get("range", 0)
            lines.append(f"{label:<12} {counts.get('calls', 0):>7} {faults:>8} {refusals:>15}")
        lines.append(f"rehearsal verdict: {self.verdict()}")
        return "\n".join(lines)


def run_cli(
    report: Report, jobs: Sequence[tuple[Sequence[str], Mapping[str, str]]], log: Path
) -> list[str]:
    """Each `kalypso <args>` of `jobs` as a user runs it, with stdin closed, all at once
    (only commands of different keys: one key's transactions go one after another):
    their stdouts. Both streams are appended to `log`. A non-zero exit or a traceback
    fails the rehearsal (and raises, so the step stops)."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("KALYPSO_")}
    began = time.monotonic()
    running = [
        (args, subprocess.Popen(
            [sys.executable, "-m", "kalypso.cli", *args],
            env={**keep, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ))
        for args, env in jobs
    ]  # fmt: skip
    outputs, failed = [], []
    for args, process in running:
        out, err = process.communicate(timeout=COMMAND_TIMEOUT)
        report.commands += 1
        took = time.monotonic() - began
        with log.open("a") as file:
            file.write(f"$ kalypso {' '.join(args)}\n{out}{err}"
                       f"[exit {process.returncode}, {took:.1f} s]\n")  # fmt: skip
        shown = f"kalypso {' '.join(args[:3])}"
        if "Traceback" in out + err:
            report.fail(f"{shown} printed a traceback")
        if process.returncode != 0:
            failed.append(f"{shown} exited {process.returncode}")
        outputs.append(out)
    if failed:
        raise RuntimeError(f"{'; '.join(failed)} (see {log})")
    return outputs
