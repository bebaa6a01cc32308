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
import importlib.util
import math
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
    try:
        if in_file is not None:
            path, function = in_file
            module_spec = importlib.util.spec_from_file_location(f"solver_{path.stem}", path)
            if module_spec is None or module_spec.loader is None or not path.is_file():
                raise ImportError(path)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            target = BUILTIN_SOLVERS.get(spec, spec)
            name, _, function = target.partition(":")
            module = importlib.import_module(name)
        solver = getattr(module, function)
    except (ImportError, AttributeError, ValueError, OSError, SyntaxError):
        raise ConfigError(
            f"no solver {spec!r}: give a built-in ({', '.join(BUILTIN_SOLVERS)}), "
            "`package.module:function` or `path/to/solver.py:function`"
        ) from None
    if not callable(solver):
        raise ConfigError(f"solver {spec!r} is not a function")
    return solver  # type: ignore[no-any-return]


def solver_measurement(spec: str) -> dict[str, str] | str:
    """What an image id measures of its solver: a built-in's name, or a file's function
    and SHA-256 (never its path: the id holds on any machine)."""
    in_file = solver_file(spec)
    if in_file is None:
        return spec
    path, function = in_file
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ConfigError(f"cannot read the solver {path}: {exc.strerror or exc}") from None
    return {"function": function, "sha256": digest}
