"""Boot a Nitro enclave image from a config its parent sends over vsock: an enclave gets
no arguments, environment or network, so what differs per operator comes in unmeasured,
and only what cannot break its guarantees may (the operator key only pays gas). What the
image judges with, its circuit (and a Generator Image's template prover, `--prover-url`,
or an IVS's `--solver`), is in its command line, so measured: the same image id can
never be booted to judge another circuit."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import socket
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from eth_account import Account

from kalypso.deployment import Deployment
from kalypso.enclave.run import build_image, open_enclave, serve
from kalypso.enclave.vsock import (
    DEFAULT_PLAN,
    IMAGES,
    enclave_routes,
    load_plan,
    run_enclave_side,
)
from kalypso.errors import ConfigError, KalypsoError
from kalypso.logs import configure, get_logger

BOOT_PORT = 7000
MAX_CONFIG = 64 * 1024
READ_TIMEOUT = 30.0  # seconds a sender has to send its config, and to take the answer
_KEYS = ("rpc_url", "deployment", "market", "attestation_service", "operator_key")
_KEY = re.compile(r"0x[0-9a-fA-F]{64}")
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141  # secp256k1 order
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,39}")  # echoed; anything else may be a secret
log = get_logger("kalypso.enclave")
Check = Callable[["BootConfig"], None]


@dataclass(frozen=True)
class BootConfig:
    rpc_url: str
    deployment: dict[str, Any]
    market: str | None
    attestation_service: str
    operator_key: str = field(repr=False)

    @classmethod
    def from_json(cls, raw: bytes, image: str) -> BootConfig:
        """Untrusted bytes, checked strictly; errors say what to fix and echo no value."""
        if len(raw) > MAX_CONFIG:
            raise ConfigError(f"the boot config is over {MAX_CONFIG} bytes")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as e:  # echo a position only, never content
            at = f" at {e.lineno}:{e.colno}" if isinstance(e, json.JSONDecodeError) else ""
            raise ConfigError(f"the boot config is not UTF-8 JSON{at}") from None
        if not isinstance(data, dict):
            raise ConfigError("the boot config must be a JSON object of " + ", ".join(_KEYS))
        for name in sorted(set(data) - set(_KEYS)):
            shown = repr(name) if _NAME.fullmatch(name) else "(not shown)"
            raise ConfigError(f"unknown key {shown} in the boot config; known: {', '.join(_KEYS)}")
        key = data.get("operator_key")
        if not (isinstance(key, str) and _KEY.fullmatch(key) and 0 < int(key, 16) < _N):
            raise ConfigError("operator_key must be a private key: 0x and 64 hex digits")
        if not isinstance(data.get("deployment"), dict):
            raise ConfigError("deployment must be a JSON object: the deployment file's content")
        return cls(
            rpc_url=_url(data, "rpc_url"),
            deployment=data["deployment"],
            market=_market(data, image),
            attestation_service=_url(data, "attestation_service"),
            operator_key=key,
        )


def _market(data: dict[str, Any], image: str) -> str | None:
    """Each image but the matcher serves one market; the matcher none."""
    value = data.get("market")
    if image == "matcher" and value is not None:
        raise ConfigError("market must be absent or null for the matcher image")
    if image != "matcher" and not (isinstance(value, str) and value):
        raise ConfigError(f"market is required for the {image} image: its id or name")
    return value


def _url(data: dict[str, Any], name: str) -> str:
    """An http(s) URL with a host. Never echoed: its path may hold an API key."""
    value = data.get(name)
    if isinstance(value, str) and value.isprintable() and " " not in value:
        with contextlib.suppress(ValueError):  # urlsplit's, on a malformed IPv6 host
            if urlsplit(value).scheme in ("http", "https") and urlsplit(value).hostname:
                return value
    raise ConfigError(f"{name} must be a string: an http:// or https:// URL with a host")


async def receive_config(
    listen: socket.socket, image: str, timeout: float, check: Check | None = None
) -> BootConfig:
    """Take senders one at a time until one sends a valid config that `check` (if any)
    accepts; answer each `ok` or `error: <reason>`, and never die on a bad one."""
    loop = asyncio.get_running_loop()
    listen.setblocking(False)
    while True:
        conn, _ = await loop.sock_accept(listen)
        with conn:
            raw, config, answer = bytearray(), None, "ok"
            try:
                async with asyncio.timeout(timeout):  # a silent sender holds up no one
                    while len(raw) <= MAX_CONFIG and (chunk := await loop.sock_recv(conn, 4096)):
                        raw += chunk
                config = BootConfig.from_json(bytes(raw), image)
                if check is not None:
                    check(config)
            except (KalypsoError, TimeoutError, OSError) as e:
                config, answer = None, "error: " + (" ".join(str(e).split()) or "no EOF in time")
                log.warning("boot config refused", image=image, answer=answer)
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(timeout):
                    await loop.sock_sendall(conn, answer.encode() + b"\n")
                    conn.shutdown(socket.SHUT_WR)
                    while await loop.sock_recv(conn, 65536):
                        pass  # drain: closing on unread data resets, losing the answer
        if config is not None:
            log.info("boot config accepted", image=image, market=config.market)
            return config


def vsock_listener(port: int) -> socket.socket:
    """Listen on vsock `port` for any CID (the parent is CID 3)."""
    sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    sock.bind((socket.VMADDR_CID_ANY, port))
    sock.listen()
    return sock


def send_config(sock: socket.socket, config_json: bytes) -> str:
    """Parent side: send a config on a connected socket; the enclave's answer line."""
    with contextlib.suppress(OSError):  # refused midway (too big): the answer is still there
        sock.sendall(config_json)
        sock.shutdown(socket.SHUT_WR)
    with sock.makefile("rb") as answer:
        return answer.readline(4096).decode(errors="replace").rstrip("\n")


async def boot(
    image: str,
    circuit: str | None,
    listen: socket.socket,
    plan_path: Path,
    host: str = "127.0.0.1",
    options: dict[str, str] | None = None,
) -> None:
    """Receive the config, start the vsock relays, then run the image (of `circuit`;
    `options`: `build_image`'s, a Generator Image's template prover or an IVS's solver),
    attested with Nitro, on its inbound port until it stops; the relays stop with it."""
    plan = load_plan(plan_path)
    built, worker = build_image(image, circuit, **(options or {}))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "deployment.json"

        def check(config: BootConfig) -> None:  # what would fail after `ok` fails before it
            enclave_routes(plan, image, config.rpc_url, config.attestation_service)
            path.write_text(json.dumps(config.deployment))
            if Deployment.load(path).enclave_registry is None:
                raise ConfigError("the deployment has no enclave_registry; redeploy")

        config = await receive_config(listen, image, READ_TIMEOUT, check)
        operator = Account.from_key(config.operator_key)
        routes, hosts = enclave_routes(plan, image, config.rpc_url, config.attestation_service)
        stop = asyncio.Event()
        relays = asyncio.create_task(run_enclave_side(routes, hosts, stop=stop))
        try:
            await asyncio.sleep(0.2)  # they bind in their own task; binding takes microseconds
            if relays.done():
                await relays  # raises why they could not start
            args = (config.rpc_url, path, operator, config.market, config.attestation_service)
            enclave = await asyncio.to_thread(open_enclave, built, *args)
            await serve(enclave, host, plan.inbound[image], worker)
        except KalypsoError as e:  # told to the operator's log: no URL (it may hold a key)
            said = str(e).replace(config.rpc_url, "<rpc_url>")
            raise ConfigError(said.replace(config.attestation_service, "<service>")) from None
        finally:
            stop.set()
            await relays


def main(argv: Sequence[str]) -> int:
    """Wait for the boot config on vsock, then run IMAGE until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="kalypso.enclave.boot", description=main.__doc__)
    parser.add_argument("image", help=" | ".join(IMAGES))
    parser.add_argument("--circuit", help="the circuit it serves (every image but matcher)")
    parser.add_argument("--plan", type=Path, default=DEFAULT_PLAN)
    parser.add_argument(
        "--prover-url", help="generator: a confidential template prover in this enclave"
    )
    parser.add_argument("--public-encoding", default="fixed", help="its public: fixed | verbatim")
    parser.add_argument("--solver", help="ivs: the circuit's solver, PATH.py:FUNCTION")
    args = parser.parse_args(argv)
    try:
        if args.image not in IMAGES:
            raise ConfigError(f"unknown image {args.image!r}; use one of {', '.join(IMAGES)}")
        if (args.image == "matcher") != (args.circuit is None):
            raise ConfigError("--circuit goes with every image but matcher, and only with them")
        configure()
        with vsock_listener(BOOT_PORT) as listen:
            options = {"solver": args.solver} if args.solver else {}
            if args.prover_url:
                options |= {"prover_url": args.prover_url, "public_encoding": args.public_encoding}
            asyncio.run(boot(args.image, args.circuit, listen, args.plan, options=options))
    except (KalypsoError, OSError) as e:  # OSError: no vsock, or the port is taken
        print(f"kalypso boot: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
