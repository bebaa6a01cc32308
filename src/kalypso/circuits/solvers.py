"""Solvers of the sample circuits: they complete a task's inputs from its public signals.

A market whose requests carry only public inputs still needs a witness: proving
`square_root` means finding the root. A solver gets the public inputs by name and
returns the private ones, or `InvalidInputs` when none exist (the generator then
claims the task's inputs invalid instead of proving).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

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
