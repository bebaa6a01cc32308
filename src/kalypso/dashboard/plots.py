"""The market pages' two plots as inline SVG: no JavaScript library, nothing to download."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from html import escape

WIDTH, HEIGHT = 560, 200
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 32


def _frame(title: str, body: list[str]) -> str:
    return (
        f'<svg class="plot" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>"
        f'<line class="axis" x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" '
        f'y2="{HEIGHT - BOTTOM}"/>'
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}"/>'
        + "".join(body)
        + "</svg>"
    )


def _empty(title: str, message: str) -> str:
    return _frame(
        title,
        [f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}">{escape(message)}</text>'],
    )


def _label(x: float, y: float, text: str, anchor: str = "middle") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">{escape(text)}</text>'


def _scale(lo: float, hi: float, out_lo: float, out_hi: float) -> Callable[[float], float]:
    span = (hi - lo) or 1.0
    return lambda v: out_lo + (v - lo) / span * (out_hi - out_lo)


def price_over_time(points: Sequence[tuple[int, int]], show: Callable[[int], str]) -> str:
    """Each task's price (y) at its assignment time (x), joined in time order."""
    title = "price over time"
    if not points:
        return _empty(title, "no task assigned yet")
    times = [t for t, _ in points]
    prices = [p for _, p in points]
    x = _scale(min(times), max(times), LEFT + 6, WIDTH - RIGHT - 6)
    y = _scale(0, max(prices), HEIGHT - BOTTOM, TOP + 6)
    coords = [(x(t), y(p)) for t, p in points]
    path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
    body = [f'<polyline class="series" points="{path}"/>']
    body += [f'<circle class="dot" cx="{cx:.1f}" cy="{cy:.1f}" r="2.5"/>' for cx, cy in coords]
    body += [
        _label(LEFT - 6, y(max(prices)) + 4, show(max(prices)), "end"),
        _label(LEFT - 6, HEIGHT - BOTTOM + 4, "0", "end"),
        _label(LEFT, HEIGHT - 10, _clock(min(times)), "start"),
        _label(WIDTH - RIGHT, HEIGHT - 10, _clock(max(times)), "end"),
    ]
    return _frame(title, body)


def histogram(values: Sequence[int], unit: str = "s", bins: int = 12) -> str:
    """How many proofs took how long, in `bins` equal bins."""
    title = "proof time histogram"
    if not values:
        return _empty(title, "no proof submitted yet")
    lo, hi = min(values), max(values)
    width = max(1, math.ceil((hi - lo + 1) / bins))
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, (v - lo) // width)] += 1
    used = max(i for i, c in enumerate(counts) if c) + 1
    bar = (WIDTH - LEFT - RIGHT) / used
    y = _scale(0, max(counts), HEIGHT - BOTTOM, TOP + 6)
    body = []
    for i, count in enumerate(counts[:used]):
        top = y(count)
        body.append(
            f'<rect class="bar" x="{LEFT + i * bar + 1:.1f}" y="{top:.1f}" '
            f'width="{bar - 2:.1f}" height="{HEIGHT - BOTTOM - top:.1f}">'
            f"<title>{lo + i * width} to {lo + (i + 1) * width - 1} {unit}: {count}</title></rect>"
        )
    body += [
        _label(LEFT - 6, y(max(counts)) + 4, str(max(counts)), "end"),
        _label(LEFT, HEIGHT - 10, f"{lo} {unit}", "start"),
        _label(WIDTH - RIGHT, HEIGHT - 10, f"{lo + used * width - 1} {unit}", "end"),
    ]
    return _frame(title, body)


def _clock(unix: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(unix))
