"""The enclave's boot config: strict checks on unmeasured input, answered over a socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from eth_account import Account

from kalypso.enclave import boot as boot_mod
from kalypso.enclave.boot import MAX_CONFIG, BootConfig, boot, main, receive_config, send_config
from kalypso.enclave.run import build_image
from kalypso.errors import ChainError, ConfigError

KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
SECRET = KEY[2:18]  # any part of the key in a message would be a leak
DEPLOYMENT = {
    "chain_id": 1,
    "deploy_block": 1,
    "token": "0x" + "01" * 20,
    "registry": "0x" + "02" * 20,
    "marketplace": "0x" + "03" * 20,
    "market_registry": "0x" + "04" * 20,
    "token_symbol": "USDC",
    "token_decimals": 6,
    "enclave_registry": "0x" + "05" * 20,
}


def config(image: str = "generator", **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "rpc_url": "https://rpc.example.org/v1/apikey",
        "deployment": DEPLOYMENT,
        "attestation_service": "https://attest.example.org",
        "operator_key": KEY,
    }
    if image != "matcher":
        fields |= {"market": "7"}
    return {k: v for k, v in (fields | changes).items() if v is not ...}


def raw(image: str = "generator", **changes: Any) -> bytes:
    return json.dumps(config(image, **changes)).encode()


def test_valid_matcher_config() -> None:
    c = BootConfig.from_json(raw("matcher"), "matcher")
    assert (c.market, c.operator_key) == (None, KEY)
    assert c.deployment == DEPLOYMENT and c.rpc_url.startswith("https://rpc.")


def test_valid_generator_config() -> None:
    c = BootConfig.from_json(raw(market="fast-squares"), "generator")
    assert c.market == "fast-squares"
    assert BootConfig.from_json(raw("matcher", market=None), "matcher").market is None


def test_repr_hides_the_key() -> None:
    c = BootConfig.from_json(raw(), "generator")
    assert SECRET not in repr(c) and SECRET not in str(c)


BAD = {
    "not JSON": (b'{"rpc_url": ', "generator", "not UTF-8 JSON at 1:13"),
    "not UTF-8": (b"\xff" + raw(), "generator", "not UTF-8 JSON"),
    "nested too deep": (b"[" * 60_000, "generator", "not UTF-8 JSON"),
    "not an object": (b"[1, 2]", "generator", "must be a JSON object"),
    "too big": (raw(pad="x" * MAX_CONFIG), "generator", f"over {MAX_CONFIG} bytes"),
    "unknown key": (raw(rpcurl="x"), "generator", "unknown key 'rpcurl'"),
    "key as a key": (
        json.dumps({**config(), KEY: 1}).encode(),
        "generator",
        "unknown key (not shown)",
    ),
    "url not a string": (raw(rpc_url=5), "generator", "rpc_url must be a string"),
    "deployment not an object": (raw(deployment="d.json"), "generator", "deployment must be"),
    "market not a string": (raw(market=7), "generator", "market is required"),
    "bad url scheme": (raw(rpc_url="ftp://rpc.example.org"), "generator", "rpc_url must be"),
    "file url": (raw(attestation_service="file:///etc/x"), "pvs", "attestation_service must"),
    "url without host": (raw(rpc_url="https://"), "generator", "rpc_url must be"),
    "url with a newline": (raw(rpc_url="https://a.org/\nx"), "generator", "rpc_url must be"),
    "short key": (raw(operator_key=KEY[:-2]), "generator", "operator_key must be"),
    "long key": (raw(operator_key=KEY + "00"), "generator", "operator_key must be"),
    "key not hex": (raw(operator_key=KEY[:-1] + "g"), "generator", "operator_key must be"),
    "key without 0x": (raw(operator_key=KEY[2:] + "00"), "generator", "operator_key must be"),
    "key zero": (raw(operator_key="0x" + "0" * 64), "generator", "operator_key must be"),
    "key missing": (raw(operator_key=...), "generator", "operator_key must be"),
    "market missing": (raw(market=...), "generator", "market is required for the generator"),
    "market for ivs missing": (raw(market=None), "ivs", "market is required for the ivs"),
    # the circuit is measured (the image's command line), never boot input
    "a circuit": (raw(circuit="square_root"), "ivs", "unknown key 'circuit'"),
    "market for matcher": (raw("matcher", market="7"), "matcher", "market must be absent"),
}


@pytest.mark.parametrize(("data", "image", "message"), BAD.values(), ids=BAD.keys())
def test_bad_config_is_a_config_error(data: bytes, image: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        BootConfig.from_json(data, image)
    assert message in str(e.value)
    assert SECRET not in str(e.value) and SECRET not in repr(e.value)
    assert "\n" not in str(e.value)


def listener() -> tuple[socket.socket, int]:
    sock = socket.create_server(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


async def send(port: int, data: bytes) -> str:
    def go() -> str:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            return send_config(s, data)

    return await asyncio.to_thread(go)


async def test_receive_config_answers_each_sender_until_a_good_one() -> None:
    listen, port = listener()
    with listen:
        waiting = asyncio.create_task(receive_config(listen, "generator", timeout=5))
        answer = await send(port, raw(market=...))
        assert answer.startswith("error: ") and "market is required" in answer
        assert SECRET not in answer
        answer = await send(port, b"{" * (16 * MAX_CONFIG))  # 1 MiB: drained, not read
        assert answer.startswith("error: ") and f"over {MAX_CONFIG} bytes" in answer
        assert not waiting.done()
        assert await send(port, raw()) == "ok"
        assert (await waiting).market == "7"


async def test_a_silent_sender_times_out_and_the_enclave_waits_on() -> None:
    listen, port = listener()
    with listen, socket.create_connection(("127.0.0.1", port), timeout=5) as silent:
        waiting = asyncio.create_task(receive_config(listen, "matcher", timeout=0.2))
        silent.sendall(b'{"rpc_url": ')  # and no EOF
        answer = await asyncio.to_thread(silent.recv, 4096)
        assert answer.startswith(b"error: ") and answer.endswith(b"\n")
        assert await send(port, raw("matcher")) == "ok"
        assert (await waiting).market is None


async def test_check_refusal_is_answered_and_the_enclave_waits_on() -> None:
    def check(c: BootConfig) -> None:
        if c.market != "square_root":
            raise ConfigError(f"unknown market {c.market!r}")

    listen, port = listener()
    with listen:
        waiting = asyncio.create_task(receive_config(listen, "pvs", 5, check))
        assert "unknown market '7'" in await send(port, raw())
        assert await send(port, raw(market="square_root")) == "ok"
        assert (await waiting).market == "square_root"


class Fakes:
    """`boot`'s collaborators from run.py and vsock.py, recording what they get."""

    def __init__(self, relay_error: Exception | None = None) -> None:
        self.relay_error = relay_error
        self.calls: dict[str, Any] = {}

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        plan = SimpleNamespace(inbound={"generator": 7303, "matcher": 7310})
        for name, fake in {
            "load_plan": lambda path: plan,
            "enclave_routes": lambda plan, image, rpc, service: (["route"], ["127.0.0.2 rpc"]),
            "run_enclave_side": self.relays,
            "build_image": lambda image, circuit: (f"{image}/{circuit}", "worker"),
            "open_enclave": self.open_enclave,
            "serve": self.serve,
        }.items():
            monkeypatch.setattr(boot_mod, name, fake)

    async def relays(self, routes: Any, hosts: Any, stop: asyncio.Event) -> None:
        self.calls["relays"] = (routes, hosts, stop)
        if self.relay_error is not None:
            raise self.relay_error
        await stop.wait()

    def open_enclave(self, image: str, rpc: str, path: Path, operator: Any, *rest: Any) -> str:
        self.calls["open"] = (image, rpc, json.loads(path.read_text()), operator.address, *rest)
        return "enclave"

    async def serve(self, enclave: str, host: str, port: int, worker: str) -> None:
        self.calls["serve"] = (enclave, host, port, worker)
        assert not self.calls["relays"][2].is_set()


@contextlib.asynccontextmanager
async def booting() -> AsyncIterator[tuple[asyncio.Task[None], int]]:
    """A generator image's `boot`, waiting for its config on a TCP port."""
    listen, port = listener()
    with listen:
        yield asyncio.create_task(boot("generator", "poseidon_preimage", listen, Path("p"))), port


async def test_boot_runs_the_image_behind_its_relays(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = Fakes()
    fakes.install(monkeypatch)
    async with booting() as (booted, port):
        assert await send(port, raw()) == "ok"
        await booted
    assert fakes.calls["open"] == (
        "generator/poseidon_preimage",
        config()["rpc_url"],
        DEPLOYMENT,  # written to a file for `open_enclave`
        Account.from_key(KEY).address,
        "7",
        config()["attestation_service"],  # so it is attested with Nitro
    )
    assert fakes.calls["serve"] == ("enclave", "127.0.0.1", 7303, "worker")
    assert fakes.calls["relays"][2].is_set()  # stopped with the service


async def test_boot_stops_when_its_relays_cannot_start(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = Fakes(ConfigError("relay inbound cannot listen"))
    fakes.install(monkeypatch)
    async with booting() as (booted, port):
        assert await send(port, raw()) == "ok"
        with pytest.raises(ConfigError, match="cannot listen"):
            await booted
    assert "open" not in fakes.calls


async def test_boot_refuses_a_deployment_without_enclave_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Fakes().install(monkeypatch)
    async with booting() as (booted, port):
        bad = {**DEPLOYMENT, "enclave_registry": None}
        assert "no enclave_registry" in await send(port, raw(deployment=bad))
        assert "not a Kalypso deployment" in await send(port, raw(deployment={"x": 1}))
        assert await send(port, raw()) == "ok"
        await booted


def test_main_rejects_an_unknown_image(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prover"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown image 'prover'" in err and "matcher" in err


@pytest.mark.parametrize("argv", [["generator"], ["matcher", "--circuit", "square_root"]])
def test_main_takes_a_circuit_for_every_image_but_the_matcher(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    assert "--circuit goes with every image but matcher" in capsys.readouterr().err


@pytest.mark.parametrize("image", ["matcher", "ivs"])
def test_the_images_without_snarkjs_need_no_node(
    image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Their Nitro images carry no Node.js: building them must not look for it."""
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("KALYPSO_NODE", raising=False)
    built, worker = build_image(image, None if image == "matcher" else "square_root")
    assert worker is None and built.kind.value == image


async def test_a_failure_after_ok_never_shows_the_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The RPC URL's path may hold an API key: the error the enclave dies with is logged."""
    fakes = Fakes()
    fakes.install(monkeypatch)
    rpc = config()["rpc_url"]

    def unreachable(*args: Any) -> None:
        raise ChainError(f"cannot reach {rpc}: connection refused")

    monkeypatch.setattr(boot_mod, "open_enclave", unreachable)
    async with booting() as (booted, port):
        assert await send(port, raw()) == "ok"
        with pytest.raises(ConfigError) as refused:
            await booted
    assert "cannot reach <rpc_url>" in str(refused.value) and "apikey" not in str(refused.value)
