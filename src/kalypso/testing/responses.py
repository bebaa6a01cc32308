"""The HTTP answers of a failing provider: whole-request refusals, a 502 page, a dropped
connection. What they contain comes from `kalypso.testing.shapes`."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from kalypso.testing.backend import error, result
from kalypso.testing.shapes import BAD_GATEWAY_HTML, Refusal


def json_body(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def refused(
    calls: list[Any],
    batch: bool,
    refusal: Refusal,
    *,
    status: int | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The whole request refused: one error, or one per item of a batch."""
    body: Any = [error(c, refusal) for c in calls] if batch else error(calls[0], refusal)
    return json_body(
        body, status=refusal.http_status if status is None else status, headers=headers
    )


def bad_gateway() -> web.Response:
    return web.Response(status=502, text=BAD_GATEWAY_HTML, content_type="text/html")


def placeholder(calls: list[Any], batch: bool) -> bytes:
    """A plausible answer to cut short (the node never saw the request)."""
    one = [result(c if isinstance(c, dict) else {}, "0x" + "0" * 64) for c in calls]
    return json.dumps(one if batch else one[0]).encode()


async def drop(request: web.Request, body: bytes) -> web.StreamResponse:
    """Headers announcing all of `body`, half of it, then the connection closes."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    if request.transport is not None:
        request.transport.close()
    return response
