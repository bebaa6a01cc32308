"""Test doubles for the outside world; today a hosted-RPC-provider simulator.

`ProviderSimulator` is imported on first use, so that `python -m kalypso.testing.provider`
runs the module once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kalypso.testing.config import PROFILES, Profile, SimulatorConfig, profile
from kalypso.testing.shapes import PERSONALITIES, Personality, Refusal
from kalypso.testing.stats import ProviderStats

if TYPE_CHECKING:
    from kalypso.testing.provider import ProviderSimulator

__all__ = [
    "PERSONALITIES",
    "PROFILES",
    "Personality",
    "Profile",
    "ProviderSimulator",
    "ProviderStats",
    "Refusal",
    "SimulatorConfig",
    "profile",
]


def __getattr__(name: str) -> Any:
    if name == "ProviderSimulator":
        from kalypso.testing.provider import ProviderSimulator

        return ProviderSimulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
