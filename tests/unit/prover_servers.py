"""Local prover services for the HTTP prover's tests, served in the test's event loop.

One app serves, under prefixes:
- `/kalypso/{circuit}/prove`: Kalypso's API, proving with a real `SnarkjsGroth16Prover`;
- `/hang/...`: accepts and never answers (until the server stops);
- `/broken/prove`: HTTP 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from kalypso.provers import InvalidInputs, Prover
from kalypso.provers.proof import Groth16Proof


@dataclass
class Services:
    base_url: str


class _InLoopServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # Leave Ctrl-C to pytest.
        yield


def build_app(provers: Mapping[str, Prover], release: asyncio.Event) -> FastAPI:
    app = FastAPI()

    @app.post("/kalypso/{name}/prove")
    async def prove(name: str, request: Request) -> dict[str, Any]:
        body = await request.json()
        result = await provers[name].prove(body["inputs"])
        if isinstance(result, InvalidInputs):
            return {"invalid_inputs": result.reason}
        assert isinstance(result, Groth16Proof)
        proof, public = result.to_snarkjs()
        return {"proof": proof, "public_signals": public}

    @app.post("/hang/prove")
    async def hang() -> dict[str, Any]:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), 30)
        return {}

    @app.post("/broken/prove")
    async def broken() -> JSONResponse:
        return JSONResponse({"detail": "out of GPU memory"}, status_code=500)

    return app


@contextlib.asynccontextmanager
async def serve(
    provers: Mapping[str, Prover],
) -> AsyncIterator[Services]:
    """Run the app on a free 127.0.0.1 port in the running loop."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    services = Services(f"http://127.0.0.1:{sock.getsockname()[1]}")
    release = asyncio.Event()
    config = uvicorn.Config(
        build_app(provers, release),
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = _InLoopServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield services
    finally:
        release.set()
        server.should_exit = True
        await task
        sock.close()
