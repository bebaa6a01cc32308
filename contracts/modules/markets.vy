# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title What the marketplace keeps of each market
@license Apache-2.0
@notice Markets are created in the MarketRegistry, which writes here, once,
        what every request of a market reads: the verifier, the slashing
        penalty, what settlement depends on, the input verifier and the
        shape of the inputs (two slots, read locally on every request).
        Image ids and metadata stay in the registry.
"""

from ..interfaces import IMarketDirectory
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
MAX_PENALTY: constant(uint256) = 2**88 - 1
# image kinds, for `market_image`
GENERATOR_IMAGE: constant(uint256) = 0
INPUT_VERIFICATION_IMAGE: constant(uint256) = 1
PROOF_VERIFICATION_IMAGE: constant(uint256) = 2
# request kinds a market takes (a bit set)
PUBLIC_REQUESTS: constant(uint256) = 1
PRIVATE_REQUESTS: constant(uint256) = 2
# settlement flags: proofs are attested by the Proof Verification Image
ATTESTED_PROOFS: constant(uint256) = 1
# settlement flags: only the Input Verification Image shows public inputs
# invalid
IVS_ONLY: constant(uint256) = 2


# verifier u160 | slashing penalty u88 | settlement flags u8
_terms: HashMap[uint256, uint256]
# input verifier u160 | public inputs count u8 | request kinds u8; zero for
# an unknown market (a market takes at least one kind)
_shape: HashMap[uint256, uint256]


@external
def open_market(market_id: uint256, creator: address, terms: uint256, shape: uint256, max_fee: uint256) -> uint256:
    """
    @notice The market registry opens a market it created: its terms are
            copied here and the creation fee is taken from the creator.
    @param market_id The new market.
    @param creator Who pays the fee (internal balance, else pulled).
    @param terms verifier | penalty << 160 | flags << 248.
    @param shape input verifier | inputs count << 160 | kinds << 168.
    @param max_fee The most the creator agreed to pay.
    @return The fee taken.
    """
    assert msg.sender == config.market_registry, "markets: not the market registry"
    assert self._shape[market_id] == 0, "markets: market exists"
    fee: uint256 = config.market_creation_fee
    assert fee <= max_fee, "markets: fee above max"
    self._terms[market_id] = terms
    self._shape[market_id] = shape
    escrow._charge(creator, fee)
    escrow._credit(config.treasury, fee)
    return fee


@external
@view
@reentrant
def market_terms(market_id: uint256) -> (uint256, uint256):
    """
    @notice The two packed slots kept here (the registry's `market` view
            unpacks them).
    @param market_id The market.
    @return (terms, shape), zero for an unknown market.
    """
    return self._terms[market_id], self._shape[market_id]


@internal
@pure
def _pack_terms(verifier: address, penalty: uint256, flags: uint256) -> uint256:
    return convert(verifier, uint256) | (penalty << 160) | (flags << 248)


@internal
@pure
def _pack_shape(input_verifier: address, inputs_count: uint256, kinds: uint256) -> uint256:
    return convert(input_verifier, uint256) | (inputs_count << 160) | (kinds << 168)


@internal
@pure
def _address(packed: uint256) -> address:
    return convert(convert(packed & (2**160 - 1), uint160), address)


@internal
@view
def _verifier(market_id: uint256) -> address:
    return self._address(self._terms[market_id])


@internal
@view
def _penalty(market_id: uint256) -> uint256:
    return (self._terms[market_id] >> 160) & MAX_PENALTY


@internal
@view
def _flags(market_id: uint256) -> uint256:
    return self._terms[market_id] >> 248


@internal
@view
def _input_verifier(market_id: uint256) -> address:
    return self._address(self._shape[market_id])


@internal
@view
def _inputs_count(market_id: uint256) -> uint256:
    return (self._shape[market_id] >> 160) & 255


@internal
@view
def _image(market_id: uint256, kind: uint256) -> bytes32:
    return staticcall IMarketDirectory(config.market_registry).market_image(market_id, kind)


@internal
@view
def _check_inputs(market_id: uint256, public_inputs: Bytes[INPUTS_BOUND], private: bool):
    """
    @dev A request's inputs, and whether the market takes its kind.
    """
    shape: uint256 = self._shape[market_id]
    assert shape != 0, "markets: unknown market"
    assert len(public_inputs) <= MAX_INPUTS_BYTES, "markets: inputs too large"
    if private:
        assert shape & (PRIVATE_REQUESTS << 168) != 0, "requests: market takes no private inputs"
    else:
        assert shape & (PUBLIC_REQUESTS << 168) != 0, "requests: market takes private inputs only"
    self._check_signals((shape >> 160) & 255, public_inputs)


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
