"""What the daemons (matcher, generator) share: binding to a deployment, a stage
supervisor, and their HTTP API server.

A daemon is a set of stages, each `async def stage(stop)`, run under `supervise`: a
stage that fails on the chain (RPC down, a dropped transaction) is restarted after a
pause and its failure kept for `/health`; a fatal error stops the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import uvicorn
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from fastapi import FastAPI
from web3 import AsyncWeb3

from kalypso.chain import connect
from kalypso.contracts import artifact
from kalypso.deployment import CONTRACTS_VERSION, Deployment, default_path
from kalypso.devnet import refuse_dev_key
from kalypso.errors import ChainError, ConfigError, DeploymentError, KalypsoError
from kalypso.logs import get_logger

RESTART_PAUSE = 2.0
T = TypeVar("T")

Stage = Callable[[asyncio.Event], Awaitable[None]]


@dataclass
class Binding:
    """A connection to a checked deployment: the chain answers, is the deployment's, and
    holds the marketplace's code."""

    w3: AsyncWeb3[Any]
    deployment: Deployment
    marketplace: Any
    registry: Any
    token: Any
    #: the MarketRegistry: markets' terms, images and metadata
    markets: Any

    async def close(self) -> None:
        await self.w3.provider.disconnect()

    async def identity(self, **more: Any) -> dict[str, Any]:
        """What a daemon's journal is bound to: the chain, the marketplace and the deploy
        block's hash (so a redeployed devnet never reuses an old journal), plus `more`."""
        block = await self.w3.eth.get_block(self.deployment.deploy_block)
        return {
            "chain_id": self.deployment.chain_id,
            "marketplace": self.deployment.marketplace,
            "deploy_block_hash": bytes(block["hash"]).hex(),
            **more,
        }


async def bind_deployment(
    rpc_url: str,
    deployment_path: Any,
    account: LocalAccount | None,
    *,
    role: str,
    rate: float | None = None,
) -> Binding:
    """Connect to `rpc_url` (at most `rate` calls a second) and load the deployment (by
    chain id unless a path is given), checked to hold the marketplace's code at the
    version this package speaks.

    Refuses the public development keys on any chain but the devnet's.
    """
    w3 = await connect(rpc_url, rate=rate or None)
    try:
        chain_id = await w3.eth.chain_id
        refuse_dev_key(account, chain_id, f"the {role}")
        deployment = Deployment.load(deployment_path or default_path(chain_id))
        if deployment.chain_id != chain_id:
            raise ConfigError(
                f"the deployment file is for chain {deployment.chain_id}, "
                f"but {rpc_url} is chain {chain_id}"
            )
        marketplace = w3.eth.contract(
            address=to_checksum_address(deployment.marketplace),
            abi=artifact("ProofMarketplace").abi,
        )
        registry, token, markets = (
            w3.eth.contract(address=to_checksum_address(address), abi=artifact(name).abi)
            for name, address in (
                ("GeneratorRegistry", deployment.registry),
                ("Token", deployment.token),
                ("MarketRegistry", deployment.market_registry),
            )
        )
        if not await w3.eth.get_code(marketplace.address):
            raise ConfigError(
                f"no contract at the marketplace address {deployment.marketplace} on chain "
                f"{chain_id}: the deployment file is stale (redeploy or fix the path)"
            )
        version = await marketplace.functions.VERSION().call()
        if version != CONTRACTS_VERSION:
            raise DeploymentError(
                f"the marketplace at {deployment.marketplace} runs contracts {version}; this "
                f"kalypso speaks {CONTRACTS_VERSION}: upgrade kalypso or use its deployment"
            )
    except BaseException:
        await w3.provider.disconnect()
        raise
    return Binding(w3, deployment, marketplace, registry, token, markets)


async def until_ready(
    step: str,
    start: Callable[[], Awaitable[T]],
    *,
    give_up: float,
    logger: Any,
    stop: asyncio.Event | None = None,
) -> T:
    """`await start()`, again while the chain fails it (`ChainError`: unreachable, over
    its limits), a log line per try, for at most `give_up` seconds. A daemon started
    before its chain, or during a provider's outage, waits instead of dying."""
    started, delay = time.monotonic(), 1.0
    while True:
        try:
            return await start()
        except DeploymentError:
            raise  # a wrong deployment file: waiting will not fix it
        except ChainError as exc:
            waited = time.monotonic() - started
            if waited + delay > give_up or (stop is not None and stop.is_set()):
                raise ChainError(
                    f"{step}: the chain did not answer within {give_up:.0f} s "
                    f"(startup_timeout), last: {exc}"
                ) from None
            logger.warning(
                "waiting for the chain", step=step, retry_in=round(delay, 1), error=str(exc)
            )
            if stop is None:
                await asyncio.sleep(delay)
            else:
                await sleep_or_stop(stop, delay)
            delay = min(delay * 2, 30.0)


async def supervise(
    name: str,
    stage: Stage,
    stop: asyncio.Event,
    failures: dict[str, tuple[float, str]],
    *,
    fatal: tuple[type[KalypsoError], ...] = (ConfigError,),
    logger: Any = None,
) -> None:
    """Run `stage` until `stop`; restart it after a pause when it fails recoverably.

    A `fatal` error sets `stop` and propagates. Failures land in `failures` (stage ->
    (unix time, error)) for `/health`.
    """
    log = logger or get_logger("kalypso.daemon")
    while not stop.is_set():
        try:
            await stage(stop)
        except fatal:
            stop.set()
            raise
        except KalypsoError as exc:
            failures[name] = (time.time(), str(exc))
            log.warning("stage failed, restarting", stage=name, error=str(exc))
        except Exception as exc:
            failures[name] = (time.time(), repr(exc))
            log.exception("stage crashed, restarting", stage=name)
        await sleep_or_stop(stop, RESTART_PAUSE)


async def run_until_stop(tasks: list[asyncio.Task[None]], stop: asyncio.Event) -> None:
    """Wait for the stage tasks until `stop` is set (or one fails fatally), then cancel
    them all: a stage waiting out an RPC endpoint's retries (up to a minute) would hold
    a stopped daemon up. Each stage keeps its progress in its journal, so nothing is lost.
    """
    stopping = asyncio.create_task(stop.wait())
    try:
        while True:
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            running = [task for task in tasks if not task.done()]
            if stopping.done() or not running:
                break
            await asyncio.wait([*running, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, stopping, return_exceptions=True)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon's stop event rules."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def api_server(app: FastAPI, host: str, port: int, logger: Any) -> Any:
    """Serve `app` on host:port for the duration of the block (port 0: no server)."""
    if not port:
        yield
        return
    server = _ApiServer(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    logger.info("api listening", url=f"http://{host}:{port}")
    try:
        yield
    finally:
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)


def jsonable(value: Any) -> Any:
    """Views as JSON: bytes as 0x-hex, dataclasses and enums by value."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, dict):
        return {str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value
