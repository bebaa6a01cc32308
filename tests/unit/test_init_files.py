"""`kalypso init`'s files: the examples, and files filled for a deployment that load with
the daemons' own config loaders as written."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kalypso.cli import app
from kalypso.deployment import Deployment
from kalypso.generator.config import GeneratorConfig
from kalypso.init_files import EXAMPLES, FILES, Deployed, filled, set_keys
from kalypso.market.types import RequestKinds
from kalypso.matching.config import MatcherConfig
from kalypso.sdk.markets import NO_IMAGE, ZERO_ADDRESS, Market

DEPLOYMENT = Deployment(4242, 7, "0xt", "0xr", "0xm", "0xmr", "USD", 6)
INJECTION = 'evil"\n[markets.99]\nprice = 1'


def market(market_id: int, name: str | None, **terms: object) -> Market:
    base = Market(
        id=market_id,
        name=name or str(market_id),
        verifier=ZERO_ADDRESS,
        slashing_penalty=100 * 10**6,
        input_verifier=None,
        generator_image=NO_IMAGE,
        input_verification_image=NO_IMAGE,
        proof_verification_image=NO_IMAGE,
        proof_system="groth16",
        circuit="square_root",
        metadata={} if name is None else {"name": name},
    )
    return replace(base, **terms)  # type: ignore[arg-type]


MARKETS = [
    market(0, "roots"),
    market(1, "secret", request_kinds=RequestKinds.PRIVATE, generator_image=b"\x01" * 32),
    market(2, "attested", proof_system="plonk", input_verification_image=b"\x02" * 32),
    market(3, None, proof_system="opaque", circuit=None, slashing_penalty=10**12),
    market(4, INJECTION, request_kinds=RequestKinds.BOTH),
]


def deployed(tmp_path: Path, markets: list[Market] = MARKETS, every: bool = True) -> Deployed:
    return Deployed(
        "https://rpc.example/KEY", tmp_path / "4242.json", DEPLOYMENT, markets, every, tmp_path
    )


def write(tmp_path: Path, target: Deployed) -> dict[str, Path]:
    paths = {}
    for role, text in filled(target).items():
        paths[role] = tmp_path / FILES[role]
        paths[role].write_text(text)
    return paths


def test_the_generator_config_has_a_table_per_market_by_id_and_loads(tmp_path: Path) -> None:
    path = write(tmp_path, deployed(tmp_path))["generator"]
    config = GeneratorConfig.load(path, env={})
    assert config.rpc_url == "https://rpc.example/KEY"
    assert config.deployment == tmp_path / "4242.json"
    assert config.keystore == tmp_path / "generator-keystore.json"
    # enough stake for 4 tasks at once at the largest penalty
    assert (config.compute, config.stake) == (4, 4 * 10**12)
    by_id = {m.market: m for m in config.markets}
    assert list(by_id) == ["0", "1", "2", "3", "4"]  # the name's injection added no table
    assert by_id["0"].prover == "snarkjs" and by_id["0"].solver == "square_root"
    home = Path("~/.kalypso/artifacts/4242/0/square_root").expanduser()
    assert by_id["0"].zkey == home.with_suffix(".zkey") and by_id["0"].price == 5 * 10**6
    assert (by_id["1"].prover, by_id["1"].url) == ("enclave", "http://127.0.0.1:7303")
    assert (by_id["2"].proof_system, by_id["2"].circuit) == ("plonk", "square_root")
    assert by_id["2"].proof_attestor is not None
    assert (by_id["3"].prover, by_id["3"].command) == ("command", ("./my-prover",))
    text = path.read_text()
    assert '# market 0, named "roots" on-chain\n[markets.0]\n' in text
    assert "# market 3 (no on-chain name)\n[markets.3]\n" in text
    assert '# market 4, named "evil\\"\\n[markets.99]\\nprice = 1" on-chain\n' in text
    assert "`kalypso generator fetch 0 -c generator.toml`" in text
    words = " ".join(text.replace("#", " ").split())  # the comments, unwrapped
    assert "`kalypso generator benchmark 2 -c generator.toml` suggests one" in words
    assert "# input_attestor" in text and "KALYPSO_GENERATOR_PASSWORD" in text


def test_the_matcher_config_lists_the_markets_and_loads(tmp_path: Path) -> None:
    path = write(tmp_path, deployed(tmp_path))["matcher"]
    config = MatcherConfig.load(path, env={})
    assert config.markets is None  # every market: the shard line stays commented out
    assert config.keystore == tmp_path / "matcher-keystore.json"
    text = path.read_text()
    assert "# markets = [0, 1, 2, 3, 4]" in text and '# market 1, named "secret" on-chain' in text
    chosen = write(tmp_path, deployed(tmp_path, MARKETS[2:0:-1], every=False))["matcher"]
    assert MatcherConfig.load(chosen, env={}).markets == (1, 2)
    assert "\nmarkets = [2, 1]" in chosen.read_text()


def test_the_app_env_points_at_the_deployment(tmp_path: Path) -> None:
    text = filled(deployed(tmp_path))["app"]
    assert "\nKALYPSO_RPC_URL=https://rpc.example/KEY\n" in text
    assert f"\nKALYPSO_DEPLOYMENT={tmp_path / '4242.json'}\n" in text
    assert f"\nKALYPSO_KEYSTORE={tmp_path / 'app-keystore.json'}\n" in text
    assert (
        "\n# KALYPSO_KEYSTORE_PASSWORD_FILE=/path/to/password.txt\n" in text
        and "placeholder" in text.splitlines()[0]
    )
    spaced = filled(replace(deployed(tmp_path), rpc_url="http://a b"))["app"]
    assert "\nKALYPSO_RPC_URL='http://a b'\n" in spaced


def test_no_markets_yet_is_said_in_the_files(tmp_path: Path) -> None:
    files = filled(deployed(tmp_path, []))
    assert "# The marketplace has no markets yet" in files["generator"]
    assert "# The marketplace has no markets yet.\n" in files["matcher"]
    assert "# markets = [0, 1]" in files["matcher"]


def test_set_keys_keeps_the_comments_and_refuses_a_key_the_example_lacks() -> None:
    text = set_keys('# keystore = "a"      # its password: X\nb = 1\n', {"keystore": '"k"'})
    assert text == 'keystore = "k"                           # its password: X\nb = 1\n'
    with pytest.raises(KeyError):
        set_keys("b = 1\n", {"c": "2"})


def test_without_a_deployment_init_writes_the_examples(tmp_path: Path) -> None:
    env: dict[str, str | None] = {"KALYPSO_RPC_URL": None, "KALYPSO_DEPLOYMENT": None}
    done = CliRunner().invoke(app, ["init", "--dir", str(tmp_path)], env=env)
    assert done.exit_code == 0, done.output
    for role, name in FILES.items():
        assert (tmp_path / name).read_text() == EXAMPLES[role]
    assert GeneratorConfig.load(tmp_path / "generator.toml", env={}).markets
    assert tomllib.loads(EXAMPLES["matcher"]) == tomllib.loads(
        (tmp_path / "matcher.toml").read_text()
    )
    chose = CliRunner().invoke(
        app, ["init", "--dir", str(tmp_path / "x"), "--market", "2"], env=env
    )
    assert chose.exit_code == 1 and "--market needs a deployment" in str(chose.exception)
