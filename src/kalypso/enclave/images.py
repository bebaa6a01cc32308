"""Enclave image ids: the keccak hash of an image's measured code and configuration.

We cannot run AWS Nitro here, so an enclave image is a process, and its id stands in
for Nitro's PCRs: keccak256 of a canonical JSON *measurement* holding the image's
kind, the SHA-256 of every source file the image runs, and its configuration (for
example the hashes of the circuit artifacts it proves with). Any change to the code
or to the configuration gives another id, which markets must authorize anew.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from eth_utils import keccak

_PACKAGE = Path(__file__).resolve().parents[1]
#: The packages an enclave image runs (relative to `kalypso/`); their files are measured.
MEASURED_PACKAGES = ("enclave", "crypto", "provers", "circuits", "market", "contracts")
_MEASURED_SUFFIXES = (".py", ".cjs", ".json")


class ImageKind(StrEnum):
    """The four images (DESIGN §3): what each is trusted to do."""

    MATCHING_ENGINE = "matcher"  # opens content keys, re-wraps them to generators
    GENERATOR = "generator"  # proves private inputs; attests invalid ones
    INPUT_VERIFICATION = "ivs"  # attests public inputs that cannot be proven
    PROOF_VERIFICATION = "pvs"  # verifies proofs off-chain; attests valid ones


@cache
def code_measurement() -> tuple[tuple[str, str], ...]:
    """(path under kalypso/, sha256) of every measured source file, sorted."""
    files = sorted(
        path
        for package in MEASURED_PACKAGES
        for path in (_PACKAGE / package).rglob("*")
        if path.suffix in _MEASURED_SUFFIXES and "__pycache__" not in path.parts
    )
    return tuple(
        (path.relative_to(_PACKAGE).as_posix(), hashlib.sha256(path.read_bytes()).hexdigest())
        for path in files
    )


def measurement(kind: ImageKind, config: Mapping[str, Any]) -> bytes:
    """The canonical bytes an image id hashes: kind, code and configuration."""
    document = {"kind": kind.value, "code": dict(code_measurement()), "config": dict(config)}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def image_id(kind: ImageKind, config: Mapping[str, Any]) -> bytes:
    """The 32-byte id of `kind` running with `config` (JSON values only)."""
    return keccak(measurement(kind, config))
