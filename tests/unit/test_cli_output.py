"""What the CLI prints: `--help` whole at any terminal width, and messages exactly as
they are (Rich would read `[markets.3]` or `[bold]` in them as markup and drop it)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from kalypso.cli import app
from kalypso.cli.output import plain_console, styled, summary

WIDTHS = (60, 200)


def squeezed(text: str) -> str:
    """`text` without whitespace: help wraps lines and may break a long word or a
    hyphenated one at the line's end, but must drop no character."""
    return "".join(text.split())


def commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group of the app, with the words that reach it."""
    yield path, group
    for name, command in getattr(group, "commands", {}).items():
        if not command.hidden:
            yield from commands(command, (*path, name))


ALL = list(commands(typer.main.get_command(app)))


def help_text(path: tuple[str, ...], width: int) -> str:
    """The help at `width`: click's from `terminal_width` in the runner, Rich's (were the
    help Rich's) from COLUMNS."""
    env = {"COLUMNS": str(width)}
    done = CliRunner().invoke(app, [*path, "--help"], terminal_width=width, env=env)
    assert done.exit_code == 0, done.output
    return done.output


def kalypso(*args: str | Path, columns: int = 80) -> subprocess.CompletedProcess[str]:
    """The real CLI, in its own process."""
    env = {**os.environ, "COLUMNS": str(columns), "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-m", "kalypso.cli", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_walk_reaches_every_command() -> None:
    paths = {" ".join(path) for path, _ in ALL}
    assert {"init", "market audit", "generator fetch", "enclave pvs", "request create"} <= paths
    assert len(paths) > 30


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) or "kalypso" for p, _ in ALL])
def test_help_shows_every_option_and_description_whole(
    path: tuple[str, ...], command: Any, width: int
) -> None:
    out = help_text(path, width)
    # click's wrapper can overrun by a column where it breaks a word longer than a line
    assert max(map(len, out.splitlines())) <= width + 1, out
    text = squeezed(out)
    assert squeezed(command.help or "") in text, f"{path}: its description is cut"
    for param in command.params:
        if getattr(param, "hidden", False) or not getattr(param, "help", None):
            continue
        assert squeezed(param.help) in text, f"{path}: the help of {param.name} is cut"
    for name, sub in getattr(command, "commands", {}).items():
        if not sub.hidden:
            assert squeezed(f"{name}{summary(sub)}") in text, f"{path}: {name}'s summary is cut"


def test_a_terminal_60_columns_wide_gets_help_that_fits() -> None:
    done = kalypso("generator", "fetch", "--help", columns=60)
    assert done.returncode == 0, done.stderr
    assert max(map(len, done.stdout.splitlines())) <= 60, done.stdout
    assert "--trust-market-code" in done.stdout and "the deployment file's)" in done.stdout


def test_the_console_prints_text_exactly(capsys: pytest.CaptureFixture[str]) -> None:
    message = "[markets.3]: unknown key(s) [bold]x[/] :smile: [red]\\[/] [3] \\"
    plain_console().print(message)
    plain_console().print(styled(("error:", "bold red"), f" {message}"))
    assert capsys.readouterr().out == f"{message}\nerror: {message}\n"


def test_an_error_full_of_brackets_reaches_the_terminal_exactly(tmp_path: Path) -> None:
    """The real CLI in its own process: `main` prints the error of a config whose table
    and key look like Rich markup and emoji codes."""
    config = tmp_path / "generator.toml"
    config.write_text(
        'stake = 1\ncompute = 1\n[markets.3]\nprice = 1\nproof_time = 60\ncircuit = "x"\n'
        '"[bold]x[/] :smile: [red]" = 1\n'
    )
    done = kalypso("generator", "status", "-c", config, columns=40)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        f"error: [K-CFG-001] {config}: [markets.3]: unknown key(s) [bold]x[/] :smile: [red]\n"
    )
