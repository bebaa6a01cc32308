"""The owner's client of a deployment: owner settings, two-step ownership, the attestation
authority, a creator's image revocation, and the token (minting, transfers).

Every action is first an `OwnerCall` (chain, contract, function, named arguments) that
a command can show before anything is signed; `send` signs it. Blocking, like
`MarketplaceClient`; web3.py picks the fee fields, as for `kalypso deploy`. A revert
raises the typed error of its reason (`kalypso.errors`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError
from web3.types import TxReceipt

from kalypso.chain.rpc import sync_web3
from kalypso.contracts.web3tx import bind, landed, send
from kalypso.deployment import CONTRACTS_VERSION, Deployment, default_path
from kalypso.devnet import refuse_dev_key
from kalypso.errors import (
    ChainError,
    ConfigError,
    DeploymentError,
    KalypsoError,
    UnauthorizedError,
)

#: The deployment's contracts as the commands name them, and their compiled names.
CONTRACTS = {
    "marketplace": "ProofMarketplace",
    "registry": "GeneratorRegistry",
    "enclaves": "EnclaveRegistry",
    "markets": "MarketRegistry",
    "token": "Token",
}
#: Contracts under two-step ownership (transfer, then accept by the new owner).
TWO_STEP = ("marketplace", "registry", "enclaves")
#: A market's image ids by kind, as indices of `MarketRegistry.market(id)`.
IMAGE_KINDS = {"generator": 4, "ivs": 5, "pvs": 6}
ZERO = "0x" + "00" * 20


@dataclass(frozen=True)
class OwnerCall:
    """One transaction to send: what the owner confirms before it is signed."""

    chain_id: int
    contract: str
    address: str
    function: str
    #: (parameter name as in the ABI, value)
    args: tuple[tuple[str, Any], ...]

    def describe(self) -> str:
        shown = ", ".join(f"{name}={_shown(value)}" for name, value in self.args)
        return f"chain {self.chain_id}: {self.contract} {self.address}\n  {self.function}({shown})"

    def key(self) -> dict[str, Any]:
        """What makes two runs the same action (`kalypso.chain.actions`)."""
        return {
            "contract": self.address,
            "function": self.function,
            **{name: _shown(value) for name, value in self.args},
        }


class AdminClient:
    """A checked deployment, signing as `account` (None: read-only)."""

    def __init__(self, w3: Web3, deployment: Deployment, account: LocalAccount | None) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.account = account
        addresses = {
            "marketplace": deployment.marketplace,
            "registry": deployment.registry,
            "enclaves": deployment.enclave_registry,
            "markets": deployment.market_registry,
            "token": deployment.token,
        }
        self.contracts = {
            key: bind(w3, CONTRACTS[key], address) for key, address in addresses.items() if address
        }
        self._on_sent: Callable[[bytes, int, str], None] | None = None

    @classmethod
    def connect(
        cls,
        rpc_url: str,
        deployment: Path | None = None,
        account: LocalAccount | None = None,
        *,
        role: str = "the owner",
    ) -> AdminClient:
        """The chain at `rpc_url` with its deployment file (by chain id unless given),
        checked to hold the marketplace at this package's version. Refuses the public
        development keys off the devnet."""
        w3 = sync_web3(rpc_url)
        try:
            chain_id = w3.eth.chain_id
        except KalypsoError:
            raise
        except Exception as exc:
            raise ChainError(f"cannot reach {rpc_url}: {exc}") from None
        refuse_dev_key(account, chain_id, role)
        found = Deployment.load(deployment or default_path(chain_id))
        if found.chain_id != chain_id:
            raise ConfigError(
                f"the deployment file is for chain {found.chain_id}, "
                f"but {rpc_url} is chain {chain_id}"
            )
        client = cls(w3, found, account)
        marketplace = client.contracts["marketplace"]
        if not w3.eth.get_code(marketplace.address):
            raise ConfigError(
                f"no contract at the marketplace address {found.marketplace} on chain "
                f"{chain_id}: the deployment file is stale (redeploy or fix the path)"
            )
        version = marketplace.functions.VERSION().call()
        if version != CONTRACTS_VERSION:
            raise DeploymentError(
                f"the marketplace at {found.marketplace} runs contracts {version}; this "
                f"kalypso speaks {CONTRACTS_VERSION}: upgrade kalypso or use its deployment"
            )
        return client

    # ---- what `once` needs

    @property
    def chain_id(self) -> int:
        return self.deployment.chain_id

    @property
    def address(self) -> str:
        if self.account is None:
            raise ConfigError("give a key: --keystore FILE, or KALYPSO_PRIVATE_KEY")
        return str(self.account.address)

    def record(self, on_sent: Callable[[bytes, int, str], None] | None) -> None:
        """Report each transaction signed, as (hash, nonce, function), to `on_sent`."""
        self._on_sent = on_sent

    def landed(self, hashes: list[bytes]) -> TxReceipt | None:
        """The receipt of the first of `hashes` that is known (waiting while pending)."""
        return landed(self.w3, hashes)

    # ---- owner actions

    def call(self, contract: str, function: str, *args: Any) -> OwnerCall:
        """The action `function(*args)` of the deployment's `contract` (a CONTRACTS key)."""
        bound = self._contract(contract)
        abi = next(
            (f for f in bound.abi if f.get("type") == "function" and f.get("name") == function),
            None,
        )
        if abi is None:
            raise ConfigError(f"{CONTRACTS[contract]} has no function {function}")
        names = [str(i["name"]) for i in abi["inputs"]]
        return OwnerCall(
            self.chain_id,
            CONTRACTS[contract],
            bound.address,
            function,
            tuple(zip(names, args, strict=True)),
        )

    def send(self, call: OwnerCall) -> TxReceipt:
        """Sign and send `call` from this client's account; its receipt."""
        if self.account is None:
            raise ConfigError("give a key: --keystore FILE, or KALYPSO_PRIVATE_KEY")
        bound = bind(self.w3, call.contract, call.address)
        fn = bound.get_function_by_name(call.function)(*(value for _, value in call.args))
        return send(self.w3, self.account, fn, on_sent=self._on_sent)

    def set_treasury(self, treasury: str) -> OwnerCall:
        return self.call("marketplace", "set_treasury", address(treasury))

    def set_market_creation_fee(self, fee: int) -> OwnerCall:
        return self.call("marketplace", "set_market_creation_fee", fee)

    def set_matching_engine(self, engine: str, allowed: bool) -> OwnerCall:
        return self.call("marketplace", "set_matching_engine", address(engine), allowed)

    def set_market_matching_engine(self, market_id: int, engine: str, allowed: bool) -> OwnerCall:
        call = "set_market_matching_engine"
        return self.call("marketplace", call, market_id, address(engine), allowed)

    def set_enclave_registry(self, registry: str) -> OwnerCall:
        return self.call("marketplace", "set_enclave_registry", address(registry))

    def set_market_registry(self, registry: str) -> OwnerCall:
        return self.call("marketplace", "set_market_registry", address(registry))

    def set_marketplace(self, marketplace: str) -> OwnerCall:
        return self.call("registry", "set_marketplace", address(marketplace))

    def propose_authority(self, authority: str, matching_engine_image: bytes | None) -> OwnerCall:
        """`matching_engine_image` None keeps the current one."""
        image = matching_engine_image
        if image is None:
            image = bytes(self._contract("enclaves").functions.matching_engine_image().call())
        return self.call("enclaves", "propose_authority", address(authority), image)

    def remove_authority(self, authority: str) -> OwnerCall:
        return self.call("enclaves", "remove_authority", address(authority))

    def revoke_image(self, market_id: int, image: str) -> OwnerCall:
        """`image`: an image id (0x + 64 hex digits), or the market's image of a kind
        (`generator`, `ivs`, `pvs`)."""
        if image in IMAGE_KINDS:
            market = self._contract("markets").functions.market(market_id).call()
            image_id = bytes(market[IMAGE_KINDS[image]])
            if not any(image_id):
                raise ConfigError(f"market {market_id} has no {image} image")
        else:
            image_id = bytes32(image, "an image id")
        return self.call("enclaves", "revoke_image", market_id, image_id)

    def transfer_ownership(self, contract: str, new_owner: str) -> OwnerCall:
        return self.call(contract, "transfer_ownership", address(new_owner))

    def accept_ownership(self, contract: str) -> OwnerCall:
        if contract not in TWO_STEP:
            raise ConfigError(f"{contract} has one-step ownership: nothing to accept")
        return self.call(contract, "accept_ownership")

    # ---- the token

    def set_minter(self, minter: str, allowed: bool) -> OwnerCall:
        self._kalypso_token()
        return self.call("token", "set_minter", address(minter), allowed)

    def mint(self, to: str, amount: int) -> OwnerCall:
        """Refused unless this account may mint (Kalypso's Token: its owner and minters)."""
        if not self._kalypso_token().functions.is_minter(self.address).call():
            owner = self._contract("token").functions.owner().call()
            raise UnauthorizedError(
                "erc20: access is denied",
                f"{self.address} may not mint this token: its owner ({owner}, the deployer "
                "when `kalypso deploy` made it) mints or names minters (`kalypso admin "
                "set-minter`); or ask a holder for `kalypso token transfer`",
            )
        return self.call("token", "mint", address(to), amount)

    def transfer(self, to: str, amount: int) -> OwnerCall:
        return self.call("token", "transfer", address(to), amount)

    def balances(self, who: str) -> tuple[int, int]:
        """(tokens, wei) in `who`'s wallet."""
        checked = Web3.to_checksum_address(address(who))
        tokens = int(self._contract("token").functions.balanceOf(checked).call())
        return tokens, int(self.w3.eth.get_balance(checked))

    def _contract(self, key: str) -> Any:
        if key not in CONTRACTS:
            raise ConfigError(f"no contract {key!r}: name one of {', '.join(CONTRACTS)}")
        if key not in self.contracts:
            raise DeploymentError(f"the deployment file names no {CONTRACTS[key]}")
        return self.contracts[key]

    def _kalypso_token(self) -> Any:
        """The token, checked to be Kalypso's (an ERC20 of `kalypso deploy --token` may
        have no minters at all)."""
        token = self._contract("token")
        try:
            token.functions.is_minter(ZERO).call()
        except (ContractLogicError, BadFunctionCallOutput, ValueError):
            raise ConfigError(
                f"the token {token.address} is not Kalypso's Token (it has no minters): get "
                "tokens from its issuer, or from a holder with `kalypso token transfer`"
            ) from None
        return token


def address(value: str) -> str:
    """`value` checksummed, or a clear error."""
    try:
        return str(Web3.to_checksum_address(value))
    except (ValueError, TypeError):
        raise ConfigError(f"{value!r} is not an address (0x + 40 hex digits)") from None


def bytes32(value: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"{value!r} is not {what} (0x + 64 hex digits)")
    return raw


def _shown(value: Any) -> Any:
    return "0x" + value.hex() if isinstance(value, bytes) else value
