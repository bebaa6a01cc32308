"""Bring the chain in line with the generator's config: register, stake, compute, offers.

Run at every start, so the file stays the truth: a changed price is an
`update_offer`, a market removed from the file is left (the node could not prove its
tasks), a raised stake is topped up. Stake is never lowered here: taking stake back
is `kalypso generator exit` or an explicit unstake. Approvals are for exactly the
amount a call pulls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from kalypso.chain import TxSender
from kalypso.daemon import Binding
from kalypso.deployment import Deployment
from kalypso.errors import ConfigError, UnauditedMarketError
from kalypso.generator.config import GeneratorConfig, MarketConfig, table_name
from kalypso.logs import get_logger
from kalypso.market import GeneratorStatus
from kalypso.market.catalog import aonchain_names
from kalypso.market.codecheck import code_roles, judge_code, trusted_contracts
from kalypso.market.names import needs_metadata, resolve_market

log = get_logger("kalypso.generator")

ZERO_KEY = b"\x00" * 32


@dataclass(frozen=True)
class MarketTerms:
    """What the node needs of a market's on-chain terms."""

    market_id: int
    verifier: str
    input_verifier: str | None
    penalty: int


@dataclass(frozen=True)
class Offer:
    joined: bool
    price: int
    proof_time: int
    compute_per_request: int
    encryption_key: bytes


async def market_terms(markets: Any, market_id: int) -> MarketTerms:
    terms = await markets.functions.market(market_id).call()
    input_verifier = str(terms[2])
    return MarketTerms(
        market_id,
        verifier=str(terms[1]),
        input_verifier=None if int(input_verifier, 16) == 0 else input_verifier,
        penalty=int(terms[3]),
    )


async def resolve_markets(
    binding: Binding,
    configs: tuple[MarketConfig, ...],
    read_names: Callable[[], Awaitable[dict[int, str]]] | None = None,
) -> dict[int, tuple[MarketConfig, MarketTerms]]:
    """Each configured market by id, with its terms; unknown ones are a `ConfigError`.

    A `[markets.KEY]` table names a market by id, by the deployment file's name for it, or
    by the name its on-chain metadata gives it (`kalypso.market.names`: a name two markets
    carry is ambiguous, so a later look-alike market stops the node rather than takes its
    stake). `read_names` reads the metadata names (default: from the chain's logs)."""
    markets, names = binding.markets, binding.deployment.markets
    count = int(await markets.functions.market_count().call())
    carried = None
    if any(needs_metadata(c.market, names) for c in configs):
        if read_names is None:
            start = binding.deployment.deploy_block
            read_names = partial(aonchain_names, binding.w3, markets.address, start)
        carried = await read_names()
    resolved: dict[int, tuple[MarketConfig, MarketTerms]] = {}
    for config in configs:
        try:
            market_id = resolve_market(config.market, names, carried, count=count)
        except ConfigError as exc:  # keeps its class and code (an ambiguous name's)
            exc.args = (f"the config's {table_name(config.market)}: {exc.args[0]}",)
            raise
        if market_id in resolved:
            raise ConfigError(
                f"the config's {table_name(resolved[market_id][0].market)} and "
                f"{table_name(config.market)} are both market {market_id}: keep one"
            )
        resolved[market_id] = (config, await market_terms(markets, market_id))
    return resolved


async def check_market_code(
    w3: Any, deployment: Deployment, markets: dict[int, tuple[MarketConfig, MarketTerms]]
) -> None:
    """Refuse a market whose verifier or input verifier could change its answers after
    the node stakes on it (`kalypso.market.codecheck`), unless its table trusts it."""
    trusted = trusted_contracts(deployment)
    for market_id, (market, terms) in markets.items():
        failed = []
        for name, address in code_roles(terms.verifier, terms.input_verifier):
            code = bytes(await w3.eth.get_code(address))
            if not (check := judge_code(name, address, code, trusted)).ok:
                failed.append(check)
        if not failed:
            continue
        detail = "; ".join(f"{c.name} {c.detail}" for c in failed)
        if market.trust_market_code:
            log.warning("market code trusted by the config", market=market.market, detail=detail)
            continue
        raise UnauditedMarketError(
            f"market {market_id} ({table_name(market.market)}) fails the code audit: {detail}. "
            "Leave it out of the config, or set trust_market_code = true in its table if you "
            "trust its owner not to switch it"
        )


class Onboarding:
    """The transactions that make the chain match the config."""

    def __init__(
        self,
        config: GeneratorConfig,
        sender: TxSender,
        registry: Any,
        token: Any,
        on_gas: Any,
    ) -> None:
        self.config = config
        self.sender = sender
        self.registry = registry
        self.token = token
        self.address = sender.address
        #: called with (what, wei) after every transaction
        self.on_gas = on_gas

    async def _send(self, what: str, call: Any) -> None:
        receipt = await self.sender.send(call)
        self.on_gas(what, int(receipt["gasUsed"]) * int(receipt.get("effectiveGasPrice", 0)))
        log.info("onboarding", step=what, tx="0x" + bytes(receipt["transactionHash"]).hex())

    async def _approve(self, amount: int) -> None:
        balance = int(await self.token.functions.balanceOf(self.address).call())
        if balance < amount:
            raise ConfigError(
                f"{self.address} holds {balance} token base units but the stake needs "
                f"{amount} more: fund the generator's wallet or lower `stake`"
            )
        await self._send("approve", self.token.functions.approve(self.registry.address, amount))

    async def stake_and_compute(self, markets: dict[int, tuple[MarketConfig, MarketTerms]]) -> bool:
        """Register, or top up the stake and set the declared compute. False when the
        generator is exiting: it then only finishes its live tasks."""
        config = self.config
        for market_id, (market, terms) in markets.items():
            if terms.penalty > config.stake:
                raise ConfigError(
                    f"market {market.market} (id {market_id}) locks a penalty of "
                    f"{terms.penalty} per task, above the whole stake {config.stake}: the "
                    "node could never take a task there; raise `stake`"
                )
        g = await self.registry.functions.generators(self.address).call()
        status, stake, used = GeneratorStatus(g[0]), int(g[3]), int(g[6])
        declared = int(g[5])
        if status == GeneratorStatus.EXITING:
            log.warning(
                "exit requested: finishing live tasks only; `kalypso generator exit` "
                "withdraws the stake once unbonded",
                address=self.address,
            )
            return False
        reward = config.reward_address or self.address
        if status == GeneratorStatus.UNREGISTERED:
            await self._approve(config.stake)
            await self._send(
                "register", self.registry.functions.register(reward, config.compute, config.stake)
            )
            return True
        if stake < config.stake:
            await self._approve(config.stake - stake)
            await self._send("add_stake", self.registry.functions.add_stake(config.stake - stake))
        if declared != config.compute:
            if config.compute < used:
                log.warning(
                    "compute kept: live tasks use more than the new value",
                    declared=declared,
                    wanted=config.compute,
                )
            else:
                call = self.registry.functions.set_declared_compute(config.compute)
                await self._send("set_declared_compute", call)
        return True

    async def offers(
        self,
        markets: dict[int, tuple[MarketConfig, MarketTerms]],
        market_count: int,
        encryption_keys: dict[int, bytes | None],
        *,
        joined: bool,
    ) -> None:
        """Join or update every configured market (`joined`), or leave them all (a pause);
        leave joined markets the config no longer names."""
        functions = self.registry.functions
        for market_id in range(market_count):
            offer = Offer(*await functions.offers(self.address, market_id).call())
            if market_id not in markets or not joined:
                if offer.joined:
                    await self._send(f"leave_market {market_id}", functions.leave_market(market_id))
                continue
            market, _ = markets[market_id]
            key = encryption_keys.get(market_id) or ZERO_KEY
            wanted = (market.price, market.proof_time, market.compute_per_request, key)
            args = (market_id, *wanted)
            if not offer.joined:
                await self._send(f"join_market {market_id}", functions.join_market(*args))
            elif (
                offer.price,
                offer.proof_time,
                offer.compute_per_request,
                offer.encryption_key,
            ) != wanted:
                await self._send(f"update_offer {market_id}", functions.update_offer(*args))
