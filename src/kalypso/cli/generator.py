"""`kalypso generator`: run a prover node, and look after it (status, pause, resume), and
the operator's other chores (fetch, why, benchmark, exit: `kalypso.generator.operator`)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from kalypso.amounts import format_amount
from kalypso.cli.output import HelpGroup, plain_console, styled
from kalypso.errors import ChainError, ConfigError
from kalypso.generator import operator
from kalypso.generator.config import DEFAULT_RPC_URL, EXAMPLE, GeneratorConfig
from kalypso.generator.journal import Phase
from kalypso.keys import load_account
from kalypso.logs import configure

app = typer.Typer(
    help="Run a generator (prover) node and look after it.", no_args_is_help=True, cls=HelpGroup
)
console = plain_console()

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

    Key: the config's `keystore` (password: KALYPSO_GENERATOR_PASSWORD, or a file named by
    KALYPSO_GENERATOR_PASSWORD_FILE) or KALYPSO_GENERATOR_KEY. Needs gas (ETH) and the
    stake in tokens in its wallet.

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
        password_env="KALYPSO_GENERATOR_PASSWORD",
        env_name="KALYPSO_GENERATOR_KEY",
    )
    asyncio.run(serve(settings, account))


@app.command("status")
def status(
    config: ConfigPath,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Tasks by phase, stake (free and locked) and profitability: revenue, penalties,
    net, gas spent. Works whether or not the node is running."""
    report = operator.status_report(_config(config))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    token = report["token"]

    def amount(value: int) -> str:
        return format_amount(value, token["decimals"], token["symbol"])

    console.print(
        styled(
            f"generator {report['address']}",
            (" (paused)" if report["paused"] else "", "yellow"),
            ("" if report["registered"] else " (not registered)", "red"),
        )
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


MarketArg = Annotated[
    str, typer.Argument(help="The market, by id or by name (on-chain, or the deployment file's).")
]


@app.command("fetch")
def fetch(
    market: MarketArg,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="A generator TOML whose chain to use (its markets: any)."
        ),
    ] = None,
    rpc_url: Annotated[
        str,
        typer.Option(envvar="KALYPSO_RPC_URL", help="JSON-RPC endpoint, without --config."),
    ] = DEFAULT_RPC_URL,
    deployment: Annotated[
        Path | None,
        typer.Option(envvar="KALYPSO_DEPLOYMENT", help="Deployment file, without --config."),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            help="A directory or http(s) base URL holding <circuit>.wasm and <circuit>.zkey "
            "(default: the package's sample circuit the metadata names)."
        ),
    ] = None,
    dest: Annotated[
        Path | None,
        typer.Option(help="Where to write (default: ~/.kalypso/artifacts/<chain>/<market id>/)."),
    ] = None,
    trust_market_code: Annotated[
        bool,
        typer.Option(
            "--trust-market-code",
            help="Fetch even if the verifier or input verifier code can change its answers.",
        ),
    ] = False,
) -> None:
    """Get a market's circuit artifacts and check them before joining: their SHA-256
    against the market's metadata, the verifier and input verifier code (fixed code
    that cannot change its answers: `kalypso market audit`), and the zkey's verifying key
    against the one in the verifier's code. Files that fail are deleted; nothing is
    written unless all pass. Prints the market's table, `[markets.<id>]`, to paste into
    the config."""
    shown = {"progress": False}

    def progress(file: str, done: int, total: int | None) -> None:
        of = f" of {total / 1e6:.1f} MB" if total else " MB"
        typer.echo(f"\r  {file}: {done / 1e6:.1f}{of}  ", err=True, nl=False)
        shown["progress"] = True

    chain = GeneratorConfig.chain_of(config) if config else (rpc_url, deployment)
    fetched = operator.fetch_artifacts(
        chain,
        market,
        source=source,
        dest=dest,
        progress=progress,
        trust_code=trust_market_code,
    )
    if shown["progress"]:
        typer.echo(err=True)
    typer.echo(
        f"market {fetched.market_id}: wasm and zkey match the metadata's SHA-256 and the "
        "zkey's verifying key is the one in the verifier's code"
        + ("" if fetched.trust_code else "; its verifier code cannot change its answers")
    )
    typer.echo(f"wrote {fetched.wasm}\n      {fetched.zkey}\n      {fetched.schema}\n")
    typer.echo("add to the config:\n")
    typer.echo(fetched.snippet(), nl=False)


@app.command("why")
def why(
    config: ConfigPath,
    matcher: Annotated[
        str | None,
        typer.Option(
            "--matcher",
            help="The matcher's API (default: the deployment file's matcher_url, else "
            f"{operator.DEFAULT_MATCHER_URL}).",
        ),
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Another generator (default: this node's key's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the matcher's answer.")] = False,
) -> None:
    """Why this generator gets (no) tasks, as the matcher sees it: its rank per market,
    the rule it failed on recent requests, its reliability."""
    report = operator.why(_config(config), matcher, address)
    view = report.view
    if as_json:
        typer.echo(json.dumps(view, indent=2))
        return

    def amount(value: int) -> str:
        return format_amount(value, report.token_decimals, report.token_symbol)

    console.print(f"generator {view['generator']} ({view['status']}), as {report.url} sees it")
    reliability = (
        f"reliability {view['successes']} of {view['window']} (the score counts tasks "
        "missing from the window as failures)"
    )
    console.print(
        f"stake {amount(view['stake'])} ({amount(view['free_stake'])} free), compute "
        f"{view['used_compute']} of {view['declared_compute']} in use; {reliability}"
    )
    for o in view["offers"]:
        console.print(
            styled(
                f"market {o['market_id']}: price {amount(o['price'])}, proof time "
                f"{o['proof_time']} s, rank {o['rank']} of {o['offers_in_market']}",
                ("" if o["available"] else " (full)", "yellow"),
            )
        )
    for r in view["recent"]:
        console.print(f"  {r['request_id'][:18]}… market {r['market_id']}: {r['verdict']}")
    for finding in report.findings:
        console.print(styled(("why:", "bold"), f" {finding}"))


@app.command("benchmark")
def benchmark(
    market: MarketArg,
    config: ConfigPath,
    runs: Annotated[int, typer.Option(help="Proofs to make.")] = 5,
    inputs: Annotated[
        str | None,
        typer.Option(help="Inputs as JSON, by circuit signal (default: the circuit's sample)."),
    ] = None,
    token_per_eth: Annotated[
        float | None,
        typer.Option("--token-per-eth", help="Tokens an ETH buys: prices break-even in tokens."),
    ] = None,
) -> None:
    """Prove sample inputs with the market's configured prover and print the proof time
    to offer and the break-even price of a proof at the current gas price."""
    settings = _config(config)
    given = None
    if inputs is not None:
        try:
            given = json.loads(inputs)
        except ValueError as exc:
            raise ConfigError(f"--inputs is not JSON: {exc}") from None
        if not isinstance(given, dict):
            raise ConfigError('--inputs must be a JSON object: {"signal": value, ...}')
    b = operator.benchmark(settings, market, runs=runs, inputs=given, config_file=str(config))
    times = list(b.seconds)
    console.print(
        f"market {b.market_id}: {len(times)} proofs with {b.config.prover}: min "
        f"{min(times):.2f} s, p50 {operator.quantile(times, 0.5):.2f} s, max {max(times):.2f} s "
        "(the first includes starting the prover)"
    )
    console.print(
        f"suggested proof_time = {b.suggested_proof_time}  (2 x p99 + submit_margin "
        f"{settings.submit_margin:g} s, at least {operator.MIN_PROOF_TIME}; config: "
        f"{b.config.proof_time})"
    )
    console.print(f"compute_per_request = {b.config.compute_per_request}")
    console.print(
        f"break-even price: {b.submit_gas:,} gas ({b.gas_source}) at "
        f"{format_amount(b.gas_price_wei, 9, 'gwei')} = "
        f"{format_amount(b.break_even_wei, 18, 'ETH')} a proof"
    )
    if token_per_eth is not None:
        tokens = b.break_even_tokens(token_per_eth)
        console.print(
            f"  = {format_amount(tokens, b.token_decimals, b.token_symbol)} ({tokens} base "
            f"units) at {token_per_eth:g} {b.token_symbol}/ETH; config price: "
            f"{format_amount(b.config.price, b.token_decimals, b.token_symbol)}"
        )


@app.command("exit")
def exit_(config: ConfigPath) -> None:
    """Leave every market, request exit and withdraw the whole stake, once no task is live
    (there is no unbonding delay). Stop the node first (`kill -TERM` drains it)."""
    settings = _config(config)
    operator.refuse_if_running(settings)
    if not settings.api_port:
        typer.echo("the config turns the node's API off: make sure the node is stopped", err=True)
    account = load_account(
        os.environ.get("KALYPSO_GENERATOR_KEY"),
        settings.keystore,
        password_env="KALYPSO_GENERATOR_PASSWORD",
        env_name="KALYPSO_GENERATOR_KEY",
    )
    step = operator.exit_generator(settings, account)
    if step.left_markets:
        typer.echo(f"left markets {', '.join(map(str, step.left_markets))}")
    if step.step == "unregistered":
        typer.echo(f"{step.address} is not registered: no stake to withdraw")
    else:
        amount = format_amount(step.amount, step.token_decimals, step.token_symbol)
        typer.echo(f"withdrew the whole stake: {amount} to {step.address}")
