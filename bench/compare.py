"""Two runs of bench/gas.py side by side: gas per item before and after, with v1's ratio.

`--before` takes one or more JSON files whose rows are merged in order: an older
checkout's bench/results/gas.json, and bench/lifecycle.py's `--json` output run with that
checkout's environment (the older gas.py has no lifecycle rows). `--after` is this
checkout's bench/results/gas.json by default. Rows are matched by operation; `RENAMED`
maps an older row's name to its current one. A row on one side only shows "-" on the
other. The figures compared are per item (gas / items); the ratio is to Kalypso v1's
figure the after row records (the same reference for both sides).

Run: `.venv/bin/python bench/compare.py --before OLD.json [MORE.json ...] [--after NEW.json]
[--markdown]`.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results" / "gas.json"
#: Older row names -> current ones.
RENAMED = {"slash (first: new slasher, first miss)": "slash (first by a new account)"}
GOAL = 0.5
WIDTH = 120


@dataclass(frozen=True)
class Pair:
    operation: str
    before: int | None
    after: int | None
    v1: int | None

    @property
    def change(self) -> int | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before

    def ratio(self, gas: int | None) -> float | None:
        return gas / self.v1 if gas is not None and self.v1 else None


def rows_of(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """Rows by current operation name; a later file's row replaces an earlier one."""
    rows: dict[str, dict[str, Any]] = {}
    for path in paths:
        for row in json.loads(path.read_text())["rows"]:
            rows[RENAMED.get(row["operation"], row["operation"])] = row
    return rows


def pairs(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> list[Pair]:
    """After's order, then rows found only before."""
    names = list(after) + [name for name in before if name not in after]
    out = []
    for name in names:
        old, new = before.get(name), after.get(name)
        v1 = (new or old or {}).get("kalypso_v1")
        out.append(
            Pair(
                name,
                old["per_item"] if old else None,
                new["per_item"] if new else None,
                v1,
            )
        )
    return out


def cells(pair: Pair) -> list[str]:
    def gas(value: int | None) -> str:
        return "-" if value is None else f"{value:,}"

    def ratio(value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value:.3f}" + (" over" if value > GOAL else "")

    change = pair.change
    return [
        pair.operation,
        gas(pair.before),
        gas(pair.after),
        "-" if change is None else f"{change:+,}",
        gas(pair.v1),
        ratio(pair.ratio(pair.before)),
        ratio(pair.ratio(pair.after)),
    ]


HEADERS = ["operation", "before", "after", "change", "Kalypso v1", "v1 ratio before", "after"]


def markdown(rows: list[Pair]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" + "---:|" * (len(HEADERS) - 1)]
    lines += ["| " + " | ".join(cells(row)) + " |" for row in rows]
    return "\n".join(lines)


def table(rows: list[Pair]) -> Table:
    out = Table(title="Kalypso gas per item, before and after (anvil receipts)")
    for name in HEADERS:
        out.add_column(name, justify="left" if name == "operation" else "right")
    for row in rows:
        out.add_row(*cells(row))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, nargs="+", required=True)
    parser.add_argument("--after", type=Path, nargs="+", default=[RESULTS])
    parser.add_argument("--markdown", action="store_true", help="a Markdown table")
    args = parser.parse_args()
    rows = pairs(rows_of(args.before), rows_of(args.after))
    if args.markdown:
        print(markdown(rows))
        return
    console = Console()
    if not console.is_terminal:
        console = Console(width=WIDTH)
    console.print(table(rows))


if __name__ == "__main__":
    main()
