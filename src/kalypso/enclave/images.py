"""Enclave image ids, in two domains that can never collide.

A dev image (the devnet's, a process) is keccak256 of a canonical JSON *measurement*
holding the image's kind, the SHA-256 of every file of the kalypso package (what a Nitro
image of it copies, so the two measure the same code), and its
configuration (for example the hashes of the circuit artifacts it proves with). Any
change to the code or the configuration gives another id, which markets must
authorize anew.

A Nitro image is keccak256(`NITRO_DOMAIN` ‖ PCR0 ‖ PCR1 ‖ PCR2): the enclave image
file, the kernel and boot ramfs, and the application, as the NSM measures them. PCR8
(the certificate the image file was signed with) is left out on purpose: anyone who
rebuilds the image from its Dockerfile gets the same id, whoever signed the copy
they run. The JSON of a dev measurement starts with `{`, the Nitro preimage with
`NITRO_DOMAIN`: no preimage is both, so no id is both.
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

from kalypso.errors import AttestationError

_PACKAGE = Path(__file__).resolve().parents[1]


class ImageKind(StrEnum):
    """The four images (DESIGN §3): what each is trusted to do."""

    MATCHING_ENGINE = "matcher"  # opens content keys, re-wraps them to generators
    GENERATOR = "generator"  # proves private inputs; attests invalid ones
    INPUT_VERIFICATION = "ivs"  # attests public inputs that cannot be proven
    PROOF_VERIFICATION = "pvs"  # verifies proofs off-chain; attests valid ones


@cache
def code_measurement() -> tuple[tuple[str, str], ...]:
    """(path under kalypso/, sha256) of every file of the package, sorted: all of what a
    Nitro image copies (`COPY src/kalypso`; .dockerignore drops only bytecode)."""
    files = sorted(
        path
        for path in _PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
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


#: The prefix of a Nitro image id's preimage (a dev measurement starts with "{").
NITRO_DOMAIN = b"kalypso.nitro-image.v1"
#: The PCRs a Nitro image id measures: image file, kernel and boot ramfs, application.
NITRO_PCRS = (0, 1, 2)


def nitro_image_id(pcrs: Mapping[int, bytes]) -> bytes:
    """The 32-byte id of the Nitro image with these PCRs (SHA-384, 48 bytes each)."""
    missing = [i for i in NITRO_PCRS if len(pcrs.get(i, b"")) != 48]
    if missing:
        raise AttestationError(f"PCR{missing[0]} is not a 48-byte SHA-384 register")
    return keccak(NITRO_DOMAIN + b"".join(pcrs[i] for i in NITRO_PCRS))


def measurements_pcrs(output: Mapping[str, Any]) -> dict[int, bytes]:
    """PCR0-2 from what `nitro-cli build-enclave` or `describe-eif` prints:
    `{"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": hex, ...}}`."""
    measured = output.get("Measurements")
    if not isinstance(measured, Mapping):
        raise AttestationError("no Measurements: give the JSON nitro-cli build-enclave printed")
    algorithm = str(measured.get("HashAlgorithm", ""))
    if not algorithm.startswith("Sha384"):
        raise AttestationError(f"the measurements are {algorithm or 'of no algorithm'}, not Sha384")
    pcrs = {}
    for i in NITRO_PCRS:
        value = measured.get(f"PCR{i}")
        try:
            pcrs[i] = bytes.fromhex(value) if isinstance(value, str) else b""
        except ValueError:
            pcrs[i] = b""
        if len(pcrs[i]) != 48:
            raise AttestationError(f"PCR{i} is not 48 bytes of hex")
    return pcrs
