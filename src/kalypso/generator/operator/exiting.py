"""`kalypso generator exit`: leave every market, request exit and withdraw the whole stake,
once no task is live (there is no unbonding delay: see `GeneratorRegistry`). Refused while
the node runs (it owns the key's nonce)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from eth_account.signers.local import LocalAccount
from web3.logs import DISCARD

from kalypso.contracts.web3tx import send
from kalypso.devnet import refuse_dev_key
from kalypso.errors import ConfigError, InvalidStateError
from kalypso.generator.config import GeneratorConfig
from kalypso.generator.operator.chain import connect
from kalypso.market import GeneratorStatus


@dataclass(frozen=True)
class ExitStep:
    #: "withdrawn" (stake back) or "unregistered" (nothing)
    step: str
    address: str
    left_markets: tuple[int, ...] = ()
    #: the stake withdrawn, token base units
    amount: int = 0
    token_symbol: str = "KAL"
    token_decimals: int = 18


def node_api(settings: GeneratorConfig) -> str | None:
    """The node's /health URL if something answers there: the daemon is up."""
    if not settings.api_port:
        return None
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host
    url = f"http://{host}:{settings.api_port}/health"
    try:
        httpx.get(url, timeout=3)
    except httpx.ConnectError:
        return None
    except httpx.HTTPError:
        pass  # something listens and does not answer in time: count it as the node
    return url


def refuse_if_running(settings: GeneratorConfig) -> None:
    """A `ConfigError` if the node's API answers: the daemon owns the key's nonce."""
    if url := node_api(settings):
        raise ConfigError(
            f"the node is running (its API answers on {url}) and owns the key's nonce: stop "
            "it first (`kill -TERM <pid>` drains it), then run `exit` again"
        )


def exit_generator(settings: GeneratorConfig, account: LocalAccount) -> ExitStep:
    """Leave every market, `request_exit` and `withdraw` the whole stake; refused while
    tasks are live or the node runs."""
    refuse_if_running(settings)
    client = connect(settings)
    refuse_dev_key(account, client.deployment.chain_id, "the generator")
    address = account.address
    g = client.generator(address)
    status, used = GeneratorStatus(int(g[0])), int(g[6])
    if status == GeneratorStatus.UNREGISTERED:
        return ExitStep("unregistered", address)
    if used:
        then = (
            "they end when proved or slashed; run `exit` again then"
            if status == GeneratorStatus.EXITING
            else "run the node and stop it with `kill -TERM` (it drains), then `exit` again"
        )
        raise InvalidStateError("registry: tasks live", f"{used} compute in use by tasks: {then}")
    left = []
    for market in range(client.market_count()):
        if client.registry.functions.offers(address, market).call()[0]:
            send(client.w3, account, client.registry.functions.leave_market(market))
            left.append(market)
    if status == GeneratorStatus.ACTIVE:
        client.request_exit(account)
    receipt = client.withdraw_stake(account)
    (event,) = client.registry.events.GeneratorWithdrawn().process_receipt(receipt, errors=DISCARD)
    amount = int(event["args"]["amount"])
    token = (client.deployment.token_symbol, client.deployment.token_decimals)
    return ExitStep("withdrawn", address, tuple(left), amount, *token)


def format_time(timestamp: int) -> str:
    """A unix time as a UTC date."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
