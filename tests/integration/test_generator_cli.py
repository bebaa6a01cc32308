"""The operator's commands against anvil: `kalypso generator fetch|why|benchmark|exit`,
and the node's refusal of a market whose verifier code can change (attack 4)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import subprocess
import threading
import tomllib
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from typer.testing import CliRunner, Result

from kalypso.circuits import build_dir, circuit, sha256_file
from kalypso.cli import app
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.devnet import dev_account, free_port
from kalypso.errors import ConfigError, InvalidStateError, KalypsoError, UnauditedMarketError
from kalypso.generator import GeneratorConfig
from kalypso.generator.daemon import GeneratorNode
from kalypso.generator.journal import TaskJournal
from kalypso.market import GeneratorStatus
from kalypso.market.groth16 import create_groth16_market
from tests.integration.world import KALYPSO, MOCK, POSEIDON, World, config_for
from tests.switchable import SWITCHABLE_INPUT_VERIFIER, deploy_source

pytestmark = pytest.mark.usefixtures("snapshot")

GENERATOR = dev_account(2)


def key_env(account: LocalAccount = GENERATOR) -> dict[str, str]:
    return {"KALYPSO_GENERATOR_KEY": "0x" + account.key.hex().removeprefix("0x")}


def write_config(world: World, tmp_path: Path, *, api_port: int = 0) -> Path:
    deployment = tmp_path / "deployment.json"
    world.setup.deployment.save(deployment)
    path = tmp_path / "generator.toml"
    path.write_text(
        f'rpc_url = "{world.chain.url}"\n'
        f'deployment = "{deployment}"\n'
        f"stake = {1_000 * TOKEN_UNIT}\n"
        "compute = 4\n"
        f"api_port = {api_port}\n"
        "[markets.poseidon_preimage]\n"
        f"price = {10 * TOKEN_UNIT}\n"
        "proof_time = 60\n"
        'circuit = "poseidon_preimage"\n'
    )
    return path


def kalypso(*args: str | Path | int, account: LocalAccount = GENERATOR) -> Result:
    """The CLI in-process; a Kalypso error is left in `result.exception`."""
    env: dict[str, str | None] = {
        **key_env(account),
        "KALYPSO_RPC_URL": None,
        "KALYPSO_DEPLOYMENT": None,
        "COLUMNS": "200",
    }
    return CliRunner().invoke(app, ["generator", *map(str, args)], env=env)


def error(result: Result, kind: type[KalypsoError] = KalypsoError) -> str:
    """The one line `kalypso` prints for the error the command ended with."""
    assert isinstance(result.exception, kind), result.output
    line = str(result.exception)
    assert "\n" not in line
    return line


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def file_server(directory: Path) -> Iterator[int]:
    """An HTTP server of `directory` on a free port, in a thread."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


# ---- fetch


def test_fetch_writes_the_sample_artifacts_and_the_config_table(
    world: World, tmp_path: Path
) -> None:
    dest = tmp_path / "artifacts"
    result = kalypso(
        "fetch", "poseidon_preimage", "-c", write_config(world, tmp_path), "--dest", dest
    )
    assert result.exit_code == 0, result.output
    sample = circuit("poseidon_preimage")
    for kind in ("wasm", "zkey"):
        assert sha256_file(dest / f"poseidon_preimage.{kind}") == sample.hashes[kind]
    schema = json.loads((dest / "poseidon_preimage.schema.json").read_text())
    assert schema["inputs"] == sample.inputs and schema["public_signals"] == sample.public_signals
    assert sorted(p.name for p in dest.iterdir()) == [
        "poseidon_preimage.schema.json",
        "poseidon_preimage.wasm",
        "poseidon_preimage.zkey",
    ]
    table = result.stdout[result.stdout.index("# market 1") :]
    assert table.startswith('# market 1, named "poseidon_preimage" on-chain\n[markets.1]\n')
    # a market of private requests is proven in its Generator Image, never with snarkjs here
    assert tomllib.loads(table)["markets"]["1"] == {
        "prover": "enclave", "url": "http://127.0.0.1:7303",
    }  # fmt: skip
    image = world.client.markets.functions.market(1).call()[4]
    assert f"its image id must be 0x{bytes(image).hex()}" in table


def test_fetch_needs_no_config_and_finds_a_market_by_name(world: World, tmp_path: Path) -> None:
    path = tmp_path / "deployment.json"
    world.setup.deployment.save(path)
    dest = tmp_path / "artifacts"
    result = kalypso(
        "fetch", "square_root", "--rpc-url", world.chain.url, "--deployment", path, "--dest", dest
    )
    assert result.exit_code == 0, result.output
    table = tomllib.loads(result.stdout[result.stdout.index("# market") :])
    (market,) = table["markets"].values()
    assert market["prover"] == "snarkjs" and market["solver"] == "square_root"


def test_fetch_over_http_streams_and_checks(world: World, tmp_path: Path) -> None:
    dest = tmp_path / "artifacts"
    with file_server(build_dir()) as port:
        result = kalypso(
            "fetch", POSEIDON, "-c", write_config(world, tmp_path),
            "--source", f"http://127.0.0.1:{port}/", "--dest", dest,
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "MB" in result.stderr  # the progress line
    assert (
        sha256_file(dest / "poseidon_preimage.zkey") == circuit("poseidon_preimage").hashes["zkey"]
    )


def test_fetch_refuses_a_tampered_zkey_and_leaves_no_file(world: World, tmp_path: Path) -> None:
    source, dest = tmp_path / "source", tmp_path / "artifacts"
    source.mkdir()
    sample = circuit("poseidon_preimage")
    (source / "poseidon_preimage.wasm").write_bytes(sample.wasm.read_bytes())
    zkey = bytearray(sample.zkey.read_bytes())
    zkey[-1] ^= 1
    (source / "poseidon_preimage.zkey").write_bytes(bytes(zkey))
    result = kalypso(
        "fetch", "poseidon_preimage", "-c", write_config(world, tmp_path),
        "--source", source, "--dest", dest,
    )  # fmt: skip
    line = error(result, ConfigError)
    assert "poseidon_preimage.zkey" in line and "SHA-256" in line and "refused" in line
    assert list(dest.iterdir()) == []


# ---- why


def test_why_without_a_matcher_is_one_clear_line(world: World, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    out = subprocess.run(
        [*KALYPSO, "generator", "why", "-c", str(write_config(world, tmp_path)), "--matcher", url],
        env={**os.environ, **key_env(), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and out.stdout == ""
    (line,) = out.stderr.strip().splitlines()
    assert f"no matcher answers on {url}" in line and "Traceback" not in out.stderr


async def test_why_names_the_rule_the_generator_fails(world: World, tmp_path: Path) -> None:
    from kalypso.matching.service import serve

    world.generator(GENERATOR, {MOCK: 9 * TOKEN_UNIT})
    world.request(MOCK, max_price=5 * TOKEN_UNIT)
    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(config_for(world, tmp_path, api_port=port), dev_account(1), stop=stop)
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            for _ in range(100):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/health")).json()["status"] == "ok":
                        break
                await asyncio.sleep(0.1)
        config = write_config(world, tmp_path)
        result = await asyncio.to_thread(kalypso, "why", "-c", config, "--matcher", url)
        assert result.exit_code == 0, result.output
        assert "rank 1 of 1" in result.stdout
        assert "1 of the last 1 requests: requests: price above max" in result.stdout
        assert "lower it" in result.stdout
        raw = await asyncio.to_thread(kalypso, "why", "-c", config, "--matcher", url, "--json")
        text = raw.stdout[raw.stdout.index("{\n") :]
        view, _ = json.JSONDecoder().raw_decode(text)
        assert view["generator"] == GENERATOR.address
        assert [r["verdict"] for r in view["recent"]] == ["requests: price above max"]
    finally:
        stop.set()
        await task


# ---- benchmark


def test_benchmark_suggests_a_proof_time_and_a_break_even_price(
    world: World, tmp_path: Path
) -> None:
    result = kalypso(
        "benchmark", "poseidon_preimage", "-c", write_config(world, tmp_path),
        "--runs", "2", "--token-per-eth", "2000",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2 proofs with snarkjs" in result.stdout
    suggested = re.search(r"suggested proof_time = (\d+)", result.stdout)
    assert suggested is not None and int(suggested.group(1)) >= 10
    assert re.search(r"break-even price: 294,500 gas .* ETH a proof", result.stdout)
    assert "KAL/ETH" in result.stdout


# ---- exit


def test_exit_leaves_the_markets_and_withdraws_the_stake(world: World, tmp_path: Path) -> None:
    world.generator(GENERATOR, {MOCK: TOKEN_UNIT, POSEIDON: TOKEN_UNIT})
    client, address = world.client, GENERATOR.address
    stake, wallet = int(client.generator(address)[3]), client.token_balance(address)
    config = write_config(world, tmp_path, api_port=free_port())  # nothing listens there

    result = kalypso("exit", "-c", config)
    assert result.exit_code == 0, result.output
    assert f"left markets {MOCK}, {POSEIDON}" in result.stdout
    assert "withdrew the whole stake: 1,000 KAL" in result.stdout  # no unbonding delay
    assert client.token_balance(address) == wallet + stake
    assert client.generator(address)[0] == GeneratorStatus.UNREGISTERED
    again = kalypso("exit", "-c", config)
    assert again.exit_code == 0 and "is not registered" in again.stdout


def test_exit_is_refused_while_tasks_are_live(world: World, tmp_path: Path) -> None:
    world.generator(GENERATOR, {MOCK: TOKEN_UNIT})
    posted = world.request(MOCK, max_price=5 * TOKEN_UNIT)
    world.client.assign(dev_account(1), posted, GENERATOR.address, TOKEN_UNIT)
    result = kalypso("exit", "-c", write_config(world, tmp_path))
    assert "registry: tasks live" in error(result, InvalidStateError)
    assert world.client.generator(GENERATOR.address)[0] == GeneratorStatus.ACTIVE


def test_exit_is_refused_while_the_node_api_answers(world: World, tmp_path: Path) -> None:
    world.generator(GENERATOR, {MOCK: TOKEN_UNIT})
    with file_server(tmp_path) as port:
        result = kalypso("exit", "-c", write_config(world, tmp_path, api_port=port))
    line = error(result, ConfigError)
    assert "the node is running" in line and "kill -TERM" in line
    assert world.client.generator(GENERATOR.address)[0] == GeneratorStatus.ACTIVE


# ---- status


def test_status_reads_the_journal_and_the_chain(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(world, tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # no `state`, and no journal under HOME
    missing = error(kalypso("status", "-c", config), ConfigError)
    assert f"no journal of chain 31337 in {tmp_path / '.kalypso' / 'generator'}" in missing
    journal = TaskJournal(tmp_path / "journal.sqlite", {"generator": GENERATOR.address})
    journal.close()
    config.write_text(f'state = "{tmp_path / "journal.sqlite"}"\n' + config.read_text())
    done = kalypso("status", "-c", config, "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["address"] == GENERATOR.address and report["registered"] is False
    assert report["tasks"] == {} and report["token"]["symbol"] == "KAL"
    shown = kalypso("status", "-c", config)
    assert f"generator {GENERATOR.address} (not registered)\n" in shown.stdout, shown.output


# ---- verifier code (attack 4)


@pytest.fixture
def switchable_market(world: World) -> int:
    """square_root's circuit and Groth16Verifier, beside an input verifier whose owner can
    switch it to call every input invalid (paid without proving) or none (slashed)."""
    owner = world.setup.owner
    liar = deploy_source(world.w3, owner, SWITCHABLE_INPUT_VERIFIER)
    market = create_groth16_market(
        world.client,
        owner,
        circuit("square_root"),
        name="switchable",
        slashing_penalty=10 * TOKEN_UNIT,
        input_verifier=liar,
    )
    return market.market_id


def test_attack_switchable_input_verifier_fetch_refuses_unless_trusted(
    world: World, tmp_path: Path, switchable_market: int
) -> None:
    dest = tmp_path / "artifacts"
    args = ("fetch", switchable_market, "-c", write_config(world, tmp_path), "--dest", dest)
    line = error(kalypso(*args), UnauditedMarketError)
    assert line.startswith("[K-AUD-001]") and "input verifier code" in line
    assert "can change: SLOAD (state)" in line and "--trust-market-code" in line
    assert list(dest.iterdir()) == []
    trusted = kalypso(*args, "--trust-market-code")
    assert trusted.exit_code == 0, trusted.output
    assert "trust_market_code = true" in trusted.stdout


async def test_attack_switchable_input_verifier_node_refuses_unless_trusted(
    world: World, tmp_path: Path, switchable_market: int
) -> None:
    def config(**trust: bool) -> GeneratorConfig:
        raw = tomllib.loads(write_config(world, tmp_path).read_text())
        raw["state"] = str(tmp_path / "generator.sqlite")
        raw["markets"] = {
            str(switchable_market): {
                "price": TOKEN_UNIT,
                "proof_time": 60,
                "circuit": "square_root",
                **trust,
            }
        }
        return GeneratorConfig.from_dict(raw)

    with pytest.raises(UnauditedMarketError, match="trust_market_code = true") as refused:
        await GeneratorNode.open(config(), GENERATOR)
    assert "\n" not in str(refused.value) and "input verifier code" in str(refused.value)
    node = await GeneratorNode.open(config(trust_market_code=True), GENERATOR)
    await node.close()
