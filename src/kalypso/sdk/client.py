"""`AsyncKalypso`: the app developer's client of a deployment (lifecycle steps 2 and 6).

It connects to a checked deployment (chain id, code, contracts version), keeps the
marketplace balances, reads markets with their statistics, places requests (inputs by
name, a preflight, private inputs sealed to the Matching Engine enclave's registered
key, a price from a strategy under a hard cap), follows them to their end and decodes
the proof. `kalypso.sdk.Kalypso` is the same API, blocking.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount
from eth_utils import event_abi_to_log_topic, to_checksum_address
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError
from web3.types import TxReceipt

from kalypso.amounts import format_amount, parse_amount, parse_positive
from kalypso.chain import TxSender, find_request, known_block
from kalypso.chain.logs import LogWindow, aget_logs
from kalypso.chain.lookup import RequestRecord
from kalypso.chain.sender import SentTx
from kalypso.contracts import artifact
from kalypso.contracts.web3tx import reason_of
from kalypso.crypto import SecretContext, seal
from kalypso.daemon import Binding, bind_deployment
from kalypso.deployment import Deployment
from kalypso.enclave import DEV_AUTHORITY, vouched_by
from kalypso.errors import (
    ConfigError,
    DeploymentError,
    InsufficientFundsError,
    InvalidStateError,
    error_from_reason,
)
from kalypso.keys import load_account
from kalypso.market import MAX_PROOF_TIME, Request, RequestState, TaskState, request_id
from kalypso.market.events import DecodedEvent, MalformedLogError, marketplace_decoder
from kalypso.market.names import needs_metadata, resolve_market
from kalypso.provers.snarkjs import SnarkjsWorker
from kalypso.sdk.inputs import Inputs, prepare, witness_generator
from kalypso.sdk.markets import Market, MarketStats, Offer, metadata_names, with_name_notes
from kalypso.sdk.outcome import (
    NoProofError,
    Outcome,
    Proof,
    RequestStatus,
    WaitTimeout,
    decode_proof,
)
from kalypso.sdk.pricing import (
    TYPICAL_TIME,
    Pricing,
    PricingContext,
    ProofTime,
    Quote,
    TimeContext,
    price,
    response_time,
    strategy_and_cap,
)

#: A library logs through `logging` and prints nothing unless the app configures it.
log = logging.getLogger("kalypso.sdk")

DEFAULT_RPC_URL = "http://127.0.0.1:8545"
#: The shortest response time, in block times (and never under MIN_GUARANTEE seconds).
BLOCKS_PER_GUARANTEE = 3
MIN_GUARANTEE = 5
#: how far back market statistics look, in blocks
STATS_BLOCKS = 5_000
#: seconds between lookups of a request id not found: a node behind the one that mined
#: it (a load balancer's) has it a block or two later
LOOKUP_PAUSES = (1.0, 2.0)
#: the events that end a request, and the state each leaves it in
SETTLED_STATE = {
    "ProofSubmitted": RequestState.FULFILLED,
    "InvalidInputsProven": RequestState.INVALID_INPUTS,
    "TaskSlashed": RequestState.SLASHED,
    "RequestCancelled": RequestState.CLOSED,
    "RequestExpired": RequestState.CLOSED,
}
SETTLING_EVENTS = tuple(SETTLED_STATE)
MarketRef = int | str | Market
Amount = int | str


class DevAuthorityWarning(UserWarning):
    """The Matching Engine's key is attested only by the public dev authority: anyone
    could have registered it, so sealed inputs are not confidential."""


class AsyncKalypso:
    """A deployment seen by one app, signing as `account` (None: read-only)."""

    def __init__(
        self,
        binding: Binding,
        account: LocalAccount | None,
        *,
        preflight: bool = True,
        poll_interval: float = 0.5,
        matching_engine_enclave: str | None = None,
    ) -> None:
        self.binding = binding
        self.w3 = binding.w3
        self.deployment: Deployment = binding.deployment
        self.marketplace = binding.marketplace
        self.market_registry = binding.markets
        self.registry = binding.registry
        self.token = binding.token
        self.account = account
        self.preflight = preflight
        self.poll_interval = poll_interval
        self.matching_engine_enclave = matching_engine_enclave
        self._sender = TxSender(self.w3, account) if account is not None else None
        self._decoder = marketplace_decoder()
        self._markets: dict[int, Market] = {}
        self._worker: SnarkjsWorker | None = None
        self._escrow_lock = asyncio.Lock()
        self._warned = False
        #: blocks per eth_getLogs, learnt from the provider's refusals
        self._window = LogWindow()
        self._on_sent: Callable[[bytes, int, str], None] | None = None

    # ---- connecting

    @classmethod
    async def connect(
        cls,
        rpc_url: str = DEFAULT_RPC_URL,
        deployment: Path | str | None = None,
        account: LocalAccount | str | None = None,
        *,
        keystore: Path | str | None = None,
        password: str | None = None,
        **options: Any,
    ) -> AsyncKalypso:
        """Connect to `rpc_url` with the deployment file (found by chain id unless given),
        signing with `account` (a LocalAccount or a private key) or a `keystore`."""
        signer = _signer(account, keystore, password)
        binding = await bind_deployment(
            rpc_url, Path(deployment) if deployment else None, signer, role="app"
        )
        return cls(binding, signer, **options)

    @classmethod
    async def from_env(cls, **options: Any) -> AsyncKalypso:
        """From `KALYPSO_RPC_URL`, `KALYPSO_DEPLOYMENT` and `KALYPSO_PRIVATE_KEY` (or
        `KALYPSO_KEYSTORE` with `KALYPSO_KEYSTORE_PASSWORD` or `…_PASSWORD_FILE`), as
        `kalypso devnet` prints."""
        return await cls.connect(
            os.environ.get("KALYPSO_RPC_URL", DEFAULT_RPC_URL),
            os.environ.get("KALYPSO_DEPLOYMENT"),
            os.environ.get("KALYPSO_PRIVATE_KEY"),
            keystore=os.environ.get("KALYPSO_KEYSTORE"),
            **options,
        )

    async def close(self) -> None:
        if self._worker is not None:
            await self._worker.close()
        await self.binding.close()

    async def __aenter__(self) -> AsyncKalypso:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # ---- amounts

    def amount(self, value: Amount) -> int:
        """Base units of `value`: an int is base units, text is token units ("1.5 KAL")."""
        return parse_amount(value, self.deployment.token_decimals, self.deployment.token_symbol)

    def show(self, amount: int) -> str:
        return format_amount(amount, self.deployment.token_decimals, self.deployment.token_symbol)

    @property
    def address(self) -> str:
        return self._signer().address

    # ---- balances

    async def balance(self, address: str | None = None) -> int:
        """The internal marketplace balance (refunds and earnings land there)."""
        who = to_checksum_address(address) if address else self.address
        return int(await self.marketplace.functions.balance_of(who).call())

    async def wallet_balance(self, address: str | None = None) -> int:
        """Tokens in the wallet (what `deposit` takes from)."""
        who = to_checksum_address(address) if address else self.address
        return int(await self.token.functions.balanceOf(who).call())

    async def deposit(self, amount: Amount) -> TxReceipt:
        """Move `amount` from the wallet into the marketplace, approving exactly that."""
        base = self._positive(amount, "deposit")
        await self._require_wallet(base, "deposit")
        async with self._escrow_lock:
            await self._approve(base)
            return await self._send(self.marketplace.functions.deposit(base))

    async def withdraw(self, amount: Amount | None = None, to: str | None = None) -> TxReceipt:
        """Take `amount` (default: all) of the internal balance out to `to` (default: self)."""
        base = await self.balance() if amount is None else self._positive(amount, "withdraw")
        if base == 0:
            raise ConfigError("the internal balance is empty: nothing to withdraw")
        target = to_checksum_address(to) if to else self.address
        return await self._send(self.marketplace.functions.withdraw(base, target))

    # ---- markets

    async def markets(self) -> list[Market]:
        """Every market of the marketplace, each with a `name_note` where its name is
        contested (another market carries it too, or the deployment gives it to another)."""
        count = int(await self.market_registry.functions.market_count().call())
        markets = [await self.market(i) for i in range(count)]
        return with_name_notes(markets, self.deployment.markets)

    async def market(self, ref: MarketRef) -> Market:
        """A market by id, by the deployment's name for it, or by its metadata's name
        (`kalypso.market.names`: a metadata name several markets carry is an
        `AmbiguousMarketError`)."""
        if isinstance(ref, Market):
            return ref
        market_id = await self._market_id(ref)
        if market_id not in self._markets:
            terms = await self.market_registry.functions.market(market_id).call()
            metadata = await self._market_metadata(market_id)
            self._markets[market_id] = Market.from_chain(
                market_id, terms, metadata, self.deployment.markets
            )
        return self._markets[market_id]

    async def stats(self, ref: MarketRef) -> MarketStats:
        """Open requests, live offers, recent clearing prices and proof times."""
        market = await self.market(ref)
        head = await self.w3.eth.get_block("latest")
        start = max(self.deployment.deploy_block, int(head["number"]) - STATS_BLOCKS)
        events = await self._logs(
            self.marketplace.address, [None, None, _topic(market.id)], start, int(head["number"])
        )
        proofs = [e for e in events if e.name == "ProofSubmitted"][-20:]
        blocks = await asyncio.gather(*(known_block(self.w3, e.block_number) for e in proofs))
        stamps = {
            bytes(e["task_id"]): int(b["timestamp"]) for e, b in zip(proofs, blocks, strict=True)
        }
        return MarketStats.from_events(
            market.id,
            events,
            await self._offers(market.id),
            now=int(head["timestamp"]),
            proof_timestamps=stamps,
            block_time=await self._block_time(head),
        )

    # ---- requests

    async def request_proof(
        self,
        market: MarketRef,
        inputs: Inputs,
        *,
        max_price: Amount | None = None,
        pricing: Pricing | Amount | None = None,
        proof_time: ProofTime = TYPICAL_TIME,
        expires_in: int = 600,
        skip_preflight: bool = False,
        wasm: Path | str | None = None,
        refund_address: str | None = None,
        salt: bytes | None = None,
    ) -> AsyncProofRequest:
        """Ask for a proof of `inputs` (by the circuit's names) in `market`.

        `salt` (32 bytes; default random) fixes the request id: a second send with the
        same salt cannot create a second request, so a caller that records it can run
        again after a crash without paying twice.

        `pricing` sets the request's max price, never above the hard cap `max_price`
        (default: offer the cap; the generator is paid only its own quote and the rest
        is refunded). Private inputs are sealed to the Matching Engine enclave. The
        preflight refuses inputs that have no proof before anything is sent.

        What you can lose: at most the quote, paid once the task is proven or its inputs
        are shown invalid; if the generator misses its deadline the whole escrow comes
        back (`slash`), as it does on `cancel` or expiry (`Market.stakes` says it all).
        """
        m = await self.market(market)
        strategy, cap = strategy_and_cap(pricing, max_price, self.amount)
        worker = None
        generator_wasm = None
        if self.preflight and not skip_preflight and m.inputs:
            generator_wasm = witness_generator(m, self.deployment.chain_id, wasm)
            worker = await self._snarkjs()
        prepared = await prepare(m, inputs, worker=worker, wasm=generator_wasm)
        m.check_takes(private=prepared.secret is not None)
        stats = await self.stats(m)
        floor = max(MIN_GUARANTEE, int(BLOCKS_PER_GUARANTEE * stats.block_time + 0.999))
        seconds = response_time(proof_time, TimeContext(m, stats, floor, MAX_PROOF_TIME))
        quote = price(strategy, self._context(m, stats, seconds, cap))
        salt = salt or os.urandom(32)
        rid = request_id(self.deployment.chain_id, self.marketplace.address, self.address, salt)
        secret = b""
        if (plaintext := prepared.secret_bytes()) is not None:
            key = await self.matching_engine_key()
            context = SecretContext(self.deployment.chain_id, self.marketplace.address, rid)
            secret = seal(plaintext, key, context)
        head = await self.w3.eth.get_block("latest")
        expiry = int(head["timestamp"]) + expires_in
        refund = to_checksum_address(refund_address) if refund_address else self.address
        log.info(
            "sending request 0x%s: market %s, max price %s (%s), proof time %d s%s",
            rid.hex(),
            m.id,
            self.show(quote.amount),
            quote.basis,
            seconds,
            ", private inputs sealed" if secret else "",
        )
        call = self.marketplace.functions.create_request(
            m.id, salt, quote.amount, seconds, expiry, refund, prepared.public_inputs, secret
        )
        async with self._escrow_lock:
            if not await self._escrow_covers(quote.amount):
                await self._require_wallet(quote.amount, "escrow")
                await self._approve(quote.amount)
            receipt = await self._send(call)
        request = Request.new(
            market_id=m.id,
            requester=self.address,
            refund_address=refund,
            max_price=quote.amount,
            proof_time=seconds,
            expiry=expiry,
            public_inputs=prepared.public_inputs,
            encrypted_secret=secret,
        )
        return AsyncProofRequest(
            self,
            rid,
            m,
            request,
            prepared.public_inputs,
            int(receipt["blockNumber"]),
            strategy=strategy,
            cap=cap,
            quote=quote,
        )

    async def request(self, request_id: bytes | str) -> AsyncProofRequest:
        """Re-attach to a request by id (after a crash: the id is logged before sending)."""
        rid = _request_id(request_id)
        record = await self._lookup(rid)
        market = await self.market(record.request.market_id)
        return AsyncProofRequest(
            self, rid, market, record.request, record.public_inputs, record.created_block
        )

    async def _lookup(self, rid: bytes) -> RequestRecord:
        """The request `rid` as created, looked up again after a pause when not found: a
        node behind the one that mined it (a load balancer's) has it a block later."""
        for pause in (*LOOKUP_PAUSES, None):
            head = int(await self.w3.eth.block_number)
            record = await find_request(
                self.w3,
                self.marketplace.address,
                self._decoder,
                rid,
                from_block=self.deployment.deploy_block,
                to_block=head,
                window=self._window,
            )
            if record is not None:
                return record
            if pause is not None:
                await asyncio.sleep(pause)
        raise ConfigError(f"no request 0x{rid.hex()} on this marketplace (up to block {head})")

    async def slash(self, request: AsyncProofRequest | bytes | str) -> Outcome:
        """Slash the generator of an overdue task: the requester is refunded in full and
        the caller gets the bounty."""
        handle = request if isinstance(request, AsyncProofRequest) else await self.request(request)
        return await handle.slash()

    async def watch_and_slash(
        self, stop: asyncio.Event | None = None, *, since_block: int | None = None
    ) -> list[Outcome]:
        """Slash every overdue task of this account's requests until `stop` is set
        (forever without one); returns the slashes made."""
        stop = stop or asyncio.Event()
        start = self.deployment.deploy_block if since_block is None else since_block
        handles: dict[bytes, AsyncProofRequest] = {}
        slashed: list[Outcome] = []
        while not stop.is_set():
            head = int(await self.w3.eth.block_number)
            if head >= start:
                topics = [
                    event_topic("ProofMarketplace", "RequestCreated"),
                    None,
                    None,
                    _address_topic(self.address),
                ]
                for event in await self._logs(self.marketplace.address, topics, start, head):
                    rid = bytes(event["request_id"])
                    handles.setdefault(rid, await self.request(rid))
                start = head + 1
            for rid, handle in list(handles.items()):
                status = await handle.status()
                if status.overdue:
                    with contextlib.suppress(InvalidStateError):  # someone slashed it first
                        slashed.append(await handle.slash())
                if status.state.is_final or status.expired:
                    handles.pop(rid)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_interval * 4)
        return slashed

    # ---- private inputs

    async def matching_engine_key(self) -> bytes:
        """The key private inputs are sealed to: the registered, unexpired encryption key
        of the Matching Engine enclave, read from the enclave registry (never taken from
        an endpoint). Warns when the key is attested only by the public dev authority."""
        if self.deployment.enclave_registry is None:
            raise DeploymentError("the deployment has no enclave registry: redeploy")
        registry = self.w3.eth.contract(
            address=to_checksum_address(self.deployment.enclave_registry),
            abi=artifact("EnclaveRegistry").abi,
        )
        enclave = self.matching_engine_enclave or await self._matcher_enclave(registry)
        try:
            key = await registry.functions.matching_engine_key(enclave).call()
        except ContractLogicError as exc:
            raise error_from_reason(reason_of(exc)) from None
        vouched = vouched_by(await registry.functions.enclaves(enclave).call())
        if vouched == DEV_AUTHORITY and not self._warned:
            self._warned = True
            log.warning("the matching engine's key is attested only by the public dev authority")
            warnings.warn(
                "the matching engine's key is attested only by the public dev authority: "
                "anyone could have registered it, so private inputs are not confidential "
                "on this deployment",
                DevAuthorityWarning,
                stacklevel=3,
            )
        return bytes(key)

    async def _matcher_enclave(self, registry: Any) -> str:
        """The Matching Engine enclave to seal to: the one the matcher's status names,
        else the newest registered one of a current authority (its key is then still read
        from the registry)."""
        if self.deployment.matcher_url:
            try:
                async with httpx.AsyncClient(timeout=5) as http:
                    answer = (await http.get(self.deployment.matcher_url + "/health")).json()
                if isinstance(answer.get("enclave"), str):
                    return to_checksum_address(answer["enclave"])
            except (httpx.HTTPError, ValueError, AttributeError):
                pass
        image = bytes(await registry.functions.matching_engine_image().call())
        topic = event_topic("EnclaveRegistry", "EnclaveRegistered")
        head = int(await self.w3.eth.block_number)
        logs = await self._raw_logs(
            registry.address, [topic, None, "0x" + image.hex()], self.deployment.deploy_block, head
        )
        for entry in reversed(logs):  # the newest whose authority is still one
            data = bytes(entry["data"])  # encryption key, attested at, authority
            authority = to_checksum_address(data[76:96])
            if await registry.functions.is_authority(authority).call():
                return to_checksum_address(bytes(entry["topics"][1])[-20:])
        raise ConfigError(
            "no Matching Engine enclave is registered on this deployment (or only ones whose "
            "attestation authority was removed): private inputs need one (start `kalypso "
            "enclave matcher`)"
        )

    # ---- helpers

    def _signer(self) -> LocalAccount:
        if self.account is None:
            raise ConfigError("this client has no key: give a private key or keystore")
        return self.account

    def record(self, on_sent: Callable[[bytes, int, str], None] | None) -> None:
        """Report every transaction this client signs, as (hash, nonce, function), to
        `on_sent` (None: stop): how a command keeps its action re-runnable."""
        self._on_sent = on_sent

    async def landed(self, hashes: Sequence[bytes]) -> TxReceipt | None:
        """The receipt of the first of `hashes` that is mined, waiting for one still
        pending; None when none of them landed (dropped, or never sent)."""
        for tx_hash in hashes:
            try:
                await self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                continue
            return await self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=300)  # type: ignore[arg-type]
        return None

    async def _send(self, call: Any) -> TxReceipt:
        """Send from this account. Another process may use the same key (a CLI command
        beside the app): a nonce it took is resynced from the chain and the call resent."""
        self._signer()
        assert self._sender is not None
        report = self._on_sent

        async def on_sent(sent: SentTx) -> None:
            if report is not None:
                report(sent.hash, sent.nonce, str(call.fn_name))

        for attempt in range(3):
            try:
                return await self._sender.send(call, on_sent=on_sent)
            except Web3RPCError as exc:
                if "nonce" not in str(exc).lower() or attempt == 2:
                    raise
                self._sender.resync()
        raise AssertionError("unreachable")

    async def _escrow_covers(self, amount: int) -> bool:
        """Whether the internal balance pays `amount` (no tokens pulled, no approval).
        Shortly after one of our transactions (a charge), a node behind it still shows
        the balance before it: the balance is then also read as of that transaction's
        block, and the smaller counts. An approval skipped on a stale balance would make
        the request revert; one made needlessly costs only its gas."""
        if await self.balance() < amount:
            return False
        own = self._sender.recent_block() if self._sender is not None else None
        if own is None:
            return True
        try:
            then = await self.marketplace.functions.balance_of(self.address).call(
                block_identifier=own
            )
        except Web3RPCError:  # the node lacks that block: unsure, so approve
            return False
        return int(then) >= amount

    async def _approve(self, amount: int) -> None:
        """Allow the marketplace exactly `amount` (never a blanket allowance), always: a
        read of the allowance first could come from a lagging node that still shows an
        earlier approval, now spent, and the request would then revert."""
        await self._send(self.token.functions.approve(self.marketplace.address, amount))

    async def _require_wallet(self, amount: int, what: str) -> None:
        wallet = await self.wallet_balance()
        if wallet < amount:
            raise InsufficientFundsError(
                "erc20: transfer amount exceeds balance",
                f"you asked to {what} {self.show(amount)} but the wallet holds "
                f"{self.show(wallet)} (and the internal balance does not cover it); nothing "
                "was sent",
            )

    def _positive(self, amount: Amount, what: str) -> int:
        d = self.deployment
        return parse_positive(amount, what, d.token_decimals, d.token_symbol)

    def _context(
        self, market: Market, stats: MarketStats, seconds: int, cap: int, **kw: Any
    ) -> PricingContext:
        return PricingContext(
            market,
            stats,
            seconds,
            cap,
            token_symbol=self.deployment.token_symbol,
            token_decimals=self.deployment.token_decimals,
            **kw,
        )

    async def _snarkjs(self) -> SnarkjsWorker:
        if self._worker is None:
            self._worker = SnarkjsWorker()
        return self._worker

    async def _market_id(self, ref: int | str) -> int:
        count = int(await self.market_registry.functions.market_count().call())
        recorded = self.deployment.markets
        carried = None
        if needs_metadata(ref, recorded):
            carried = metadata_names([await self.market(i) for i in range(count)])
        return resolve_market(ref, recorded, carried, count=count)

    async def _market_metadata(self, market_id: int) -> bytes:
        topic = event_topic("MarketRegistry", "MarketCreated")
        head = int(await self.w3.eth.block_number)
        logs = await self._raw_logs(
            self.market_registry.address,
            [topic, _topic(market_id)],
            self.deployment.deploy_block,
            head,
        )
        if not logs:
            raise ConfigError(f"market {market_id} has no MarketCreated event")
        event = self._decoder.decode(logs[0])
        return bytes(event["metadata"])

    async def _offers(self, market_id: int) -> list[Offer]:
        head = int(await self.w3.eth.block_number)
        events = await self._logs(
            self.registry.address,
            [None, None, _topic(market_id)],
            self.deployment.deploy_block,
            head,
        )
        generators = {e["generator"] for e in events if e.name in ("OfferSet", "MarketLeft")}
        offers = []
        for generator in sorted(generators):
            record = await self.registry.functions.generators(generator).call()
            joined, offer_price, promised, _, _ = await self.registry.functions.offers(
                generator, market_id
            ).call()
            if joined and int(record[0]) == 1:  # GeneratorStatus.ACTIVE
                offers.append(Offer(generator, int(offer_price), int(promised)))
        return offers

    async def _block_time(self, head: Any, span: int = 20) -> float:
        number = int(head["number"])
        if number < 2:
            return 1.0
        past = await self.w3.eth.get_block(max(0, number - span))
        blocks = number - int(past["number"])
        return max(0.0, (int(head["timestamp"]) - int(past["timestamp"])) / blocks)

    async def _raw_logs(
        self, address: str, topics: Sequence[Any], start: int, end: int
    ) -> list[Any]:
        query: Any = {"address": address, "topics": list(topics)}
        return await aget_logs(self.w3, query, start, end, window=self._window)

    async def _logs(
        self, address: str, topics: Sequence[Any], start: int, end: int
    ) -> list[DecodedEvent]:
        decoded = []
        for raw in await self._raw_logs(address, topics, start, end):
            try:
                decoded.append(self._decoder.decode(raw))
            except MalformedLogError:
                continue
        return decoded


class AsyncProofRequest:
    """A request placed (or re-attached to) by `AsyncKalypso`."""

    def __init__(
        self,
        client: AsyncKalypso,
        request_id: bytes,
        market: Market,
        request: Request,
        public_inputs: bytes,
        created_block: int,
        *,
        strategy: Pricing | None = None,
        cap: int | None = None,
        quote: Quote | None = None,
    ) -> None:
        self.client = client
        self.id = request_id
        self.market = market
        self.request = request
        self.public_inputs = public_inputs
        self.created_block = created_block
        self.strategy = strategy
        self.cap = cap if cap is not None else request.max_price
        #: the price the request carries now, and why
        self.quote = quote or Quote(request.max_price, "as committed on-chain")
        self.attempt = 0

    def __repr__(self) -> str:
        return f"<ProofRequest 0x{self.id.hex()} market={self.market.name}>"

    @property
    def max_price(self) -> int:
        return self.request.max_price

    async def status(self) -> RequestStatus:
        c = self.client
        task = TaskState.from_tuple(await c.marketplace.functions.request_state(self.id).call())
        head = await c.w3.eth.get_block("latest")
        generator = None
        if task.state >= RequestState.ASSIGNED and task.state is not RequestState.CLOSED:
            generator = await self._generator()
        return RequestStatus(
            self.id,
            task.state,
            self.market.id,
            self.request.max_price,
            self.request.proof_time,
            self.request.expiry,
            generator,
            task.price,
            task.deadline,
            int(head["timestamp"]),
        )

    async def wait(
        self,
        timeout: float | None = None,
        *,
        reprice_every: float | None = None,
        slash: bool = True,
        refund: bool = True,
    ) -> Outcome:
        """Follow the request to its end. While it waits unmatched it is re-priced every
        `reprice_every` seconds (by its strategy, within the cap); past its expiry it is
        refunded (`refund`); past a missed deadline its generator is slashed (`slash`)."""
        started = last_price = time.monotonic()
        while True:
            status = await self.status()
            if status.state.is_final or status.state is RequestState.CLOSED:
                return await self.outcome()
            if status.expired and refund:
                return await self.cancel()
            if status.overdue and slash:
                try:
                    return await self.slash()
                except InvalidStateError:
                    continue  # settled meanwhile (the matcher slashes overdue tasks too)
            now = time.monotonic()
            if (
                reprice_every is not None
                and status.state is RequestState.OPEN
                and now - last_price >= reprice_every
            ):
                last_price = now
                await self.reprice()
            if timeout is not None and now - started > timeout:
                raise WaitTimeout(
                    f"request 0x{self.id.hex()} is still {status.state.name} after {timeout} s: "
                    "wait again, or cancel it"
                )
            await asyncio.sleep(self.client.poll_interval)

    async def wait_for_proof(self, timeout: float | None = None, **options: Any) -> Proof:
        """The proof, decoded; `NoProofError` (with the outcome and its refund) if the
        request ended another way."""
        outcome = await self.wait(timeout, **options)
        if outcome.proof is None:
            raise NoProofError(outcome)
        return outcome.proof

    async def cancel(self) -> Outcome:
        """Refund an unassigned request: the requester's at any time, anyone's once
        expired."""
        c = self.client
        status = await self.status()
        if status.state is not RequestState.OPEN:
            raise InvalidStateError(
                "requests: not open",
                f"request 0x{self.id.hex()} is {status.state.name}: only an unassigned request "
                "can be cancelled",
            )
        fn = c.marketplace.functions
        call = (
            fn.cancel_expired(self.id, self.request.as_tuple())
            if status.expired
            else fn.cancel_request(self.id, self.request.as_tuple())
        )
        await c._send(call)
        return await self.outcome()

    async def slash(self) -> Outcome:
        """Slash the generator after its missed deadline."""
        c = self.client
        await c._send(c.marketplace.functions.slash(self.id, self.request.as_tuple()))
        return await self.outcome()

    async def increase_max_price(self, amount: Amount) -> int:
        """Raise the max price of the unassigned request to `amount` (the difference is
        escrowed); never above the hard cap it was placed with."""
        c = self.client
        new = c.amount(amount)
        if new <= self.request.max_price:
            raise ConfigError(
                f"the request already offers {c.show(self.request.max_price)}: give more"
            )
        if new > self.cap:
            raise ConfigError(f"{c.show(new)} is above the request's cap {c.show(self.cap)}")
        call = c.marketplace.functions.increase_max_price(self.id, self.request.as_tuple(), new)
        async with c._escrow_lock:
            if not await c._escrow_covers(new - self.request.max_price):
                await c._approve(new - self.request.max_price)
            await c._send(call)
        self.request = self.request.with_max_price(new)
        return new

    async def reprice(self) -> Quote | None:
        """Ask the strategy again (one attempt later); raise the price if it asks more."""
        if self.strategy is None:
            return None
        c = self.client
        stats = await c.stats(self.market)
        context = c._context(
            self.market,
            stats,
            self.request.proof_time,
            self.cap,
            attempt=self.attempt + 1,
            current=self.request.max_price,
        )
        quote = price(self.strategy, context)
        self.attempt += 1
        if quote.amount <= self.request.max_price:
            return None
        await self.increase_max_price(quote.amount)
        self.quote = quote
        log.info(
            "request 0x%s re-priced to %s (%s)", self.id.hex(), c.show(quote.amount), quote.basis
        )
        return quote

    async def outcome(self) -> Outcome:
        """How the request ended (or where it stands), from its settling event."""
        c = self.client
        task = TaskState.from_tuple(await c.marketplace.functions.request_state(self.id).call())
        head = int(await c.w3.eth.block_number)
        events = await c._logs(
            c.marketplace.address, [None, _bytes_topic(self.id)], self.created_block, head
        )
        settled = [e for e in events if e.name in SETTLING_EVENTS]
        if not settled:
            return Outcome(self.id, task.state)
        event = settled[-1]
        proof = None
        if event.name == "ProofSubmitted":
            proof = decode_proof(self.market, bytes(event["proof"]), self.public_inputs)
        return Outcome(
            self.id,
            # the event's state: a node behind the one that served the logs can still
            # answer ASSIGNED (seen in the rehearsal, through a lagging provider)
            SETTLED_STATE[event.name],
            proof=proof,
            generator=event.args.get("generator"),
            payment=int(event.args.get("payment", 0)),
            refund=int(event.args.get("refund", 0)),
            penalty=int(event.args.get("penalty", 0)),
            bounty=int(event.args.get("bounty", 0)),
            transaction=event.transaction_hash,
        )

    async def _generator(self) -> str | None:
        c = self.client
        head = int(await c.w3.eth.block_number)
        events = await c._logs(
            c.marketplace.address, [None, _bytes_topic(self.id)], self.created_block, head
        )
        assigned = [e for e in events if e.name == "TaskAssigned"]
        return str(assigned[-1]["generator"]) if assigned else None


def _signer(
    account: LocalAccount | str | None, keystore: Path | str | None, password: str | None
) -> LocalAccount | None:
    if isinstance(account, LocalAccount):
        return account
    if account is None and keystore is None:
        return None
    return load_account(account, Path(keystore) if keystore else None, password=password)


def _request_id(value: bytes | str) -> bytes:
    if isinstance(value, str):
        try:
            value = bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            raise ConfigError(f"{value!r} is not a request id (0x + 64 hex digits)") from None
    if len(value) != 32:
        raise ConfigError("a request id is 32 bytes (0x + 64 hex digits)")
    return value


def _topic(number: int) -> str:
    return "0x" + number.to_bytes(32, "big").hex()


def _bytes_topic(value: bytes) -> str:
    return "0x" + value.hex()


def _address_topic(address: str) -> str:
    return "0x" + "00" * 12 + address.lower().removeprefix("0x")


def event_topic(contract: str, event: str) -> str:
    """The topic0 of a compiled contract's event, as 0x-hex."""
    abi: Any = next(e for e in artifact(contract).abi if e.get("name") == event)
    return "0x" + event_abi_to_log_topic(abi).hex()
