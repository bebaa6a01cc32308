"""PLONK proofs with snarkjs: the proofs of markets verified off-chain by an enclave.

A PLONK proof is 24 BN254 words: nine G1 commitments (A, B, C, Z, T1, T2, T3, Wxi,
Wxiw; x and y each) and six evaluations (a, b, c, s1, s2, zw). `calldata()` is their
ABI encoding, `abi.encode(uint256[24])`: the raw proof an attested market carries
inside `abi.encode(raw proof, attestation)`. `SnarkjsPlonkProver` proves with the same
long-lived worker as Groth16.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from kalypso.errors import ConfigError, ProverError
from kalypso.market import BN254_SCALAR_FIELD, decode_signals, encode_signals
from kalypso.provers import InvalidInputs
from kalypso.provers.snarkjs import DEFAULT_TIMEOUT, SnarkjsWorker

COMMITMENTS = ("A", "B", "C", "Z", "T1", "T2", "T3", "Wxi", "Wxiw")
EVALUATIONS = ("eval_a", "eval_b", "eval_c", "eval_s1", "eval_s2", "eval_zw")
WORDS = 2 * len(COMMITMENTS) + len(EVALUATIONS)
_ABI = f"uint256[{WORDS}]"


@dataclass(frozen=True)
class PlonkProof:
    words: tuple[int, ...]
    public_signals: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.words) != WORDS or any(not 0 <= w < 2**256 for w in self.words):
            raise ConfigError(f"a PLONK proof is {WORDS} 256-bit words")
        if any(not 0 <= s < BN254_SCALAR_FIELD for s in self.public_signals):
            raise ConfigError("a public signal is not in the BN254 scalar field")

    @classmethod
    def from_snarkjs(cls, proof: Mapping[str, Any], public: Sequence[Any]) -> PlonkProof:
        """From snarkjs' PLONK `proof.json` and `public.json`."""
        try:
            words = [int(proof[name][i]) for name in COMMITMENTS for i in (0, 1)]
            words += [int(proof[name]) for name in EVALUATIONS]
            return cls(tuple(words), tuple(int(s) for s in public))
        except (KeyError, IndexError, TypeError, ValueError):
            raise ConfigError("not a snarkjs PLONK proof") from None

    def to_snarkjs(self) -> tuple[dict[str, Any], list[str]]:
        """`proof.json` and `public.json` as snarkjs writes them."""
        proof: dict[str, Any] = {
            name: [str(self.words[2 * i]), str(self.words[2 * i + 1]), "1"]
            for i, name in enumerate(COMMITMENTS)
        }
        for i, name in enumerate(EVALUATIONS):
            proof[name] = str(self.words[2 * len(COMMITMENTS) + i])
        proof |= {"protocol": "plonk", "curve": "bn128"}
        return proof, [str(s) for s in self.public_signals]

    def calldata(self) -> bytes:
        return abi_encode([_ABI], [list(self.words)])

    def public_inputs(self) -> bytes:
        return encode_signals(list(self.public_signals))

    @classmethod
    def from_calldata(cls, proof: bytes, public_inputs: bytes) -> PlonkProof:
        if len(proof) != 32 * WORDS:
            raise ConfigError(f"a PLONK proof is {32 * WORDS} bytes, got {len(proof)}")
        (words,) = abi_decode([_ABI], proof)
        return cls(tuple(words), tuple(decode_signals(public_inputs)))


class SnarkjsPlonkProver:
    """`Prover` for a circom circuit with a PLONK zkey, on a (shared) snarkjs worker."""

    def __init__(
        self,
        wasm: str | os.PathLike[str],
        zkey: str | os.PathLike[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        worker: SnarkjsWorker | None = None,
    ) -> None:
        self.wasm, self.zkey = Path(wasm).resolve(), Path(zkey).resolve()
        for kind, path in (("wasm", self.wasm), ("PLONK zkey", self.zkey)):
            if not path.is_file():
                raise ConfigError(f"no {kind} file at {path}; run `make circuits` or fix the path")
        self.timeout = timeout
        self._owns_worker = worker is None
        self.worker = worker if worker is not None else SnarkjsWorker()

    async def prove(self, inputs: Mapping[str, Any]) -> PlonkProof | InvalidInputs:
        answer = await self.worker.prove_json(
            self.wasm, self.zkey, inputs, timeout=self.timeout, protocol="plonk"
        )
        if isinstance(answer, InvalidInputs):
            return answer
        try:
            return PlonkProof.from_snarkjs(*answer)
        except ConfigError as exc:
            raise ProverError(f"the snarkjs worker answered no PLONK proof: {exc}") from exc

    async def close(self) -> None:
        if self._owns_worker:
            await self.worker.close()
