"""`kalypso generator status`: tasks, stake and profitability, from the node's journal
(read-only, so it works whether or not the node runs) and the chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from web3 import Web3

from kalypso.chain.rpc import sync_web3
from kalypso.contracts import artifact
from kalypso.deployment import Deployment, default_path
from kalypso.errors import ChainError, ConfigError
from kalypso.generator.config import GeneratorConfig
from kalypso.generator.journal import TaskJournal


def journal_path(settings: GeneratorConfig, chain_id: int) -> Path:
    """The config's `state`, else the one journal of `chain_id` in the default folder."""
    if settings.state is not None:
        return settings.state
    folder = Path.home() / ".kalypso" / "generator"
    found = sorted(folder.glob(f"{chain_id}-*.sqlite"))
    if not found:
        raise ConfigError(
            f"set `state` in the config: no journal of chain {chain_id} in {folder} (has the "
            "node run with this config?)"
        )
    if len(found) > 1:
        raise ConfigError(
            f"set `state` in the config: {len(found)} journals of chain {chain_id} in "
            f"{folder}: {', '.join(p.name for p in found)}"
        )
    return found[0]


def status_report(settings: GeneratorConfig) -> dict[str, Any]:
    """Tasks, stake and profitability, from the journal and the chain."""
    w3 = sync_web3(settings.rpc_url, 30)
    try:
        chain_id = w3.eth.chain_id
    except Exception as exc:
        raise ChainError(f"cannot reach {settings.rpc_url}: {exc}") from None
    deployment = Deployment.load(settings.deployment or default_path(chain_id))
    journal = TaskJournal.read_only(journal_path(settings, chain_id))
    try:
        address = str(journal.identity().get("generator"))
        totals = journal.totals()
        live = journal.live()
        paused = journal.paused
    finally:
        journal.close()
    registry = w3.eth.contract(
        address=Web3.to_checksum_address(deployment.registry),
        abi=artifact("GeneratorRegistry").abi,
    )
    g = registry.functions.generators(address).call()
    return {
        "address": address,
        "paused": paused,
        "registered": g[0] != 0,
        "stake": int(g[3]),
        "locked_stake": int(g[4]),
        "declared_compute": int(g[5]),
        "used_compute": int(g[6]),
        "missed_deadlines": int(g[8]),
        "tasks": totals.by_phase,
        "live": [
            {
                "task_id": t.tag,
                "market_id": t.market_id,
                "phase": t.phase.value,
                "deadline": t.deadline,
            }
            for t in live
        ],
        "revenue": totals.revenue,
        "penalties": totals.penalties,
        "net": totals.revenue - totals.penalties,
        "gas_spent_wei": totals.gas_wei,
        "gas_balance_wei": int(w3.eth.get_balance(Web3.to_checksum_address(address))),
        "token": {"symbol": deployment.token_symbol, "decimals": deployment.token_decimals},
    }
