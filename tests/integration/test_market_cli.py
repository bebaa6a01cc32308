"""`kalypso market create` and `kalypso market audit` against anvil, with the sample
square_root artifacts given as a creator's own files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from web3 import Web3

from kalypso.chain.actions import ActionLog, action_key
from kalypso.circuits import build_dir, circuit, manifest
from kalypso.contracts.client import MarketplaceClient
from kalypso.contracts.web3tx import Signing
from kalypso.deployment import Deployment
from kalypso.devnet import Anvil, deploy_devnet, dev_account
from kalypso.market import MarketParams
from kalypso.market.audit import read_market
from kalypso.market.groth16 import (
    DEPLOY_VERIFIER,
    Groth16Market,
    create_action,
    create_resuming,
    groth16_terms,
    market_metadata,
)
from kalypso.provers.proof import verifier_args
from tests.switchable import SWITCHABLE_VERIFIER, deploy_source

KALYPSO = [sys.executable, "-m", "kalypso.cli"]
BUILD = build_dir()
PTAU = BUILD / "pot12_final.ptau"


def files(name: str) -> dict[str, Path]:
    return {
        "zkey": BUILD / f"{name}.zkey",
        "vkey": BUILD / f"{name}.vkey.json",
        "wasm": BUILD / f"{name}.wasm",
        "r1cs": BUILD / f"{name}.r1cs",
    }


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    path = tmp_path_factory.mktemp("market") / "deployment.json"
    with Anvil() as anvil:
        deploy_devnet(anvil.web3()).deployment.save(path)
        env = dict(os.environ)
        env.update(
            KALYPSO_RPC_URL=anvil.url,
            KALYPSO_DEPLOYMENT=str(path),
            KALYPSO_PRIVATE_KEY="0x" + dev_account(4).key.hex().removeprefix("0x"),
            HOME=str(path.parent),  # the action logs of `market create`
        )
        yield env


def kalypso(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KALYPSO, *map(str, args)],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def market(chain: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> int:
    return create_roots_market(chain, tmp_path_factory.mktemp("creator"), "my_roots")


def create_roots_market(chain: dict[str, str], tmp: Path, name: str) -> int:
    """A square_root market named `name`, created through the CLI; its id."""
    schema = tmp / "schema.json"
    schema.write_text(
        json.dumps(json.loads((BUILD.parent / "circuits.json").read_text())["square_root"])
    )
    sample = tmp / "input.json"
    sample.write_text(json.dumps({"square": 144, "max_root": 20, "root": 12}))
    f = files("square_root")
    out = kalypso(
        chain, "market", "create", name,
        "--zkey", f["zkey"], "--vkey", f["vkey"], "--wasm", f["wasm"], "--r1cs", f["r1cs"],
        "--schema", schema, "--sample-input", sample, "--ptau", PTAU,
        "--all-inputs-provable", "--penalty-base-units", 5 * 10**18,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "market created" in out.stdout
    line = next(ln for ln in out.stdout.splitlines() if ln.strip().startswith("market id"))
    return int(line.split()[-1])


def test_create_records_the_metadata(chain: dict[str, str], market: int) -> None:
    w3 = Web3(Web3.HTTPProvider(chain["KALYPSO_RPC_URL"]))
    client = MarketplaceClient(w3, Deployment.load(Path(chain["KALYPSO_DEPLOYMENT"])))
    from kalypso.market.audit import read_market

    onchain = read_market(client, market)
    metadata = json.loads(onchain.metadata)
    entry = manifest()["circuits"]["square_root"]
    assert metadata["name"] == "my_roots"
    # the circuit is named after its files, so two markets of one circuit share them
    assert metadata["circuit"] == "square_root"
    assert metadata["inputs"] == entry["inputs"]
    assert metadata["public_signals"] == entry["public_signals"]
    assert metadata["constraints"] == entry["constraints"]
    assert metadata["trusted_setup_sha256"] == manifest()["ptau"]["sha256"]
    assert metadata["artifacts"] == {
        k: entry["sha256"][k] for k in ("wasm", "zkey", "vkey", "r1cs")
    }
    assert onchain.public_inputs_count == 2


def test_audit_of_the_right_artifacts_passes(chain: dict[str, str], market: int) -> None:
    f = files("square_root")
    out = kalypso(
        chain, "market", "audit", market,
        "--zkey", f["zkey"], "--vkey", f["vkey"], "--wasm", f["wasm"], "--r1cs", f["r1cs"],
        "--ptau", PTAU,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "FAILED" not in out.stdout
    for check in ("metadata hash", "zkey sha256", "transcript sha256", "zkey verify"):
        assert check in out.stdout
    assert "all 11 checks ok" in out.stdout, out.stdout
    assert "kalypso's Groth16Verifier" in out.stdout


def test_attack_switchable_verifier_fails_the_audit(chain: dict[str, str]) -> None:
    """Its getters give the real key and it accepts the sample at creation, but its owner
    can switch `verify` off: the audit read the key through the getters and passed it."""
    w3 = Web3(Web3.HTTPProvider(chain["KALYPSO_RPC_URL"]))
    client = MarketplaceClient(w3, Deployment.load(Path(chain["KALYPSO_DEPLOYMENT"])))
    c, owner = circuit("square_root"), dev_account(4)
    verifier = deploy_source(w3, owner, SWITCHABLE_VERIFIER, *verifier_args(c.vkey_json()))
    params = MarketParams(
        verifier=verifier, slashing_penalty=10**18, public_inputs_count=2, all_inputs_provable=True
    )
    market_id, sample = client.market_count(), c.sample_proof()
    metadata = market_metadata(c, "switchable")
    client.create_market(owner, params, metadata, sample.public_inputs(), sample.calldata())
    out = kalypso(chain, "market", "audit", market_id, "--circuit", "square_root")
    assert out.returncode == 1, out.stdout + out.stderr
    failed = [ln for ln in out.stdout.splitlines() if "FAILED" in ln]
    assert any("verifier code" in ln and "unknown code" in ln for ln in failed), out.stdout
    assert "can change: SLOAD (state)" in out.stdout
    assert any("on-chain key = zkey's" in ln for ln in failed)
    assert "3 of 11 checks FAILED" in out.stdout  # the code, the zkey's and vkey's key


def test_audit_without_files_checks_the_code_only(chain: dict[str, str]) -> None:
    deployment = Deployment.load(Path(chain["KALYPSO_DEPLOYMENT"]))
    out = kalypso(chain, "market", "audit", deployment.markets["mock"])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "kalypso's MockVerifier" in out.stdout and "ThresholdInputVerifier" in out.stdout
    out = kalypso(chain, "market", "audit", deployment.markets["square_root_plonk"])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "EnclaveRegistry" in out.stdout


def test_audit_of_the_sample_market_by_circuit_name(chain: dict[str, str]) -> None:
    deployment = Deployment.load(Path(chain["KALYPSO_DEPLOYMENT"]))
    market_id = deployment.markets["square_root"]
    out = kalypso(chain, "market", "audit", market_id, "--circuit", "square_root")
    assert out.returncode == 0, out.stdout + out.stderr


def test_audit_with_a_wrong_zkey_fails(chain: dict[str, str], market: int) -> None:
    f = files("square_root")
    out = kalypso(
        chain, "market", "audit", market,
        "--zkey", files("poseidon_preimage")["zkey"], "--r1cs", f["r1cs"], "--ptau", PTAU,
    )  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert "FAILED" in out.stdout
    assert "Traceback" not in out.stderr
    failed = [ln for ln in out.stdout.splitlines() if "FAILED" in ln]
    assert any("zkey sha256" in ln for ln in failed)
    assert any("zkey verify" in ln for ln in failed)
    assert any("on-chain key" in ln for ln in failed)


def test_a_missing_zkey_is_a_one_line_error(chain: dict[str, str], tmp_path: Path) -> None:
    f = files("square_root")
    out = kalypso(
        chain, "market", "create", "x",
        "--zkey", tmp_path / "missing.zkey", "--vkey", f["vkey"], "--wasm", f["wasm"],
        "--r1cs", f["r1cs"], "--schema", tmp_path / "schema.json",
    )  # fmt: skip
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0, out.stderr
    assert "no zkey file at" in out.stderr or "schema" in out.stderr


def test_missing_artifacts_and_unknown_markets_are_one_line_errors(
    chain: dict[str, str],
) -> None:
    out = kalypso(chain, "market", "create", "x", "--zkey", BUILD / "square_root.zkey")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "--vkey" in out.stderr
    out = kalypso(chain, "market", "audit", 999, "--circuit", "square_root")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "no market 999" in out.stderr, out.stderr


def test_attack_market_name_takeover_through_the_cli(
    chain: dict[str, str], market: int, tmp_path: Path
) -> None:
    """A later market named like an earlier one does not take the name over: asking by
    name is a one-line error naming both ids, the listing flags both, and a name the
    deployment file records addresses its recorded market."""
    attacker = create_roots_market(chain, tmp_path, "my_roots")
    both = f"markets {market} and {attacker} both use it"
    for command in (
        ("market", "show", "my_roots"),
        ("request", "create", "my_roots", "-i", "square=144", "--max-price", "1"),
    ):
        out = kalypso(chain, *command)
        assert out.returncode == 1, out.stdout + out.stderr
        assert "Traceback" not in out.stderr
        assert out.stderr.strip().count("\n") == 0, out.stderr
        assert "market name 'my_roots' is ambiguous" in out.stderr and both in out.stderr
    listed = {m["id"]: m for m in json.loads(kalypso(chain, "market", "list", "--json").stdout)}
    for mid in (market, attacker):
        assert listed[mid]["name"] == "my_roots"
        assert both in listed[mid]["name_note"]
    table = kalypso(chain, "market", "list").stdout
    assert table.count("ambiguous") >= 2, table
    recorded = Deployment.load(Path(chain["KALYPSO_DEPLOYMENT"]))
    path = tmp_path / "deployment.json"
    replace(recorded, markets={**recorded.markets, "my_roots": market}).save(path)
    shown = kalypso({**chain, "KALYPSO_DEPLOYMENT": str(path)}, "market", "show", "my_roots")
    assert shown.returncode == 0, shown.stderr
    assert f"(market {market})" in shown.stdout


class Crash(BaseException):
    """The process dies (SIGKILL, power): nothing after it runs."""


CREATOR = dev_account(4)
PENALTY = 5 * 10**18


def create_sample(name: str, *more: str) -> list[str | int]:
    return ["market", "create", name, "--circuit", "square_root", "--all-inputs-provable",
            "--penalty-base-units", PENALTY, *more]  # fmt: skip


def cut_short(
    chain: dict[str, str], home: Path, name: str, *, before: str | None
) -> Groth16Market | None:
    """What `kalypso market create NAME --circuit square_root` leaves when it dies as it
    signs the transaction `before` (None: after its last one was mined)."""
    client = client_of(chain)
    c = circuit("square_root")
    terms = groth16_terms(c, slashing_penalty=PENALTY, all_inputs_provable=True)
    args = create_action(name, c, terms)
    log = ActionLog(home / ".kalypso" / "actions" / f"31337-{CREATOR.address}.sqlite")
    key = action_key("market create", args)
    log.begin(key, "market create", args)
    signer = Signing(client.w3, CREATOR, 31337)

    def sent(tx: bytes, nonce: int, function: str) -> None:
        log.sent(key, tx, nonce, function)  # recorded, then the process dies
        if function == before:
            raise Crash

    signer.record(sent)
    try:
        note = lambda n, v: log.note(key, n, v)  # noqa: E731
        return create_resuming(client, signer, c, name, terms, None, {}, note)
    except Crash:
        return None
    finally:
        log.close()


def client_of(chain: dict[str, str]) -> MarketplaceClient:
    w3 = Web3(Web3.HTTPProvider(chain["KALYPSO_RPC_URL"]))
    return MarketplaceClient(w3, Deployment.load(Path(chain["KALYPSO_DEPLOYMENT"])))


def test_a_rerun_after_the_verifier_was_deployed_reuses_it(
    chain: dict[str, str], tmp_path: Path
) -> None:
    assert cut_short(chain, tmp_path, "resumed", before="create_market") is None
    log = ActionLog(tmp_path / ".kalypso" / "actions" / f"31337-{CREATOR.address}.sqlite")
    (action,) = log.db.execute("SELECT notes FROM actions").fetchall()
    log.close()
    client = client_of(chain)
    receipt = client.w3.eth.get_transaction_receipt(json.loads(action[0])["verifier_tx"])
    nonce, markets = client.w3.eth.get_transaction_count(CREATOR.address), client.market_count()
    out = kalypso({**chain, "HOME": str(tmp_path)}, *create_sample("resumed"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"market created: resumed (id {markets})" in out.stdout
    assert f"{receipt['contractAddress']} (deployed by an earlier run" in out.stdout
    assert client.w3.eth.get_transaction_count(CREATOR.address) == nonce + 1  # create_market
    assert client.market_count() == markets + 1
    assert read_market(client, markets).verifier == receipt["contractAddress"]


def test_a_rerun_after_the_market_was_created_sends_nothing_and_new_sends_again(
    chain: dict[str, str], tmp_path: Path
) -> None:
    created = cut_short(chain, tmp_path, "done", before=None)
    assert created is not None and not created.reused_verifier
    client = client_of(chain)
    nonce, markets = client.w3.eth.get_transaction_count(CREATOR.address), client.market_count()
    env = {**chain, "HOME": str(tmp_path)}
    again = kalypso(env, *create_sample("done"))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already done" in again.stdout and f"(market {created.market_id})" in again.stdout
    assert client.w3.eth.get_transaction_count(CREATOR.address) == nonce
    assert client.market_count() == markets
    second = kalypso(env, *create_sample("done", "--new"))
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"market created: done (id {markets})" in second.stdout
    assert client.market_count() == markets + 1
    assert client.w3.eth.get_transaction_count(CREATOR.address) == nonce + 2
    assert DEPLOY_VERIFIER not in second.stdout
