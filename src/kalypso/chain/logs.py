"""Read logs over any span of blocks from a provider that caps `eth_getLogs`.

Hosted providers refuse a query over too many blocks (Alchemy 2K, QuickNode 10K, some
public endpoints 500) or returning too many logs (Infura 10K), each in its own words
(`kalypso.chain.faults.RANGE_REFUSALS`). A `LogWindow` remembers how many blocks one
query may span: halved on a refusal, doubled back after a run of answers, so a reader
finds the provider's limit within a few queries and keeps near it. Shared by the SDK,
the CLI, the follower and the operator commands (sync and async).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from web3 import AsyncWeb3, Web3
from web3.exceptions import Web3RPCError

from kalypso.chain.faults import is_range_refusal
from kalypso.errors import ChainError

#: answers in a row before the window doubles back
GROW_AFTER = 4


class LogWindow:
    """How many blocks the next `eth_getLogs` may span."""

    def __init__(self, size: int = 2_000, largest: int = 10_000) -> None:
        self.size = size
        self.largest = largest
        self._served = 0

    def refused(self, asked: int) -> None:
        self.size = max(1, asked // 2)
        self.largest = min(self.largest, max(1, asked - 1))
        self._served = 0

    def served(self) -> None:
        self._served += 1
        if self._served >= GROW_AFTER and self.size < self.largest:
            self.size = min(self.largest, self.size * 2)
            self._served = 0


def _span(start: int, end: int, size: int, backwards: bool) -> tuple[int, int]:
    if backwards:
        return max(start, end - size + 1), end
    return start, min(end, start + size - 1)


def _refusal(exc: Web3RPCError, first: int, last: int) -> None:
    """Re-raise unless `exc` refuses the span, and say so when one block is too many."""
    if not is_range_refusal(str(exc)):
        raise exc
    if first == last:
        raise ChainError(
            f"the RPC endpoint refuses eth_getLogs even for block {first} alone ({exc}): "
            "use another endpoint"
        ) from None


def get_logs(
    w3: Web3,
    query: dict[str, Any],
    start: int,
    end: int,
    *,
    window: LogWindow | None = None,
    backwards: bool = False,
    enough: Callable[[list[Any]], bool] | None = None,
) -> list[Any]:
    """Logs matching `query` in blocks `start..end`, in block order. `backwards` reads
    the newest blocks first and, with `enough`, stops once it holds (for lookups)."""
    window = window or LogWindow()
    found: list[list[Any]] = []
    while start <= end:
        first, last = _span(start, end, window.size, backwards)
        try:
            logs = list(w3.eth.get_logs({**query, "fromBlock": first, "toBlock": last}))  # type: ignore[typeddict-item]
        except Web3RPCError as exc:
            _refusal(exc, first, last)
            window.refused(last - first + 1)
            continue
        window.served()
        found.append(logs)
        if backwards:
            end = first - 1
        else:
            start = last + 1
        if enough is not None and enough(logs):
            break
    ordered = reversed(found) if backwards else found
    return [log for chunk in ordered for log in chunk]


async def aget_logs(
    w3: AsyncWeb3[Any],
    query: dict[str, Any],
    start: int,
    end: int,
    *,
    window: LogWindow | None = None,
    backwards: bool = False,
    enough: Callable[[list[Any]], bool] | None = None,
) -> list[Any]:
    """`get_logs` for an `AsyncWeb3`."""
    window = window or LogWindow()
    found: list[list[Any]] = []
    while start <= end:
        first, last = _span(start, end, window.size, backwards)
        try:
            logs = list(await w3.eth.get_logs({**query, "fromBlock": first, "toBlock": last}))  # type: ignore[typeddict-item]
        except Web3RPCError as exc:
            _refusal(exc, first, last)
            window.refused(last - first + 1)
            continue
        window.served()
        found.append(logs)
        if backwards:
            end = first - 1
        else:
            start = last + 1
        if enough is not None and enough(logs):
            break
    ordered = reversed(found) if backwards else found
    return [log for chunk in ordered for log in chunk]
