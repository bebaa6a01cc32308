"""docs/real-chains.md names only commands and options that exist, lists every owner
command, and needs no Python for keys or owner actions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from kalypso.cli import app

PAGE = Path(__file__).resolve().parents[2] / "docs" / "real-chains.md"
ROOT = typer.main.get_command(app)


def code(text: str) -> list[str]:
    """Inline code spans and the lines of fenced blocks (a `\\` continues a line)."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    return spans + lines


def resolve(words: list[str]) -> tuple[Any, list[str]]:
    """The command `kalypso words…` names, and the words after it (a group has
    `commands`; typer ships its own click, so no isinstance)."""
    command: Any = ROOT
    while words and hasattr(command, "commands") and words[0] in command.commands:
        command, words = command.commands[words[0]], words[1:]
    return command, words


def test_every_kalypso_command_and_option_on_the_page_exists() -> None:
    checked = 0
    for snippet in code(PAGE.read_text()):
        for match in re.finditer(r"\bkalypso((?: +[^\s`|]+)+)", snippet):
            command, rest = resolve(match.group(1).split())
            assert command is not ROOT, snippet
            if hasattr(command, "commands"):
                assert not rest or not re.fullmatch(r"[a-z-]+", rest[0]), (
                    f"no command `{rest[0]}` in: {snippet}"
                )
                continue
            options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
            for word in rest:
                if word.startswith("--"):
                    assert word in options, f"{word} is no option of: {snippet}"
            checked += 1
    assert checked >= 10


def test_the_owner_table_lists_every_admin_command() -> None:
    text = PAGE.read_text()
    table = text[text.index("### Owner commands") : text.index("## The deployment file")]
    listed = {
        name for cell in re.findall(r"^\| `([^`]+)`", table, re.M) for name in [cell.split()[0]]
    }
    listed |= set(re.findall(r"^\| `[^`|]+`, `([a-z-]+)", table, re.M))
    assert listed == set(ROOT.commands["admin"].commands) - {"show"}


def test_keys_and_owner_actions_need_no_python() -> None:
    assert "```python" not in PAGE.read_text()
    assert "Account.encrypt" not in PAGE.read_text()
