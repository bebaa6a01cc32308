"""The EIP-712 typed data the enclave registry checks, defined once.

Three statements, all in the registry's domain (`Kalypso Enclaves`, version 1, its
chain id and address), so none can be replayed onto another chain or deployment:

- `Enclave(signingKey, encryptionKey, imageId, timestamp)`: the attestation authority
  vouches that an enclave of `imageId` holds these keys (timestamp in milliseconds);
- `ProofValid(marketId, taskId, generator, inputsHash, proofHash)`: a Proof
  Verification Image checked `proof` for this task;
- `InputsInvalid(marketId, taskId, generator, inputsHash)`: a Generator or Input
  Verification Image found this task's inputs unprovable.

Digests are computed here and by `EnclaveRegistry.vy` from the same type strings; a
test checks both against eth-account's EIP-712 encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import encode
from eth_account import Account
from eth_keys.datatypes import PrivateKey, Signature
from eth_keys.exceptions import BadSignature
from eth_utils import keccak, to_checksum_address

from kalypso.errors import AttestationError

DOMAIN_NAME = "Kalypso Enclaves"
DOMAIN_VERSION = "1"
_DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
ENCLAVE_TYPE = "Enclave(address signingKey,bytes32 encryptionKey,bytes32 imageId,uint64 timestamp)"
PROOF_VALID_TYPE = (
    "ProofValid(uint256 marketId,bytes32 taskId,address generator,bytes32 inputsHash,"
    "bytes32 proofHash)"
)
INPUTS_INVALID_TYPE = (
    "InputsInvalid(uint256 marketId,bytes32 taskId,address generator,bytes32 inputsHash)"
)
#: secp256k1 group order / 2: the registry takes only low-s signatures.
_HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


@dataclass(frozen=True)
class Domain:
    """The registry a statement is for."""

    chain_id: int
    registry: str

    def separator(self) -> bytes:
        return keccak(
            encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [
                    keccak(text=_DOMAIN_TYPE),
                    keccak(text=DOMAIN_NAME),
                    keccak(text=DOMAIN_VERSION),
                    self.chain_id,
                    to_checksum_address(self.registry),
                ],
            )
        )

    def digest(self, struct_hash: bytes) -> bytes:
        return keccak(b"\x19\x01" + self.separator() + struct_hash)


@dataclass(frozen=True)
class EnclaveStatement:
    """What the attestation authority signs for an enclave, and the registry stores."""

    signing_key: str
    encryption_key: bytes
    image_id: bytes
    timestamp_ms: int

    def struct_hash(self) -> bytes:
        return keccak(
            encode(
                ["bytes32", "address", "bytes32", "bytes32", "uint64"],
                [
                    keccak(text=ENCLAVE_TYPE),
                    to_checksum_address(self.signing_key),
                    self.encryption_key,
                    self.image_id,
                    self.timestamp_ms,
                ],
            )
        )


@dataclass(frozen=True)
class TaskAttestation:
    """An enclave's verdict on one task: `proof_hash` set for ProofValid, else InputsInvalid."""

    market_id: int
    task_id: bytes
    generator: str
    inputs_hash: bytes
    proof_hash: bytes | None = None

    def struct_hash(self) -> bytes:
        head = [
            self.market_id,
            self.task_id,
            to_checksum_address(self.generator),
            self.inputs_hash,
        ]
        if self.proof_hash is None:
            return keccak(
                encode(
                    ["bytes32", "uint256", "bytes32", "address", "bytes32"],
                    [keccak(text=INPUTS_INVALID_TYPE), *head],
                )
            )
        return keccak(
            encode(
                ["bytes32", "uint256", "bytes32", "address", "bytes32", "bytes32"],
                [keccak(text=PROOF_VALID_TYPE), *head, self.proof_hash],
            )
        )


def sign(domain: Domain, statement: EnclaveStatement | TaskAttestation, key: bytes) -> bytes:
    """The 65-byte (r ‖ s ‖ v) signature of `statement` by the secp256k1 key `key`."""
    signed = Account.unsafe_sign_hash(domain.digest(statement.struct_hash()), key)
    return bytes(signed.signature)


def signer_of(domain: Domain, statement: EnclaveStatement | TaskAttestation, sig: bytes) -> str:
    """Who signed `statement` (checksummed), with the registry's rules: 65 bytes, low s."""
    if len(sig) != 65 or int.from_bytes(sig[32:64], "big") > _HALF_ORDER or sig[64] not in (27, 28):
        raise AttestationError("a statement signature is 65 bytes, low-s, v 27 or 28")
    try:
        signature = Signature(sig[:64] + bytes([sig[64] - 27]))
        public = signature.recover_public_key_from_msg_hash(domain.digest(statement.struct_hash()))
    except BadSignature as exc:
        raise AttestationError(f"the statement signature does not recover: {exc}") from None
    return to_checksum_address(public.to_canonical_address())


def address_of(key: bytes) -> str:
    """The Ethereum address of a secp256k1 private key."""
    return to_checksum_address(PrivateKey(key).public_key.to_canonical_address())
