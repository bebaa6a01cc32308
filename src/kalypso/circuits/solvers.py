"""Solvers of the sample circuits: they complete a task's inputs from its public signals.

A market whose requests carry only public inputs still needs a witness: proving
`square_root` means finding the root. A solver gets the public inputs by name and
returns the private ones, or `InvalidInputs` when none exist (the generator then
claims the task's inputs invalid instead of proving). A creator's own solver is a Python
file of theirs (`load_solver("solver.py:solve")`), measured by its SHA-256 where an
image runs it.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kalypso.errors import ConfigError
from kalypso.provers import InvalidInputs

#: `square_root`'s bound on max_root (the circuit range-checks it to 16 bits)
MAX_ROOT_BOUND = 2**16


def square_root(inputs: Mapping[str, int]) -> dict[str, int] | InvalidInputs:
    """The integer root of `square`, if there is one no larger than `max_root`."""
    square, max_root = int(inputs["square"]), int(inputs["max_root"])
    if max_root >= MAX_ROOT_BOUND:
        return InvalidInputs(f"max_root {max_root} is not below 2^16")
    root = math.isqrt(square)
    if root * root != square:
        return InvalidInputs(f"{square} is not a perfect square")
    if root > max_root:
        return InvalidInputs(f"the root of {square} is {root}, above max_root {max_root}")
    return {"root": root}


#: The built-in solvers, by circuit name.
SOLVERS = {"square_root": square_root}

BUILTIN_SOLVERS = {name: f"kalypso.circuits.solvers:{name}" for name in SOLVERS}


def solver_file(spec: str) -> tuple[Path, str] | None:
    """(file, function) of a `path/to/solver.py:function` spec; None for other specs."""
    where, _, function = spec.rpartition(":")
    return (Path(where).expanduser(), function) if where.endswith(".py") else None


def load_solver(spec: str) -> Callable[[Mapping[str, int]], Any]:
    """A solver by built-in name, `package.module:function`, or `path/to/file.py:function`."""
    in_file = solver_file(spec)
    if in_file is not None:
        return _from_file(*in_file)[0]
    target = BUILTIN_SOLVERS.get(spec, spec)
    name, _, function = target.partition(":")
    try:
        solver = getattr(importlib.import_module(name), function)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(
            f"no solver {spec!r}: give a built-in ({', '.join(BUILTIN_SOLVERS)}), "
            "`package.module:function` or `path/to/solver.py:function`"
        ) from None
    return _callable(solver, spec)


def measured_solver(spec: str) -> tuple[Callable[[Mapping[str, int]], Any], dict[str, str] | str]:
    """An image's solver and what its id measures of it: a built-in's name, or a file's
    function and the SHA-256 of the very bytes that run (never its path: the id holds on
    any machine). A module path is refused: its code is not measured."""
    in_file = solver_file(spec)
    if in_file is not None:
        solver, digest = _from_file(*in_file)
        return solver, {"function": in_file[1], "sha256": digest}
    if spec in SOLVERS:
        return SOLVERS[spec], spec
    raise ConfigError(
        f"an image's solver is a built-in ({', '.join(SOLVERS)}) or PATH.py:FUNCTION, whose "
        f"bytes its id measures; not {spec!r}"
    )


def _from_file(path: Path, function: str) -> tuple[Callable[[Mapping[str, int]], Any], str]:
    """The function of a solver file, run from the bytes read once, and their SHA-256."""
    try:
        code = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"no solver file at {path} ({exc.strerror or exc})") from None
    module = types.ModuleType(f"solver_{path.stem}")
    module.__file__ = str(path)
    try:
        exec(compile(code, str(path), "exec"), module.__dict__)  # the creator's own code
    except Exception as exc:  # its own error, whatever it is: one line, not a traceback
        raise ConfigError(f"the solver file {path} fails to load: {exc!r}") from None
    solver = getattr(module, function, None)
    if solver is None:
        raise ConfigError(f"no solver {function!r} in {path}")
    return _callable(solver, f"{path}:{function}"), hashlib.sha256(code).hexdigest()


def _callable(solver: Any, spec: str) -> Callable[[Mapping[str, int]], Any]:
    if not callable(solver):
        raise ConfigError(f"solver {spec!r} is not a function")
    return solver  # type: ignore[no-any-return]
