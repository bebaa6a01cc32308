"""How the CLI prints: help that wraps at any terminal width, and a console that prints
every message exactly as given."""

from __future__ import annotations

import inspect
from typing import Any

from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup


def plain_console(*, stderr: bool = False) -> Console:
    """A console that prints text exactly as given: no Rich markup, emoji codes or
    highlighting, since a message may hold `[markets.3]`, `[bold]` or `:x:`; styles come
    only from `rich.text.Text` a command builds (`styled`). Lines never wrap, so
    paste-ready ones stay whole."""
    return Console(soft_wrap=True, stderr=stderr, markup=False, emoji=False, highlight=False)


def styled(*parts: str | tuple[str, str]) -> Text:
    """A line from plain strings and (text, style) pairs, neither parsed for markup."""
    return Text.assemble(*parts)


def summary(command: Any) -> str:
    """A command's first paragraph, on one line."""
    text = inspect.cleandoc(command.short_help or command.help or "")
    return " ".join(text.split("\n\n")[0].split())


class HelpGroup(TyperGroup):
    """A command group whose listing gives each command's first paragraph whole, wrapped:
    click cuts it at the first sentence or ~45 columns with "...", whatever the width.

    Used with `rich_markup_mode=None` (click's help, not Rich's panels, whose tables cut
    option names and long words with "…" on narrow terminals)."""

    # typer's vendored click types: Any, as typer's own module is private
    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, summary(command)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
