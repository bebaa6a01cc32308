"""Domain types mirroring the contracts' structs and constants."""

from __future__ import annotations

from dataclasses import astuple, dataclass, replace
from enum import IntEnum

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from kalypso.errors import ConfigError

BN254_SCALAR_FIELD = 21888242871839275222246405745257275088548364400416034343698204186575808495617
#: Inline size caps (contracts: markets.MAX_INPUTS_BYTES, requests.MAX_SECRET_BYTES).
MAX_INPUTS_BYTES = 1024
MAX_SECRET_BYTES = 1024
MAX_SIGNALS = 30
MIN_PROOF_TIME = 1
MAX_PROOF_TIME = 86_400
MAX_EXPIRY_HORIZON = 30 * 86_400
MAX_PRICE = 2**96 - 1
#: markets.MAX_PENALTY: the penalty shares a slot with the verifier and flags.
MAX_PENALTY = 2**88 - 1

REQUEST_ABI_TYPE = "(uint256,address,address,uint256,uint256,uint256,bytes32,bytes32)"


class RequestState(IntEnum):
    """`requests.vy` request states; the task id is the request id."""

    UNKNOWN = 0
    OPEN = 1
    ASSIGNED = 2
    FULFILLED = 3
    INVALID_INPUTS = 4
    #: cancelled by the requester or expired unassigned; refunded in full
    CLOSED = 5
    SLASHED = 6

    @property
    def is_final(self) -> bool:
        return self >= RequestState.FULFILLED


class RequestKinds(IntEnum):
    """The requests a market takes (`MarketParams.request_kinds`, a bit set)."""

    #: public inputs only (a generator computes any private signal itself)
    PUBLIC = 1
    #: private inputs only, opened by the market's Generator Image
    PRIVATE = 2
    BOTH = 3

    def takes(self, private: bool) -> bool:
        return bool(self & (RequestKinds.PRIVATE if private else RequestKinds.PUBLIC))


class GeneratorStatus(IntEnum):
    UNREGISTERED = 0
    ACTIVE = 1
    EXITING = 2


@dataclass(frozen=True)
class Request:
    """The committed fields of a request (`requests.Request`); pass them back to act on it."""

    market_id: int
    requester: str
    refund_address: str
    max_price: int
    proof_time: int
    expiry: int
    inputs_hash: bytes
    secret_hash: bytes

    @classmethod
    def new(
        cls,
        *,
        market_id: int,
        requester: str,
        refund_address: str,
        max_price: int,
        proof_time: int,
        expiry: int,
        public_inputs: bytes,
        encrypted_secret: bytes = b"",
    ) -> Request:
        return cls(
            market_id=market_id,
            requester=to_checksum_address(requester),
            refund_address=to_checksum_address(refund_address),
            max_price=max_price,
            proof_time=proof_time,
            expiry=expiry,
            inputs_hash=keccak(public_inputs),
            secret_hash=keccak(encrypted_secret),
        )

    def as_tuple(self) -> tuple[int, str, str, int, int, int, bytes, bytes]:
        return astuple(self)

    def with_max_price(self, max_price: int) -> Request:
        return replace(self, max_price=max_price)

    def commitment(self) -> bytes:
        """What the contract stores: keccak256(abi.encode(request))."""
        return keccak(abi_encode([REQUEST_ABI_TYPE], [self.as_tuple()]))


@dataclass(frozen=True)
class TaskState:
    """The packed state slot of a request (`request_state(id)`)."""

    state: RequestState
    generator_index: int
    deadline: int
    price: int
    compute: int

    @classmethod
    def from_tuple(cls, values: tuple[int, int, int, int, int]) -> TaskState:
        state, index, deadline, price, compute = values
        return cls(RequestState(state), index, deadline, price, compute)


@dataclass(frozen=True)
class VerifyContext:
    """`IVerifier.VerifyContext`: the task a market's verifier judges a proof for."""

    chain_id: int
    market_id: int
    task_id: bytes
    generator: str
    inputs_hash: bytes
    #: the task's deadline minus its request's proof time
    assigned_at: int

    @classmethod
    def sample(cls, chain_id: int = 31337) -> VerifyContext:
        """A context with no task, as for a market's sample proof."""
        return cls(chain_id, 0, b"\x00" * 32, "0x" + "00" * 20, b"\x00" * 32, 0)

    def as_tuple(self) -> tuple[int, int, bytes, str, bytes, int]:
        return astuple(self)


@dataclass(frozen=True)
class MarketParams:
    """`markets.MarketParams`: a market's immutable terms."""

    verifier: str
    slashing_penalty: int
    input_verifier: str = "0x" + "00" * 20
    generator_image: bytes = b"\x00" * 32
    input_verification_image: bytes = b"\x00" * 32
    proof_verification_image: bytes = b"\x00" * 32
    public_inputs_count: int = 0
    #: the creator's word that every well-formed public input is provable
    all_inputs_provable: bool = False
    request_kinds: RequestKinds = RequestKinds.PUBLIC

    def as_tuple(self) -> tuple[str, str, int, bytes, bytes, bytes, int, bool, int]:
        return (
            self.verifier,
            self.input_verifier,
            self.slashing_penalty,
            self.generator_image,
            self.input_verification_image,
            self.proof_verification_image,
            self.public_inputs_count,
            self.all_inputs_provable,
            int(self.request_kinds),
        )


def request_id(chain_id: int, marketplace: str, requester: str, salt: bytes) -> bytes:
    """keccak256(abi.encode(chain id, marketplace, requester, salt)), as the contract computes."""
    return keccak(
        abi_encode(
            ["uint256", "address", "address", "bytes32"],
            [chain_id, to_checksum_address(marketplace), to_checksum_address(requester), salt],
        )
    )


def encode_signals(signals: list[int]) -> bytes:
    """Public signals as the ABI encoding of `uint256[]` (snarkjs `public.json` order)."""
    for value in signals:
        if not 0 <= value < BN254_SCALAR_FIELD:
            raise ConfigError(f"public signal {value} is not in the BN254 scalar field")
    encoded = abi_encode(["uint256[]"], [signals])
    if len(encoded) > MAX_INPUTS_BYTES:
        raise ConfigError(
            f"{len(signals)} public signals take {len(encoded)} bytes; inline inputs are "
            f"capped at {MAX_INPUTS_BYTES} bytes"
        )
    return encoded


def decode_signals(data: bytes) -> list[int]:
    """The inverse of `encode_signals`; raises ConfigError on malformed bytes."""
    try:
        (values,) = abi_decode(["uint256[]"], data, strict=True)
    except Exception as exc:
        raise ConfigError(f"public inputs are not an ABI uint256[]: {exc}") from None
    return list(values)
