"""`kalypso generator`: run a prover node, and look after it (status, pause, resume)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table
from web3 import Web3

from kalypso.amounts import format_amount
from kalypso.deployment import Deployment, default_path
from kalypso.errors import ChainError, ConfigError
from kalypso.generator.config import EXAMPLE, GeneratorConfig
from kalypso.generator.journal import Phase, TaskJournal
from kalypso.keys import load_account
from kalypso.logs import configure

app = typer.Typer(help="Run a generator (prover) node and look after it.", no_args_is_help=True)
console = Console(soft_wrap=True)

ConfigPath = Annotated[
    Path, typer.Option("--config", "-c", help="The generator's TOML file (see `run --example`).")
]


def _config(path: Path) -> GeneratorConfig:
    return GeneratorConfig.load(path)


@app.command("run")
def run(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="The generator's TOML file (see --example)."),
    ] = None,
    example: Annotated[
        bool, typer.Option("--example", help="Print a commented example config and exit.")
    ] = False,
    json_logs: Annotated[bool, typer.Option("--json-logs", help="Log JSON lines.")] = False,
) -> None:
    """Run the node: register and join the configured markets, then prove every task
    assigned to it and get paid.

    Key: the config's `keystore` (password: KALYPSO_GENERATOR_PASSWORD) or
    KALYPSO_GENERATOR_KEY. Needs gas (ETH) and the stake in tokens in its wallet.

    Tasks live in a SQLite journal: kill it at any point and start it again, no task
    is lost. SIGTERM (or Ctrl-C) drains: it leaves the markets, finishes live tasks and
    exits; a second signal exits at once.
    """
    if example:
        typer.echo(EXAMPLE, nl=False)
        return
    if config is None:
        raise ConfigError("give --config FILE (`kalypso generator run --example` prints one)")
    from kalypso.generator.service import serve

    settings = _config(config)
    configure(json=json_logs)
    account = load_account(
        os.environ.get("KALYPSO_GENERATOR_KEY"),
        settings.keystore,
        password=os.environ.get("KALYPSO_GENERATOR_PASSWORD"),
        env_name="KALYPSO_GENERATOR_KEY",
    )
    asyncio.run(serve(settings, account))


def _journal_path(settings: GeneratorConfig, chain_id: int) -> Path:
    if settings.state is not None:
        return settings.state
    found = sorted((Path.home() / ".kalypso" / "generator").glob(f"{chain_id}-*.sqlite"))
    if len(found) != 1:
        raise ConfigError(
            "set `state` in the config: "
            + ("no journal found" if not found else f"{len(found)} journals for this chain")
        )
    return found[0]


def status_report(settings: GeneratorConfig) -> dict[str, Any]:
    """Tasks, stake and profitability, from the journal and the chain."""
    w3 = Web3(Web3.HTTPProvider(settings.rpc_url, request_kwargs={"timeout": 30}))
    try:
        chain_id = w3.eth.chain_id
    except Exception as exc:
        raise ChainError(f"cannot reach {settings.rpc_url}: {exc}") from None
    deployment = Deployment.load(settings.deployment or default_path(chain_id))
    journal = TaskJournal.read_only(_journal_path(settings, chain_id))
    try:
        address = str(journal.identity().get("generator"))
        totals = journal.totals()
        live = journal.live()
        paused = journal.paused
    finally:
        journal.close()
    from kalypso.contracts import artifact

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


@app.command("status")
def status(
    config: ConfigPath,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Tasks by phase, stake (free and locked) and profitability: revenue, penalties,
    net, gas spent. Works whether or not the node is running."""
    report = status_report(_config(config))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    token = report["token"]

    def amount(value: int) -> str:
        return format_amount(value, token["decimals"], token["symbol"])

    console.print(
        f"generator {report['address']}"
        + (" [yellow](paused)[/]" if report["paused"] else "")
        + ("" if report["registered"] else " [red](not registered)[/]")
    )
    table = Table(box=None, show_header=False, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(justify="right")
    free = report["stake"] - report["locked_stake"]
    table.add_row("stake", f"{amount(report['stake'])} ({amount(free)} free)")
    table.add_row("compute", f"{report['used_compute']} of {report['declared_compute']} in use")
    for phase in Phase:
        if count := report["tasks"].get(phase.value):
            table.add_row(f"tasks {phase.value}", str(count))
    table.add_row("revenue", amount(report["revenue"]))
    table.add_row("penalties", amount(report["penalties"]))
    table.add_row("net", amount(report["net"]))
    table.add_row("gas spent", format_amount(report["gas_spent_wei"], 18, "ETH"))
    table.add_row("gas balance", format_amount(report["gas_balance_wei"], 18, "ETH"))
    table.add_row("missed deadlines", str(report["missed_deadlines"]))
    console.print(table)


def _api(settings: GeneratorConfig, method: str, path: str) -> dict[str, Any]:
    if not settings.api_port:
        raise ConfigError("the config turns the node's API off (api_port = 0)")
    url = f"http://{settings.api_host}:{settings.api_port}{path}"
    try:
        answer = httpx.request(method, url, timeout=120)
    except httpx.HTTPError:
        raise ChainError(f"no generator answers on {url}: is `kalypso generator run` up?") from None
    if answer.status_code >= 400:
        raise ChainError(f"the node refused: {answer.json().get('detail', answer.text)}")
    data: dict[str, Any] = answer.json()
    return data


@app.command("pause")
def pause(config: ConfigPath) -> None:
    """Take no new tasks (the node leaves its markets on-chain); live ones are finished.
    Stays paused across restarts until `resume`."""
    _api(_config(config), "POST", "/pause")
    typer.echo("paused: no new tasks; live tasks are being finished")


@app.command("resume")
def resume(config: ConfigPath) -> None:
    """Join the configured markets again."""
    _api(_config(config), "POST", "/resume")
    typer.echo("resumed: taking tasks again")
