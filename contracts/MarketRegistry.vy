# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Market registry: one market per circuit
@license Apache-2.0
@notice Creates markets and keeps their terms. A market fixes its verifier,
        its input verifier, its slashing penalty, its enclave image ids and
        the requests it takes for life: a change is a new market, so a
        task's terms can never move under it. A sample proof is checked at
        creation so a market with a broken verifier cannot take requests.
        The marketplace keeps a copy of what every request reads (verifier,
        penalty, input verifier, input shape), written once here.
        A market declares the requests it takes (public inputs only,
        private inputs only, or both) and must be able to settle each:
        every request has a proof or a way to show its inputs invalid
        (public: an input verifier or an Input Verification Image;
        private: the Generator Image, the only party that opens them).
@custom:security `all_inputs_provable` is the creator's word that every
        well-formed public input is provable (the generator can compute a
        witness from it); it is refused for markets that take secrets,
        whose preimage nobody but the Generator Image can check. The
        verifier's code is not checked here: `kalypso market audit` does
        that off-chain.
"""

from .interfaces import IVerifier
from .interfaces import IMarketplace
from .modules import markets


struct MarketParams:
    verifier: address
    input_verifier: address
    slashing_penalty: uint256
    generator_image: bytes32
    input_verification_image: bytes32
    proof_verification_image: bytes32
    # 0: public inputs are opaque bytes; n: ABI `uint256[n]` of field elements
    public_inputs_count: uint256
    # the creator declares that every well-formed public input is provable
    all_inputs_provable: bool
    # markets.PUBLIC_REQUESTS | markets.PRIVATE_REQUESTS: what it takes
    request_kinds: uint256


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
    request_kinds: uint256


# What is kept here; the marketplace keeps the rest (`IMarketplace`).
struct MarketInfo:
    creator: address
    generator_image: bytes32
    input_verification_image: bytes32
    proof_verification_image: bytes32
    metadata_hash: bytes32


MARKETPLACE: public(immutable(IMarketplace))

_info: HashMap[uint256, MarketInfo]
market_count: public(reentrant(uint256))


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
    request_kinds: uint256
    fee: uint256
    metadata: Bytes[markets.METADATA_BOUND]


@deploy
def __init__(marketplace: IMarketplace):
    """
    @param marketplace The marketplace whose markets these are; its owner
           binds this registry to it (`set_market_registry`).
    """
    assert marketplace.address != empty(address), "markets: zero marketplace"
    MARKETPLACE = marketplace


@external
def create_market(
    params: MarketParams,
    metadata: Bytes[markets.METADATA_BOUND],
    sample_inputs: Bytes[markets.INPUTS_BOUND],
    sample_proof: Bytes[markets.PROOF_BOUND],
    max_fee: uint256,
) -> uint256:
    """
    @notice Create a market. Its terms are immutable. The creation fee is
            taken by the marketplace from the caller's internal balance, or
            pulled (approve the marketplace).
    @param params Verifier, input verifier, penalty, image ids, input
           shape, the requests it takes.
    @param metadata Circuit name, artifact URI and hashes, input schema
           (JSON); only its hash is stored, the bytes are in the event.
    @param sample_inputs Public inputs of a sample proof.
    @param sample_proof A proof the verifier must accept.
    @param max_fee The most the caller pays: a fee change the owner sends
           just before cannot take more.
    @return The new market's id.
    """
    assert params.verifier.is_contract, "markets: verifier not a contract"
    assert params.input_verifier == empty(address) or params.input_verifier.is_contract, "markets: input verifier not a contract"
    assert params.slashing_penalty > 0, "markets: zero penalty"
    assert params.slashing_penalty <= markets.MAX_PENALTY, "markets: penalty too large"
    assert params.public_inputs_count <= markets.MAX_SIGNALS, "markets: too many public inputs"
    flags: uint256 = self._settlement_flags(params)
    market_id: uint256 = self.market_count
    markets._check_signals(params.public_inputs_count, sample_inputs)
    ctx: IVerifier.VerifyContext = IVerifier.VerifyContext(
        chain_id=chain.id,
        market_id=market_id,
        task_id=empty(bytes32),
        generator=msg.sender,
        inputs_hash=keccak256(sample_inputs),
        assigned_at=block.timestamp,
    )
    assert staticcall IVerifier(params.verifier).verify(ctx, sample_inputs, sample_proof), "markets: sample proof rejected"

    self.market_count = market_id + 1
    self._info[market_id] = MarketInfo(
        creator=msg.sender,
        generator_image=params.generator_image,
        input_verification_image=params.input_verification_image,
        proof_verification_image=params.proof_verification_image,
        metadata_hash=keccak256(metadata),
    )
    terms: uint256 = markets._pack_terms(params.verifier, params.slashing_penalty, flags)
    shape: uint256 = markets._pack_shape(params.input_verifier, params.public_inputs_count, params.request_kinds)
    fee: uint256 = extcall MARKETPLACE.open_market(market_id, msg.sender, terms, shape, max_fee)
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
        request_kinds=params.request_kinds,
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
            of public inputs (0: opaque bytes), the metadata hash and the
            requests it takes (1 public, 2 private, 3 both).
    """
    info: MarketInfo = self._info[market_id]
    terms: uint256 = 0
    shape: uint256 = 0
    terms, shape = staticcall MARKETPLACE.market_terms(market_id)
    return Market(
        creator=info.creator,
        verifier=markets._address(terms),
        input_verifier=markets._address(shape),
        slashing_penalty=(terms >> 160) & markets.MAX_PENALTY,
        generator_image=info.generator_image,
        input_verification_image=info.input_verification_image,
        proof_verification_image=info.proof_verification_image,
        public_inputs_count=(shape >> 160) & 255,
        metadata_hash=info.metadata_hash,
        request_kinds=shape >> 168,
    )


@external
@view
@reentrant
def market_creator(market_id: uint256) -> address:
    """
    @notice Who created a market (it may revoke the market's images).
    @param market_id The market.
    @return The creator, or the zero address for an unknown market.
    """
    return self._info[market_id].creator


@external
@view
@reentrant
def market_image(market_id: uint256, kind: uint256) -> bytes32:
    """
    @notice One of a market's enclave image ids, read alone (one slot).
    @dev Immutable once written, so safe to read during a settlement.
    @param market_id The market.
    @param kind 0 Generator, 1 Input Verification, 2 Proof Verification.
    @return The image id, or zero when the market has none of that kind.
    """
    if kind == markets.GENERATOR_IMAGE:
        return self._info[market_id].generator_image
    if kind == markets.INPUT_VERIFICATION_IMAGE:
        return self._info[market_id].input_verification_image
    assert kind == markets.PROOF_VERIFICATION_IMAGE, "markets: bad image kind"
    return self._info[market_id].proof_verification_image


@external
@view
@reentrant
def enclave_registry() -> address:
    """
    @notice The enclave registry the marketplace trusts for attestations.
    @return Its address (zero until the owner sets it).
    """
    return staticcall MARKETPLACE.enclave_registry()


@internal
@view
def _settlement_flags(params: MarketParams) -> uint256:
    """
    @dev Every request the market takes must have a proof or a way to be
         shown invalid; returns what its settlement depends on.
    """
    kinds: uint256 = params.request_kinds
    assert kinds >= markets.PUBLIC_REQUESTS and kinds <= markets.PUBLIC_REQUESTS | markets.PRIVATE_REQUESTS, "markets: bad request kinds"
    flags: uint256 = 0
    if kinds & markets.PRIVATE_REQUESTS != 0:
        assert params.generator_image != empty(bytes32), "markets: private inputs need a generator image"
        assert not params.all_inputs_provable, "markets: provable markets take no private inputs"
    if kinds & markets.PUBLIC_REQUESTS != 0 and params.input_verifier == empty(address):
        if params.input_verification_image != empty(bytes32):
            flags |= markets.IVS_ONLY
        else:
            assert params.all_inputs_provable, "markets: no invalid-input path for public inputs"
    if params.verifier == staticcall MARKETPLACE.enclave_registry():
        assert params.proof_verification_image != empty(bytes32), "markets: attested proofs need a proof verification image"
        flags |= markets.ATTESTED_PROOFS
    return flags
