"""The matcher's HTTP API (FastAPI): health, books, explanations, Prometheus metrics.

GET /health                      ready, chain head, follower lag, in-flight txs
GET /markets/{market_id}/book    a market's open, parked and pending requests and offers
GET /requests/{request_id}       a request's state and why it is not matched yet
GET /generators/{address}        a generator's rank, failed rules, reliability
GET /metrics                     Prometheus text format
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from eth_utils import is_address, is_checksum_address, to_checksum_address
from fastapi import FastAPI, HTTPException, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kalypso.daemon import jsonable

if TYPE_CHECKING:
    from kalypso.matching.daemon import Matcher

#: A stage that failed within this many seconds makes /health answer "degraded".
DEGRADED_FOR = 30.0
UNDECRYPTABLE = "matching: cannot decrypt the secret (it waits until it expires)"


def _request_id(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise HTTPException(400, "a request id is 32 bytes of hex (0x…)")
    return raw


def create_app(matcher: Matcher) -> FastAPI:
    app = FastAPI(title="Kalypso matcher", docs_url="/docs", redoc_url=None)
    # Handlers are async: they run on the daemon's loop, never beside a stage in a thread.
    # `matcher.view` is replaced on a reorg: every handler reads it afresh.

    @app.get("/health")
    async def health(response: Response) -> dict[str, Any]:
        now = time.time()
        failing = {
            stage: error
            for stage, (at, error) in matcher.failures.items()
            if now - at < DEGRADED_FOR
        }
        status = "starting" if not matcher.ready else "degraded" if failing else "ok"
        if status != "ok":  # recovering, or a stage failed recently (it is being restarted)
            response.status_code = 503
        return {
            "status": status,
            "failing_stages": failing,
            "chain_id": matcher.deployment.chain_id,
            "address": matcher.account.address,
            "markets": list(matcher.config.markets) if matcher.config.markets else "all",
            "encryption_key": (
                "0x" + matcher.keeper.public_key.hex() if matcher.keeper is not None else None
            ),
            # the Matching Engine enclave: read its key from the enclave registry
            "enclave": matcher.keeper.enclave if matcher.keeper is not None else None,
            "head": matcher.head,
            "next_block": matcher.state.next_block,
            "lag_blocks": max(0, matcher.head - matcher.state.next_block + 1),
            "open_requests": matcher.view.book.open_count(),
            "pending_assignments": matcher.view.book.pending_count(),
            "transactions_in_flight": len(matcher.store.inflight()),
            "uptime_s": round(time.time() - matcher.started, 1),
        }

    @app.get("/markets/{market_id}/book")
    async def market_book(market_id: int) -> Any:
        if market_id not in matcher.view.book.markets():
            raise HTTPException(404, f"market {market_id} is unknown to this matcher")
        return jsonable(matcher.view.book.book_view(market_id))

    @app.get("/requests/{request_id}")
    async def request_status(request_id: str) -> Any:
        rid = _request_id(request_id)
        if rid in matcher.view.undecryptable:
            return {"request_id": "0x" + rid.hex(), "state": "waiting", "reason": UNDECRYPTABLE}
        view = jsonable(matcher.view.book.explain(rid, matcher.head_time + 1))
        if view.get("state") == "unknown" and rid not in matcher.view.requests:
            raise HTTPException(404, "no such request in the followed blocks (yet)")
        return view

    @app.get("/generators/{address}")
    async def generator(address: str) -> Any:
        mixed_case = address != address.lower() and address != address.upper()
        if not is_address(address) or (mixed_case and not is_checksum_address(address)):
            raise HTTPException(400, "not an address (or a mixed-case one with a bad checksum)")
        return jsonable(
            matcher.view.book.generator_view(to_checksum_address(address), matcher.head_time + 1)
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(matcher.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
