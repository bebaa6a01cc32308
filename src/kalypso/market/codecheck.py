"""Is a market's verifier (or input verifier) code fixed, and which key does it hold?

A market fixes its verifiers' addresses, not what they answer. A contract whose key
getters report the real verifying key but whose `verify` reads a switch, or that
delegates to an upgradeable implementation, passes `create_market` and a key check
through getters, and can later reject every honest proof (generators are slashed) or
accept every claim of invalid inputs. So the code itself is judged:

- **kalypso's own contracts** (`Groth16Verifier`, and the dev `MockVerifier`,
  `SquareRootInputVerifier`, `ThresholdInputVerifier`): the deployed code must be this
  package's compiled runtime code byte for byte, followed by exactly its immutables
  (Vyper 0.4.3 appends them to the runtime code; see `kalypso.contracts`). A
  Groth16Verifier's immutables are its verifying key, decoded here from the code, not
  through getters, and must be what its constructor writes for that key (the negated
  points included: they are what the pairing uses);
- **any other code**: `kalypso.market.bytecode.analyse` must find it immutable;
- **the deployment's EnclaveRegistry**, the verifier of attested markets, is trusted by
  its address in the deployment file: its answers follow the enclaves registered for
  the market's Proof Verification Image, which change by design.

Pure: callers fetch the code (`eth_getCode`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kalypso.contracts import Artifact, artifact
from kalypso.deployment import Deployment
from kalypso.market.bytecode import Verdict, analyse
from kalypso.provers.proof import BN254_BASE_FIELD

#: The verifiers this package compiles, recognised by their code.
KNOWN = ("Groth16Verifier", "MockVerifier", "SquareRootInputVerifier", "ThresholdInputVerifier")
GROTH16 = "Groth16Verifier"
#: the names of the code checks, one per contract judged
VERIFIER_CODE = "verifier code"
INPUT_VERIFIER_CODE = "input verifier code"
CODE_CHECKS = (VERIFIER_CODE, INPUT_VERIFIER_CODE)

#: (alpha, beta, gamma, delta, IC): `Groth16Verifier`'s constructor arguments
Groth16Key = tuple[list[int], list[int], list[int], list[int], list[list[int]]]


@dataclass(frozen=True)
class Check:
    """One check of an audit, passed or not."""

    name: str
    ok: bool
    detail: str


def code_roles(verifier: str, input_verifier: str | None) -> list[tuple[str, str]]:
    """(check name, address) of each contract a market's code checks judge."""
    roles = [(VERIFIER_CODE, verifier)]
    if input_verifier is not None:
        roles.append((INPUT_VERIFIER_CODE, input_verifier))
    return roles


def identify(code: bytes) -> tuple[Artifact, bytes] | None:
    """The kalypso contract `code` is, with its immutables, or None."""
    for name in KNOWN:
        known = artifact(name)
        size = len(known.runtime)
        if len(code) == size + known.immutables_size and code[:size] == known.runtime:
            return known, code[size:]
    return None


def judge_code(
    name: str, address: str, code: bytes, trusted: Mapping[str, str] | None = None
) -> Check:
    """Check `name` ("verifier code" or "input verifier code") of the contract at
    `address`; `trusted` maps addresses (any case) to why they are trusted."""
    reason = {a.lower(): why for a, why in (trusted or {}).items()}.get(address.lower())
    if reason is not None:
        return Check(name, True, f"{address}: {reason}")
    found = identify(code)
    if found is None:
        analysis = analyse(code)
        what = f"{address}: unknown code ({len(code)} bytes)"
    else:
        known, immutables = found
        analysis = analyse(known.runtime, known.code_size)
        what = f"{address}: kalypso's {known.name}"
        if known.name == GROTH16:
            if groth16_key(immutables) is None:
                return Check(
                    name,
                    False,
                    f"{what} code with immutables its constructor cannot write (a key whose "
                    "negated points or length do not match: it verifies another key)",
                )
            what += " with a well-formed key"
    ok = analysis.verdict == Verdict.IMMUTABLE
    advice = "" if ok else "; its answers may differ from those it gives today"
    return Check(name, ok, f"{what}, {analysis.summary()}{advice}")


def groth16_key(immutables: bytes) -> Groth16Key | None:
    """The verifying key in a Groth16Verifier's immutables, or None when they are not
    what its constructor writes for any key."""
    layout = artifact(GROTH16).immutables

    def words(field: str) -> list[int]:
        offset, length = layout[field]
        chunk = immutables[offset : offset + length]
        return [int.from_bytes(chunk[i : i + 32], "big") for i in range(0, len(chunk), 32)]

    if len(immutables) != artifact(GROTH16).immutables_size:
        return None
    count, slots = words("IC_LENGTH")[0], words("IC")
    if not 1 <= count <= len(slots) // 2:
        return None
    key: Groth16Key = (
        words("ALPHA"),
        words("BETA"),
        words("GAMMA"),
        words("DELTA"),
        [slots[2 * j : 2 * j + 2] for j in range(count)],
    )
    return key if groth16_immutables(key) == immutables else None


def groth16_immutables(key: Groth16Key) -> bytes:
    """The immutables `Groth16Verifier.__init__` writes for `key` (`verifier_args`)."""
    alpha, beta, gamma, delta, ic = key
    verifier = artifact(GROTH16)
    slots = verifier.immutables["IC"][1] // 32
    values = {
        "ALPHA": alpha,
        "BETA": beta,
        "GAMMA": gamma,
        "DELTA": delta,
        "IC": [w for point in ic for w in point] + [0] * (slots - 2 * len(ic)),
        "IC_LENGTH": [len(ic)],
        "NEG_BETA": _negate_g2(beta),
        "NEG_GAMMA": _negate_g2(gamma),
        "NEG_DELTA": _negate_g2(delta),
    }
    out = bytearray(verifier.immutables_size)
    for field, (offset, length) in verifier.immutables.items():
        data = b"".join(w.to_bytes(32, "big") for w in values[field])
        if len(data) != length:
            raise ValueError(f"a Groth16 key's {field} takes {length} bytes, not {len(data)}")
        out[offset : offset + length] = data
    return bytes(out)


def _negate_g2(point: Sequence[int]) -> list[int]:
    """-(x, y) = (x, -y), y = (y.c1, y.c0) in EIP-197 order, as the contract does it."""
    q = BN254_BASE_FIELD
    return [point[0], point[1], (q - point[2]) % q, (q - point[3]) % q]


def trusted_contracts(deployment: Deployment) -> dict[str, str]:
    """The deployment's own contracts that may serve as a market's verifier, and why
    they pass without the code checks."""
    if deployment.enclave_registry is None:
        return {}
    return {
        deployment.enclave_registry: (
            "the deployment's EnclaveRegistry, trusted by its address in the deployment "
            "file: it accepts a proof on an attestation by a registered key of the "
            "market's Proof Verification Image, and the registered keys change by design "
            "(enclaves come and go; attestation authorities are added on a timelock)"
        )
    }
