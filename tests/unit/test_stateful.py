"""Stateful fuzzing of the marketplace and the registry against a Python model.

A Hypothesis `RuleBasedStateMachine` drives 3 requesters, 3 generators, the
markets (2 at the start, with different penalties; more are created rarely)
and one matching engine (the owner) through every public action. Before each
call the model predicts the outcome: success, or the exact revert reason; on
success it applies the same effects. Requests are also acted on with altered
fields and by ids never created, ids already taken are reused, and proofs go
in batches up to and past their bounds (16 items, 256-byte proofs). After every
step the contracts are compared with the model and the invariants are checked:

(a) tokens held by the marketplace (the one vault: stakes too) == internal
    balances + escrow of OPEN and ASSIGNED requests + stakes (all from the
    model);
(b) used compute <= declared compute;
(c) locked stake == sum of the penalties of the generator's ASSIGNED tasks,
    used compute == sum of their compute snapshots;
(d) locked stake <= stake;
(e) the registry holds no token, ever (a forfeit moves no token: the
    marketplace credits it from the stake it holds);
(f) every request's packed state and stored hash are the model's: finished
    requests (fulfilled, invalid inputs, slashed) have their hash cleared,
    closed ones (cancelled or expired: CLOSED) keep it.

The teardown settles everything (expire, slash, withdraw, exit) and checks
that no token is left stuck.

The deployment is built once, at import (outside any boa anchor), because a
state machine cannot take pytest fixtures; the titanoboa plugin rolls the
chain back after each Hypothesis example.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boa
from eth_utils import keccak
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from kalypso.contracts.deploy import deploy_boa
from kalypso.market import GeneratorStatus, Request, RequestState, TaskState, encode_signals
from kalypso.market import request_id as compute_request_id
from tests.unit.helpers import UNIT, Kal, mock_proof, now

FEE = 3 * UNIT
FUNDS = 1_000_000 * UNIT
PENALTIES = (100 * UNIT, 30 * UNIT)
MAX_PRICE = 2**96 - 1
MAX_PENALTY = 2**88 - 1  # it shares a slot with the verifier and the settlement flags
MAX_STAKE = 2**128 - 1
MAX_COMPUTE = 2**32 - 1
MAX_PROOF_BATCH = 16
MAX_BATCH_PROOF_BYTES = 256
INVALID_SIGNAL = 2_000_000  # at or above the ThresholdInputVerifier's limit (1_000_000)
DISCARD_BPS = 2_000
BOUNTY_BPS = 5_000
LIVE = (RequestState.OPEN, RequestState.ASSIGNED)
# final states whose request hash is cleared: any call passing the fields reverts
FINISHED = (RequestState.FULFILLED, RequestState.INVALID_INPUTS, RequestState.SLASHED)
ENDED = (*FINISHED, RequestState.CLOSED)
ZERO = "0x" + "00" * 20
ZERO_KEY = b"\x00" * 32


@dataclass
class World:
    kal: Kal
    requesters: list[str]
    generators: list[str]
    rewards: list[str]  # an alternative reward address per generator
    slasher: str
    wallets: dict[str, int]  # token balances after the setup


def _build_world() -> World:
    kal = Kal(deploy_boa(market_creation_fee=FEE))
    owner = kal.d.owner
    kal.market.set_matching_engine(owner, True, sender=owner)
    kal.token.approve(kal.market.address, 2**256 - 1, sender=owner)
    requesters = [boa.env.generate_address(f"sm-requester-{i}") for i in range(3)]
    generators = [boa.env.generate_address(f"sm-generator-{i}") for i in range(3)]
    rewards = [boa.env.generate_address(f"sm-reward-{i}") for i in range(3)]
    slasher = boa.env.generate_address("sm-slasher")
    for who in requesters + generators:
        kal.fund(who, FUNDS)
    for penalty in PENALTIES:
        kal.create_market(penalty)
    accounts = [owner, kal.d.treasury, slasher, *requesters, *generators, *rewards]
    wallets = {a: int(kal.token.balanceOf(a)) for a in accounts}
    return World(kal, requesters, generators, rewards, slasher, wallets)


WORLD = _build_world()


@dataclass
class Offer:
    price: int
    proof_time: int
    compute: int
    key: bytes


@dataclass
class Gen:
    status: GeneratorStatus = GeneratorStatus.UNREGISTERED
    index: int = 0
    reward: str = ""
    stake: int = 0
    locked: int = 0
    declared: int = 0
    used: int = 0
    exit_at: int = 0
    missed: int = 0
    offers: dict[int, Offer] = field(default_factory=dict)


@dataclass
class Req:
    rid: bytes
    request: Request
    inputs: bytes
    salt: bytes
    state: RequestState = RequestState.OPEN
    generator: str | None = None
    deadline: int = 0
    price: int = 0
    compute: int = 0
    penalty: int = 0


actor = st.integers(0, 2)
pick = st.integers(0, 2**16)
amount_units = st.sampled_from([0, 1, 20, 100, 250])
stake_amounts = st.sampled_from([0, UNIT, 20 * UNIT, 100 * UNIT, 250 * UNIT, MAX_STAKE + 1])
compute_values = st.sampled_from([0, 1, 2, 3, 5, 10, 10, MAX_COMPUTE + 1])
prices = st.sampled_from([UNIT, 5 * UNIT, 10 * UNIT, 10 * UNIT, 60 * UNIT, MAX_PRICE + 1])
proof_times = st.sampled_from([0, 1, 60, 600, 600, 3600, 86_400, 86_401])
per_request = st.sampled_from([0, 1, 1, 2, 4, 12])
market_ids = st.sampled_from([0, 0, 1, 1, 2, 5])


class MarketplaceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.kal = WORLD.kal
        self.market = self.kal.market
        self.registry = self.kal.registry
        self.owner = self.kal.d.owner
        self.treasury = self.kal.d.treasury
        # Each example starts from the world as built (the plugin rolls back).
        assert self.registry.generator_count() == 0
        self.penalties = list(PENALTIES)
        self.wallets = dict(WORLD.wallets)
        self.balances: dict[str, int] = dict.fromkeys(WORLD.wallets, 0)
        self.balances[self.treasury] = FEE * len(PENALTIES)
        self.gens: dict[str, Gen] = {g: Gen() for g in WORLD.generators}
        self.generator_count = 0
        self.requests: list[Req] = []
        self.salt = 0

    # ----------------------------------------------------------- plumbing

    def expect(self, reason: str | None, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """Call `fn`; it must succeed when `reason` is None, else revert with it."""
        if reason is None:
            return fn(*args, **kw)
        with boa.reverts(reason):
            fn(*args, **kw)
        return None

    def charge(self, payer: str, amount: int) -> None:
        """escrow._charge: from the internal balance if it suffices, else pulled."""
        if amount == 0:
            return
        if self.balances[payer] >= amount:
            self.balances[payer] -= amount
        else:
            self.wallets[payer] -= amount

    def credit(self, account: str, amount: int) -> None:
        self.balances[account] = self.balances.get(account, 0) + amount

    def choose(self, i: int, states: tuple[RequestState, ...] | None) -> Req:
        """A request in one of `states` when there is one, else any (the revert paths)."""
        pool = [r for r in self.requests if states is None or r.state in states]
        pool = pool or self.requests
        return pool[i % len(pool)]

    def release(self, r: Req, forfeit: int, missed: bool) -> str:
        """registry.settle; returns the reward address."""
        assert r.generator is not None
        g = self.gens[r.generator]
        g.used -= r.compute
        g.locked -= r.penalty
        g.stake -= forfeit
        if missed:
            g.missed += 1
        return g.reward

    def set_offer_reason(self, g: Gen, price: int, proof_time: int, cpr: int) -> str | None:
        if price > MAX_PRICE:
            return "registry: price too large"
        if not 0 < proof_time <= 86_400:
            return "registry: bad proof time"
        if cpr == 0:
            return "registry: bad compute"
        if cpr > g.declared:
            return "registry: compute above declared"
        return None

    def fields_reason(self, r: Req) -> str | None:
        """requests._check_request with the right fields: a finished request's hash is gone."""
        if r.state in FINISHED:
            return "requests: request finished"
        return None

    def cancel_reason(self, r: Req, caller: str) -> str | None:
        """cancel_request: the fields, then the caller, then the state."""
        if r.state in FINISHED:
            return "requests: request finished"
        if caller != r.request.requester:
            return "requests: not the requester"
        if r.state != RequestState.OPEN:
            return "requests: not open"
        return None

    def expire_reason(self, r: Req) -> str | None:
        if r.state in FINISHED:
            return "requests: request finished"
        if r.state != RequestState.OPEN:
            return "requests: not open"
        if now() <= r.request.expiry:
            return "requests: not expired"
        return None

    def increase_reason(self, r: Req, extra: int) -> str | None:
        if r.state in FINISHED:
            return "requests: request finished"
        if r.state != RequestState.OPEN:
            return "requests: not open"
        if now() > r.request.expiry:
            return "requests: expired"
        if extra == 0:
            return "requests: price not higher"
        return None

    def live_reason(self, r: Req, caller: str) -> str | None:
        """requests._live_task then the generator check (submit_proof, submit_invalid_inputs)."""
        reason = self.fields_reason(r)
        if reason is not None:
            return reason
        if r.state != RequestState.ASSIGNED:
            return "requests: not assigned"
        if now() > r.deadline:
            return "requests: deadline passed"
        if caller != r.generator:
            return "requests: not the generator"
        return None

    def caller_for(self, r: Req, as_generator: bool, k: int) -> str:
        if as_generator and r.generator is not None:
            return r.generator
        others = [g for g in WORLD.generators if g != r.generator]
        return others[k % len(others)]

    # -------------------------------------------------------------- setup

    @initialize(
        stakes=st.lists(st.sampled_from([0, 150, 400, 1000]), min_size=3, max_size=3),
        computes=st.lists(st.integers(1, 6), min_size=3, max_size=3),
        joins=st.lists(
            st.tuples(actor, st.integers(0, 1), st.sampled_from([UNIT, 10 * UNIT, 40 * UNIT])),
            min_size=2,
            max_size=6,
        ),
        requests=st.lists(
            st.tuples(actor, st.integers(0, 1), st.sampled_from([10, 50, 100]), st.booleans()),
            min_size=1,
            max_size=5,
        ),
        assigned=st.lists(pick, max_size=4),
    )
    def onboard(
        self,
        stakes: list[int],
        computes: list[int],
        joins: list[tuple[int, int, int]],
        requests: list[tuple[int, int, int, bool]],
        assigned: list[int],
    ) -> None:
        """Start with generators, offers, requests and tasks, so that few steps reach far."""
        for i in range(len(WORLD.generators)):
            self.register(i, computes[i], stakes[i] * UNIT, False)
        for i, m, price in joins:
            self.join_market(i, m, price, 600, 1)
        for i, m, max_price, invalid in requests:
            self.create_request(i, i, m, max_price * UNIT, 3600, 1000, invalid, 7)
        for k in assigned:
            self.assign_eligible(k, batch=False)

    # ------------------------------------------------------------ markets

    @precondition(lambda self: len(self.penalties) < 4)
    @rule(
        penalty=st.sampled_from(
            [1, 7 * UNIT + 3, 30 * UNIT, 250 * UNIT, MAX_PENALTY, MAX_PENALTY + 1]
        )
    )
    def create_market(self, penalty: int) -> None:
        reason = "markets: penalty too large" if penalty > MAX_PENALTY else None
        market_id = self.expect(reason, self.kal.create_market, penalty)
        if reason is None:
            assert market_id == len(self.penalties)
            self.penalties.append(penalty)
            self.charge(self.owner, FEE)
            self.credit(self.treasury, FEE)

    # ---------------------------------------------------------- generators

    @rule(i=actor, compute=compute_values, stake=stake_amounts, other_reward=st.booleans())
    def register(self, i: int, compute: int, stake: int, other_reward: bool) -> None:
        who = WORLD.generators[i]
        g = self.gens[who]
        reward = WORLD.rewards[i] if other_reward else who
        reason = None
        if g.status != GeneratorStatus.UNREGISTERED:
            reason = "registry: already registered"
        elif not 0 < compute <= MAX_COMPUTE:
            reason = "registry: bad compute"
        elif stake > MAX_STAKE:
            reason = "registry: stake too large"
        self.expect(reason, self.registry.register, reward, compute, stake, sender=who)
        if reason is None:
            if g.index == 0:
                self.generator_count += 1
                g.index = self.generator_count
            g.status = GeneratorStatus.ACTIVE
            g.reward, g.stake, g.locked = reward, stake, 0
            g.declared, g.used, g.exit_at = compute, 0, 0
            self.wallets[who] -= stake

    @rule(i=actor, amount=stake_amounts)
    def add_stake(self, i: int, amount: int) -> None:
        who, g = WORLD.generators[i], self.gens[WORLD.generators[i]]
        reason = None
        if amount == 0:
            reason = "registry: zero amount"
        elif g.status == GeneratorStatus.UNREGISTERED:
            reason = "registry: not registered"
        elif g.stake + amount > MAX_STAKE:
            reason = "registry: stake too large"
        self.expect(reason, self.registry.add_stake, amount, sender=who)
        if reason is None:
            g.stake += amount
            self.wallets[who] -= amount

    @rule(i=actor, part=st.sampled_from(["half", "all", "over", "one"]))
    def unstake(self, i: int, part: str) -> None:
        who, g = WORLD.generators[i], self.gens[WORLD.generators[i]]
        free = g.stake - g.locked
        amount = {"half": free // 2, "all": free, "over": free + 1, "one": 1}[part]
        reason = None
        if amount == 0:
            reason = "registry: zero amount"
        elif g.status == GeneratorStatus.UNREGISTERED:
            reason = "registry: not registered"
        elif free < amount:
            reason = "registry: stake locked"
        self.expect(reason, self.registry.unstake, amount, sender=who)
        if reason is None:
            g.stake -= amount
            self.wallets[who] += amount

    @rule(i=actor, compute=compute_values)
    def set_declared_compute(self, i: int, compute: int) -> None:
        who, g = WORLD.generators[i], self.gens[WORLD.generators[i]]
        reason = None
        if g.status == GeneratorStatus.UNREGISTERED:
            reason = "registry: not registered"
        elif not 0 < compute <= MAX_COMPUTE:
            reason = "registry: bad compute"
        elif compute < g.used:
            reason = "registry: compute in use"
        self.expect(reason, self.registry.set_declared_compute, compute, sender=who)
        if reason is None:
            g.declared = compute

    @rule(i=actor, other=st.booleans())
    def set_reward_address(self, i: int, other: bool) -> None:
        who, g = WORLD.generators[i], self.gens[WORLD.generators[i]]
        reward = WORLD.rewards[i] if other else who
        reason = None
        if g.status == GeneratorStatus.UNREGISTERED:
            reason = "registry: not registered"
        self.expect(reason, self.registry.set_reward_address, reward, sender=who)
        if reason is None:
            g.reward = reward

    @rule(i=actor, m=market_ids, price=prices, proof_time=proof_times, cpr=per_request)
    def join_market(self, i: int, m: int, price: int, proof_time: int, cpr: int) -> None:
        who, g = WORLD.generators[i], self.gens[WORLD.generators[i]]
        reason = None
        if g.status != GeneratorStatus.ACTIVE:
            reason = "registry: not active"
        elif m >= len(self.penalties):
            reason = "registry: unknown market"
        elif m in g.offers:
            reason = "registry: already in market"
        else:
            reason = self.set_offer_reason(g, price, proof_time, cpr)
        key = bytes([i]) * 32
        self.expect(reason, self.registry.join_market, m, price, proof_time, cpr, key, sender=who)
        if reason is None:
            g.offers[m] = Offer(price, proof_time, cpr, key)

    @rule(i=actor, m=market_ids, price=prices, proof_time=proof_times, cpr=per_request)
    def update_offer(self, i: int, m: int, price: int, proof_time: int, cpr: int) -> None:
        who, g = WORLD.generators[i], self.gens[WORLD.generators[i]]
        reason = None
        if m not in g.offers:
            reason = "registry: not in market"
        else:
            reason = self.set_offer_reason(g, price, proof_time, cpr)
        key = bytes([i]) * 32
        self.expect(reason, self.registry.update_offer, m, price, proof_time, cpr, key, sender=who)
        if reason is None:
            g.offers[m] = Offer(price, proof_time, cpr, key)

    @rule(i=actor, m=market_ids)
    def leave_market(self, i: int, m: int) -> None:
        who, g = WORLD.generators[i], self.gens[WORLD.generators[i]]
        reason = None if m in g.offers else "registry: not in market"
        self.expect(reason, self.registry.leave_market, m, sender=who)
        if reason is None:
            del g.offers[m]

    @rule(i=actor)
    def request_exit(self, i: int) -> None:
        who, g = WORLD.generators[i], self.gens[WORLD.generators[i]]
        reason = None if g.status == GeneratorStatus.ACTIVE else "registry: not active"
        self.expect(reason, self.registry.request_exit, sender=who)
        if reason is None:
            g.status = GeneratorStatus.EXITING
            g.exit_at = now()

    @rule(i=actor)
    def withdraw_stake(self, i: int) -> None:
        who, g = WORLD.generators[i], self.gens[WORLD.generators[i]]
        reason = None
        if g.status != GeneratorStatus.EXITING:
            reason = "registry: not exiting"
        elif g.used != 0:
            reason = "registry: tasks live"
        self.expect(reason, self.registry.withdraw, sender=who)
        if reason is None:
            # Offers, index, declared compute and missed deadlines stay as they are.
            g.status = GeneratorStatus.UNREGISTERED
            self.wallets[who] += g.stake
            g.stake = 0

    # ------------------------------------------------------------ balances

    @rule(k=st.integers(0, 6), amount=amount_units)
    def deposit(self, k: int, amount: int) -> None:
        who = [self.owner, *WORLD.requesters, *WORLD.generators][k]
        amount *= UNIT
        reason = None if amount > 0 else "escrow: zero amount"
        self.expect(reason, self.market.deposit, amount, sender=who)
        if reason is None:
            self.wallets[who] -= amount
            self.balances[who] += amount

    @rule(k=pick, part=st.sampled_from(["half", "all", "over", "zero"]))
    def withdraw(self, k: int, part: str) -> None:
        accounts = sorted(self.balances)
        who = accounts[k % len(accounts)]
        balance = self.balances[who]
        amount = {"half": balance // 2, "all": balance, "over": balance + 1, "zero": 0}[part]
        reason = None
        if amount == 0:
            reason = "escrow: zero amount"
        elif amount > balance:
            reason = "escrow: insufficient balance"
        self.expect(reason, self.market.withdraw, amount, who, sender=who)
        if reason is None:
            self.balances[who] -= amount
            self.wallets[who] += amount

    # ------------------------------------------------------------ requests

    @rule(
        i=actor,
        refund_to=actor,
        m=market_ids,
        max_price=st.sampled_from([UNIT, 5 * UNIT, 10 * UNIT, 50 * UNIT, 100 * UNIT]),
        proof_time=st.sampled_from([1, 600, 3600, 3600, 86_400]),
        expiry_in=st.sampled_from([0, 100, 1000, 5000]),
        invalid=st.sampled_from([False, False, True]),
        signal=st.integers(0, 999_999),
    )
    def create_request(
        self,
        i: int,
        refund_to: int,
        m: int,
        max_price: int,
        proof_time: int,
        expiry_in: int,
        invalid: bool,
        signal: int,
    ) -> None:
        who, refund = WORLD.requesters[i], WORLD.requesters[refund_to]
        inputs = encode_signals([INVALID_SIGNAL if invalid else signal])
        self.salt += 1
        salt = self.salt.to_bytes(32, "big")
        expiry = now() + expiry_in
        reason = None if m < len(self.penalties) else "markets: unknown market"
        rid = self.expect(
            reason,
            self.market.create_request,
            m,
            salt,
            max_price,
            proof_time,
            expiry,
            refund,
            inputs,
            b"",
            sender=who,
        )
        if reason is None:
            chain_id = boa.env.evm.patch.chain_id
            assert rid == compute_request_id(chain_id, self.market.address, who, salt)
            request = Request.new(
                market_id=m,
                requester=who,
                refund_address=refund,
                max_price=max_price,
                proof_time=proof_time,
                expiry=expiry,
                public_inputs=inputs,
            )
            self.requests.append(Req(rid, request, inputs, salt))
            self.charge(who, max_price)

    @precondition(lambda self: self.requests)
    @rule(k=pick, by_requester=st.sampled_from([True, True, False]))
    def cancel_request(self, k: int, by_requester: bool) -> None:
        r = self.choose(k, (RequestState.OPEN,))
        requester = r.request.requester
        caller = requester if by_requester else next(a for a in WORLD.requesters if a != requester)
        reason = self.cancel_reason(r, caller)
        self.expect(reason, self.market.cancel_request, r.rid, r.request.as_tuple(), sender=caller)
        if reason is None:
            r.state = RequestState.CLOSED
            self.credit(r.request.refund_address, r.request.max_price)

    @precondition(lambda self: self.requests)
    @rule(k=pick)
    def cancel_expired(self, k: int) -> None:
        r = self.choose(k, (RequestState.OPEN,))
        reason = self.expire_reason(r)
        self.expect(
            reason, self.market.cancel_expired, r.rid, r.request.as_tuple(), sender=WORLD.slasher
        )
        if reason is None:
            r.state = RequestState.CLOSED
            self.credit(r.request.refund_address, r.request.max_price)

    @precondition(lambda self: self.requests)
    @rule(k=pick, extra=st.sampled_from([0, 1, 5 * UNIT]))
    def increase_max_price(self, k: int, extra: int) -> None:
        r = self.choose(k, (RequestState.OPEN,))
        requester = r.request.requester
        reason = self.increase_reason(r, extra)
        new_price = r.request.max_price + extra
        self.expect(
            reason,
            self.market.increase_max_price,
            r.rid,
            r.request.as_tuple(),
            new_price,
            sender=requester,
        )
        if reason is None:
            r.request = r.request.with_max_price(new_price)
            self.charge(requester, extra)

    @precondition(lambda self: self.requests)
    @rule(k=pick)
    def recreate_request(self, k: int) -> None:
        """An id is taken for good: its requester's salt never makes a request again."""
        r = self.choose(k, ENDED)
        self.expect(
            "requests: request exists",
            self.market.create_request,
            r.request.market_id,
            r.salt,
            r.request.max_price,
            r.request.proof_time,
            now() + 100,
            r.request.refund_address,
            r.inputs,
            b"",
            sender=r.request.requester,
        )

    @precondition(lambda self: self.requests)
    @rule(
        k=pick,
        action=st.sampled_from(
            [
                "cancel_request",
                "cancel_expired",
                "increase_max_price",
                "assign",
                "submit_proof",
                "submit_invalid_inputs",
                "discard",
                "slash",
            ]
        ),
        unknown=st.booleans(),
        batch=st.booleans(),
    )
    def wrong_fields(self, k: int, action: str, unknown: bool, batch: bool) -> None:
        """Act on a request with altered fields (another max price), or on an id never created."""
        r = self.choose(k, None)
        if unknown:
            rid = keccak(b"never created" + k.to_bytes(32, "big"))
            request = r.request
            reason = "requests: unknown request"
        else:
            rid = r.rid
            request = r.request.with_max_price(r.request.max_price + 1)
            reason = self.fields_reason(r) or "requests: fields mismatch"
        fields = request.as_tuple()
        generator = r.generator or WORLD.generators[k % len(WORLD.generators)]
        if action == "assign":
            # assign looks at the state before the fields: anything not OPEN is "not open"
            if not unknown and r.state != RequestState.OPEN:
                reason = "requests: not open"
            self.call_assign(reason, rid, fields, generator, 10 * UNIT, self.owner, batch)
            return
        requester = request.requester
        proof = mock_proof(r.inputs, rid, generator)
        calls: dict[str, tuple[Callable[..., Any], tuple[Any, ...], str]] = {
            "cancel_request": (self.market.cancel_request, (rid, fields), requester),
            "cancel_expired": (self.market.cancel_expired, (rid, fields), WORLD.slasher),
            "increase_max_price": (
                self.market.increase_max_price,
                (rid, fields, request.max_price + UNIT),
                requester,
            ),
            "submit_proof": (self.market.submit_proof, (rid, fields, r.inputs, proof), generator),
            "submit_invalid_inputs": (
                self.market.submit_invalid_inputs,
                (rid, fields, r.inputs, b""),
                generator,
            ),
            "discard": (self.market.discard, (rid, fields), generator),
            "slash": (self.market.slash, (rid, fields), WORLD.slasher),
        }
        fn, args, caller = calls[action]
        self.expect(reason, fn, *args, sender=caller)

    # ----------------------------------------------------------- assignment

    def assign_reason(self, r: Req, who: str, price: int, engine: str) -> str | None:
        if engine != self.owner:
            return "requests: not a matching engine"
        if r.state != RequestState.OPEN:
            return "requests: not open"
        if now() > r.request.expiry:
            return "requests: expired"
        if price > r.request.max_price:
            return "requests: price above max"
        g = self.gens[who]
        offer = g.offers.get(r.request.market_id)
        if g.status == GeneratorStatus.UNREGISTERED:
            return "registry: not registered"
        if g.status == GeneratorStatus.EXITING:
            return "registry: generator exiting"
        if offer is None:
            return "registry: not in market"
        if offer.price != price:
            return "registry: price is not the quote"
        if offer.proof_time > r.request.proof_time:
            return "registry: proof time too long"
        if g.used + offer.compute > g.declared:
            return "registry: not enough compute"
        if g.locked + self.penalties[r.request.market_id] > g.stake:
            return "registry: not enough free stake"
        return None

    def call_assign(
        self,
        reason: str | None,
        rid: bytes,
        fields: tuple[Any, ...],
        who: str,
        price: int,
        engine: str,
        batch: bool,
    ) -> None:
        """assign (reverts with the reason) or assign_batch (skips with it; a stranger's
        batch reverts: only an engine's own transactions log skips)."""
        if batch and reason != "requests: not a matching engine":
            assigned = self.market.assign_batch([(rid, fields, who, price, b"")], sender=engine)
            skipped = [e for e in self.market.get_logs() if type(e).__name__ == "AssignSkipped"]
            if reason is None:
                assert (assigned, skipped) == (1, [])
            else:
                assert assigned == 0
                assert [(e.request_id, e.generator, e.engine, e.reason) for e in skipped] == [
                    (rid, who, engine, reason)
                ]
        elif batch:
            item = (rid, fields, who, price, b"")
            self.expect(reason, self.market.assign_batch, [item], sender=engine)
        else:
            self.expect(reason, self.market.assign, rid, fields, who, price, b"", sender=engine)

    def do_assign(self, r: Req, who: str, price: int, engine: str, batch: bool) -> None:
        reason = self.assign_reason(r, who, price, engine)
        self.call_assign(reason, r.rid, r.request.as_tuple(), who, price, engine, batch)
        if reason is None:
            g = self.gens[who]
            offer = g.offers[r.request.market_id]
            r.state = RequestState.ASSIGNED
            r.generator, r.price, r.compute = who, price, offer.compute
            r.deadline = now() + r.request.proof_time
            r.penalty = self.penalties[r.request.market_id]
            g.used += offer.compute
            g.locked += r.penalty

    @precondition(lambda self: self.requests)
    @rule(
        k=pick,
        i=actor,
        quote=st.sampled_from([True, True, True, False]),
        batch=st.booleans(),
        by_engine=st.sampled_from([True, True, True, True, False]),
    )
    def assign(self, k: int, i: int, quote: bool, batch: bool, by_engine: bool) -> None:
        r = self.choose(k, (RequestState.OPEN,))
        who = WORLD.generators[i]
        offer = self.gens[who].offers.get(r.request.market_id)
        price = offer.price if offer is not None else 10 * UNIT
        price = price if quote else price + 1
        engine = self.owner if by_engine else WORLD.requesters[0]
        self.do_assign(r, who, price, engine, batch)

    @precondition(lambda self: self.requests)
    @rule(k=pick, batch=st.booleans())
    def assign_eligible(self, k: int, batch: bool) -> None:
        """The matching engine's happy path: a pair the model says must succeed, if any."""
        pairs = []
        for r in self.requests:
            for who in WORLD.generators:
                offer = self.gens[who].offers.get(r.request.market_id)
                if offer and self.assign_reason(r, who, offer.price, self.owner) is None:
                    pairs.append((r, who, offer.price))
        if pairs:
            r, who, price = pairs[k % len(pairs)]
            self.do_assign(r, who, price, self.owner, batch)

    # ----------------------------------------------------------- settlement

    @precondition(lambda self: self.requests)
    @rule(
        k=pick,
        as_generator=st.sampled_from([True, True, True, False]),
        other=actor,
        good=st.sampled_from([True, True, True, False]),
    )
    def submit_proof(self, k: int, as_generator: bool, other: int, good: bool) -> None:
        r = self.choose(k, (RequestState.ASSIGNED,))
        caller = self.caller_for(r, as_generator, other)
        reason = self.live_reason(r, caller) or (None if good else "mock: bad proof")
        proof = mock_proof(r.inputs, r.rid, caller) if good else b"\x00" * 32
        self.expect(
            reason,
            self.market.submit_proof,
            r.rid,
            r.request.as_tuple(),
            r.inputs,
            proof,
            sender=caller,
        )
        if reason is None:
            self.fulfil(r)

    def fulfil(self, r: Req) -> None:
        r.state = RequestState.FULFILLED
        reward = self.release(r, 0, False)
        self.credit(reward, r.price)
        self.credit(r.request.refund_address, r.request.max_price - r.price)

    def batch_reason(self, batch: list[Req], proofs: list[bytes], caller: str) -> str | None:
        """submit_proofs: the ABI bounds, then each item in turn; the first failure reverts all."""
        if len(batch) > MAX_PROOF_BATCH:
            return f"DynArray[ProofItem, {MAX_PROOF_BATCH}] bounds check"
        if any(len(proof) > MAX_BATCH_PROOF_BYTES for proof in proofs):
            return f"Bytes[{MAX_BATCH_PROOF_BYTES}] bounds check"
        market_id = batch[0].request.market_id
        done: set[bytes] = set()
        bad = False  # the verifier runs after every item's checks
        for r, proof in zip(batch, proofs, strict=True):
            if r.request.market_id != market_id:
                return "requests: mixed markets"
            if r.rid in done:
                return "requests: request finished"  # proven earlier in this batch
            reason = self.live_reason(r, caller)
            if reason is not None:
                return reason
            if len(batch) > 1 and len(proof) != MAX_BATCH_PROOF_BYTES:
                return "requests: batched proofs are 256 bytes"
            bad = bad or proof != mock_proof(r.inputs, r.rid, caller)
            done.add(r.rid)
        return "mock: bad proof" if bad else None

    @precondition(lambda self: self.requests)
    @rule(
        k=pick,
        size=st.integers(1, MAX_PROOF_BATCH),
        fill=st.sampled_from([True, True, False]),
        as_generator=st.sampled_from([True, True, True, False]),
        other=actor,
        extra=st.sampled_from(["none"] * 5 + ["duplicate", "any", "mixed", "over"]),
        last_proof=st.sampled_from(["good"] * 5 + ["bad", "longest", "too long"]),
    )
    def submit_proofs(
        self,
        k: int,
        size: int,
        fill: bool,
        as_generator: bool,
        other: int,
        extra: str,
        last_proof: str,
    ) -> None:
        """A batch of one generator's tasks in one market, sometimes with a bad item or too big.

        With `fill`, requesters first ask an active generator's market for up to 4 proofs
        at its quote and the matching engine hands it those it can take, so that batches
        are often live and of several tasks."""
        first = self.choose(k, (RequestState.ASSIGNED,))
        offers = [
            (who, m, offer)
            for who, g in self.gens.items()
            if g.status == GeneratorStatus.ACTIVE
            for m, offer in g.offers.items()
        ]
        if fill and offers:
            who, m, offer = offers[k % len(offers)]
            for j in range(min(size, 4)):
                self.create_request(j % 3, j % 3, m, offer.price, 86_400, 5000, False, j)
                r = self.requests[-1]
                if self.assign_reason(r, who, offer.price, self.owner) is not None:
                    break
                self.do_assign(r, who, offer.price, self.owner, batch=False)
                first = r
        caller = self.caller_for(first, as_generator, other)
        market_id = first.request.market_id
        batch = [first] + [
            r
            for r in self.requests
            if r is not first
            and r.state == RequestState.ASSIGNED
            and r.generator == first.generator
            and r.request.market_id == market_id
        ]
        batch = batch[:size]
        if extra == "duplicate":
            batch.append(batch[0])
        elif extra == "any":
            same = [r for r in self.requests if r.request.market_id == market_id]
            batch.append(same[k % len(same)])
        elif extra == "mixed":
            others = [r for r in self.requests if r.request.market_id != market_id]
            if others:
                batch.append(others[k % len(others)])
        elif extra == "over":
            batch = [batch[j % len(batch)] for j in range(MAX_PROOF_BATCH + 1)]
        proofs = [mock_proof(r.inputs, r.rid, caller) for r in batch]
        wrong = {"bad": 32, "longest": MAX_BATCH_PROOF_BYTES, "too long": MAX_BATCH_PROOF_BYTES + 1}
        if last_proof in wrong:
            proofs[-1] = b"\x00" * wrong[last_proof]
        reason = self.batch_reason(batch, proofs, caller)
        items = [
            (r.rid, r.request.as_tuple(), r.inputs, proof)
            for r, proof in zip(batch, proofs, strict=True)
        ]
        self.expect(reason, self.market.submit_proofs, items, sender=caller)
        if reason is None:
            for r in batch:
                self.fulfil(r)

    @precondition(lambda self: self.requests)
    @rule(k=pick, as_generator=st.sampled_from([True, True, True, False]), other=actor)
    def submit_invalid_inputs(self, k: int, as_generator: bool, other: int) -> None:
        r = self.choose(k, (RequestState.ASSIGNED,))
        caller = self.caller_for(r, as_generator, other)
        reason = self.live_reason(r, caller)
        if reason is None and r.inputs != encode_signals([INVALID_SIGNAL]):
            reason = "requests: inputs not shown invalid"
        self.expect(
            reason,
            self.market.submit_invalid_inputs,
            r.rid,
            r.request.as_tuple(),
            r.inputs,
            b"",
            sender=caller,
        )
        if reason is None:
            r.state = RequestState.INVALID_INPUTS
            reward = self.release(r, 0, False)
            self.credit(reward, r.price)
            self.credit(r.request.refund_address, r.request.max_price - r.price)

    @precondition(lambda self: self.requests)
    @rule(k=pick, as_generator=st.sampled_from([True, True, True, False]), other=actor)
    def discard(self, k: int, as_generator: bool, other: int) -> None:
        r = self.choose(k, (RequestState.ASSIGNED,))
        caller = self.caller_for(r, as_generator, other)
        reason = self.live_reason(r, caller)
        self.expect(reason, self.market.discard, r.rid, r.request.as_tuple(), sender=caller)
        if reason is None:
            forfeit = r.penalty * DISCARD_BPS // 10_000
            self.release(r, forfeit, False)
            self.credit(self.treasury, forfeit)  # never the requester: it could force one
            r.state, r.generator = RequestState.OPEN, None
            r.deadline = r.price = r.compute = r.penalty = 0

    @precondition(lambda self: self.requests)
    @rule(k=pick, by=st.integers(0, 3))
    def slash(self, k: int, by: int) -> None:
        r = self.choose(k, (RequestState.ASSIGNED,))
        slasher = [WORLD.slasher, WORLD.requesters[0], r.generator or WORLD.slasher, self.owner][by]
        reason = self.slash_reason(r)
        self.expect(reason, self.market.slash, r.rid, r.request.as_tuple(), sender=slasher)
        if reason is None:
            self.settle_slash(r, slasher)

    def slash_reason(self, r: Req) -> str | None:
        if r.state in FINISHED:
            return "requests: request finished"
        if r.state != RequestState.ASSIGNED:
            return "requests: not assigned"
        if now() <= r.deadline:
            return "requests: deadline not passed"
        return None

    def settle_slash(self, r: Req, slasher: str) -> None:
        penalty = r.penalty
        bounty = penalty * BOUNTY_BPS // 10_000
        self.release(r, penalty, True)
        self.credit(slasher, bounty)
        self.credit(self.treasury, penalty - bounty)
        self.credit(r.request.refund_address, r.request.max_price)
        r.state = RequestState.SLASHED

    @rule(seconds=st.integers(0, 2000))
    def time_travel(self, seconds: int) -> None:
        boa.env.time_travel(seconds=seconds)

    @precondition(lambda self: self.requests)
    @rule(k=pick, deadline=st.booleans(), past=st.booleans())
    def travel_to_edge(self, k: int, deadline: bool, past: bool) -> None:
        """Land exactly on a request's expiry or task's deadline, or one second past it."""
        r = self.choose(k, (RequestState.ASSIGNED,) if deadline else (RequestState.OPEN,))
        target = (r.deadline if r.state == RequestState.ASSIGNED else r.request.expiry) + past
        if target > now():
            boa.env.time_travel(seconds=target - now())

    # ----------------------------------------------------------- invariants

    def held(self) -> int:
        """Every token the system holds is in the marketplace."""
        return int(self.kal.token.balanceOf(self.market.address))

    def escrow(self) -> int:
        return sum(r.request.max_price for r in self.requests if r.state in LIVE)

    @invariant()
    def tokens_are_conserved(self) -> None:
        expected = (
            sum(self.balances.values()) + self.escrow() + sum(g.stake for g in self.gens.values())
        )
        assert self.held() == expected
        for who, balance in self.balances.items():
            assert self.market.balance_of(who) == balance, who

    @invariant()
    def registry_holds_no_token(self) -> None:
        assert self.kal.token.balanceOf(self.registry.address) == 0

    def check_wallets(self) -> None:
        for who, balance in self.wallets.items():
            assert self.kal.token.balanceOf(who) == balance, who

    @invariant()
    def generators_match_their_tasks(self) -> None:
        for who, g in self.gens.items():
            info = self.registry.generators(who)
            live = [r for r in self.requests if r.state == RequestState.ASSIGNED]
            mine = [r for r in live if r.generator == who]
            # (b), (c), (d) on the contract's own numbers
            assert info.used_compute <= info.declared_compute
            assert info.locked_stake == sum(r.penalty for r in mine)
            assert info.used_compute == sum(r.compute for r in mine)
            assert info.locked_stake <= info.stake
            assert self.registry.free_stake(who) == info.stake - info.locked_stake
            # the whole view, unpacked from the registry's slots; the reward address
            # is the generator's own when set (back) to it, empty before any index
            reward = g.reward if g.index else ZERO
            expected = (
                g.status,
                g.index,
                reward,
                g.stake,
                g.locked,
                g.declared,
                g.used,
                g.exit_at,
                g.missed,
            )
            assert tuple(info) == expected, who
            for m in range(len(self.penalties)):
                offer = g.offers.get(m)
                expected_offer = (
                    (True, offer.price, offer.proof_time, offer.compute, offer.key)
                    if offer is not None
                    else (False, 0, 0, 0, ZERO_KEY)
                )
                assert tuple(self.registry.offers(who, m)) == expected_offer, (who, m)

    def expected_task(self, r: Req) -> TaskState:
        """The packed state: OPEN and CLOSED read empty; final states keep index and deadline,
        a slashed task no price; compute is released at any end."""
        if r.state in (RequestState.OPEN, RequestState.CLOSED):
            return TaskState(r.state, 0, 0, 0, 0)
        assert r.generator is not None
        index = self.gens[r.generator].index
        if r.state == RequestState.ASSIGNED:
            return TaskState(r.state, index, r.deadline, r.price, r.compute)
        price = 0 if r.state == RequestState.SLASHED else r.price
        return TaskState(r.state, index, r.deadline, price, 0)

    @invariant()
    def requests_match(self) -> None:
        for r in self.requests:
            task = TaskState.from_tuple(self.market.request_state(r.rid))
            assert task == self.expected_task(r), r.rid.hex()
            stored = self.market.request_hash(r.rid)
            if r.state in FINISHED:
                assert stored == b"\x00" * 32, r.rid.hex()
            else:
                assert stored == r.request.commitment(), r.rid.hex()
            assert self.market.is_fulfilled(r.rid) == (r.state == RequestState.FULFILLED)

    # ------------------------------------------------------------- teardown

    def teardown(self) -> None:
        """Nothing is stuck: once every deadline and expiry has passed, everything settles."""
        if sys.exc_info()[0] is not None:
            return  # a step already failed: report that alone
        horizon = max(
            [now()]
            + [r.request.expiry for r in self.requests if r.state == RequestState.OPEN]
            + [r.deadline for r in self.requests if r.state == RequestState.ASSIGNED]
        )
        boa.env.time_travel(seconds=horizon - now() + 1)
        for r in self.requests:
            if r.state == RequestState.OPEN:
                self.market.cancel_expired(r.rid, r.request.as_tuple(), sender=WORLD.slasher)
                r.state = RequestState.CLOSED
                self.credit(r.request.refund_address, r.request.max_price)
            elif r.state == RequestState.ASSIGNED:
                self.market.slash(r.rid, r.request.as_tuple(), sender=WORLD.slasher)
                self.settle_slash(r, WORLD.slasher)
        for r in self.requests:
            assert r.state.is_final
            assert TaskState.from_tuple(self.market.request_state(r.rid)) == self.expected_task(r)
        assert self.escrow() == 0
        for who in self.gens:
            info = self.registry.generators(who)
            assert (info.locked_stake, info.used_compute) == (0, 0), who
        self.tokens_are_conserved()
        self.generators_match_their_tasks()
        self.check_wallets()

        # Everyone takes everything out: the contracts end up holding nothing.
        for who, g in self.gens.items():
            if g.status == GeneratorStatus.ACTIVE:
                self.registry.request_exit(sender=who)
        for who, g in self.gens.items():
            if g.status != GeneratorStatus.UNREGISTERED:
                self.registry.withdraw(sender=who)
                self.wallets[who] += g.stake
        for who, balance in self.balances.items():
            if balance > 0:
                self.market.withdraw(balance, who, sender=who)
                self.wallets[who] += balance
        assert self.held() == 0
        self.registry_holds_no_token()
        self.check_wallets()


MarketplaceMachine.TestCase.settings = settings(stateful_step_count=30)  # ~90 s was a sixth of CI
TestMarketplaceMachine = MarketplaceMachine.TestCase
