# pragma version ~=0.4.3
"""
@title Markets: one per circuit
@license Apache-2.0
@notice A market fixes its verifier, its input verifier, its slashing
        penalty and its enclave image ids for life: a change is a new
        market, so a task's terms can never move under it. A sample proof
        is checked at creation so a market with a broken verifier cannot
        take requests.
"""

from ..interfaces import IVerifier
from . import escrow
from . import config

uses: escrow
uses: config


# BN254 scalar field modulus: circom signals wrap modulo it.
SNARK_SCALAR_FIELD: constant(uint256) = 21888242871839275222246405745257275088548364400416034343698204186575808495617
# Inline public inputs are capped; larger inputs go by reference.
MAX_INPUTS_BYTES: constant(uint256) = 1024
INPUTS_BOUND: constant(uint256) = 2048
MAX_SIGNALS: constant(uint256) = 30
METADATA_BOUND: constant(uint256) = 4096
PROOF_BOUND: constant(uint256) = 4096
# image kinds, for `market_image`
GENERATOR_IMAGE: constant(uint256) = 0
INPUT_VERIFICATION_IMAGE: constant(uint256) = 1
PROOF_VERIFICATION_IMAGE: constant(uint256) = 2


struct MarketParams:
    verifier: address
    input_verifier: address
    slashing_penalty: uint256
    generator_image: bytes32
    input_verification_image: bytes32
    proof_verification_image: bytes32
    # 0: public inputs are opaque bytes; n: ABI `uint256[n]` of field elements
    public_inputs_count: uint256
    # the creator declares that every well-formed input is provable
    all_inputs_provable: bool


struct Market:
    creator: address
    verifier: address
    input_verifier: address
    slashing_penalty: uint256
    generator_image: bytes32
    input_verification_image: bytes32
    proof_verification_image: bytes32
    public_inputs_count: uint256
    metadata_hash: bytes32


# What a market stores besides its terms (the `market` view adds them).
struct MarketInfo:
    creator: address
    input_verifier: address
    generator_image: bytes32
    input_verification_image: bytes32
    proof_verification_image: bytes32
    public_inputs_count: uint256
    metadata_hash: bytes32


MAX_PENALTY: constant(uint256) = 2**96 - 1

_info: HashMap[uint256, MarketInfo]
# verifier u160 | slashing penalty u96: every task reads both, in one slot
_terms: HashMap[uint256, uint256]
market_count: public(uint256)


event MarketCreated:
    market_id: indexed(uint256)
    creator: indexed(address)
    verifier: address
    input_verifier: address
    slashing_penalty: uint256
    generator_image: bytes32
    input_verification_image: bytes32
    proof_verification_image: bytes32
    public_inputs_count: uint256
    fee: uint256
    metadata: Bytes[METADATA_BOUND]


@external
def create_market(
    params: MarketParams,
    metadata: Bytes[METADATA_BOUND],
    sample_inputs: Bytes[INPUTS_BOUND],
    sample_proof: Bytes[PROOF_BOUND],
) -> uint256:
    """
    @notice Create a market. Its terms are immutable. The creation fee is
            taken from the caller's internal balance or pulled.
    @param params Verifier, input verifier, penalty, image ids, input shape.
    @param metadata Circuit name, artifact URI and hashes, input schema
           (JSON); only its hash is stored, the bytes are in the event.
    @param sample_inputs Public inputs of a sample proof.
    @param sample_proof A proof the verifier must accept.
    @return The new market's id.
    """
    assert params.verifier.is_contract, "markets: verifier not a contract"
    assert params.input_verifier == empty(address) or params.input_verifier.is_contract, "markets: input verifier not a contract"
    assert params.slashing_penalty > 0, "markets: zero penalty"
    assert params.slashing_penalty <= MAX_PENALTY, "markets: penalty too large"
    assert params.public_inputs_count <= MAX_SIGNALS, "markets: too many public inputs"
    assert (
        params.input_verifier != empty(address)
        or params.input_verification_image != empty(bytes32)
        or params.generator_image != empty(bytes32)
        or params.all_inputs_provable
    ), "markets: no invalid-input path"

    market_id: uint256 = self.market_count
    self._check_signals(params.public_inputs_count, sample_inputs)
    ctx: IVerifier.VerifyContext = IVerifier.VerifyContext(
        chain_id=chain.id,
        market_id=market_id,
        task_id=empty(bytes32),
        generator=msg.sender,
        inputs_hash=keccak256(sample_inputs),
        assigned_at=block.timestamp,
    )
    assert staticcall IVerifier(params.verifier).verify(ctx, sample_inputs, sample_proof), "markets: sample proof rejected"

    fee: uint256 = config.market_creation_fee
    escrow._charge(msg.sender, fee)
    escrow._credit(config.treasury, fee)

    self.market_count = market_id + 1
    self._terms[market_id] = convert(params.verifier, uint256) | (params.slashing_penalty << 160)
    self._info[market_id] = MarketInfo(
        creator=msg.sender,
        input_verifier=params.input_verifier,
        generator_image=params.generator_image,
        input_verification_image=params.input_verification_image,
        proof_verification_image=params.proof_verification_image,
        public_inputs_count=params.public_inputs_count,
        metadata_hash=keccak256(metadata),
    )
    log MarketCreated(
        market_id=market_id,
        creator=msg.sender,
        verifier=params.verifier,
        input_verifier=params.input_verifier,
        slashing_penalty=params.slashing_penalty,
        generator_image=params.generator_image,
        input_verification_image=params.input_verification_image,
        proof_verification_image=params.proof_verification_image,
        public_inputs_count=params.public_inputs_count,
        fee=fee,
        metadata=metadata,
    )
    return market_id


@external
@view
def market(market_id: uint256) -> Market:
    """
    @notice A market's immutable terms.
    @param market_id The market.
    @return creator, verifier, input verifier, penalty, image ids, number
            of public inputs (0: opaque bytes) and the metadata hash.
    """
    info: MarketInfo = self._info[market_id]
    return Market(
        creator=info.creator,
        verifier=self._verifier(market_id),
        input_verifier=info.input_verifier,
        slashing_penalty=self._penalty(market_id),
        generator_image=info.generator_image,
        input_verification_image=info.input_verification_image,
        proof_verification_image=info.proof_verification_image,
        public_inputs_count=info.public_inputs_count,
        metadata_hash=info.metadata_hash,
    )


@external
@view
def market_creator(market_id: uint256) -> address:
    """
    @notice Who created a market (it may revoke the market's images).
    @param market_id The market.
    @return The creator, or the zero address for an unknown market.
    """
    return self._info[market_id].creator


@external
@view
def market_image(market_id: uint256, kind: uint256) -> bytes32:
    """
    @notice One of a market's enclave image ids, read alone (one slot).
    @param market_id The market.
    @param kind 0 Generator, 1 Input Verification, 2 Proof Verification.
    @return The image id, or zero when the market has none of that kind.
    """
    return self._image(market_id, kind)


@internal
@view
def _image(market_id: uint256, kind: uint256) -> bytes32:
    if kind == GENERATOR_IMAGE:
        return self._info[market_id].generator_image
    if kind == INPUT_VERIFICATION_IMAGE:
        return self._info[market_id].input_verification_image
    assert kind == PROOF_VERIFICATION_IMAGE, "markets: bad image kind"
    return self._info[market_id].proof_verification_image


@internal
@view
def _verifier(market_id: uint256) -> address:
    return convert(convert(self._terms[market_id] & (2**160 - 1), uint160), address)


@internal
@view
def _penalty(market_id: uint256) -> uint256:
    return self._terms[market_id] >> 160


@internal
@view
def _input_verifier(market_id: uint256) -> address:
    return self._info[market_id].input_verifier


@internal
@view
def _inputs_count(market_id: uint256) -> uint256:
    return self._info[market_id].public_inputs_count


@internal
@view
def _check_inputs(market_id: uint256, public_inputs: Bytes[INPUTS_BOUND]):
    assert market_id < self.market_count, "markets: unknown market"
    assert len(public_inputs) <= MAX_INPUTS_BYTES, "markets: inputs too large"
    self._check_signals(self._info[market_id].public_inputs_count, public_inputs)


@internal
@pure
def _check_signals(count: uint256, public_inputs: Bytes[INPUTS_BOUND]):
    """
    @dev For markets that declare `count` field elements, the inputs must
         be the ABI encoding of exactly `count` canonical field elements:
         a value >= the modulus would wrap in the circuit.
    """
    if count == 0:
        return
    assert len(public_inputs) == 64 + 32 * count, "markets: wrong input count"
    signals: DynArray[uint256, MAX_SIGNALS] = abi_decode(public_inputs, DynArray[uint256, MAX_SIGNALS])
    assert len(signals) == count, "markets: wrong input count"
    for signal: uint256 in signals:
        assert signal < SNARK_SCALAR_FIELD, "markets: input not in field"
