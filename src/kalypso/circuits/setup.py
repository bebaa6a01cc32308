"""Trusted-setup plumbing for market creators: the constraint count of an .r1cs, the
power of a .ptau transcript, and the snarkjs command line (`zkey export
verificationkey`, `zkey verify`) run through node.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from kalypso.errors import ConfigError

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: how long one snarkjs command may run; `zkey verify` of a large circuit takes minutes
SNARKJS_TIMEOUT = 3600.0


def _sections(handle: BinaryIO, magic: bytes, path: Path) -> dict[int, tuple[int, int]]:
    """The iden3 binary container: magic, version u32, section count u32, then sections
    (type u32, size u64, body). Returns type -> (body offset, size) of the first of each."""
    head = handle.read(12)
    if len(head) < 12 or head[:4] != magic:
        raise ConfigError(f"{path} is not a {magic.decode()} file")
    (count,) = struct.unpack_from("<I", head, 8)
    sections: dict[int, tuple[int, int]] = {}
    offset = 12
    for _ in range(count):
        handle.seek(offset)
        raw = handle.read(12)
        if len(raw) < 12:
            raise ConfigError(f"{path} is truncated")
        kind, size = struct.unpack("<IQ", raw)
        sections.setdefault(kind, (offset + 12, size))
        offset += 12 + size
    return sections


def _read(path: Path, magic: bytes) -> tuple[BinaryIO, dict[int, tuple[int, int]]]:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return handle, _sections(handle, magic, path)
    except BaseException:
        handle.close()
        raise


def _header_u32(path: Path, magic: bytes, after_prime: int) -> int:
    """A u32 of an iden3 binary file's header section (type 1), which starts with the
    prime's byte size and the prime; `after_prime` bytes past the prime."""
    handle, sections = _read(path, magic)
    with handle:
        if 1 not in sections:
            raise ConfigError(f"{path}: no header section")
        offset, _ = sections[1]
        handle.seek(offset)
        (prime_size,) = struct.unpack("<I", handle.read(4))
        handle.seek(offset + 4 + prime_size + after_prime)
        raw = handle.read(4)
        if len(raw) < 4:
            raise ConfigError(f"{path} is truncated")
        return int(struct.unpack("<I", raw)[0])


def r1cs_constraints(path: Path) -> int:
    """The constraint count of an .r1cs file.

    Its header after the prime: wires, public outputs, public inputs, private inputs
    (u32 each), labels (u64), then the constraint count.
    """
    return _header_u32(path, b"r1cs", 24)


def r1cs_signals(path: Path) -> tuple[int, int, int]:
    """(public outputs, public inputs, private inputs) of an .r1cs file: the header
    fields after wires, in that order."""
    return (
        _header_u32(path, b"r1cs", 4),
        _header_u32(path, b"r1cs", 8),
        _header_u32(path, b"r1cs", 12),
    )


def ptau_power(path: Path) -> int:
    """The power of a powers-of-tau transcript: it supports circuits of 2^power constraints.

    Its header after the prime q: the power (u32).
    """
    return _header_u32(path, b"ptau", 0)


def check_fits(constraints: int, power: int) -> None:
    """Raise ConfigError unless a transcript of `power` covers `constraints` (2^power ≥ n)."""
    if constraints > 2**power:
        raise ConfigError(
            f"the circuit has {constraints} constraints but the ptau supports at most "
            f"2^{power} = {2**power}; use a ptau of power {max(constraints - 1, 1).bit_length()} "
            "or more"
        )


def node_modules() -> Path:
    """`KALYPSO_NODE_MODULES`, else the repository's node_modules."""
    modules = os.environ.get("KALYPSO_NODE_MODULES")
    return Path(modules) if modules else Path(__file__).resolve().parents[3] / "node_modules"


def snarkjs_cli() -> list[str]:
    """`node …/snarkjs/build/cli.cjs` in `node_modules()`."""
    from kalypso.provers.snarkjs import find_node

    cli = node_modules() / "snarkjs" / "build" / "cli.cjs"
    if not cli.is_file():
        raise ConfigError(f"snarkjs not found at {cli}: run `npm ci` or set KALYPSO_NODE_MODULES")
    return [find_node(), str(cli)]


def run_snarkjs(*args: str, timeout: float = SNARKJS_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run a snarkjs command; the result's returncode says whether it passed."""
    try:
        return subprocess.run(
            [*snarkjs_cli(), *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(f"snarkjs {args[0]} took longer than {timeout:g} s") from None
    except OSError as exc:
        raise ConfigError(f"cannot run snarkjs: {exc}") from None


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    """A command's last non-empty line of output, without colours: what went wrong."""
    text = _ANSI.sub("", result.stdout + result.stderr)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else f"exit code {result.returncode}"


def zkey_vkey(zkey: Path) -> dict[str, Any]:
    """The verification key inside a zkey (`snarkjs zkey export verificationkey`)."""
    with tempfile.TemporaryDirectory(prefix="kalypso-vkey-") as tmp:
        out = Path(tmp) / "vkey.json"
        result = run_snarkjs("zkey", "export", "verificationkey", str(zkey), str(out))
        if result.returncode != 0 or not out.is_file():
            raise ConfigError(f"cannot read the verification key of {zkey}: {last_line(result)}")
        return dict(json.loads(out.read_text()))


def zkey_verify(r1cs: Path, ptau: Path, zkey: Path) -> tuple[bool, str]:
    """`snarkjs zkey verify`: was `zkey` made from `r1cs` and the transcript `ptau`?
    Returns whether it passed and snarkjs' last line."""
    result = run_snarkjs("zkey", "verify", str(r1cs), str(ptau), str(zkey))
    # snarkjs prints "ZKey Ok!" on success; it exits 0 on some failures too.
    ok = result.returncode == 0 and "ZKey Ok!" in result.stdout + result.stderr
    return ok, last_line(result)
