"""The operator commands' shared reads: the config's chain, a market by name or id, and
a market's checked metadata."""

from __future__ import annotations

import json
from typing import Any

from eth_utils import keccak

from kalypso.contracts.client import MarketplaceClient
from kalypso.errors import ConfigError
from kalypso.generator.config import GeneratorConfig
from kalypso.market.audit import OnChainMarket
from kalypso.market.names import resolve_market


def connect(settings: GeneratorConfig) -> MarketplaceClient:
    """The config's chain and deployment, checked to belong together."""
    return MarketplaceClient.connect(settings.rpc_url, settings.deployment)


def market_id(client: MarketplaceClient, market: str) -> int:
    """A market by the deployment's name for it, or by id (`kalypso.market.names`)."""
    return resolve_market(market, client.deployment.markets, count=client.market_count())


def market_name(client: MarketplaceClient, market: int) -> str:
    """The deployment's name for a market, else its id: a `[markets.…]` key."""
    names = [n for n, i in client.deployment.markets.items() if i == market]
    return names[0] if names else str(market)


def metadata(market: OnChainMarket) -> dict[str, Any]:
    """A market's metadata JSON, checked against the hash the chain holds."""
    if keccak(market.metadata) != market.metadata_hash:
        raise ConfigError(f"market {market.market_id}'s metadata does not match its on-chain hash")
    try:
        data = json.loads(market.metadata)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ConfigError(f"market {market.market_id}'s metadata is not a JSON object")
    return data
