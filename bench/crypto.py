"""Private-input envelope throughput (`kalypso.crypto`), in process.

What is measured: for a secret of the largest size that fits the contract's inline cap
(903 bytes), each step of the flow — `seal` (requester), `open_sealed` (the matcher's test
decryption), `rewrap` (the matcher's re-encryption of the content key), `open_with`
(generator) — as operations per second and MiB/s of secret, the best of 5 runs of 400
operations; and the AES-256-GCM throughput of a 1 MiB body, the only cost that grows with
the secret.

Run: `.venv/bin/python bench/crypto.py`; writes bench/results/crypto.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from rich.console import Console
from rich.table import Table

from kalypso.crypto import (
    MAX_PLAINTEXT,
    EncryptionKey,
    SecretContext,
    open_sealed,
    open_with,
    rewrap,
    seal,
)

RESULTS = Path(__file__).resolve().parent / "results" / "crypto.json"
CONTEXT = SecretContext(31337, "0x" + "ab" * 20, b"\x01" * 32)


def best_rate(step: Callable[[], object], count: int) -> float:
    """Operations per second, best of 5 runs."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(count):
            step()
        best = min(best, time.perf_counter() - start)
    return count / best


def measure() -> list[dict[str, Any]]:
    matcher, generator = EncryptionKey.generate(), EncryptionKey.generate()
    secret = b"\x5a" * MAX_PLAINTEXT
    sealed = seal(secret, matcher.public_bytes, CONTEXT)
    key_envelope = rewrap(sealed, matcher, generator.public_bytes, CONTEXT)
    steps: dict[str, Callable[[], object]] = {
        "seal (requester)": lambda: seal(secret, matcher.public_bytes, CONTEXT),
        "open_sealed (matcher test-decrypt)": lambda: open_sealed(sealed, matcher, CONTEXT),
        "rewrap (matcher)": lambda: rewrap(sealed, matcher, generator.public_bytes, CONTEXT),
        "open_with (generator)": lambda: open_with(sealed, key_envelope, generator, CONTEXT),
    }
    rows = [
        row(f"{MAX_PLAINTEXT} B (inline cap)", name, best_rate(step, 400), MAX_PLAINTEXT)
        for name, step in steps.items()
    ]
    # The bulk cost of a larger secret is the body's AES-256-GCM (the key steps are fixed).
    body, aead, nonce = b"\x5a" * 2**20, AESGCM(AESGCM.generate_key(bit_length=256)), b"\0" * 12
    rate = best_rate(lambda: aead.encrypt(nonce, body, bytes(CONTEXT)), 20)
    rows.append(row("1 MiB", "AES-256-GCM body (bulk)", rate, 2**20))
    return rows


def row(secret: str, step: str, rate: float, size: int) -> dict[str, Any]:
    return {
        "secret": secret,
        "step": step,
        "ops_per_second": round(rate),
        "mib_per_second": round(rate * size / 2**20, 1),
    }


def main() -> None:
    rows = measure()
    table = Table(title="Private-input envelope (X25519 + HKDF-SHA256 + AES-256-GCM)")
    for column in ("secret", "step", "ops/s", "MiB/s"):
        table.add_column(column, justify="left" if column in ("secret", "step") else "right")
    for row in rows:
        table.add_row(
            row["secret"], row["step"], f"{row['ops_per_second']:,}", f"{row['mib_per_second']:,}"
        )
    Console(width=100).print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
