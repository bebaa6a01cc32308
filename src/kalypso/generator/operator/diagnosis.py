"""`kalypso generator why`: ask the matcher why a generator gets no tasks."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
from eth_account import Account
from eth_utils import is_address, to_checksum_address

from kalypso.deployment import Deployment
from kalypso.errors import ChainError, ConfigError, KalypsoError
from kalypso.generator.config import GeneratorConfig
from kalypso.generator.operator.chain import connect
from kalypso.matching import model

DEFAULT_MATCHER_URL = "http://127.0.0.1:7300"

#: what to change when recent requests failed a rule (the matcher's verdicts)
HINTS = {
    model.PRICE_ABOVE_MAX: "requesters pay less than `price`: lower it",
    model.TOO_SLOW: "requests want proofs sooner than `proof_time`",
    model.NO_COMPUTE: "all compute is in use: raise `compute`",
    model.NO_STAKE: "the free stake is below the penalty: raise `stake`",
    model.NO_ENCRYPTION_KEY: "private requests need `encryption_key` in the config",
    model.NOT_IN_MARKET: "the node is not in the market: is it paused?",
    model.NOT_REGISTERED: "`kalypso generator run` registers it",
    model.EXITING: "it has requested exit",
    "outranked": "another offer scored better: a lower price or proof time ranks higher",
    "slashed": "its deadline passed without a proof: check the prover and the node's log",
}


def generator_address(settings: GeneratorConfig, given: str | None = None) -> str:
    """`given`, else the keystore's address (no password needed), else the env key's."""
    if given is not None:
        if not is_address(given):
            raise ConfigError(f"--address {given} is not an address")
        return str(to_checksum_address(given))
    if settings.keystore is not None:
        try:
            return str(to_checksum_address(json.loads(settings.keystore.read_text())["address"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"cannot read the address of {settings.keystore}: {exc}") from None
    if key := os.environ.get("KALYPSO_GENERATOR_KEY"):
        try:
            return str(Account.from_key(key).address)
        except (ValueError, TypeError):
            raise ConfigError("KALYPSO_GENERATOR_KEY is not a valid private key") from None
    raise ConfigError("give --address, a keystore in the config or KALYPSO_GENERATOR_KEY")


@dataclass(frozen=True)
class Why:
    """The matcher's view of a generator (`kalypso.matching.views.GeneratorView` as JSON)
    and what it means, one finding a line."""

    url: str
    view: dict[str, Any]
    findings: list[str]
    #: for amounts: the deployment's token, or base units when it could not be read
    token_symbol: str = "base units"
    token_decimals: int = 0


def why(settings: GeneratorConfig, matcher: str | None = None, address: str | None = None) -> Why:
    """Ask the matcher (`matcher`, else the deployment file's `matcher_url`, else the
    local default) about `address` (default: this node's)."""
    try:
        deployment: Deployment | None = (
            Deployment.load(settings.deployment)
            if settings.deployment is not None
            else connect(settings).deployment
        )
    except KalypsoError:
        deployment = None
    url = matcher or (deployment.matcher_url if deployment else None) or DEFAULT_MATCHER_URL
    view = ask_matcher(url, generator_address(settings, address))
    if deployment is None:
        return Why(url, view, diagnose(view))
    return Why(url, view, diagnose(view), deployment.token_symbol, deployment.token_decimals)


def ask_matcher(url: str, address: str) -> dict[str, Any]:
    """The matcher's `/generators/{address}` answer (see `kalypso.matching.views`)."""
    target = f"{url.rstrip('/')}/generators/{address}"
    try:
        answer = httpx.get(target, timeout=10)
    except httpx.HTTPError as exc:
        raise ChainError(
            f"no matcher answers on {url} ({type(exc).__name__}): give --matcher URL"
        ) from None
    if answer.status_code >= 400:
        raise ChainError(f"the matcher at {url} answered HTTP {answer.status_code}: {answer.text}")
    data: dict[str, Any] = answer.json()
    return data


def diagnose(view: dict[str, Any]) -> list[str]:
    """Why a generator gets no tasks, one finding a line, from `ask_matcher`'s view."""
    if view["status"] != "active":
        rule = model.EXITING if view["status"] == "exiting" else model.NOT_REGISTERED
        return [f"{view['status']}: {HINTS[rule]}"]
    findings = []
    if not view["offers"]:
        findings.append("in no market: " + HINTS[model.NOT_IN_MARKET])
    findings += [
        f"market {o['market_id']}: full now (no free compute or stake for its penalty)"
        for o in view["offers"]
        if not o["available"]
    ]
    recent = view["recent"]
    counts = Counter(r["verdict"] for r in recent)
    for verdict, n in counts.most_common():
        if verdict in ("assigned", "fulfilled", "invalid_inputs", "eligible", "closed"):
            continue
        hint = HINTS.get(verdict, "")
        findings.append(f"{n} of the last {len(recent)} requests: {verdict}; {hint}".rstrip("; "))
    if not recent:
        findings.append("no recent requests in its markets: nothing to take yet")
    if view["outcomes"] and view["successes"] < view["outcomes"]:
        findings.append(
            f"{view['outcomes'] - view['successes']} of its last {view['outcomes']} tasks "
            "failed (missed deadlines or discarded): it ranks lower"
        )
    return findings
