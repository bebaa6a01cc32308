"""`python -m kalypso.testing.provider`: the provider simulator from a shell.

It holds no logic: it turns options into a `SimulatorConfig` (a profile, then each option
given on top of it) and serves until Ctrl-C, then prints what it counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence
from typing import Any

from kalypso.testing.config import PROFILES, SimulatorConfig
from kalypso.testing.provider import ProviderSimulator
from kalypso.testing.shapes import PERSONALITIES

#: (flag, setting, type, help); a flag left out keeps the profile's value.
_OPTIONS: list[tuple[str, str, Any, str]] = [
    ("--seed", "seed", int, "seed of the random faults (each client label has its own stream)"),
    (
        "--personality",
        "personality",
        str,
        "whose error texts to send: "
        f"{', '.join(PERSONALITIES)}, or rotate (each refusal the next one's)",
    ),
    ("--latency-ms", "latency_ms", float, "delay before each answer, in ms"),
    (
        "--jitter",
        "latency_jitter",
        float,
        "latency spread, a fraction of --latency-ms (0.25: +-25%%)",
    ),
    (
        "--max-block-range",
        "max_block_range",
        int,
        "refuse eth_getLogs over more blocks (0: no limit)",
    ),
    ("--max-logs", "max_logs", int, "refuse eth_getLogs matching more logs (0: no limit)"),
    (
        "--rps",
        "requests_per_second",
        float,
        "each client label's budget in calls per second; over it: HTTP 429 (0: no budget)",
    ),
    ("--rate-429", "rate_429", float, "probability of an HTTP 429 per request"),
    ("--burst-429", "rate_limit_burst", int, "a 429 comes in a burst of this many requests"),
    ("--retry-after", "retry_after_s", int, "Retry-After header of a 429, in seconds (0: none)"),
    ("--rate-503", "rate_503", float, "probability of an HTTP 503 per request"),
    ("--rate-502", "rate_502", float, "probability of an HTTP 502 per request"),
    (
        "--rate-drop",
        "rate_drop",
        float,
        "probability the connection closes half-way through the answer",
    ),
    ("--rate-timeout", "rate_timeout", float, "probability a request gets no answer for --hang-s"),
    (
        "--hang-s",
        "hang_s",
        float,
        "how long a timed-out request hangs before the connection closes",
    ),
    (
        "--rate-send-after-forward",
        "rate_send_after_forward",
        float,
        "probability an eth_sendRawTransaction reaches the node but the client gets a timeout, "
        "a 503 or a dropped connection",
    ),
    ("--rate-lag", "rate_lag", float, "probability a request is served by a lagging backend"),
    ("--lag-blocks", "lag_blocks", int, "a lagging backend is 1 to this many blocks behind"),
    (
        "--lag-logs",
        "lag_logs",
        str,
        "eth_getLogs past a lagging backend's head: clamp (fewer logs) or error (geth's refusal)",
    ),
]


def build_parser() -> argparse.ArgumentParser:
    profiles = "\n".join(f"  {name:<7} {p.summary}" for name, p in PROFILES.items())
    parser = argparse.ArgumentParser(
        prog="python -m kalypso.testing.provider",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A JSON-RPC proxy in front of a node that behaves like a hosted provider "
        "on a bad day. Clients use http://HOST:PORT/<label> (a label per daemon) to be "
        "counted apart; GET /_stats shows the counts, POST /_control changes settings.",
        epilog=f"profiles (--profile):\n{profiles}\n\n"
        "Each option shows its value in every profile [none, hosted, strict]; an option "
        "given overrides the profile's. None means no limit.",
    )
    parser.add_argument("--upstream", required=True, help="the node's URL (anvil's)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    parser.add_argument(
        "--profile", choices=list(PROFILES), default="hosted", help="preset (default: %(default)s)"
    )
    for flag, setting, kind, text in _OPTIONS:
        defaults = ", ".join(f"{n} {getattr(p.config, setting)}" for n, p in PROFILES.items())
        parser.add_argument(flag, dest=setting, type=kind, help=f"{text} [{defaults}]")
    parser.add_argument(
        "--exempt",
        dest="exempt_methods",
        action="append",
        metavar="METHOD",
        help="never fault this method (repeatable), e.g. --exempt eth_chainId",
    )
    parser.add_argument(
        "--after-forward-kind",
        dest="send_after_forward_kinds",
        action="append",
        choices=["timeout", "503", "drop"],
        help="what a client sees when --rate-send-after-forward strikes (repeatable; "
        "default: one of timeout, 503, drop at random)",
    )
    parser.add_argument(
        "--rate-limit-in-200",
        action="store_true",
        help="send rate-limit errors in an HTTP 200, as TheRPC does, not an HTTP 429",
    )
    parser.add_argument(
        "--no-faults",
        action="store_true",
        help="start with the random faults off (limits, budget and latency stay)",
    )
    return parser


def config_from(args: argparse.Namespace) -> SimulatorConfig:
    changes: dict[str, Any] = {}
    for _, setting, _, _ in _OPTIONS:
        value = getattr(args, setting)
        if value is None:
            continue
        if setting in ("max_block_range", "max_logs", "requests_per_second") and not value:
            value = None
        changes[setting] = value
    if args.exempt_methods:
        changes["exempt_methods"] = args.exempt_methods
    if args.send_after_forward_kinds:
        changes["send_after_forward_kinds"] = args.send_after_forward_kinds
    if args.rate_limit_in_200:
        changes["rate_limit_http"] = False
    if args.no_faults:
        changes["faults_enabled"] = False
    return PROFILES[args.profile].config.with_changes(changes)


async def _serve(sim: ProviderSimulator) -> None:
    await sim.start_async()
    print(f"provider simulator on {sim.url} -> {sim.upstream}", flush=True)
    print(json.dumps(sim.config.to_json()), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop_async()
        print(json.dumps(sim.stats.snapshot(), indent=2), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from(args)
    except ValueError as exc:
        parser.error(str(exc))
    sim = ProviderSimulator(args.upstream, config, host=args.host, port=args.port)
    try:
        asyncio.run(_serve(sim))
    except KeyboardInterrupt:
        sys.exit(130)
