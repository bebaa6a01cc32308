# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Owner settings of the marketplace
@license Apache-2.0
@notice Treasury, market creation fee, the registries it trusts and the
        authorized matching engines (global, or for one market so that shards do not share a
        key). Every setter is for the owner, under two-step ownership.
"""

from snekmate.auth import ownable

uses: ownable


treasury: public(address)
market_creation_fee: public(uint256)
# engine => allowed for every market
matching_engines: public(HashMap[address, bool])
# market id => engine => allowed for this market
market_matching_engines: public(HashMap[uint256, HashMap[address, bool]])
# checks enclave attestations of invalid inputs; set once
enclave_registry: public(reentrant(address))
# creates markets and opens them here; set once
market_registry: public(reentrant(address))


event TreasurySet:
    treasury: indexed(address)


event MarketCreationFeeSet:
    fee: uint256


event MatchingEngineSet:
    engine: indexed(address)
    allowed: bool


event EnclaveRegistrySet:
    registry: indexed(address)


event MarketRegistrySet:
    registry: indexed(address)


event MarketMatchingEngineSet:
    market_id: indexed(uint256)
    engine: indexed(address)
    allowed: bool


@deploy
def __init__(treasury: address, market_creation_fee: uint256):
    assert treasury != empty(address), "config: zero treasury"
    self.treasury = treasury
    self.market_creation_fee = market_creation_fee


@external
def set_treasury(treasury: address):
    """
    @notice Set where fees and the treasury's share of slashes are credited.
    @param treasury New treasury; its internal balance receives them.
    """
    ownable._check_owner()
    assert treasury != empty(address), "config: zero treasury"
    self.treasury = treasury
    log TreasurySet(treasury=treasury)


@external
def set_market_creation_fee(fee: uint256):
    """
    @notice Set the fee that creating a market pays to the treasury.
    @param fee Amount in the token's base unit.
    """
    ownable._check_owner()
    self.market_creation_fee = fee
    log MarketCreationFeeSet(fee=fee)


@external
def set_matching_engine(engine: address, allowed: bool):
    """
    @notice Allow or disallow `engine` to assign requests of every market.
    @param engine The engine's signing address.
    @param allowed True to allow.
    """
    ownable._check_owner()
    assert engine != empty(address), "config: zero address"
    self.matching_engines[engine] = allowed
    log MatchingEngineSet(engine=engine, allowed=allowed)


@external
def set_market_matching_engine(market_id: uint256, engine: address, allowed: bool):
    """
    @notice Allow or disallow `engine` to assign requests of one market.
    @param market_id The market.
    @param engine The engine's signing address.
    @param allowed True to allow.
    """
    ownable._check_owner()
    assert engine != empty(address), "config: zero address"
    self.market_matching_engines[market_id][engine] = allowed
    log MarketMatchingEngineSet(market_id=market_id, engine=engine, allowed=allowed)


@external
def set_enclave_registry(registry: address):
    """
    @notice Set, once, the enclave registry that checks attestations of
            invalid inputs (it is bound to this marketplace in turn).
    @param registry The EnclaveRegistry.
    """
    ownable._check_owner()
    assert self.enclave_registry == empty(address), "config: enclave registry already set"
    assert registry.is_contract, "config: enclave registry not a contract"
    self.enclave_registry = registry
    log EnclaveRegistrySet(registry=registry)


@external
def set_market_registry(registry: address):
    """
    @notice Set, once, the market registry: it alone opens markets here.
    @param registry The MarketRegistry (bound to this marketplace).
    """
    ownable._check_owner()
    assert self.market_registry == empty(address), "config: market registry already set"
    assert registry.is_contract, "config: market registry not a contract"
    self.market_registry = registry
    log MarketRegistrySet(registry=registry)


@internal
@view
def _is_matching_engine(engine: address, market_id: uint256) -> bool:
    return self.matching_engines[engine] or self.market_matching_engines[market_id][engine]
