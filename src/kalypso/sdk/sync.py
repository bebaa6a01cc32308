"""`Kalypso` and `ProofRequest`: the SDK, blocking.

Each blocking call runs the async client's coroutine on one event loop that lives in
a background thread for the client's lifetime (so connections and the snarkjs worker
are reused between calls), and returns its result or raises its error.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from eth_account.signers.local import LocalAccount
from web3.types import TxReceipt

from kalypso.errors import ConfigError
from kalypso.sdk.client import DEFAULT_RPC_URL, Amount, AsyncKalypso, AsyncProofRequest, MarketRef
from kalypso.sdk.inputs import Inputs
from kalypso.sdk.local import LocalKalypso, LocalProofRequest
from kalypso.sdk.markets import Market, MarketStats
from kalypso.sdk.outcome import Outcome, Proof, RequestStatus
from kalypso.sdk.pricing import TYPICAL_TIME, Pricing, ProofTime, Quote

T = TypeVar("T")


class _Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="kalypso-sdk", daemon=True
        )
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class Kalypso:
    """The Kalypso client, blocking. `Kalypso.from_env()` reads what `kalypso devnet`
    prints; `Kalypso(backend="local")` proves in-process with no chain."""

    def __init__(
        self,
        rpc_url: str = DEFAULT_RPC_URL,
        deployment: Path | str | None = None,
        account: LocalAccount | str | None = None,
        *,
        keystore: Path | str | None = None,
        password: str | None = None,
        backend: str = "chain",
        **options: Any,
    ) -> None:
        if backend not in ("chain", "local"):
            raise ConfigError(f'backend is "chain" or "local", not {backend!r}')
        self._loop = _Loop()
        try:
            if backend == "local":
                self._client: AsyncKalypso | LocalKalypso = self._loop.run(_local(**options))
            else:
                self._client = self._loop.run(
                    AsyncKalypso.connect(
                        rpc_url,
                        deployment,
                        account,
                        keystore=keystore,
                        password=password,
                        **options,
                    )
                )
        except BaseException:
            self._loop.stop()
            raise

    @classmethod
    def from_env(cls, **options: Any) -> Kalypso:
        """From `KALYPSO_RPC_URL`, `KALYPSO_DEPLOYMENT`, `KALYPSO_PRIVATE_KEY` (or
        `KALYPSO_KEYSTORE` and `KALYPSO_KEYSTORE_PASSWORD` or `…_PASSWORD_FILE`)."""
        return cls(
            os.environ.get("KALYPSO_RPC_URL", DEFAULT_RPC_URL),
            os.environ.get("KALYPSO_DEPLOYMENT"),
            os.environ.get("KALYPSO_PRIVATE_KEY"),
            keystore=os.environ.get("KALYPSO_KEYSTORE"),
            **options,
        )

    @property
    def aio(self) -> AsyncKalypso | LocalKalypso:
        """The async client underneath."""
        return self._client

    def close(self) -> None:
        self._loop.run(self._client.close())
        self._loop.stop()

    def __enter__(self) -> Kalypso:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def address(self) -> str:
        return self._client.address

    @property
    def chain_id(self) -> int:
        client = self._client
        return client.deployment.chain_id if isinstance(client, AsyncKalypso) else 0

    def amount(self, value: Amount) -> int:
        return self._client.amount(value)

    def show(self, amount: int) -> str:
        return self._client.show(amount)

    def balance(self, address: str | None = None) -> int:
        return self._loop.run(self._client.balance(address))

    def wallet_balance(self, address: str | None = None) -> int:
        return self._loop.run(self._client.wallet_balance(address))

    def deposit(self, amount: Amount) -> TxReceipt | None:
        return self._loop.run(self._client.deposit(amount))

    def withdraw(self, amount: Amount | None = None, to: str | None = None) -> TxReceipt | None:
        return self._loop.run(self._client.withdraw(amount, to))

    def record(self, on_sent: Any) -> None:
        """See `AsyncKalypso.record`."""
        if isinstance(self._client, AsyncKalypso):
            self._client.record(on_sent)

    def landed(self, hashes: list[bytes]) -> TxReceipt | None:
        """See `AsyncKalypso.landed`."""
        if not isinstance(self._client, AsyncKalypso):
            return None
        return self._loop.run(self._client.landed(hashes))

    def markets(self) -> list[Market]:
        return self._loop.run(self._client.markets())

    def market(self, ref: MarketRef) -> Market:
        return self._loop.run(self._client.market(ref))

    def stats(self, ref: MarketRef) -> MarketStats:
        return self._loop.run(self._client.stats(ref))

    def request_proof(
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
    ) -> ProofRequest:
        """See `AsyncKalypso.request_proof`."""
        handle = self._loop.run(
            self._client.request_proof(
                market,
                inputs,
                max_price=max_price,
                pricing=pricing,
                proof_time=proof_time,
                expires_in=expires_in,
                skip_preflight=skip_preflight,
                wasm=wasm,
                refund_address=refund_address,
                salt=salt,
            )
        )
        return ProofRequest(self._loop, handle)

    def request(self, request_id: bytes | str) -> ProofRequest:
        """Re-attach to a request by id."""
        return ProofRequest(self._loop, self._loop.run(self._client.request(request_id)))

    def slash(self, request: ProofRequest | bytes | str) -> Outcome:
        """Slash the generator of an overdue task (see `AsyncKalypso.slash`)."""
        if isinstance(request, ProofRequest):
            return request.slash()
        return self._loop.run(self._client.slash(request))

    def watch_and_slash(self, seconds: float | None = None) -> list[Outcome]:
        """Slash this account's overdue tasks for `seconds` (forever without)."""

        async def watch() -> list[Outcome]:
            stop = asyncio.Event()
            if seconds is not None:
                asyncio.get_running_loop().call_later(seconds, stop.set)
            return await self._client.watch_and_slash(stop)

        return self._loop.run(watch())

    def matching_engine_key(self) -> bytes:
        if not isinstance(self._client, AsyncKalypso):
            raise ConfigError("the local backend has no matching engine")
        return self._loop.run(self._client.matching_engine_key())


class ProofRequest:
    """A placed request, blocking: `wait_for_proof`, `status`, `cancel`, re-pricing."""

    def __init__(self, loop: _Loop, handle: object) -> None:
        assert isinstance(handle, AsyncProofRequest | LocalProofRequest)
        self._loop = loop
        self.aio = handle

    def __repr__(self) -> str:
        return repr(self.aio)

    @property
    def id(self) -> bytes:
        return self.aio.id

    @property
    def market(self) -> Market:
        return self.aio.market

    @property
    def max_price(self) -> int:
        return self.aio.max_price

    @property
    def quote(self) -> Quote | None:
        return getattr(self.aio, "quote", None)

    def status(self) -> RequestStatus:
        return self._loop.run(self.aio.status())

    def wait(self, timeout: float | None = None, **options: Any) -> Outcome:
        return self._loop.run(self.aio.wait(timeout, **options))

    def wait_for_proof(self, timeout: float | None = None, **options: Any) -> Proof:
        return self._loop.run(self.aio.wait_for_proof(timeout, **options))

    def cancel(self) -> Outcome:
        return self._loop.run(self.aio.cancel())

    def increase_max_price(self, amount: Amount) -> int:
        return self._loop.run(self.aio.increase_max_price(amount))

    def slash(self) -> Outcome:
        if not isinstance(self.aio, AsyncProofRequest):
            return self._loop.run(self.aio.client.slash(self.aio))
        return self._loop.run(self.aio.slash())


async def _local(**options: Any) -> LocalKalypso:
    return LocalKalypso(**options)
