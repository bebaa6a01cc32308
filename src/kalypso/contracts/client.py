"""A small synchronous client of a deployment: one method per contract operation.

For the devnet, the demo, benchmarks and integration tests. Apps use `kalypso.sdk`,
daemons the async `kalypso.chain`; this one blocks and returns receipts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import RPCEndpoint, TxReceipt

from kalypso.chain.rpc import sync_web3
from kalypso.contracts.web3tx import bind, send
from kalypso.deployment import Deployment, default_path
from kalypso.errors import ChainError, ConfigError
from kalypso.market import MarketParams, Request, TaskState, request_id

MAX_UINT = 2**256 - 1


@dataclass(frozen=True)
class PostedRequest:
    id: bytes
    request: Request
    public_inputs: bytes
    receipt: TxReceipt

    def with_max_price(self, max_price: int) -> PostedRequest:
        """The request as committed after `increase_max_price`."""
        return replace(self, request=self.request.with_max_price(max_price))


class MarketplaceClient:
    def __init__(self, w3: Web3, deployment: Deployment) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.token = bind(w3, "Token", deployment.token)
        self.registry = bind(w3, "GeneratorRegistry", deployment.registry)
        self.marketplace = bind(w3, "ProofMarketplace", deployment.marketplace)
        self.markets = bind(w3, "MarketRegistry", deployment.market_registry)

    @classmethod
    def connect(cls, rpc_url: str, deployment: Path | None = None) -> MarketplaceClient:
        """The chain at `rpc_url` and its deployment file (by chain id unless given),
        checked to belong together."""
        w3 = sync_web3(rpc_url)
        try:
            chain_id = w3.eth.chain_id
        except Exception as exc:
            raise ChainError(f"cannot reach {rpc_url}: {exc}") from None
        found = Deployment.load(deployment or default_path(chain_id))
        if found.chain_id != chain_id:
            raise ConfigError(
                f"the deployment file is for chain {found.chain_id}, "
                f"but {rpc_url} is chain {chain_id}"
            )
        return cls(w3, found)

    # ---- chain

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def time_travel(self, seconds: int) -> None:
        """Devnet only: move the chain's clock forward and mine a block."""
        self.w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [seconds])
        self.w3.provider.make_request(RPCEndpoint("evm_mine"), [])

    # ---- administration and markets

    def set_matching_engine(
        self, owner: LocalAccount, engine: str, allowed: bool = True
    ) -> TxReceipt:
        call = self.marketplace.functions.set_matching_engine(engine, allowed)
        return send(self.w3, owner, call)

    def market_count(self) -> int:
        """The id the next `create_market` gets."""
        return int(self.markets.functions.market_count().call())

    def market_creation_fee(self) -> int:
        return int(self.marketplace.functions.market_creation_fee().call())

    def create_market(
        self,
        account: LocalAccount,
        params: MarketParams,
        metadata: bytes,
        sample_inputs: bytes,
        sample_proof: bytes,
        max_fee: int | None = None,
        *,
        on_sent: Callable[[bytes, int, str], None] | None = None,
    ) -> TxReceipt:
        """`max_fee`: the most the creator pays; by default the fee read now, so a fee
        raised before the transaction is mined makes it revert instead of costing more.
        `on_sent` as `send`'s."""
        fee = self.market_creation_fee() if max_fee is None else max_fee
        call = self.markets.functions.create_market(
            params.as_tuple(), metadata, sample_inputs, sample_proof, fee
        )
        return send(self.w3, account, call, on_sent=on_sent)

    # ---- balances

    def approve_all(self, account: LocalAccount) -> None:
        for spender in (self.marketplace.address, self.registry.address):
            send(self.w3, account, self.token.functions.approve(spender, MAX_UINT))

    def transfer(self, account: LocalAccount, to: str, amount: int) -> TxReceipt:
        """Tokens from `account`'s wallet to `to`'s."""
        return send(self.w3, account, self.token.functions.transfer(to, amount))

    def deposit(self, account: LocalAccount, amount: int) -> TxReceipt:
        return send(self.w3, account, self.marketplace.functions.deposit(amount))

    def withdraw(self, account: LocalAccount, amount: int) -> TxReceipt:
        return send(self.w3, account, self.marketplace.functions.withdraw(amount, account.address))

    def balance(self, address: str) -> int:
        return int(self.marketplace.functions.balance_of(address).call())

    def token_balance(self, address: str) -> int:
        return int(self.token.functions.balanceOf(address).call())

    # ---- generators

    def register(
        self, account: LocalAccount, *, stake: int, compute: int, reward_address: str | None = None
    ) -> TxReceipt:
        call = self.registry.functions.register(reward_address or account.address, compute, stake)
        return send(self.w3, account, call)

    def join_market(
        self,
        account: LocalAccount,
        market_id: int,
        *,
        price: int,
        proof_time: int,
        compute_per_request: int = 1,
        encryption_key: bytes = b"\x00" * 32,
    ) -> TxReceipt:
        call = self.registry.functions.join_market(
            market_id, price, proof_time, compute_per_request, encryption_key
        )
        return send(self.w3, account, call)

    def request_exit(self, account: LocalAccount) -> TxReceipt:
        return send(self.w3, account, self.registry.functions.request_exit())

    def withdraw_stake(self, account: LocalAccount) -> TxReceipt:
        """After `request_exit`, once no task is live: the whole stake back."""
        return send(self.w3, account, self.registry.functions.withdraw())

    def generator(self, address: str) -> Any:
        return self.registry.functions.generators(address).call()

    def free_stake(self, address: str) -> int:
        return int(self.registry.functions.free_stake(address).call())

    # ---- requests and tasks

    def create_request(
        self,
        account: LocalAccount,
        market_id: int,
        public_inputs: bytes,
        *,
        max_price: int,
        proof_time: int,
        expires_in: int = 600,
        encrypted_secret: bytes = b"",
        salt: bytes | None = None,
    ) -> PostedRequest:
        salt = salt or os.urandom(32)
        expiry = self.now() + expires_in
        rid = request_id(self.w3.eth.chain_id, self.marketplace.address, account.address, salt)
        call = self.marketplace.functions.create_request(
            market_id,
            salt,
            max_price,
            proof_time,
            expiry,
            account.address,
            public_inputs,
            encrypted_secret,
        )
        receipt = send(self.w3, account, call)
        request = Request.new(
            market_id=market_id,
            requester=account.address,
            refund_address=account.address,
            max_price=max_price,
            proof_time=proof_time,
            expiry=expiry,
            public_inputs=public_inputs,
            encrypted_secret=encrypted_secret,
        )
        return PostedRequest(rid, request, public_inputs, receipt)

    def increase_max_price(
        self, account: LocalAccount, posted: PostedRequest, max_price: int
    ) -> TxReceipt:
        """The request then commits to `posted.with_max_price(max_price)`."""
        call = self.marketplace.functions.increase_max_price(
            posted.id, posted.request.as_tuple(), max_price
        )
        return send(self.w3, account, call)

    def assign(
        self,
        engine: LocalAccount,
        posted: PostedRequest,
        generator: str,
        price: int,
        generator_secret: bytes = b"",
    ) -> TxReceipt:
        call = self.marketplace.functions.assign(
            posted.id, posted.request.as_tuple(), generator, price, generator_secret
        )
        return send(self.w3, engine, call)

    def assign_batch(
        self, engine: LocalAccount, items: Sequence[tuple[PostedRequest, str, int, bytes]]
    ) -> TxReceipt:
        """Items are (request, generator, price, generator secret)."""
        assignments = [
            (posted.id, posted.request.as_tuple(), generator, price, secret)
            for posted, generator, price, secret in items
        ]
        return send(self.w3, engine, self.marketplace.functions.assign_batch(assignments))

    def submit_proof(
        self, generator: LocalAccount, posted: PostedRequest, proof: bytes
    ) -> TxReceipt:
        call = self.marketplace.functions.submit_proof(
            posted.id, posted.request.as_tuple(), posted.public_inputs, proof
        )
        return send(self.w3, generator, call)

    def submit_proofs(
        self, generator: LocalAccount, items: Sequence[tuple[PostedRequest, bytes]]
    ) -> TxReceipt:
        """Items are (request, proof), all tasks of `generator`."""
        proofs = [
            (posted.id, posted.request.as_tuple(), posted.public_inputs, proof)
            for posted, proof in items
        ]
        return send(self.w3, generator, self.marketplace.functions.submit_proofs(proofs))

    def submit_invalid_inputs(
        self, generator: LocalAccount, posted: PostedRequest, evidence: bytes = b""
    ) -> TxReceipt:
        call = self.marketplace.functions.submit_invalid_inputs(
            posted.id, posted.request.as_tuple(), posted.public_inputs, evidence
        )
        return send(self.w3, generator, call)

    def discard(self, generator: LocalAccount, posted: PostedRequest) -> TxReceipt:
        call = self.marketplace.functions.discard(posted.id, posted.request.as_tuple())
        return send(self.w3, generator, call)

    def slash(self, account: LocalAccount, posted: PostedRequest) -> TxReceipt:
        call = self.marketplace.functions.slash(posted.id, posted.request.as_tuple())
        return send(self.w3, account, call)

    def cancel(self, account: LocalAccount, posted: PostedRequest) -> TxReceipt:
        call = self.marketplace.functions.cancel_request(posted.id, posted.request.as_tuple())
        return send(self.w3, account, call)

    def cancel_expired(self, account: LocalAccount, posted: PostedRequest) -> TxReceipt:
        call = self.marketplace.functions.cancel_expired(posted.id, posted.request.as_tuple())
        return send(self.w3, account, call)

    def task(self, posted: PostedRequest) -> TaskState:
        return TaskState.from_tuple(self.marketplace.functions.request_state(posted.id).call())
