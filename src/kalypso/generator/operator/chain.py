"""The operator commands' shared reads: the config's chain, a market by id or name, and
a market's checked metadata."""

from __future__ import annotations

import json
from typing import Any

from eth_utils import keccak

from kalypso.contracts.client import MarketplaceClient
from kalypso.errors import ConfigError
from kalypso.generator.config import GeneratorConfig
from kalypso.market import catalog
from kalypso.market.audit import OnChainMarket


def connect(settings: GeneratorConfig) -> MarketplaceClient:
    """The config's chain and deployment, checked to belong together."""
    return MarketplaceClient.connect(settings.rpc_url, settings.deployment)


def market_id(client: MarketplaceClient, market: str) -> int:
    """A market by id or by name: the deployment file's, else its on-chain metadata's
    (`kalypso.market.catalog`)."""
    return catalog.market_id(client, market)


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
