"""Off the devnet's names: `kalypso init` filled from a deployment file that records no
market names (as `kalypso deploy` writes it), and markets addressed by their on-chain
names or ids in the CLI, the operator commands and the generator node."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from kalypso.circuits import circuit
from kalypso.cli import app
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.daemon import bind_deployment
from kalypso.errors import AmbiguousMarketError, ConfigError
from kalypso.generator.config import GeneratorConfig, MarketConfig
from kalypso.generator.onboard import resolve_markets
from kalypso.market.groth16 import create_groth16_market
from kalypso.matching.config import MatcherConfig
from tests.integration.world import POSEIDON, SQUARE_ROOT, World

pytestmark = pytest.mark.usefixtures("snapshot")

ON_CHAIN = "0 mock, 1 poseidon_preimage, 2 square_root, 3 square_root_plonk"


def unrecorded(world: World, tmp_path: Path) -> Path:
    """The deployment file as `kalypso deploy` writes it: no market names."""
    return replace(world.setup.deployment, markets={}).save(tmp_path / "deployment.json")


def kalypso(*args: str | Path) -> Result:
    env: dict[str, str | None] = {"KALYPSO_RPC_URL": None, "KALYPSO_DEPLOYMENT": None}
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def init(world: World, tmp_path: Path, *more: str) -> Result:
    deployment = unrecorded(world, tmp_path)
    url = world.chain.url
    return kalypso("init", "--deployment", deployment, "--rpc-url", url, "--dir", tmp_path, *more)


def test_init_fills_the_files_for_every_market_on_chain(world: World, tmp_path: Path) -> None:
    done = init(world, tmp_path)
    assert done.exit_code == 0, done.output
    generator = GeneratorConfig.load(tmp_path / "generator.toml", env={})
    assert generator.rpc_url == world.chain.url
    assert generator.deployment == tmp_path / "deployment.json"
    assert [m.market for m in generator.markets] == ["0", "1", "2", "3"]
    text = (tmp_path / "generator.toml").read_text()
    assert '# market 2, named "square_root" on-chain\n[markets.2]\n' in text
    matcher = MatcherConfig.load(tmp_path / "matcher.toml", env={})
    assert matcher.markets is None and matcher.deployment == generator.deployment
    app_env = (tmp_path / "kalypso.env").read_text()
    assert f"\nKALYPSO_RPC_URL={world.chain.url}\n" in app_env


def test_init_takes_markets_by_on_chain_name_or_id(world: World, tmp_path: Path) -> None:
    done = init(world, tmp_path, "--market", "square_root", "--market", "1", "--market", "2")
    assert done.exit_code == 0, done.output
    generator = GeneratorConfig.load(tmp_path / "generator.toml", env={})
    assert [m.market for m in generator.markets] == ["2", "1"]
    assert MatcherConfig.load(tmp_path / "matcher.toml", env={}).markets == (1, 2)


def test_an_unknown_or_shared_name_is_one_line_naming_the_ids(world: World, tmp_path: Path) -> None:
    unknown = init(world, tmp_path, "--market", "nope")
    assert isinstance(unknown.exception, ConfigError)
    assert str(unknown.exception) == (
        f"[K-CFG-001] unknown market 'nope': give a market id or name: {ON_CHAIN}"
    )
    twin = create_groth16_market(
        world.client,
        world.setup.owner,
        circuit("square_root"),
        name="square_root",
        slashing_penalty=TOKEN_UNIT,
        all_inputs_provable=True,
    ).market_id
    shared = init(world, tmp_path, "--market", "square_root")
    assert isinstance(shared.exception, AmbiguousMarketError)
    assert f"markets {SQUARE_ROOT} and {twin} both use it; address the market by id" in str(
        shared.exception
    )
    audit = kalypso("market", "audit", "9", "--rpc-url", world.chain.url, "--deployment",
                    unrecorded(world, tmp_path))  # fmt: skip
    assert str(audit.exception) == (
        f"[K-CFG-001] there is no market 9 (the marketplace has markets 0 to {twin})"
    )


def test_fetch_by_on_chain_name_prints_a_table_by_id(world: World, tmp_path: Path) -> None:
    assert init(world, tmp_path, "generator", "--market", "square_root").exit_code == 0
    config, dest = tmp_path / "generator.toml", tmp_path / "artifacts"
    done = kalypso("generator", "fetch", "square_root", "-c", config, "--dest", dest)
    assert done.exit_code == 0, done.output
    assert f'named "square_root" on-chain\n[markets.{SQUARE_ROOT}]\n' in done.stdout


async def test_the_node_resolves_an_on_chain_name(world: World, tmp_path: Path) -> None:
    binding = await bind_deployment(world.chain.url, unrecorded(world, tmp_path), None, role="t")
    try:
        tables = (MarketConfig("square_root", 1, 60), MarketConfig(str(POSEIDON), 1, 60))
        resolved = await resolve_markets(binding, tables)
        assert sorted(resolved) == [POSEIDON, SQUARE_ROOT]
        with pytest.raises(
            ConfigError, match=rf"\[markets\.nope\]: unknown market 'nope': .*{ON_CHAIN}$"
        ):
            await resolve_markets(binding, (MarketConfig("nope", 1, 60),))
    finally:
        await binding.close()
