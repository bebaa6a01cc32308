"""Adversaries against an honest generator: a stateful fuzz of the whole marketplace.

`test_stateful.py` predicts every call's outcome; this machine predicts nothing about
the adversaries. It asserts the promise the marketplace makes to an operator instead:
**a generator that settles every task it is given before its deadline never loses
stake**, in markets whose verifier and input verifier are honest. Around it act

- Mallory, who creates the markets (so she can revoke their enclave images), places
  requests in them (valid or not, public or sealed) and slashes whatever she can;
- a lazy generator that takes tasks and never proves (Mallory's slashes land there);
- a stranger who calls every external function of every contract with arbitrary
  arguments, drawn from the ABI and from the values in play (request ids and fields,
  addresses, image ids);
- enclaves of the markets' images appearing with attestations of any age, so keys
  expire; the honest generator rotates its own Generator Image key.

The honest generator acts as late as it may: whenever time would pass one of its
deadlines, it settles that task at the deadline second (proof, attested proof, or
the invalid-input claim its market allows). Its settlement must succeed; its stake
never moves; it is paid exactly its quotes. Conservation is checked from the chain
alone (tokens held == balances + live escrow + stakes of every account in play), and
the teardown settles everything and empties the contracts: nothing is stuck.

The deployment is built once, at import; each example runs inside a boa anchor. The
slow variant runs 500 examples (`make test-all`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Any

import boa
import pytest
from eth_abi import encode
from eth_utils import keccak
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from kalypso.contracts.deploy import deploy_boa
from kalypso.enclave import DEV_AUTHORITY_KEY, Authority, Domain, EnclaveIdentity, TaskAttestation
from kalypso.market import (
    GeneratorStatus,
    MarketParams,
    Request,
    RequestKinds,
    RequestState,
    TaskState,
    encode_signals,
)
from tests.unit.helpers import UNIT, Kal, mock_proof, now

GEN_IMAGE = keccak(b"adversaries/generator-image")
IVS_IMAGE = keccak(b"adversaries/input-verification-image")
PVS_IMAGE = keccak(b"adversaries/proof-verification-image")
RAW_PROOF = b"a proof the Proof Verification Image checked"
PENALTY = 100 * UNIT
PRICE = 10 * UNIT
STAKE = 1_000 * UNIT
INVALID_SIGNAL = 2_000_000  # the ThresholdInputVerifier refuses it
ZERO = "0x" + "00" * 20
ZERO32 = b"\x00" * 32
LIVE = (RequestState.OPEN, RequestState.ASSIGNED)


@dataclass
class World:
    kal: Kal
    mallory: str
    honest: str
    lazy: str
    stranger: str
    public: int  # mock verifier + threshold input verifier, public requests
    private: int  # the same, plus a Generator Image: public and sealed requests
    attested: int  # the enclave registry verifies: Proof and Input Verification Images
    max_age: int


def _create(kal: Kal, creator: str, params: MarketParams, attested: bool) -> int:
    sample = encode_signals([7])
    proof = (
        encode(["bytes", "bytes"], [b"sample", b"\x00" * 65])
        if attested
        else mock_proof(sample, ZERO32, creator)
    )
    fee = 2**256 - 1
    return int(
        kal.markets.create_market(params.as_tuple(), b"{}", sample, proof, fee, sender=creator)
    )


def _build_world() -> World:
    kal = Kal(deploy_boa(market_creation_fee=3 * UNIT))
    kal.market.set_matching_engine(kal.d.owner, True, sender=kal.d.owner)
    names = ("mallory", "honest", "lazy", "stranger")
    mallory, honest, lazy, stranger = (str(boa.env.generate_address(n)) for n in names)
    for who in (mallory, honest, lazy, stranger):
        kal.fund(who, 100_000 * UNIT)
    mock, threshold = kal.d.mock_verifier.address, kal.d.input_verifier.address
    base = MarketParams(verifier=mock, slashing_penalty=PENALTY, public_inputs_count=1)
    public = _create(kal, mallory, replace(base, input_verifier=threshold), False)
    sealed = replace(
        base, input_verifier=threshold, generator_image=GEN_IMAGE, request_kinds=RequestKinds.BOTH
    )
    private = _create(kal, mallory, sealed, False)
    attested = _create(
        kal,
        mallory,
        MarketParams(
            verifier=str(kal.d.enclaves.address),
            slashing_penalty=PENALTY,
            input_verification_image=IVS_IMAGE,
            proof_verification_image=PVS_IMAGE,
            public_inputs_count=1,
        ),
        True,
    )
    max_age = int(kal.d.enclaves.MAX_AGE())
    return World(kal, mallory, honest, lazy, stranger, public, private, attested, max_age)


WORLD = _build_world()
MARKETS = (WORLD.public, WORLD.private, WORLD.attested)
IMAGES = ((WORLD.private, GEN_IMAGE), (WORLD.attested, PVS_IMAGE), (WORLD.attested, IVS_IMAGE))


@dataclass
class Req:
    rid: bytes
    request: Request
    inputs: bytes
    sealed: bool  # it carries a secret
    valid: bool  # the inputs (and the secret) are provable


@dataclass
class Enclave:
    identity: EnclaveIdentity
    image: bytes
    attested_at: int


def _stranger_calls() -> list[tuple[str, str, tuple[Any, ...]]]:
    """(contract attribute, function, ABI inputs) of every state-changing function."""
    contracts = {
        "market": WORLD.kal.market,
        "registry": WORLD.kal.registry,
        "enclaves": WORLD.kal.d.enclaves,
        "markets": WORLD.kal.markets,
    }
    return [
        (name, f["name"], tuple(f["inputs"]))
        for name, c in contracts.items()
        for f in c.abi
        if f["type"] == "function" and f["stateMutability"] not in ("view", "pure")
    ]


STRANGER_CALLS = _stranger_calls()
pick = st.integers(0, 2**16)
ages = st.sampled_from([0, 0, 600, WORLD.max_age // 2, WORLD.max_age - 900, WORLD.max_age - 30])


class AdversaryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.rollback = boa.env.anchor()  # each example starts from the world as built
        self.rollback.__enter__()
        self.kal = WORLD.kal
        self.market, self.registry = self.kal.market, self.kal.registry
        self.enclaves = self.kal.d.enclaves
        self.markets = self.kal.markets
        self.domain = Domain(boa.env.evm.patch.chain_id, str(self.enclaves.address))
        self.requests: list[Req] = []
        self.known: list[Enclave] = []  # enclaves anyone may ask for an attestation
        self.offer_keys: dict[bytes, Enclave] = {}  # the honest generator's, by public key
        self.sealed_to: dict[bytes, bytes] = {}  # request id => the offer key it was sealed to
        self.paid = 0  # what the honest generator must have earned
        self.salt = 0
        self.generators = {WORLD.honest, WORLD.lazy, WORLD.stranger}
        self.accounts = {
            self.kal.d.owner,
            self.kal.d.treasury,
            WORLD.mallory,
            WORLD.honest,
            WORLD.lazy,
            WORLD.stranger,
        }

    # ------------------------------------------------------------ plumbing

    def attempt(self, fn: Any, *args: Any, **kw: Any) -> bool:
        """Call `fn`; whether it succeeded (a revert changes nothing)."""
        try:
            fn(*args, **kw)
        except boa.BoaError:
            return False
        return True

    def task(self, r: Req) -> TaskState:
        return TaskState.from_tuple(self.market.request_state(r.rid))

    def honest_index(self) -> int:
        return int(self.registry.generators(WORLD.honest).index)

    def honest_tasks(self) -> list[tuple[Req, TaskState]]:
        index = self.honest_index()
        tasks = [(r, self.task(r)) for r in self.requests]
        return [
            (r, t)
            for r, t in tasks
            if t.state == RequestState.ASSIGNED and t.generator_index == index
        ]

    def enclave(self, image: bytes, market_id: int, age: int) -> Enclave | None:
        """A fresh enclave of `image`, attested `age` seconds ago, registered if it may be."""
        identity = EnclaveIdentity()
        at = now() - age
        a = Authority(DEV_AUTHORITY_KEY).attest(identity, image, "t", self.domain, now_ms=at * 1000)
        s = a.statement
        args = (s.signing_key, s.encryption_key, s.image_id, s.timestamp_ms, a.signature)
        if not self.attempt(self.enclaves.register, market_id, *args):
            return None
        return Enclave(identity, image, at)

    # --------------------------------------------------------------- setup

    @initialize(age=ages)
    def onboard(self, age: int) -> None:
        """Both generators stake and offer; the honest one with a Generator Image key."""
        for who in (WORLD.honest, WORLD.lazy):
            self.registry.register(who, 1_000, STAKE, sender=who)
            for m in (WORLD.public, WORLD.attested):
                self.registry.join_market(m, PRICE, 600, 1, ZERO32, sender=who)
        key = self.rotate_key(age, join=True)
        assert key is not None

    def rotate_key(self, age: int, join: bool = False) -> Enclave | None:
        e = self.enclave(GEN_IMAGE, WORLD.private, age)
        if e is None:
            return None
        key = e.identity.encryption.public_bytes
        call = self.registry.join_market if join else self.registry.update_offer
        if not self.attempt(call, WORLD.private, PRICE, 600, 1, key, sender=WORLD.honest):
            return None  # the image is revoked: it is no offer key
        self.offer_keys[key] = e
        return e

    # ------------------------------------------------------------- Mallory

    @rule(
        m=st.sampled_from(MARKETS),
        sealed=st.booleans(),
        valid=st.sampled_from([True, True, False]),
        proof_time=st.sampled_from([600, 3_600, 86_400]),
        expiry_in=st.sampled_from([0, 100, 5_000]),
        to=st.sampled_from([WORLD.honest, WORLD.honest, WORLD.lazy, None]),
    )
    def mallory_requests(
        self, m: int, sealed: bool, valid: bool, proof_time: int, expiry_in: int, to: str | None
    ) -> None:
        """Mallory asks for a proof; the matching engine hands it out at once, mostly."""
        self.salt += 1
        inputs = encode_signals([7 if valid or sealed else INVALID_SIGNAL])
        secret = (b"preimage" if valid else b"garbage") if sealed else b""
        request = Request.new(
            market_id=m,
            requester=WORLD.mallory,
            refund_address=WORLD.mallory,
            max_price=50 * UNIT,
            proof_time=proof_time,
            expiry=now() + expiry_in,
            public_inputs=inputs,
            encrypted_secret=secret,
        )
        salt = self.salt.to_bytes(32, "big")
        args = (m, salt, request.max_price, proof_time, request.expiry, WORLD.mallory)
        try:
            rid = self.market.create_request(*args, inputs, secret, sender=WORLD.mallory)
        except boa.BoaError:
            return
        self.requests.append(Req(rid, request, inputs, sealed, valid))
        if to is not None:
            self.assign(self.requests[-1], to, batch=False)

    @rule(k=pick, to_honest=st.sampled_from([True, True, False]), batch=st.booleans())
    def engine_assigns(self, k: int, to_honest: bool, batch: bool) -> None:
        """The matching engine hands out an open request later (after a key rotation...)."""
        open_ = [r for r in self.requests if self.task(r).state == RequestState.OPEN]
        if open_:
            self.assign(open_[k % len(open_)], WORLD.honest if to_honest else WORLD.lazy, batch)

    def assign(self, r: Req, who: str, batch: bool) -> None:
        """The contract decides; the matcher re-seals a secret to the offer key."""
        key = bytes(self.registry.offers(who, r.request.market_id).encryption_key)
        args = (r.rid, r.request.as_tuple(), who, PRICE, b"")
        if batch:
            self.attempt(self.market.assign_batch, [args], sender=self.kal.d.owner)
        else:
            self.attempt(self.market.assign, *args, sender=self.kal.d.owner)
        if self.task(r).state == RequestState.ASSIGNED:
            self.sealed_to[r.rid] = key

    @rule(i=st.integers(0, len(IMAGES) - 1))
    def mallory_revokes(self, i: int) -> None:
        self.attempt(self.enclaves.revoke_image, *IMAGES[i], sender=WORLD.mallory)

    @rule(k=pick, how=st.sampled_from(["slash", "cancel", "expire", "raise"]))
    def mallory_acts(self, k: int, how: str) -> None:
        """Mallory slashes, cancels or raises whatever request she picks, when she can."""
        if not self.requests:
            return
        r = self.requests[k % len(self.requests)]
        fields = r.request.as_tuple()
        if how == "raise":
            price = r.request.max_price + UNIT
            raise_ = self.market.increase_max_price
            if self.attempt(raise_, r.rid, fields, price, sender=WORLD.mallory):
                r.request = r.request.with_max_price(price)
            return
        fn = {"slash": self.market.slash, "cancel": self.market.cancel_request}.get(
            how, self.market.cancel_expired
        )
        self.attempt(fn, r.rid, fields, sender=WORLD.mallory)

    # ------------------------------------------------------------ enclaves

    @rule(i=st.integers(0, len(IMAGES) - 1), age=ages)
    def an_enclave_appears(self, i: int, age: int) -> None:
        """Someone runs an enclave of a market's image: its key may be about to expire."""
        m, image = IMAGES[i]
        e = self.enclave(image, m, age)
        if e is not None and image != GEN_IMAGE:
            self.known.append(e)

    @rule(age=ages)
    def honest_rotates_its_key(self, age: int) -> None:
        self.rotate_key(age)

    # -------------------------------------------------------- the honest one

    def live_enclave(self, image: bytes, market_id: int) -> Enclave:
        """An enclave of `image` whose key still signs; the generator starts one if none."""
        for e in reversed(self.known):
            if e.image == image and now() <= e.attested_at + WORLD.max_age:
                return e
        e = self.enclave(image, market_id, 0)
        assert e is not None, f"no enclave of {image.hex()[:8]} can be registered"
        self.known.append(e)
        return e

    def honest_settles(self, r: Req, t: TaskState) -> None:
        """Prove the task, or show its inputs invalid the way the market allows."""
        q, who, market = r.request, WORLD.honest, r.request.market_id
        inputs, fields = r.inputs, q.as_tuple()
        verdict = TaskAttestation(market, r.rid, who, q.inputs_hash, None)
        if r.valid and market == WORLD.attested:
            e = self.live_enclave(PVS_IMAGE, market)
            proved = TaskAttestation(market, r.rid, who, q.inputs_hash, keccak(RAW_PROOF))
            proof = encode(["bytes", "bytes"], [RAW_PROOF, e.identity.sign(self.domain, proved)])
            call: tuple[Any, ...] = (self.market.submit_proof, proof)
        elif r.valid:
            call = (self.market.submit_proof, mock_proof(inputs, r.rid, who))
        elif market == WORLD.attested:
            e = self.live_enclave(IVS_IMAGE, market)
            call = (self.market.submit_invalid_inputs, e.identity.sign(self.domain, verdict))
        elif r.sealed:
            e = self.offer_keys[self.sealed_to[r.rid]]
            call = (self.market.submit_invalid_inputs, e.identity.sign(self.domain, verdict))
        else:
            call = (self.market.submit_invalid_inputs, b"")
        fn, evidence = call
        try:
            fn(r.rid, fields, inputs, evidence, sender=who)
        except boa.BoaError as exc:
            raise AssertionError(f"the honest generator could not settle its task: {exc}") from exc
        self.paid += t.price

    @rule(k=pick)
    def honest_works(self, k: int) -> None:
        """The honest generator settles one of its tasks now, early."""
        tasks = self.honest_tasks()
        if tasks:
            self.honest_settles(*tasks[k % len(tasks)])

    @rule(seconds=st.sampled_from([1, 60, 601, 3_000, 40_000, 90_000]))
    def time_passes(self, seconds: int) -> None:
        """Time runs; the honest generator settles each task at its deadline's last second."""
        end = now() + seconds
        for r, t in sorted(self.honest_tasks(), key=lambda rt: rt[1].deadline):
            if t.deadline < end:
                boa.env.time_travel(seconds=max(0, t.deadline - now()))
                self.honest_settles(r, t)
        boa.env.time_travel(seconds=max(0, end - now()))

    # ------------------------------------------------------------ stranger

    @rule(call=st.sampled_from(STRANGER_CALLS), data=st.data())
    def stranger_calls(self, call: tuple[str, str, tuple[Any, ...]], data: st.DataObject) -> None:
        """Any external function, any arguments, from an account with tokens and no role."""
        contract, fn, inputs = call
        target = getattr(self, contract)
        args = [data.draw(self.argument(i), label=i["name"]) for i in inputs]
        try:
            getattr(target, fn)(*args, sender=WORLD.stranger)
        except boa.BoaError:
            return
        if target is self.market:
            self.adopt(self.market.get_logs())

    def adopt(self, logs: list[Any]) -> None:
        """Follow the stranger's requests like anyone else's."""
        for e in logs:
            name = type(e).__name__
            if name == "RequestCreated":
                inputs, secret = bytes(e.public_inputs), bytes(e.encrypted_secret)
                request = Request.new(
                    market_id=e.market_id,
                    requester=str(e.requester),
                    refund_address=str(e.refund_address),
                    max_price=e.max_price,
                    proof_time=e.proof_time,
                    expiry=e.expiry,
                    public_inputs=inputs,
                    encrypted_secret=secret,
                )
                valid = not secret and int.from_bytes(inputs[:32], "big") < 1_000_000
                self.requests.append(Req(bytes(e.request_id), request, inputs, bool(secret), valid))
            elif name == "MaxPriceIncreased":
                for r in self.requests:
                    if r.rid == bytes(e.request_id):
                        r.request = r.request.with_max_price(e.max_price)

    def argument(self, abi: dict[str, Any]) -> st.SearchStrategy[Any]:
        """A value of an ABI type, often one in play."""
        kind = abi["type"]
        if kind.endswith("[]"):
            return st.lists(self.argument({**abi, "type": kind[:-2]}), max_size=3)
        if kind == "tuple":
            parts = st.tuples(*(self.argument(c) for c in abi["components"]))
            if [c["name"] for c in abi["components"]][-1] == "secret_hash" and self.requests:
                return st.sampled_from([r.request.as_tuple() for r in self.requests]) | parts
            return parts
        if kind == "address":
            contracts = (self.market, self.registry, self.enclaves, self.kal.markets)
            return st.sampled_from(
                sorted(self.accounts) + [str(c.address) for c in contracts] + [ZERO]
            )
        if kind == "bool":
            return st.booleans()
        if kind.startswith("uint"):
            top = 2 ** int(kind[4:]) - 1
            common = [0, 1, 2, 3, *MARKETS, PRICE, PENALTY, STAKE, now(), now() * 1000, top]
            return st.sampled_from([v for v in common if v <= top]) | st.integers(0, top)
        rids = [r.rid for r in self.requests]
        if kind == "bytes32":
            return st.sampled_from([*rids, GEN_IMAGE, PVS_IMAGE, IVS_IMAGE, ZERO32]) | st.binary(
                min_size=32, max_size=32
            )
        assert kind == "bytes", kind
        proofs = [mock_proof(r.inputs, r.rid, WORLD.stranger) for r in self.requests]
        seen = [r.inputs for r in self.requests] + proofs + [b"", b"\x00" * 65]
        return st.sampled_from(seen) | st.binary(max_size=300)

    # ---------------------------------------------------------- invariants

    def escrow(self) -> int:
        return sum(r.request.max_price for r in self.requests if self.task(r).state in LIVE)

    @invariant()
    def tokens_are_conserved(self) -> None:
        balances = sum(int(self.market.balance_of(a)) for a in self.accounts)
        stakes = sum(int(self.registry.generators(g).stake) for g in self.generators)
        held = int(self.kal.token.balanceOf(self.market.address))
        assert held == balances + self.escrow() + stakes
        assert self.kal.token.balanceOf(self.registry.address) == 0

    @invariant()
    def the_honest_generator_never_loses_stake(self) -> None:
        info = self.registry.generators(WORLD.honest)
        assert (info.stake, info.missed_deadlines) == (STAKE, 0)
        assert self.market.balance_of(WORLD.honest) >= self.paid  # a stranger may give

    def teardown(self) -> None:
        try:
            if sys.exc_info()[0] is None:  # else report the failed step alone
                self.settle_everything()
        finally:
            self.rollback.__exit__(None, None, None)

    def settle_everything(self) -> None:
        """Nothing is stuck: past every deadline, everything settles and comes out."""
        self.time_passes(200_000)
        for r in self.requests:
            state, fields = self.task(r).state, r.request.as_tuple()
            if state == RequestState.OPEN:
                self.market.cancel_expired(r.rid, fields, sender=WORLD.mallory)
            elif state == RequestState.ASSIGNED:
                self.market.slash(r.rid, fields, sender=WORLD.mallory)
            assert self.task(r).state.is_final
        self.tokens_are_conserved()
        self.the_honest_generator_never_loses_stake()
        for g in self.generators:
            status = self.registry.generators(g).status
            if status == GeneratorStatus.UNREGISTERED:
                continue
            if status == GeneratorStatus.ACTIVE:
                self.registry.request_exit(sender=g)
            self.registry.withdraw(sender=g)
        for a in self.accounts:
            balance = int(self.market.balance_of(a))
            if balance:
                self.market.withdraw(balance, a, sender=a)
        assert self.kal.token.balanceOf(self.market.address) == 0


# CI's share is modest; the slow run below is where the adversaries get their time.
AdversaryMachine.TestCase.settings = settings(max_examples=20, stateful_step_count=25)
TestAdversaries = AdversaryMachine.TestCase


@pytest.mark.slow
def test_adversaries_at_length() -> None:
    """500 examples of 50 steps: `make test-all`."""
    run = settings(max_examples=500, stateful_step_count=50, deadline=None)
    run_state_machine_as_test(AdversaryMachine, settings=run)
