"""The deployment file: where a Kalypso deployment lives and how to follow it (DESIGN §8).

Clients find it by chain id at `~/.kalypso/deployments/<chain_id>.json` unless told
otherwise (`KALYPSO_DEPLOYMENT`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kalypso.errors import DeploymentError

#: Version of the contracts' ABI that this package speaks (`ProofMarketplace.VERSION`).
CONTRACTS_VERSION = "2.0.0"
DEVNET_CHAIN_ID = 31337


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    deploy_block: int
    token: str
    registry: str
    marketplace: str
    #: The MarketRegistry: creates markets, keeps their terms and metadata.
    market_registry: str
    token_symbol: str
    token_decimals: int
    #: The EnclaveRegistry (attestations, enclave keys).
    enclave_registry: str | None = None
    version: str = CONTRACTS_VERSION
    #: Verifiers and input verifiers deployed beside the contracts, by name.
    verifiers: dict[str, str] = field(default_factory=dict)
    #: Sample markets, name -> market id.
    markets: dict[str, int] = field(default_factory=dict)
    matcher_url: str | None = None

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> Deployment:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise DeploymentError(
                f"no deployment file at {path}; run `kalypso devnet` or `kalypso deploy`"
            ) from None
        except json.JSONDecodeError as exc:
            raise DeploymentError(f"{path} is not valid JSON: {exc}") from None
        try:
            deployment = cls(**data)
        except TypeError as exc:
            raise DeploymentError(f"{path} is not a Kalypso deployment file: {exc}") from None
        if deployment.version != CONTRACTS_VERSION:
            raise DeploymentError(
                f"{path} is for contracts {deployment.version}; this kalypso speaks "
                f"{CONTRACTS_VERSION}: upgrade kalypso or redeploy"
            )
        return deployment


def default_path(chain_id: int) -> Path:
    """Where clients look for a chain's deployment file."""
    if env := os.environ.get("KALYPSO_DEPLOYMENT"):
        return Path(env)
    return Path.home() / ".kalypso" / "deployments" / f"{chain_id}.json"
