"""Vsock relays: a Nitro enclave has no network, only vsock to its parent (CID 3).

Outbound (AWS's pattern), a relay here listens on TCP at the loopback address that
`/etc/hosts` gives a service's host name and forwards to `vsock-proxy` on the parent,
which dials the real host, so TLS (SNI, certificate check) stays end to end. Inbound,
`socat` on the parent forwards a TCP port to our vsock port, relayed to the image's
HTTP server. The plan, `vsock.json` beside this module, is in the measured image;
`parent_plan` prints what runs on the parent. The enclave's `lo` must be up with 127.0.0.1/8.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import ipaddress
import json
import re
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from kalypso.errors import ConfigError
from kalypso.logs import get_logger

IMAGES = ("matcher", "generator", "pvs", "ivs")
SERVICES = ("rpc", "attestation")
VMADDR_CID_ANY = 0xFFFFFFFF
DEFAULT_PLAN = Path(__file__).with_name("vsock.json")
_CHUNK = 64 * 1024
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1  # linux/sockios.h, if.h
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
log = get_logger("kalypso.enclave")


@dataclass(frozen=True)
class Outbound:
    loopback: str  # what /etc/hosts maps the service's host name to, in the enclave
    vsock_port: int  # where vsock-proxy listens on the parent


@dataclass(frozen=True)
class PortPlan:
    parent_cid: int
    outbound: dict[str, Outbound]  # keyed by SERVICES
    inbound: dict[str, int]  # image -> its HTTP port, which is also its vsock port


@dataclass(frozen=True)
class Tcp:
    host: str
    port: int


@dataclass(frozen=True)
class Vsock:
    cid: int
    port: int


@dataclass(frozen=True)
class Route:
    """One relay: accept on `listen`, dial `connect` anew for each connection."""

    name: str
    listen: Tcp | Vsock
    connect: Tcp | Vsock


def load_plan(path: Path) -> PortPlan:
    """Read and check a port plan; every flaw is a ConfigError that says what is wrong."""
    try:
        raw = json.loads(Path(path).read_text())
        out = {n: Outbound(**raw["outbound"][n]) for n in SERVICES}
        plan = PortPlan(raw["parent_cid"], out, {i: raw["inbound"][i] for i in IMAGES})
        ports = [o.vsock_port for o in out.values()] + list(plan.inbound.values())
        if bad := [p for p in ports if not _int(p)]:
            raise ConfigError(f"port {bad[0]!r} is not in 1..65535")
        if not _int(plan.parent_cid, 0, VMADDR_CID_ANY - 1):
            raise ConfigError(f"parent_cid {plan.parent_cid!r} is not a CID")
        ips = [ipaddress.IPv4Address(str(o.loopback)) for o in out.values()]  # or ValueError
        if len(set(ips)) < 2 or any(not ip.is_loopback or str(ip) == "127.0.0.1" for ip in ips):
            raise ConfigError("loopbacks must be distinct, in 127.0.0.0/8, not 127.0.0.1")
        if len(set(ports[:2])) < 2 or len(set(ports[2:])) < len(IMAGES):
            raise ConfigError("each service and each image needs its own port")
    except (OSError, ValueError, KeyError, TypeError) as e:  # ConfigError is a ValueError
        why = e.args[0] if isinstance(e, ConfigError) else f"{type(e).__name__} {e}"
        raise ConfigError(f"vsock port plan {path}: {why}; compare the packaged one") from e
    return plan


def enclave_routes(
    plan: PortPlan, image: str, rpc_url: str, service_url: str
) -> tuple[list[Route], list[str]]:
    """The relays to run in `image`'s enclave, and the `/etc/hosts` lines they need."""
    port, hosts = _resolve(plan, image, rpc_url, service_url)
    out = plan.outbound
    routes = [Route(n, Tcp(out[n].loopback, p), Vsock(plan.parent_cid, out[n].vsock_port))
              for n, (_, p) in hosts.items()]  # fmt: skip
    routes.append(Route("inbound", Vsock(VMADDR_CID_ANY, port), Tcp("127.0.0.1", port)))
    return routes, [f"{out[n].loopback} {h}" for n, (h, _) in hosts.items()]


def parent_plan(
    plan: PortPlan, image: str, rpc_url: str, service_url: str, enclave_cid: int = 16
) -> str:
    """A shell script for the parent: the allowlist, both vsock-proxies, inbound socat."""
    port, hosts = _resolve(plan, image, rpc_url, service_url)
    if not _int(enclave_cid, 4, VMADDR_CID_ANY - 1):  # 0..2 are reserved, 3 is the parent
        raise ConfigError(f"enclave CID {enclave_cid!r} is not an enclave's (4 or more)")
    conf, out = f"allowlist-{image}.yaml", plan.outbound
    return "\n".join([
        f"#!/bin/sh\n# Parent side of the Kalypso {image} enclave (CID {enclave_cid}).\nset -eu",
        f"cat > {conf} <<'EOF'\nallowlist:",
        *(f"- {{address: {h}, port: {p}}}" for h, p in hosts.values()),
        "EOF",
        *(f"vsock-proxy {out[n].vsock_port} {h} {p} --config {conf} &"
          for n, (h, p) in hosts.items()),
        f"socat TCP-LISTEN:{port},fork,reuseaddr VSOCK-CONNECT:{enclave_cid}:{port} &\nwait\n",
    ])  # fmt: skip


class Relay:
    """Pipes each connection accepted on `route.listen` to a fresh one on `route.connect`.
    TCP and vsock differ only in `_socket`, so TCP tests exercise the enclave's code."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind and listen; a port that is taken or missing is a ConfigError."""
        sock, addr = _socket(self.route.listen)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(128)
        except OSError as e:
            sock.close()
            hint = "; is lo up with 127.0.0.1/8?" if e.errno == errno.EADDRNOTAVAIL else ""
            raise ConfigError(f"{self.route} cannot listen: {e}{hint}") from e
        self._server = await asyncio.start_server(self._handle, sock=sock, limit=_CHUNK)
        log.info(
            "relay listening",
            relay=self.route.name,
            listen=str(self.route.listen),
            to=str(self.route.connect),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set, then close the listener and every connection."""
        try:
            if self._server is None:
                await self.start()
            await stop.wait()
        finally:
            await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._conns:
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)  # each connection is its own task: a slow one holds up no other
        up: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        pumps: list[asyncio.Task[None]] = []
        try:
            up = await asyncio.wait_for(_open(self.route.connect), 10)
            pumps = [asyncio.create_task(_pump(reader, up[1])),
                     asyncio.create_task(_pump(up[0], writer))]  # fmt: skip
            # An error either way ends both; a clean EOF only half-closes, as TCP does.
            await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
            log.debug("relay connection closed", relay=self.route.name)
        except (OSError, TimeoutError, ConfigError) as e:
            log.warning(
                "relay cannot connect",
                relay=self.route.name,
                to=str(self.route.connect),
                error=repr(e),
            )
        finally:
            for p in pumps:
                p.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)  # a reset is no news
            writer.close()
            if up is not None:
                up[1].close()
            self._conns.discard(task)


async def run_enclave_side(
    routes: Sequence[Route], hosts_lines: Sequence[str], stop: asyncio.Event,
    hosts_file: Path = Path("/etc/hosts"),
) -> None:  # fmt: skip
    """Map the service hosts to their loopbacks, then run every relay until `stop`."""
    loopback_up()
    _add_hosts(hosts_file, hosts_lines)
    relays = [Relay(r) for r in routes]
    try:
        for r in relays:  # bind every port before serving any, so a taken one fails at once
            await r.start()
        async with asyncio.TaskGroup() as group:
            for r in relays:
                group.create_task(r.run(stop))
    finally:
        for r in relays:
            await r.close()


def loopback_up() -> None:
    """Bring `lo` up if it is down, as it is when a Nitro enclave boots (the kernel then
    gives it 127.0.0.1/8, where the relays listen). Linux only; needs CAP_NET_ADMIN."""
    ifreq = struct.Struct("16sH14x")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        _, flags = ifreq.unpack(fcntl.ioctl(sock, _SIOCGIFFLAGS, ifreq.pack(b"lo", 0)))
        if flags & _IFF_UP:
            return
        try:
            fcntl.ioctl(sock, _SIOCSIFFLAGS, ifreq.pack(b"lo", flags | _IFF_UP))
        except OSError as e:
            raise ConfigError(f"cannot bring the loopback interface up ({e}): run as root") from e


def _resolve(
    plan: PortPlan, image: str, rpc_url: str, service_url: str
) -> tuple[int, dict[str, tuple[str, int]]]:
    """The image's inbound port and each service's (host name, port), all checked."""
    if image not in plan.inbound:
        raise ConfigError(f"unknown enclave image {image!r}: use one of {', '.join(IMAGES)}")
    hosts = dict(zip(SERVICES, map(_host_port, (rpc_url, service_url), SERVICES), strict=True))
    if hosts["rpc"][0] == hosts["attestation"][0]:
        raise ConfigError(
            f"the RPC and attestation service share host {hosts['rpc'][0]}: "
            "give one another DNS name, as each needs its own vsock proxy"
        )
    return plan.inbound[image], hosts


def _host_port(url: str, service: str) -> tuple[str, int]:
    """An http(s) URL's host name and port. The rest (path, API key) is never echoed."""
    parts = urlsplit(url)
    try:
        host, port = parts.hostname or "", parts.port
    except ValueError:
        host, port = "", 0
    if parts.scheme not in ("http", "https") or port == 0:
        raise ConfigError(f"the {service} URL must be http(s)://HOST[:PORT], port 1..65535")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if _HOST_NAME.fullmatch(host) and host != "localhost":
            return host, port or (443 if parts.scheme == "https" else 80)
        raise ConfigError(f"the {service} URL's host {host!r} is not a DNS name") from None
    raise ConfigError(
        f"the {service} URL names the IP address {host}: use a host name; the "
        "enclave reaches it only through a vsock proxy, found by name in /etc/hosts"
    )


def _add_hosts(path: Path, lines: Sequence[str]) -> None:
    """Append the lines not yet in `path`; refuse when a name already maps elsewhere."""
    try:
        text = path.read_text() if path.exists() else ""
        known: dict[str, str] = {}
        for fields in (line.split("#", 1)[0].split() for line in text.splitlines()):
            for name in fields[1:]:
                known.setdefault(name.lower(), fields[0])
        for addr, name in (line.split() for line in lines):
            if known.get(name, addr) != addr:
                raise ConfigError(f"{path} maps {name} to {known[name]}: remove that line")
        new = "".join(f"{line}\n" for line in lines if line.split()[1] not in known)
        if new:
            with path.open("a") as f:
                f.write(("\n" if text and not text.endswith("\n") else "") + new)
    except OSError as e:
        raise ConfigError(f"cannot update {path}: {e}; the relays must run as root") from e


def _socket(ep: Tcp | Vsock) -> tuple[socket.socket, tuple[str | int, int]]:
    """A non-blocking socket for `ep` and its address: the one place TCP and vsock differ."""
    family = socket.AF_INET if isinstance(ep, Tcp) else getattr(socket, "AF_VSOCK", -1)
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except (OSError, ValueError) as e:
        raise ConfigError(f"no socket for {ep} ({e}): vsock needs Linux, as in an enclave") from e
    sock.setblocking(False)
    return sock, (ep.host, ep.port) if isinstance(ep, Tcp) else (ep.cid, ep.port)


async def _open(ep: Tcp | Vsock) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock, addr = _socket(ep)
    try:
        await asyncio.get_running_loop().sock_connect(sock, addr)
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock, limit=_CHUNK)


async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    """Copy until EOF, then half-close `dst` so its peer sees the end too."""
    while data := await src.read(_CHUNK):
        dst.write(data)
        await dst.drain()
    if dst.can_write_eof():
        dst.write_eof()


def _int(value: object, low: int = 1, high: int = 65535) -> bool:
    return type(value) is int and low <= value <= high
