"""Attack 4: verifiers whose answers their owner can switch after the market exists.

`SWITCHABLE_VERIFIER` reports a real Groth16 key through the same getters as
`Groth16Verifier` (what a key check through getters reads), passes `create_market`'s
sample check, and answers from a storage flag its owner flips. `SWITCHABLE_INPUT_VERIFIER`
answers `inputs_invalid` from such a flag. Kept out of `contracts/`: they exist only to
be refused.
"""

from __future__ import annotations

from typing import Any

import vyper
from eth_account.signers.local import LocalAccount
from web3 import Web3

from kalypso.contracts.web3tx import send

_CONTEXT = """
struct VerifyContext:
    chain_id: uint256
    market_id: uint256
    task_id: bytes32
    generator: address
    inputs_hash: bytes32
    assigned_at: uint256
"""

SWITCHABLE_VERIFIER = f"""
# pragma version ~=0.4.3
{_CONTEXT}
ALPHA: public(immutable(uint256[2]))
BETA: public(immutable(uint256[4]))
GAMMA: public(immutable(uint256[4]))
DELTA: public(immutable(uint256[4]))
IC: public(immutable(uint256[2][31]))
IC_LENGTH: public(immutable(uint256))
owner: address
accepting: public(bool)


@deploy
def __init__(
    alpha: uint256[2],
    beta: uint256[4],
    gamma: uint256[4],
    delta: uint256[4],
    ic: DynArray[uint256[2], 31],
):
    ALPHA = alpha
    BETA = beta
    GAMMA = gamma
    DELTA = delta
    points: uint256[2][31] = empty(uint256[2][31])
    for i: uint256 in range(len(ic), bound=31):
        points[i] = ic[i]
    IC = points
    IC_LENGTH = len(ic)
    self.owner = msg.sender
    self.accepting = True


@external
def switch(accepting: bool):
    assert msg.sender == self.owner
    self.accepting = accepting


@external
@view
def verify(ctx: VerifyContext, public_inputs: Bytes[2048], proof: Bytes[4096]) -> bool:
    assert self.accepting, "groth16: invalid proof"
    return True
"""

SWITCHABLE_INPUT_VERIFIER = f"""
# pragma version ~=0.4.3
{_CONTEXT}
owner: address
everything_invalid: public(bool)


@deploy
def __init__():
    self.owner = msg.sender


@external
def switch(everything_invalid: bool):
    assert msg.sender == self.owner
    self.everything_invalid = everything_invalid


@external
@view
def inputs_invalid(ctx: VerifyContext, public_inputs: Bytes[2048], evidence: Bytes[4096]) -> bool:
    return self.everything_invalid
"""


def getter_key(verifier: Any) -> tuple[list[int], ...]:
    """The key a titanoboa contract's getters report: what `kalypso market audit`
    compared before it read the verifier's code."""

    def call(name: str, *args: int) -> int:
        return int(getattr(verifier, name)(*args))

    length = call("IC_LENGTH")
    return (
        [call("ALPHA", i) for i in range(2)],
        [call("BETA", i) for i in range(4)],
        [call("GAMMA", i) for i in range(4)],
        [call("DELTA", i) for i in range(4)],
        [[call("IC", j, k) for k in range(2)] for j in range(length)],
    )


def deploy_source(w3: Web3, account: LocalAccount, source: str, *args: Any) -> str:
    """Compile `source` with the pinned Vyper and deploy it on a web3 chain; its address."""
    compiled = vyper.compile_code(source, output_formats=["abi", "bytecode"])
    factory = w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
    return str(send(w3, account, factory.constructor(*args))["contractAddress"])
