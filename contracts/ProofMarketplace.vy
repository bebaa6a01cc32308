# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Kalypso proof marketplace
@license Apache-2.0
@notice Proof requests, their assignment to generators and their
        settlement, with internal balances for deposits, earnings and
        refunds. Markets are created in the MarketRegistry (which opens
        them here); generators, stakes and offers live in the
        GeneratorRegistry.
@custom:security Every external function is non-reentrant (each module's
        pragma), except the views the registries read back during a call
        (`market_terms`, `enclave_registry`, `market_registry`). Owner
        functions are behind two-step ownership. The payment token must
        be a plain ERC20: fee-on-transfer and callback tokens are
        unsupported.
"""

from ethereum.ercs import IERC20
from snekmate.auth import ownable
from snekmate.auth import ownable_2step
from .interfaces import IGeneratorRegistry
from .modules import escrow
from .modules import config
from .modules import markets
from .modules import requests

initializes: ownable
initializes: ownable_2step[ownable := ownable]
initializes: escrow
initializes: config[ownable := ownable]
initializes: markets[escrow := escrow, config := config]
initializes: requests[escrow := escrow, config := config, markets := markets]

exports: (
    ownable_2step.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
    escrow.__interface__,
    config.__interface__,
    markets.__interface__,
    requests.__interface__,
)


VERSION: public(constant(String[8])) = "2.0.0"


@deploy
def __init__(token: IERC20, registry: IGeneratorRegistry, treasury: address, market_creation_fee: uint256):
    ownable.__init__()
    ownable_2step.__init__()
    escrow.__init__(token)
    config.__init__(treasury, market_creation_fee)
    requests.__init__(registry)
