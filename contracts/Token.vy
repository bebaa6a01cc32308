# pragma version ~=0.4.3
"""
@title Kalypso payment token (development deployments)
@license Apache-2.0
@notice snekmate's ERC20 with owner-controlled minting: rewards, stakes
        and fees on the devnet and test networks. Real deployments may
        use any plain ERC20 instead.
"""

from snekmate.auth import ownable
from snekmate.tokens import erc20

initializes: ownable
initializes: erc20[ownable := ownable]

exports: erc20.__interface__


@deploy
def __init__(name: String[25], symbol: String[5], initial_supply: uint256):
    ownable.__init__()
    erc20.__init__(name, symbol, 18, name, "1")
    erc20._mint(msg.sender, initial_supply)
