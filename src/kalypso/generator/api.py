"""The generator's HTTP API (FastAPI), for its operator: bind it to localhost.

GET  /health           ready, paused or draining, live tasks, gas balance
GET  /tasks            tasks, soonest deadline first (?phase=ready&limit=100)
GET  /tasks/{task_id}  one task
POST /pause            leave the markets: no new tasks, live ones are finished
POST /resume           join them again
GET  /metrics          Prometheus text format
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kalypso.daemon import jsonable
from kalypso.errors import KalypsoError
from kalypso.generator.journal import Phase, Task

if TYPE_CHECKING:
    from kalypso.generator.daemon import GeneratorNode

DEGRADED_FOR = 30.0


def task_view(task: Task) -> dict[str, Any]:
    """A task without its proof bytes or secrets."""
    return {
        "task_id": task.tag,
        "market_id": task.market_id,
        "phase": task.phase.value,
        "price": task.price,
        "deadline": task.deadline,
        "attempts": task.attempts,
        "proof_seconds": task.proof_seconds,
        "payment": task.payment,
        "penalty": task.penalty,
        "gas_cost_wei": task.gas_cost,
        "transactions": jsonable(task.tx_hashes),
        "error": task.error,
    }


def create_app(node: GeneratorNode) -> FastAPI:
    app = FastAPI(title="Kalypso generator", docs_url="/docs", redoc_url=None)

    @app.get("/health")
    async def health(response: Response) -> dict[str, Any]:
        now = time.time()
        failing = {s: e for s, (at, e) in node.failures.items() if now - at < DEGRADED_FOR}
        if not node.ready:
            status = "starting"
        elif node.draining:
            status = "draining"
        else:
            status = "degraded" if failing else "ok"
        if status in ("starting", "degraded"):
            response.status_code = 503
        return {
            "status": status,
            "failing_stages": failing,
            "paused": node.journal.paused,
            "chain_id": node.deployment.chain_id,
            "address": node.address,
            "markets": sorted(node.markets),
            "head": node.head,
            "live_tasks": len(node.journal.live()),
            "proving": len(node.prove_stage.proving),
            "gas_balance_wei": node.gas_balance,
            "uptime_s": round(now - node.started, 1),
        }

    @app.get("/tasks")
    async def tasks(phase: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        try:
            phases = [Phase(p) for p in phase.split(",")] if phase else None
        except ValueError:
            raise HTTPException(400, f"phases are {', '.join(p.value for p in Phase)}") from None
        return [task_view(t) for t in node.journal.tasks(phases, limit=max(1, min(limit, 1000)))]

    @app.get("/tasks/{task_id}")
    async def task(task_id: str) -> dict[str, Any]:
        try:
            raw = bytes.fromhex(task_id.removeprefix("0x"))
        except ValueError:
            raw = b""
        found = node.journal.get(raw) if len(raw) == 32 else None
        if found is None:
            raise HTTPException(404, "no such task of this generator")
        return task_view(found)

    @app.post("/pause")
    async def pause() -> dict[str, Any]:
        try:
            await node.pause()
        except KalypsoError as exc:
            raise HTTPException(502, str(exc)) from None
        return {"paused": True}

    @app.post("/resume")
    async def resume() -> dict[str, Any]:
        if node.draining:
            raise HTTPException(409, "the node is draining to stop; start it again instead")
        try:
            await node.resume()
        except KalypsoError as exc:
            raise HTTPException(502, str(exc)) from None
        return {"paused": False}

    @app.get("/metrics")
    async def metrics() -> Response:
        node.metrics.update(node.journal)
        return Response(generate_latest(node.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
