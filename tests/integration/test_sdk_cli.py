"""The app-facing CLI against the devnet stack: each command's happy path, and bad input
printing one clear line and exiting non-zero, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kalypso.chain.actions import ActionLog, action_key
from kalypso.devnet import dev_account
from kalypso.sdk import Kalypso
from tests.integration.conftest import SdkDevnet

pytestmark = pytest.mark.filterwarnings("ignore::kalypso.sdk.DevAuthorityWarning")


def kalypso(
    devnet: SdkDevnet, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **devnet.env(dev_account(5)), "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "kalypso.cli", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
    )


def ok_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def one_line_error(done: subprocess.CompletedProcess[str], text: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and text in errors[0], done.stderr


def test_market_list_and_show(sdk_devnet: SdkDevnet) -> None:
    markets = ok_json(kalypso(sdk_devnet, "market", "list", "--json"))
    assert [m["name"] for m in markets][:3] == ["mock", "poseidon_preimage", "square_root"]
    shown = ok_json(kalypso(sdk_devnet, "market", "show", "square_root", "--json"))
    assert shown["inputs"] == {"square": "public", "max_root": "public", "root": "private"}
    assert shown["stats"]["active_generators"] == 1
    table = kalypso(sdk_devnet, "market", "list")
    assert table.returncode == 0 and "poseidon_preimage" in table.stdout
    one_line_error(kalypso(sdk_devnet, "market", "show", "nope"), "unknown market 'nope'")


def test_balance_deposit_and_withdraw_in_token_units(sdk_devnet: SdkDevnet) -> None:
    start = ok_json(kalypso(sdk_devnet, "balance", "--json"))
    done = kalypso(sdk_devnet, "deposit", "2.5 KAL")
    assert done.returncode == 0 and "deposited 2.5 KAL" in done.stdout, done.stderr
    assert kalypso(sdk_devnet, "withdraw", "1000000000000000000 base").returncode == 0
    after = ok_json(kalypso(sdk_devnet, "balance", "--json"))
    assert after["internal"] == start["internal"] + 1_500_000_000_000_000_000
    text = kalypso(sdk_devnet, "balance")
    assert "KAL" in text.stdout and "base units" in text.stdout
    one_line_error(kalypso(sdk_devnet, "deposit", "1000000 KAL"), "the wallet holds")
    one_line_error(kalypso(sdk_devnet, "deposit", "lots"), "not an amount")


def test_a_withdraw_run_again_after_a_crash_reports_instead_of_withdrawing_twice(
    sdk_devnet: SdkDevnet, tmp_path: Path
) -> None:
    env = {"HOME": str(tmp_path)}
    assert kalypso(sdk_devnet, "deposit", "3 KAL", env=env).returncode == 0
    # The crash: `kalypso withdraw 1 KAL` died after its transaction was mined. Its
    # action log is what that run left: the action begun, its transaction recorded.
    with Kalypso(sdk_devnet.url, sdk_devnet.deployment, dev_account(5)) as k:
        log = ActionLog(tmp_path / ".kalypso" / "actions" / f"31337-{k.address}.sqlite")
        key = action_key("withdraw", {"amount": 10**18, "to": None})
        log.begin(key, "withdraw", {"amount": 10**18, "to": None})
        k.record(lambda tx, nonce, fn: log.sent(key, tx, nonce, fn))
        receipt = k.withdraw("1 KAL")
        log.close()
    before = ok_json(kalypso(sdk_devnet, "balance", "--json", env=env))["internal"]
    again = kalypso(sdk_devnet, "withdraw", "1 KAL", env=env)
    assert again.returncode == 0, again.stderr
    tx = "0x" + bytes(receipt["transactionHash"]).hex()
    assert "already done" in again.stdout and tx in again.stdout
    assert ok_json(kalypso(sdk_devnet, "balance", "--json", env=env))["internal"] == before
    third = kalypso(sdk_devnet, "withdraw", "1 KAL", env=env)  # a finished action is gone
    assert third.returncode == 0 and "withdrew 1 KAL" in third.stdout, third.stderr
    after = ok_json(kalypso(sdk_devnet, "balance", "--json", env=env))["internal"]
    assert after == before - 10**18


def test_request_create_wait_and_status(sdk_devnet: SdkDevnet) -> None:
    args = ["request", "create", "poseidon_preimage", "-i", "preimage=5", "--max-price", "20"]
    done = kalypso(sdk_devnet, *args, "--proof-time", "120", "--wait", "--json")
    proven = ok_json(done)
    assert proven["state"] == "FULFILLED" and proven["proof"]["protocol"] == "groth16"
    assert "sending request 0x" in done.stderr  # the id is logged before the transaction
    rid = proven["request_id"]
    status = ok_json(kalypso(sdk_devnet, "request", "status", rid, "--json"))
    assert status["state"] == "FULFILLED" and status["generator"]
    again = ok_json(kalypso(sdk_devnet, "request", "wait", rid, "--json"))
    assert again["public"] == proven["public"]
    plain = kalypso(sdk_devnet, "request", "wait", rid)  # `> proof.json` is the proof alone
    assert ok_json(plain)["public"] == proven["public"] and "generator paid" in plain.stderr


def test_request_create_then_cancel_and_wait_timeout(sdk_devnet: SdkDevnet, tmp_path: Path) -> None:
    signals = tmp_path / "signals.json"
    signals.write_text("[7]")
    placed = kalypso(
        sdk_devnet,
        "request",
        "create",
        "mock",
        "--inputs",
        str(signals),
        "--max-price",
        "1",
        "--proof-time",
        "60",
        "--json",
    )
    rid = ok_json(placed)["request_id"]
    timed_out = kalypso(sdk_devnet, "request", "wait", rid, "--timeout", "1")
    assert timed_out.returncode == 3 and "still OPEN" in timed_out.stderr
    one_line_error(kalypso(sdk_devnet, "request", "slash", rid), "requests:")
    cancelled = ok_json(kalypso(sdk_devnet, "request", "cancel", rid, "--json"))
    assert cancelled["state"] == "CLOSED" and cancelled["refund"] == 10**18
    one_line_error(kalypso(sdk_devnet, "request", "cancel", rid), "requests: not open")


def test_request_bad_input_is_one_clear_line(sdk_devnet: SdkDevnet, tmp_path: Path) -> None:
    broken = tmp_path / "inputs.json"
    broken.write_text("{not json")
    create = ["request", "create", "square_root", "--max-price", "8"]
    one_line_error(kalypso(sdk_devnet, *create, "--inputs", str(broken)), "is not valid JSON")
    one_line_error(kalypso(sdk_devnet, *create, "-i", "square"), "NAME=VALUE")
    one_line_error(
        kalypso(sdk_devnet, *create, "-i", "square=50", "-i", "max_root=10"), "nothing was sent"
    )
    one_line_error(
        kalypso(sdk_devnet, "request", "create", "nope", "-i", "a=1", "--max-price", "1"),
        "unknown market",
    )
    one_line_error(
        kalypso(sdk_devnet, *create, "-i", "square=49", env={"KALYPSO_PRIVATE_KEY": "0x1234"}),
        "not a valid private key",
    )
    one_line_error(kalypso(sdk_devnet, "request", "status", "0x1234"), "a request id is 32 bytes")
    one_line_error(
        kalypso(sdk_devnet, *create, "-i", "square=49", "--pricing", "cheap"), "--pricing"
    )


def test_request_create_asks_the_user_for_the_price(sdk_devnet: SdkDevnet) -> None:
    done = kalypso(
        sdk_devnet,
        "request",
        "create",
        "square_root",
        "-i",
        "square=36",
        "-i",
        "max_root=10",
        "--max-price",
        "8",
        "--pricing",
        "ask",
        "--proof-time",
        "120",
        "--wait",
        "--json",
        stdin="6 KAL\n",
    )
    assert done.returncode == 0, done.stderr
    assert "suggested" in done.stderr and "your cap  8 KAL" in done.stderr
    payload = json.loads(done.stdout)
    assert payload["state"] == "FULFILLED" and payload["refund"] == 10**18  # 6 offered, 5 paid


def test_init_writes_commented_files_and_never_overwrites(
    sdk_devnet: SdkDevnet, tmp_path: Path
) -> None:
    done = kalypso(sdk_devnet, "init", "--dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["generator.toml", "kalypso.env", "matcher.toml"]
    assert "KALYPSO_RPC_URL=" in (tmp_path / "kalypso.env").read_text()
    one_line_error(kalypso(sdk_devnet, "init", "--dir", str(tmp_path)), "nothing written")
    assert kalypso(sdk_devnet, "init", "app", "--dir", str(tmp_path), "--force").returncode == 0
