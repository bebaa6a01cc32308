"""The dashboard's web app (FastAPI): server-rendered pages, a JSON twin of each, and the
live feed the pages poll.

GET /                          markets, generators and the live feed
GET /markets/{id or name}      a market: terms, offers, price and proof-time plots
GET /requests/{id}             a request's timeline, amounts and decoded proof
GET /generators/{address}      stake, compute, tasks, earnings, reliability
GET /accounts/{address}        a requester's requests
GET /search?q=…                a request or task id, an address, a market id or name
GET /feed?after=…              new feed rows as HTML (what the pages' script polls)
GET /api/...                   the same models as JSON
GET /health                    head, indexed block, follower failure
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from kalypso.daemon import jsonable
from kalypso.dashboard.indexer import Indexer
from kalypso.dashboard.pages import NotFound, Pages, pretty
from kalypso.logs import get_logger

log = get_logger("kalypso.dashboard")
HERE = Path(__file__).parent


def _short(value: str | None) -> str:
    if not value:
        return ""
    return value if len(value) <= 14 else f"{value[:8]}…{value[-4:]}"


def _utc(unix: int | None) -> str:
    if unix is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(unix))


def create_app(indexer: Indexer) -> FastAPI:
    """The app over `indexer` (which something else keeps following the chain)."""
    app = FastAPI(title="Kalypso dashboard", docs_url="/api/docs", redoc_url=None)
    pages = Pages(indexer)
    templates = Jinja2Templates(directory=HERE / "templates")
    env = templates.env
    env.filters.update(short=_short, utc=_utc, pretty=pretty, kal=pages.show)

    def ago(unix: int | None) -> str:
        if unix is None:
            return ""
        seconds = indexer.head_time - unix
        if seconds < 0:
            return f"in {-seconds} s"
        if seconds < 120:
            return f"{seconds} s ago"
        if seconds < 7200:
            return f"{seconds // 60} min ago"
        return f"{seconds // 3600} h ago"

    env.filters["ago"] = ago
    env.globals.update(deployment=indexer.deployment, indexer=indexer)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
        return templates.TemplateResponse(request, template, context, status_code=status)

    # Handlers are async: they run on the loop the indexer runs on, never beside it.

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc)}, status_code=404)
        return page(request, "not_found.html", 404, message=str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = "there is no such page" if exc.status_code == 404 else str(exc.detail)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=exc.status_code)
        return page(request, "not_found.html", exc.status_code, message=message)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        log.exception("page failed", path=request.url.path)
        message = "the dashboard failed to build this page; its log has the details"
        return page(request, "not_found.html", 500, message=message, title="Error")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok" if indexer.failure is None else "degraded",
            "chain_id": indexer.deployment.chain_id,
            "head": indexer.head,
            "indexed_to": indexer.state.next_block - 1,
            "requests": indexer.store.request_count(),
            "failure": indexer.failure,
        }

    # ---- pages

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> Response:
        return page(
            request,
            "home.html",
            markets=pages.market_summaries(),
            generators=indexer.store.generators(),
            feed=pages.feed(),
            where={},
        )

    @app.get("/markets/{key}", response_class=HTMLResponse)
    async def market(request: Request, key: str) -> Response:
        model = pages.market(key)
        feed = pages.feed(market_id=model.summary.id)
        where = {"market_id": model.summary.id}
        return page(request, "market.html", m=model, feed=feed, where=where)

    @app.get("/requests/{request_id}", response_class=HTMLResponse)
    async def request_page(request: Request, request_id: str) -> Response:
        model = pages.request(request_id)
        return page(request, "request.html", r=model, where={"subject": model.id})

    @app.get("/generators/{address}", response_class=HTMLResponse)
    async def generator(request: Request, address: str) -> Response:
        model = pages.generator(address)
        feed, where = pages.feed(account=model.address), {"account": model.address}
        return page(request, "generator.html", g=model, feed=feed, where=where)

    @app.get("/accounts/{address}", response_class=HTMLResponse)
    async def account(request: Request, address: str) -> Response:
        model = pages.account(address)
        return page(request, "account.html", a=model, where={"account": model.address})

    @app.get("/search")
    async def search(q: str = "") -> Response:
        return RedirectResponse(pages.search(q), status_code=303)

    @app.get("/feed", response_class=HTMLResponse)
    async def feed(
        request: Request,
        after: int = -1,
        subject: str | None = None,
        account: str | None = None,
        market_id: int | None = None,
    ) -> Response:
        items = pages.feed(after, subject=subject, account=account, market_id=market_id)
        return page(request, "feed_items.html", feed=items)

    # ---- the JSON twins

    @app.get("/api/markets")
    async def api_markets() -> Any:
        return jsonable(pages.market_summaries())

    @app.get("/api/markets/{key}")
    async def api_market(key: str) -> Any:
        return jsonable(pages.market(key))

    @app.get("/api/requests/{request_id}")
    async def api_request(request_id: str) -> Any:
        return jsonable(pages.request(request_id))

    @app.get("/api/generators/{address}")
    async def api_generator(address: str) -> Any:
        return jsonable(pages.generator(address))

    @app.get("/api/accounts/{address}")
    async def api_account(address: str) -> Any:
        return jsonable(pages.account(address))

    @app.get("/api/events")
    async def api_events(after: int = -1, limit: int = 50) -> Any:
        return jsonable(pages.feed(after, min(max(limit, 1), 500)))

    return app
