"""The matcher's configuration: one TOML file (`EXAMPLE` shows every key), overridable by
the environment variables KALYPSO_RPC_URL and KALYPSO_DEPLOYMENT."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from kalypso.configfile import read_config
from kalypso.errors import ConfigError

MAX_BATCH = 32

EXAMPLE = """\
# matcher.toml — every key is optional except where noted
rpc_url = "http://127.0.0.1:8545"        # or KALYPSO_RPC_URL; several, comma-separated,
                                         # are tried in turn when one fails
# deployment = "~/.kalypso/deployments/31337.json"  # or KALYPSO_DEPLOYMENT; default by chain id
# markets = [0, 1]                       # this shard's markets; default: every market
# keystore = "matcher.json"              # encrypted key (password: KALYPSO_MATCHER_PASSWORD)
                                         # or the key itself in KALYPSO_MATCHER_KEY
# state = "~/.kalypso/matcher/31337.sqlite"  # orderbook journal; default by chain id and shard
# enclave_url = "http://127.0.0.1:7310"  # a Matching Engine enclave (`kalypso enclave matcher`):
                                         # it holds the key private inputs are sealed to
# encryption_key = "matcher.x25519"      # or a key file (`kalypso key new`): this process then
                                         # reads every secret; without either, private requests
                                         # are never assigned
confirmations = 0                        # blocks to wait before trusting a log
poll_interval = 0.5                      # seconds between looks at the chain
batch_size = 32                          # assignments per transaction (contract max 32)
max_log_range = 2000                     # most blocks per eth_getLogs (fewer while the
                                         # endpoint refuses: it halves, then grows back)
rpc_rate = 0                             # calls per second to the RPC endpoint; 0: no cap
startup_timeout = 300                    # seconds to keep trying to reach the chain at start
slash_overdue = true                     # slash tasks past their deadline (keeps the bounty)
priority_fee_percent = 200               # tip, % of the node's suggestion: lands first in a burst
api_host = "127.0.0.1"
api_port = 7300                          # health, orderbook, explanations, /metrics; 0: off
"""


@dataclass(frozen=True)
class MatcherConfig:
    rpc_url: str = "http://127.0.0.1:8545"
    deployment: Path | None = None
    markets: tuple[int, ...] | None = None
    keystore: Path | None = None
    state: Path | None = None
    encryption_key: Path | None = None
    enclave_url: str | None = None
    confirmations: int = 0
    poll_interval: float = 0.5
    batch_size: int = MAX_BATCH
    max_log_range: int = 2_000
    slash_overdue: bool = True
    priority_fee_percent: int = 200
    api_host: str = "127.0.0.1"
    api_port: int = 7300
    #: calls per second to the RPC endpoint (0: no cap): stay inside a provider's quota
    rpc_rate: float = 0.0
    #: seconds the start-up keeps trying while the chain does not answer
    startup_timeout: float = 300.0

    @classmethod
    def load(cls, path: Path | None, env: dict[str, str] | None = None) -> MatcherConfig:
        """Read `path` (if given), then apply `KALYPSO_RPC_URL` / `KALYPSO_DEPLOYMENT`."""
        raw = read_config(path, env, what="matcher", example="kalypso matcher --example")
        return cls.from_dict(raw, source=str(path or "the environment"))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> MatcherConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, value in raw.items():
            values[name] = _coerce(name, value, source)
        config = cls(**values)
        config._check(source)
        return config

    def _check(self, source: str) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ConfigError(f"{source}: batch_size must be 1 to {MAX_BATCH}")
        if (
            self.confirmations < 0
            or self.max_log_range < 1
            or not 0 < self.poll_interval < math.inf
            or not 0 <= self.rpc_rate < math.inf
            or not 0 <= self.startup_timeout < math.inf
        ):
            raise ConfigError(
                f"{source}: confirmations ≥ 0, max_log_range ≥ 1, poll_interval > 0, "
                "rpc_rate and startup_timeout ≥ 0"
            )
        if not 100 <= self.priority_fee_percent <= 1_000:
            raise ConfigError(f"{source}: priority_fee_percent must be 100 to 1000")
        if not 0 <= self.api_port < 65536:
            raise ConfigError(f"{source}: api_port must be a port number (0 turns the API off)")
        if self.encryption_key is not None and self.enclave_url is not None:
            raise ConfigError(f"{source}: give encryption_key or enclave_url, not both")
        if self.markets is not None and (not self.markets or min(self.markets) < 0):
            raise ConfigError(f"{source}: markets must be a non-empty list of market ids")


_PATHS = {"deployment", "keystore", "state", "encryption_key"}
_INTS = {"confirmations", "batch_size", "max_log_range", "api_port", "priority_fee_percent"}


def _coerce(name: str, value: Any, source: str) -> Any:
    try:
        if name in _PATHS:
            if not isinstance(value, str):
                raise TypeError
            return Path(value).expanduser()
        if name in _INTS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError
            return value
        if name == "markets":
            if not isinstance(value, list) or not all(
                isinstance(m, int) and not isinstance(m, bool) for m in value
            ):
                raise TypeError
            return tuple(sorted(set(value)))
        if name in ("poll_interval", "rpc_rate", "startup_timeout"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError
            return float(value)
        if name == "slash_overdue":
            if not isinstance(value, bool):
                raise TypeError
            return value
        if not isinstance(value, str):
            raise TypeError
        return value
    except TypeError:
        raise ConfigError(f"{source}: {name} has the wrong type ({value!r})") from None
