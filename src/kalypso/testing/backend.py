"""One JSON-RPC call answered by the node, as the backend that serves it would answer.

A backend at the head forwards the call as it is; a lagging one answers as of its own head
(`kalypso.testing.lag`). Either applies the provider's eth_getLogs limits: a range over
`max_block_range` blocks is refused before the node is asked, a result over `max_logs`
logs after (the node does the work, as it does at a real provider).
"""

from __future__ import annotations

from typing import Any

import aiohttp

from kalypso.testing import lag
from kalypso.testing.config import SimulatorConfig
from kalypso.testing.shapes import BEYOND_HEAD, Refusal, Voice, range_refusal, results_refusal
from kalypso.testing.stats import ProviderStats

Call = dict[str, Any]
Answer = tuple[dict[str, Any], int]  # a JSON-RPC response and its HTTP status if alone

INVALID_REQUEST = {"code": -32600, "message": "invalid request"}


class Backend:
    """Answers calls through `session` to `upstream`, counting into `stats`."""

    def __init__(
        self, upstream: str, session: aiohttp.ClientSession, stats: ProviderStats, voice: Voice
    ) -> None:
        self.upstream = upstream
        self.session = session
        self.stats = stats
        self.voice = voice

    async def answer(self, call: Any, label: str, cfg: SimulatorConfig, view: int | None) -> Answer:
        if not isinstance(call, dict) or not isinstance(call.get("method"), str):
            return {"jsonrpc": "2.0", "id": None, "error": INVALID_REQUEST}, 200
        method: str = call["method"]
        params = call.get("params") or []
        if method in cfg.exempt_methods or not isinstance(params, list):
            view = None
        if method == "eth_getLogs":
            return await self._get_logs(call, params, label, cfg, view)
        if view is None:
            return await self._forward(call), 200
        if method == "eth_blockNumber":
            return result(call, hex(view)), 200
        if method in lag.BLOCK_PARAM:
            pinned = lag.state_params(method, params, view)
            if isinstance(pinned, Refusal):
                return error(call, pinned), 200
            return await self._forward({**call, "params": pinned}), 200
        if method == "eth_getBlockByNumber":
            block_params = lag.block_params(params, view)
            if block_params is None:
                return result(call, None), 200
            call = {**call, "params": block_params}
        answer = await self._forward(call)
        if method in lag.IN_BLOCK and "result" in answer:
            answer["result"] = lag.in_view(answer["result"], view)
        return answer, 200

    async def _get_logs(
        self, call: Call, params: list[Any], label: str, cfg: SimulatorConfig, view: int | None
    ) -> Answer:
        log_filter = params[0] if params and isinstance(params[0], dict) else None
        if log_filter is None or "blockHash" in log_filter:
            if view is not None and log_filter is not None:
                number = await self.number_of(log_filter["blockHash"])
                if number is None or number > view:  # geth: the header is not found
                    return error(call, lag.UNKNOWN_BLOCK), 200
            return self._cap_results(await self._forward(call), call, label, cfg, None)
        if view is None and cfg.max_block_range is None and cfg.max_logs is None:
            return await self._forward(call), 200  # nothing to check: no head needed
        head = view if view is not None or not _needs_head(log_filter) else await self.head()
        span = lag.log_range(log_filter, head if head is not None else 0)
        if span is None:  # a block parameter the node will refuse
            return await self._forward(call), 200
        start, end = span
        if view is not None:  # pinned: "latest" at the node is past this backend's head
            if end > view and cfg.lag_logs == "error":
                self.stats.refusal(label, "beyond_head")
                return error(call, BEYOND_HEAD), BEYOND_HEAD.http_status
            end = min(end, view)
            if start > end:
                return result(call, []), 200
            pinned = {**log_filter, "fromBlock": hex(start), "toBlock": hex(end)}
            call = {**call, "params": [pinned, *params[1:]]}
        if cfg.max_block_range is not None and end - start + 1 > cfg.max_block_range:
            self.stats.refusal(label, "range")
            refusal = range_refusal(
                self.voice.pick(cfg.personality), cfg.max_block_range, start, end
            )
            return error(call, refusal), refusal.http_status
        return self._cap_results(await self._forward(call), call, label, cfg, (start, end))

    def _cap_results(
        self,
        answer: dict[str, Any],
        call: Call,
        label: str,
        cfg: SimulatorConfig,
        span: tuple[int, int] | None,
    ) -> Answer:
        """Refused when the node found more than `max_logs`, with the range that fits."""
        logs = answer.get("result")
        cap = cfg.max_logs
        if cap is None or not isinstance(logs, list) or len(logs) <= cap:
            return answer, 200
        self.stats.refusal(label, "results")
        numbers = sorted(
            int(n, 16) for n in (log.get("blockNumber") for log in logs) if isinstance(n, str)
        )
        start, end = span if span is not None else (numbers[0], numbers[-1])
        fit = max(start, numbers[cap] - 1) if len(numbers) > cap else start
        refusal = results_refusal(self.voice.pick(cfg.personality), cap, start, end, fit)
        return error(call, refusal), refusal.http_status

    async def _forward(self, call: Call) -> dict[str, Any]:
        self.stats.forwarded(1)
        async with self.session.post(self.upstream, json=call) as response:
            answer: dict[str, Any] = await response.json(content_type=None)
            return answer

    async def number_of(self, block_hash: Any) -> int | None:
        """The number of the block `block_hash` names, None when the node has none."""
        call = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "eth_getBlockByHash",
            "params": [block_hash, False],
        }
        async with self.session.post(self.upstream, json=call) as response:
            block = (await response.json(content_type=None)).get("result")
        return int(block["number"], 16) if isinstance(block, dict) else None

    async def head(self) -> int:
        call = {"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber", "params": []}
        async with self.session.post(self.upstream, json=call) as response:
            return int((await response.json(content_type=None))["result"], 16)


def _needs_head(log_filter: dict[str, Any]) -> bool:
    tags = (log_filter.get("fromBlock", "latest"), log_filter.get("toBlock", "latest"))
    return any(not (isinstance(t, str) and t.startswith("0x")) for t in tags)


def result(call: Call, value: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": call.get("id"), "result": value}


def error(call: Any, refusal: Refusal) -> dict[str, Any]:
    request_id = call.get("id") if isinstance(call, dict) else None
    return {"jsonrpc": "2.0", "id": request_id, "error": refusal.error()}
