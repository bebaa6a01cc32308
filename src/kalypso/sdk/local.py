"""`Kalypso(backend="local")`: the SDK's API with no chain, proving in-process with snarkjs.

For an app's own tests. The markets are the sample circuits (by name, ids in manifest
order); balances are kept in memory (a wallet of `WALLET` to start); a request escrows
its max price, is proven at once by a local generator that charges its full max price,
and returns the same `Groth16Proof` type as the network path. Nothing is private here:
inputs never leave the process.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from kalypso.amounts import format_amount, parse_amount, parse_positive
from kalypso.circuits import circuit, manifest
from kalypso.errors import ConfigError, InsufficientFundsError, InvalidStateError
from kalypso.market import RequestKinds, RequestState
from kalypso.market.names import resolve_market
from kalypso.provers import InvalidInputs
from kalypso.provers.snarkjs import SnarkjsGroth16Prover, SnarkjsWorker
from kalypso.sdk.inputs import Inputs, named, prepare, witness_inputs
from kalypso.sdk.markets import NO_IMAGE, Market, MarketStats, metadata_names
from kalypso.sdk.outcome import NoProofError, Outcome, Proof, RequestStatus, WaitTimeout
from kalypso.sdk.pricing import (
    TYPICAL_TIME,
    Pricing,
    PricingContext,
    ProofTime,
    TimeContext,
    price,
    response_time,
    strategy_and_cap,
)

DECIMALS, SYMBOL = 18, "KAL"
WALLET: int = 100_000 * 10**DECIMALS
LOCAL_ADDRESS = "0x" + "11" * 20
Amount = int | str


def _market(market_id: int, name: str) -> Market:
    c = circuit(name)
    return Market(
        id=market_id,
        name=name,
        verifier="local",
        slashing_penalty=0,
        input_verifier=None,
        generator_image=NO_IMAGE,
        input_verification_image=NO_IMAGE,
        proof_verification_image=NO_IMAGE,
        proof_system="groth16",
        request_kinds=RequestKinds.BOTH,  # no chain: nothing to settle, either kind proves
        inputs=dict(c.inputs),
        public_signals=list(c.public_signals),
        circuit=name,
        metadata={"name": name, **c.metadata()},
    )


class LocalKalypso:
    """The SDK over an in-memory marketplace."""

    def __init__(self, *, preflight: bool = True) -> None:
        self.preflight = preflight
        self.address = LOCAL_ADDRESS
        self._markets = [_market(i, n) for i, n in enumerate(manifest()["circuits"])]
        self._wallet = WALLET
        self._balance = 0
        self._requests: dict[bytes, LocalProofRequest] = {}
        self._worker = SnarkjsWorker()

    async def close(self) -> None:
        for request in self._requests.values():
            request.task.cancel()
        await asyncio.gather(*(r.task for r in self._requests.values()), return_exceptions=True)
        await self._worker.close()

    async def __aenter__(self) -> LocalKalypso:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def amount(self, value: Amount) -> int:
        return parse_amount(value, DECIMALS, SYMBOL)

    def show(self, amount: int) -> str:
        return format_amount(amount, DECIMALS, SYMBOL)

    async def balance(self, address: str | None = None) -> int:
        return self._balance

    async def wallet_balance(self, address: str | None = None) -> int:
        return self._wallet

    async def deposit(self, amount: Amount) -> None:
        base = parse_positive(amount, "deposit", DECIMALS, SYMBOL)
        if base > self._wallet:
            raise InsufficientFundsError("escrow: transfer failed", "the wallet holds less")
        self._wallet -= base
        self._balance += base

    async def withdraw(self, amount: Amount | None = None, to: str | None = None) -> None:
        base = (
            self._balance
            if amount is None
            else parse_positive(amount, "withdraw", DECIMALS, SYMBOL)
        )
        if base == 0:
            raise ConfigError("the internal balance is empty: nothing to withdraw")
        if base > self._balance:
            raise InsufficientFundsError("escrow: insufficient balance", "withdraw less")
        self._balance -= base
        self._wallet += base

    async def markets(self) -> list[Market]:
        return list(self._markets)

    async def market(self, ref: int | str | Market) -> Market:
        if isinstance(ref, Market):
            return ref
        carried = metadata_names(self._markets)
        return self._markets[resolve_market(ref, {}, carried, count=len(self._markets))]

    async def stats(self, ref: int | str | Market) -> MarketStats:
        m = await self.market(ref)
        return MarketStats(m.id, 0, (), (), (), 1.0)

    async def request_proof(
        self,
        market: int | str | Market,
        inputs: Inputs,
        *,
        max_price: Amount | None = None,
        pricing: Pricing | Amount | None = None,
        proof_time: ProofTime = TYPICAL_TIME,
        expires_in: int = 600,
        skip_preflight: bool = False,
        wasm: Path | str | None = None,
        refund_address: str | None = None,
        salt: bytes | None = None,  # the chain's request id; nothing is sent here
    ) -> LocalProofRequest:
        del salt
        m = await self.market(market)
        strategy, cap = strategy_and_cap(pricing, max_price, self.amount)
        c = circuit(m.name)
        check = self.preflight and not skip_preflight
        prepared = await prepare(
            m, inputs, worker=self._worker if check else None, wasm=Path(wasm) if wasm else c.wasm
        )
        stats = await self.stats(m)
        seconds = response_time(proof_time, TimeContext(m, stats, 1, 86_400))
        quote = price(strategy, PricingContext(m, stats, seconds, cap))
        values = witness_inputs(m, named(m, inputs)) if m.inputs else {}
        # like escrow._charge: from the balance when it suffices, else all from the wallet
        if self._balance >= quote.amount:
            self._balance -= quote.amount
        elif self._wallet >= quote.amount:
            self._wallet -= quote.amount
        else:
            raise InsufficientFundsError(
                "escrow: transfer failed", "deposit the max price, or hold it in the wallet"
            )
        prover = SnarkjsGroth16Prover(c.wasm, c.zkey, worker=self._worker)
        request = LocalProofRequest(self, os.urandom(32), m, quote.amount, prepared.public_signals)
        request.task = asyncio.create_task(request.prove(prover, values))
        self._requests[request.id] = request
        return request

    async def request(self, request_id: bytes | str) -> LocalProofRequest:
        rid = (
            bytes.fromhex(request_id.removeprefix("0x"))
            if isinstance(request_id, str)
            else request_id
        )
        if rid not in self._requests:
            raise ConfigError(f"no local request 0x{rid.hex()}")
        return self._requests[rid]

    async def slash(self, request: Any) -> Outcome:
        raise InvalidStateError("requests: not overdue", "local requests never miss a deadline")

    async def watch_and_slash(self, stop: asyncio.Event | None = None, **_: Any) -> list[Outcome]:
        return []


class LocalProofRequest:
    task: asyncio.Task[Outcome]

    def __init__(
        self,
        client: LocalKalypso,
        request_id: bytes,
        market: Market,
        max_price: int,
        public_signals: tuple[int, ...],
    ) -> None:
        self.client = client
        self.id = request_id
        self.market = market
        self.max_price = max_price
        self.public_signals = public_signals

    def __repr__(self) -> str:
        return f"<LocalProofRequest 0x{self.id.hex()} market={self.market.name}>"

    async def prove(self, prover: SnarkjsGroth16Prover, values: dict[str, Any]) -> Outcome:
        result = await prover.prove(values)
        if isinstance(result, InvalidInputs) or (
            self.public_signals and result.public_signals != self.public_signals
        ):
            return Outcome(self.id, RequestState.INVALID_INPUTS, payment=self.max_price)
        return Outcome(self.id, RequestState.FULFILLED, proof=result, payment=self.max_price)

    async def status(self) -> RequestStatus:
        if not self.task.done():
            state = RequestState.ASSIGNED
        elif self.task.cancelled():
            state = RequestState.CLOSED
        else:
            state = self.task.result().state
        return RequestStatus(
            self.id,
            state,
            self.market.id,
            self.max_price,
            0,
            0,
            LOCAL_ADDRESS,
            self.max_price,
            0,
            0,
        )

    async def wait(self, timeout: float | None = None, **_: Any) -> Outcome:
        try:
            return await asyncio.wait_for(asyncio.shield(self.task), timeout)
        except TimeoutError:
            raise WaitTimeout(f"local request 0x{self.id.hex()} is still proving") from None

    async def wait_for_proof(self, timeout: float | None = None, **options: Any) -> Proof:
        outcome = await self.wait(timeout, **options)
        if outcome.proof is None:
            raise NoProofError(outcome)
        return outcome.proof

    async def cancel(self) -> Outcome:
        if self.task.done():
            raise InvalidStateError("requests: not open", "the local request is already proven")
        self.task.cancel()
        self.client._balance += self.max_price
        return Outcome(self.id, RequestState.CLOSED, refund=self.max_price)

    async def increase_max_price(self, amount: Amount) -> int:
        raise InvalidStateError("requests: not open", "local requests are assigned at once")
