"""Groth16 proofs: snarkjs JSON, on-chain calldata and back, in one place.

snarkjs writes G2 coordinates as [real, imaginary]; the BN254 pairing precompile
(EIP-197) and `Groth16Verifier.vy` read them imaginary first. `calldata()` is
`abi.encode(uint256[8])`: A.x, A.y, B.x.c1, B.x.c0, B.y.c1, B.y.c0, C.x, C.y.
`batch_arguments` gives `verify_batch` its flat arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from kalypso.errors import ConfigError
from kalypso.market import BN254_SCALAR_FIELD, decode_signals, encode_signals

#: BN254 base field: every proof coordinate is below it.
BN254_BASE_FIELD = 21888242871839275222246405745257275088696311157297823662689037894645226208583

G1 = tuple[int, int]
#: ((x.c0, x.c1), (y.c0, y.c1)), snarkjs order
G2 = tuple[tuple[int, int], tuple[int, int]]


def _int(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"not a number in a proof: {value!r}") from None
    if not 0 <= number < BN254_BASE_FIELD:
        raise ConfigError(f"proof coordinate {number} is not in the BN254 base field")
    return number


@dataclass(frozen=True)
class Groth16Proof:
    a: G1
    b: G2
    c: G1
    public_signals: tuple[int, ...]

    @classmethod
    def from_snarkjs(cls, proof: Mapping[str, Any], public: Sequence[Any]) -> Groth16Proof:
        """From snarkjs' `proof.json` and `public.json` (decimal strings)."""
        try:
            a = (_int(proof["pi_a"][0]), _int(proof["pi_a"][1]))
            b = (
                (_int(proof["pi_b"][0][0]), _int(proof["pi_b"][0][1])),
                (_int(proof["pi_b"][1][0]), _int(proof["pi_b"][1][1])),
            )
            c = (_int(proof["pi_c"][0]), _int(proof["pi_c"][1]))
        except (KeyError, IndexError, TypeError):
            raise ConfigError("not a snarkjs Groth16 proof (pi_a, pi_b, pi_c)") from None
        signals = tuple(int(s) for s in public)
        if any(not 0 <= s < BN254_SCALAR_FIELD for s in signals):
            raise ConfigError("a public signal is not in the BN254 scalar field")
        return cls(a, b, c, signals)

    def to_snarkjs(self) -> tuple[dict[str, Any], list[str]]:
        """`proof.json` and `public.json` as snarkjs writes them."""
        proof = {
            "pi_a": [str(self.a[0]), str(self.a[1]), "1"],
            "pi_b": [
                [str(self.b[0][0]), str(self.b[0][1])],
                [str(self.b[1][0]), str(self.b[1][1])],
                ["1", "0"],
            ],
            "pi_c": [str(self.c[0]), str(self.c[1]), "1"],
            "protocol": "groth16",
            "curve": "bn128",
        }
        return proof, [str(s) for s in self.public_signals]

    def words(self) -> list[int]:
        (bx0, bx1), (by0, by1) = self.b
        return [self.a[0], self.a[1], bx1, bx0, by1, by0, self.c[0], self.c[1]]

    def calldata(self) -> bytes:
        """The proof bytes `submit_proof` and the verifier take."""
        return abi_encode(["uint256[8]"], [self.words()])

    def public_inputs(self) -> bytes:
        """The public inputs bytes a request carries: abi.encode(uint256[])."""
        return encode_signals(list(self.public_signals))

    @classmethod
    def from_calldata(cls, proof: bytes, public_inputs: bytes) -> Groth16Proof:
        """Decode the bytes of a `ProofSubmitted` event and its request's inputs."""
        if len(proof) != 256:
            raise ConfigError(f"a Groth16 proof is 256 bytes, got {len(proof)}")
        (w,) = abi_decode(["uint256[8]"], proof)
        words = [_int(x) for x in w]
        return cls(
            (words[0], words[1]),
            ((words[3], words[2]), (words[5], words[4])),
            (words[6], words[7]),
            tuple(decode_signals(public_inputs)),
        )

    def verify_local(self, vkey: Mapping[str, Any]) -> bool:
        """Verify against a snarkjs verification key in Python (py_ecc), no chain needed."""
        from kalypso.provers.pairing import verify_groth16

        return verify_groth16(vkey, self)


def batch_arguments(proofs: Sequence[Groth16Proof]) -> tuple[list[int], list[list[int]]]:
    """`verify_batch`'s public inputs and proofs (after the contexts): every proof's
    signals concatenated, and one row of 8 words per proof."""
    return [s for proof in proofs for s in proof.public_signals], [p.words() for p in proofs]


def verifier_args(
    vkey: Mapping[str, Any],
) -> tuple[list[int], list[int], list[int], list[int], list[list[int]]]:
    """Constructor arguments of `Groth16Verifier.vy` from a snarkjs verification key."""

    def g1(point: Sequence[Any]) -> list[int]:
        return [int(point[0]), int(point[1])]

    def g2(point: Sequence[Sequence[Any]]) -> list[int]:
        return [int(point[0][1]), int(point[0][0]), int(point[1][1]), int(point[1][0])]

    if vkey.get("protocol") != "groth16" or vkey.get("curve") != "bn128":
        raise ConfigError("not a snarkjs Groth16 BN254 verification key")
    return (
        g1(vkey["vk_alpha_1"]),
        g2(vkey["vk_beta_2"]),
        g2(vkey["vk_gamma_2"]),
        g2(vkey["vk_delta_2"]),
        [g1(point) for point in vkey["IC"]],
    )
