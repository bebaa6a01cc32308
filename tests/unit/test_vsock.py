"""The enclave's vsock port plan and relays. AF_VSOCK is missing in most CI containers,
so the relay is tested over TCP: it runs the same code, only its sockets differ."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kalypso.enclave.vsock import (
    IMAGES,
    VMADDR_CID_ANY,
    Outbound,
    PortPlan,
    Relay,
    Route,
    Tcp,
    Vsock,
    enclave_routes,
    load_plan,
    loopback_up,
    parent_plan,
    run_enclave_side,
)
from kalypso.errors import ConfigError

PLAN_FILE = Path(__file__).parents[2] / "src" / "kalypso" / "enclave" / "vsock.json"
RPC = "https://eth-sepolia.example.com/v2/SECRETKEY"
SERVICE = "http://verifier.internal:7400"
CLI_PORTS = {"matcher": 7310, "generator": 7303, "pvs": 7301, "ivs": 7302}


@pytest.fixture(scope="module")
def plan() -> PortPlan:
    return load_plan(PLAN_FILE)


# --- the port plan ---


def test_committed_plan_loads_with_the_cli_default_ports(plan: PortPlan) -> None:
    assert plan.parent_cid == 3
    assert plan.inbound == CLI_PORTS  # `kalypso enclave <image> --port` defaults
    assert len(set(plan.inbound.values())) == len(IMAGES)
    assert plan.outbound == {
        "rpc": Outbound("127.0.0.2", 8101),
        "attestation": Outbound("127.0.0.3", 8102),
    }


def _set(path: list[str], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(raw: dict[str, Any]) -> None:
        node = raw
        for key in path[:-1]:
            node = node[key]
        if value is KeyError:
            del node[path[-1]]
        else:
            node[path[-1]] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set(["outbound", "attestation", "loopback"], "127.0.0.2"), "loopbacks must be distinct"),
        (_set(["outbound", "rpc", "loopback"], "127.0.0.1"), "not 127.0.0.1"),
        (_set(["outbound", "rpc", "loopback"], "10.0.0.2"), "127.0.0.0/8"),
        (_set(["outbound", "rpc", "loopback"], "127.0.0.300"), "127.0.0.300"),
        (_set(["outbound", "rpc", "vsock_port"], 70000), "port 70000 is not in 1..65535"),
        (_set(["inbound", "pvs"], 0), "port 0 is not in 1..65535"),
        (_set(["inbound", "pvs"], "7301"), "port '7301'"),
        (_set(["outbound", "attestation", "vsock_port"], 8101), "its own port"),
        (_set(["inbound", "ivs"], 7310), "its own port"),
        (_set(["inbound", "ivs"], KeyError), "'ivs'"),
        (_set(["parent_cid"], -1), "parent_cid -1"),
    ],
)
def test_load_plan_refuses(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    raw = json.loads(PLAN_FILE.read_text())
    edit(raw)
    bad = tmp_path / "vsock.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="vsock port plan") as e:
        load_plan(bad)
    assert message in str(e.value)


def test_load_plan_refuses_a_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_plan(tmp_path / "none.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ConfigError, match="JSONDecodeError"):
        load_plan(tmp_path / "broken.json")


# --- routes and the parent's script ---


@pytest.mark.parametrize("image", IMAGES)
def test_enclave_routes(plan: PortPlan, image: str) -> None:
    routes, hosts = enclave_routes(plan, image, RPC, SERVICE)
    port = CLI_PORTS[image]
    assert routes == [
        Route("rpc", Tcp("127.0.0.2", 443), Vsock(3, 8101)),
        Route("attestation", Tcp("127.0.0.3", 7400), Vsock(3, 8102)),
        Route("inbound", Vsock(VMADDR_CID_ANY, port), Tcp("127.0.0.1", port)),
    ]
    assert hosts == ["127.0.0.2 eth-sepolia.example.com", "127.0.0.3 verifier.internal"]


def test_default_and_explicit_ports(plan: PortPlan) -> None:
    routes, hosts = enclave_routes(
        plan, "pvs", "http://RPC.Example.com/x", "https://v.example:8443"
    )
    assert [r.listen for r in routes[:2]] == [Tcp("127.0.0.2", 80), Tcp("127.0.0.3", 8443)]
    assert hosts == ["127.0.0.2 rpc.example.com", "127.0.0.3 v.example"]  # names lowercased


@pytest.mark.parametrize(
    ("rpc", "message"),
    [
        ("https://10.0.0.5/v2/SECRETKEY", "names the IP address 10.0.0.5: use a host name"),
        ("https://[::1]:8545/SECRETKEY", "names the IP address ::1"),
        ("ftp://eth.example.com/SECRETKEY", "must be http(s)://HOST[:PORT]"),
        ("eth.example.com:8545/SECRETKEY", "must be http(s)://HOST[:PORT]"),
        ("https://eth.example.com:0/SECRETKEY", "port 1..65535"),
        ("https://eth.example.com:99999/SECRETKEY", "port 1..65535"),
        ("https://eth_node.example.com/SECRETKEY", "is not a DNS name"),
        ("https://localhost:8545/SECRETKEY", "is not a DNS name"),
        ("https:///SECRETKEY", "is not a DNS name"),
    ],
)
def test_enclave_routes_refuses_urls(plan: PortPlan, rpc: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        enclave_routes(plan, "matcher", rpc, SERVICE)
    assert message in str(e.value)
    assert "rpc URL" in str(e.value)
    assert "SECRETKEY" not in str(e.value)  # a URL's path may hold an API key


def test_enclave_routes_refuses_an_unknown_image_and_a_shared_host(plan: PortPlan) -> None:
    with pytest.raises(ConfigError, match="unknown enclave image 'prover': use one of matcher"):
        enclave_routes(plan, "prover", RPC, SERVICE)
    with pytest.raises(ConfigError, match=re.escape("share host eth-sepolia.example.com")):
        enclave_routes(plan, "matcher", RPC, "http://eth-sepolia.example.com:7400")


def test_parent_plan(plan: PortPlan, tmp_path: Path) -> None:
    text = parent_plan(plan, "matcher", RPC, SERVICE)
    assert text == parent_plan(plan, "matcher", RPC, SERVICE)  # deterministic
    assert "vsock-proxy 8101 eth-sepolia.example.com 443 --config allowlist-matcher.yaml &" in text
    assert "vsock-proxy 8102 verifier.internal 7400 --config allowlist-matcher.yaml &" in text
    assert "socat TCP-LISTEN:7310,fork,reuseaddr VSOCK-CONNECT:16:7310 &" in text
    assert "SECRETKEY" not in text
    allowlist = text.split("<<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    expected = [
        {"address": "eth-sepolia.example.com", "port": 443},
        {"address": "verifier.internal", "port": 7400},
    ]
    try:
        import yaml
    except ImportError:
        assert allowlist == (
            "allowlist:\n- {address: eth-sepolia.example.com, port: 443}\n"
            "- {address: verifier.internal, port: 7400}"
        )
    else:
        assert yaml.safe_load(allowlist) == {"allowlist": expected}
    script = tmp_path / "parent.sh"
    script.write_text(text)
    subprocess.run(["sh", "-n", str(script)], check=True)  # it parses as a shell script
    other = parent_plan(plan, "ivs", RPC, SERVICE, enclave_cid=21)
    assert "socat TCP-LISTEN:7302,fork,reuseaddr VSOCK-CONNECT:21:7302 &" in other
    with pytest.raises(ConfigError, match="enclave CID 3"):
        parent_plan(plan, "ivs", RPC, SERVICE, enclave_cid=3)


# --- the relay, over TCP ---


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _exchange(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def send() -> None:
        writer.write(payload)
        await writer.drain()
        writer.write_eof()

    _, received = await asyncio.gather(send(), reader.read())
    writer.close()
    return received


async def test_relay_pipes_concurrent_clients_intact() -> None:
    upstream = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = _free_port()
    stop = asyncio.Event()
    relay = Relay(Route("t", Tcp("127.0.0.1", port), Tcp("127.0.0.1", _sockport(upstream))))
    task = asyncio.create_task(relay.run(stop))
    await asyncio.sleep(0.01)
    idle = await asyncio.open_connection("127.0.0.1", port)  # a stalled client blocks no other
    payloads = [os.urandom(random.randint(200_000, 400_000)) for _ in range(8)]
    received = await asyncio.wait_for(
        asyncio.gather(*(_exchange(port, p) for p in payloads)), timeout=5
    )
    assert received == payloads
    stop.set()
    await asyncio.wait_for(task, timeout=2)
    assert await asyncio.wait_for(idle[0].read(), timeout=2) == b""  # stop closed it
    idle[1].close()
    with pytest.raises(ConnectionRefusedError):  # and the listener is gone
        await asyncio.open_connection("127.0.0.1", port)
    upstream.close()


async def test_relay_closes_the_client_when_upstream_closes_or_is_down() -> None:
    async def say_bye(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye")
        writer.close()

    upstream = await asyncio.start_server(say_bye, "127.0.0.1", 0)
    down = _free_port()  # nothing listens there
    stop = asyncio.Event()
    port, port_down = _free_port(), _free_port()
    bye = Relay(Route("bye", Tcp("127.0.0.1", port), Tcp("127.0.0.1", _sockport(upstream))))
    dead = Relay(Route("down", Tcp("127.0.0.1", port_down), Tcp("127.0.0.1", down)))
    tasks = [asyncio.create_task(r.run(stop)) for r in (bye, dead)]
    await asyncio.sleep(0.01)
    for p, expected in ((port, b"bye"), (port_down, b"")):
        reader, writer = await asyncio.open_connection("127.0.0.1", p)
        assert await asyncio.wait_for(reader.read(), timeout=2) == expected
        writer.close()
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=2)
    upstream.close()


async def test_run_enclave_side_writes_hosts_once_and_relays(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost")  # no final newline
    lines = ["127.0.0.2 eth-sepolia.example.com", "127.0.0.3 verifier.internal"]
    upstream = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = _free_port()
    routes = [Route("rpc", Tcp("127.0.0.1", port), Tcp("127.0.0.1", _sockport(upstream)))]
    stop = asyncio.Event()
    task = asyncio.create_task(run_enclave_side(routes, lines, stop, hosts_file=hosts))
    await asyncio.sleep(0.01)
    assert await _exchange(port, b"ping") == b"ping"
    stop.set()
    await asyncio.wait_for(task, timeout=2)
    stop.set()
    await run_enclave_side(routes, lines, stop, hosts_file=hosts)  # again: no second copy
    assert hosts.read_text() == "127.0.0.1 localhost\n" + "".join(f"{x}\n" for x in lines)
    hosts.write_text("10.1.1.1 verifier.internal\n")
    with pytest.raises(ConfigError, match=re.escape("maps verifier.internal to 10.1.1.1")):
        await run_enclave_side(routes, lines, stop, hosts_file=hosts)
    upstream.close()


async def test_a_taken_port_is_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        relay = Relay(Route("rpc", Tcp("127.0.0.1", taken.getsockname()[1]), Tcp("x", 1)))
        with pytest.raises(ConfigError, match="Address already in use"):
            await relay.start()


def _sockport(server: asyncio.Server) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


# --- vsock, where the kernel has it ---


def _vsock_port_or_skip() -> int:
    try:
        socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM).close()
    except (AttributeError, OSError) as e:
        pytest.skip(f"AF_VSOCK sockets cannot be created here: {e}")
    return random.randint(20_000, 60_000)


async def test_vsock_listener_binds_and_closes() -> None:
    port = _vsock_port_or_skip()
    relay = Relay(Route("inbound", Vsock(VMADDR_CID_ANY, port), Tcp("127.0.0.1", 7310)))
    try:
        await relay.start()
    except ConfigError as e:
        pytest.skip(f"no vsock transport to bind on: {e}")
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(relay.run(stop), timeout=2)


async def test_vsock_relay_end_to_end_over_local_loopback() -> None:
    """TCP -> vsock (CID 1, the local loopback) -> TCP: both kinds of relay in series."""
    vport = _vsock_port_or_skip()
    upstream = await asyncio.start_server(_echo, "127.0.0.1", 0)
    stop = asyncio.Event()
    inbound = Relay(
        Route("in", Vsock(VMADDR_CID_ANY, vport), Tcp("127.0.0.1", _sockport(upstream)))
    )
    try:
        await inbound.start()
        probe = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        probe.setblocking(False)
        with probe:
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(probe, (1, vport)), 0.5)
    except (ConfigError, OSError, TimeoutError) as e:
        await inbound.close()
        upstream.close()
        pytest.skip(f"no vsock loopback (vsock_loopback module) here: {e!r}")
    port = _free_port()
    outbound = Relay(Route("out", Tcp("127.0.0.1", port), Vsock(1, vport)))
    tasks = [asyncio.create_task(r.run(stop)) for r in (inbound, outbound)]
    await asyncio.sleep(0.01)
    payload = os.urandom(300_000)
    assert await asyncio.wait_for(_exchange(port, payload), timeout=5) == payload
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=2)
    upstream.close()


def test_the_loopback_is_left_alone_when_it_is_up() -> None:
    loopback_up()  # up on any machine that runs tests: a read, no change, no privilege
