"""Attacks on the contracts, performed: each took money or stopped the service on the
code before its fix (issue 17) and must now fail. `pytest -k attack` runs them all."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import boa
from eth_abi import encode
from eth_utils import keccak

from kalypso.enclave import DEV_AUTHORITY_KEY, Authority, Domain, EnclaveIdentity, TaskAttestation
from kalypso.market import MarketParams, RequestKinds, RequestState, encode_signals, request_id
from tests.unit.helpers import PENALTY, UNIT, Kal, events, mock_proof, now, state

GEN_IMAGE = keccak(b"attack/generator-image")
IVS_IMAGE = keccak(b"attack/ivs-image")
PVS_IMAGE = keccak(b"attack/pvs-image")
PRICE = 10 * UNIT
ZERO32 = b"\x00" * 32
ZERO = "0x" + "00" * 20
SECRET = b"a sealed preimage that does not hash to the public hash"


def domain(kal: Kal) -> Domain:
    return Domain(boa.env.evm.patch.chain_id, str(kal.d.enclaves.address))


def enclave(kal: Kal, market_id: int, image: bytes, attested_ms: int | None = None) -> Any:
    """A fresh enclave of `image`, registered for `market_id`."""
    identity = EnclaveIdentity()
    ms = now() * 1000 if attested_ms is None else attested_ms
    a = Authority(DEV_AUTHORITY_KEY).attest(identity, image, "test", domain(kal), now_ms=ms)
    s = a.statement
    kal.d.enclaves.register(
        market_id, s.signing_key, s.encryption_key, s.image_id, s.timestamp_ms, a.signature
    )
    return identity


def create(kal: Kal, **terms: Any) -> int:
    params = replace(
        MarketParams(
            verifier=kal.d.mock_verifier.address, slashing_penalty=PENALTY, public_inputs_count=1
        ),
        **terms,
    )
    sample = encode_signals([7])
    proof = mock_proof(sample, ZERO32, str(kal.d.owner))
    return int(
        kal.markets.create_market(
            params.as_tuple(), b"{}", sample, proof, 2**256 - 1, sender=kal.d.owner
        )
    )


def attested_market(kal: Kal) -> int:
    """Proofs checked by the Proof Verification Image; invalid inputs by the IVS."""
    params = MarketParams(
        verifier=str(kal.d.enclaves.address),
        slashing_penalty=PENALTY,
        input_verification_image=IVS_IMAGE,
        proof_verification_image=PVS_IMAGE,
        public_inputs_count=1,
    )
    sample = encode(["bytes", "bytes"], [b"sample", b"\x00" * 65])
    return int(
        kal.markets.create_market(
            params.as_tuple(), b"{}", encode_signals([7]), sample, 2**256 - 1, sender=kal.d.owner
        )
    )


def generator(kal: Kal, market_id: int, key: bytes = ZERO32) -> str:
    who = str(boa.env.generate_address("generator"))
    kal.fund(who)
    kal.registry.register(who, 10, 1_000 * UNIT, sender=who)
    kal.registry.join_market(market_id, PRICE, 600, 1, key, sender=who)
    return who


def treasury_balance(kal: Kal) -> int:
    return int(kal.market.balance_of(kal.d.treasury))


# ---------------------------------------------- 1. requests nobody can settle


def test_attack_stake_farming_private_request_in_a_provable_market(kal: Kal, alice: str) -> None:
    provable = create(kal, all_inputs_provable=True)
    with boa.reverts("requests: market takes no private inputs"):
        kal.request(alice, provable, secret=SECRET)


def test_attack_stake_farming_public_request_with_only_a_generator_image(
    kal: Kal, alice: str
) -> None:
    private_only = create(kal, generator_image=GEN_IMAGE, request_kinds=RequestKinds.PRIVATE)
    with boa.reverts("requests: market takes private inputs only"):
        kal.request(alice, private_only)


def test_attack_stake_farming_private_request_without_a_generator_image(
    kal: Kal, alice: str
) -> None:
    public_only = create(kal, input_verifier=kal.d.input_verifier.address)
    with boa.reverts("requests: market takes no private inputs"):
        kal.request(alice, public_only, secret=SECRET)


def test_attack_no_market_takes_requests_it_cannot_settle(kal: Kal) -> None:
    with boa.reverts("markets: private inputs need a generator image"):
        create(kal, all_inputs_provable=True, request_kinds=3)
    with boa.reverts("markets: provable markets take no private inputs"):
        create(kal, generator_image=GEN_IMAGE, all_inputs_provable=True, request_kinds=3)
    with boa.reverts("markets: no invalid-input path for public inputs"):
        create(kal, generator_image=GEN_IMAGE, request_kinds=3)
    with boa.reverts("markets: bad request kinds"):
        create(kal, all_inputs_provable=True, request_kinds=0)


def test_attack_a_forced_discard_pays_the_requester_nothing(kal: Kal, alice: str) -> None:
    market_id = create(kal, input_verifier=kal.d.input_verifier.address)
    gen = generator(kal, market_id)
    rid, req, _ = kal.request(alice, market_id)
    kal.assign(rid, req, gen)
    before, treasury = int(kal.market.balance_of(alice)), treasury_balance(kal)
    kal.market.discard(rid, req.as_tuple(), sender=gen)
    assert int(kal.market.balance_of(alice)) == before
    assert treasury_balance(kal) == treasury + PENALTY * 2000 // 10000


# -------------------------------------------------- 2. stopping the matcher


def test_attack_a_stranger_cannot_log_skips_for_the_matcher(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    rid, req, _ = kal.request(alice, market_id)
    stranger = boa.env.generate_address("stranger")
    item = (rid, req.as_tuple(), gen, PRICE, b"")
    with boa.reverts("requests: not a matching engine"):
        kal.market.assign_batch([item], sender=stranger)


def test_attack_skips_name_their_engine(kal: Kal, market_id: int, alice: str, gen: str) -> None:
    rid, req, _ = kal.request(alice, market_id)
    kal.market.assign_batch([(rid, req.as_tuple(), gen, PRICE + 1, b"")], sender=kal.d.owner)
    (skip,) = events(kal.market, "AssignSkipped")
    assert (skip.engine, skip.reason) == (kal.d.owner, "registry: price is not the quote")


# ---------------------------------------- 3. revoked images and assignments


def test_attack_a_revoked_proof_verification_image_gets_no_tasks(kal: Kal, alice: str) -> None:
    market_id = attested_market(kal)
    gen = generator(kal, market_id)
    kal.d.enclaves.revoke_image(market_id, PVS_IMAGE, sender=kal.d.owner)
    rid, req, _ = kal.request(alice, market_id)
    with boa.reverts("requests: image revoked"):
        kal.assign(rid, req, gen)


def test_attack_a_revoked_input_verification_image_gets_no_public_tasks(
    kal: Kal, alice: str
) -> None:
    market_id = create(kal, input_verification_image=IVS_IMAGE)
    gen = generator(kal, market_id)
    kal.d.enclaves.revoke_image(market_id, IVS_IMAGE, sender=kal.d.owner)
    rid, req, _ = kal.request(alice, market_id)
    with boa.reverts("requests: image revoked"):
        kal.assign(rid, req, gen)


def test_attack_a_revocation_after_the_assignment_in_its_block_strands_nothing(
    kal: Kal, alice: str
) -> None:
    market_id = attested_market(kal)
    gen = generator(kal, market_id)
    pvs = enclave(kal, market_id, PVS_IMAGE)
    rid, req, inputs = kal.request(alice, market_id)
    kal.assign(rid, req, gen)
    kal.d.enclaves.revoke_image(market_id, PVS_IMAGE, sender=kal.d.owner)  # same block
    raw = b"a proof checked off-chain"
    said = TaskAttestation(market_id, rid, gen, req.inputs_hash, keccak(raw))
    proof = encode(["bytes", "bytes"], [raw, pvs.sign(domain(kal), said)])
    kal.market.submit_proof(rid, req.as_tuple(), inputs, proof, sender=gen)
    assert state(kal, rid).state == RequestState.FULFILLED


def test_attack_a_revocation_cannot_strand_a_task_once_the_image_keys_expire(
    kal: Kal, alice: str
) -> None:
    """The creator (also the requester) revokes the Proof Verification Image right after
    an assignment while the only key of that image has minutes to live; the generator
    proves before its deadline, but no enclave of the image could register any more to
    attest it, and the creator slashed. Seen while modelling the adversarial state
    machine, which finds it on the old registry within a dozen examples."""
    market_id = attested_market(kal)
    gen = generator(kal, market_id)
    max_age = int(kal.d.enclaves.MAX_AGE())
    enclave(kal, market_id, PVS_IMAGE, attested_ms=(now() - max_age + 300) * 1000)
    rid, req, inputs = kal.request(alice, market_id, proof_time=3_600)
    kal.assign(rid, req, gen)
    kal.d.enclaves.revoke_image(market_id, PVS_IMAGE, sender=kal.d.owner)
    boa.env.time_travel(seconds=600)  # the old key has expired; the deadline is ahead
    pvs = enclave(kal, market_id, PVS_IMAGE)  # a fresh one serves tasks from before it
    raw = b"a proof checked off-chain"
    said = TaskAttestation(market_id, rid, gen, req.inputs_hash, keccak(raw))
    proof = encode(["bytes", "bytes"], [raw, pvs.sign(domain(kal), said)])
    kal.market.submit_proof(rid, req.as_tuple(), inputs, proof, sender=gen)
    assert state(kal, rid).state == RequestState.FULFILLED
    later, later_req, _ = kal.request(alice, market_id)
    with boa.reverts("requests: image revoked"):  # and it serves nothing assigned after
        kal.assign(later, later_req, gen)


# ----------------------------------------------- 5. dead enclave offer keys


def private_market(kal: Kal) -> int:
    return create(
        kal,
        generator_image=GEN_IMAGE,
        input_verifier=kal.d.input_verifier.address,
        request_kinds=3,
    )


def test_attack_a_private_task_goes_only_to_a_key_live_until_its_deadline(
    kal: Kal, alice: str
) -> None:
    market_id = private_market(kal)
    max_age = int(kal.d.enclaves.MAX_AGE())
    # attested long ago: the key is valid for 100 more seconds, the task needs 3,600
    key = enclave(kal, market_id, GEN_IMAGE, attested_ms=(now() - max_age + 100) * 1000)
    gen = generator(kal, market_id, key.encryption.public_bytes)
    rid, req, _ = kal.request(alice, market_id, secret=SECRET, proof_time=3_600)
    with boa.reverts("registry: offer key not live until the deadline"):
        kal.assign(rid, req, gen)
    fresh = enclave(kal, market_id, GEN_IMAGE)
    kal.registry.update_offer(market_id, PRICE, 600, 1, fresh.encryption.public_bytes, sender=gen)
    kal.assign(rid, req, gen)
    assert state(kal, rid).state == RequestState.ASSIGNED


def test_attack_a_revoked_generator_image_gets_no_private_tasks(kal: Kal, alice: str) -> None:
    market_id = private_market(kal)
    key = enclave(kal, market_id, GEN_IMAGE)
    gen = generator(kal, market_id, key.encryption.public_bytes)
    kal.d.enclaves.revoke_image(market_id, GEN_IMAGE, sender=kal.d.owner)
    rid, req, _ = kal.request(alice, market_id, secret=SECRET)
    with boa.reverts("registry: offer key not live until the deadline"):
        kal.assign(rid, req, gen)
    public_rid, public_req, _ = kal.request(alice, market_id)  # needs no image
    kal.assign(public_rid, public_req, gen)


def test_attack_a_private_task_needs_an_offer_key(kal: Kal, alice: str) -> None:
    market_id = private_market(kal)
    gen = generator(kal, market_id)  # joined without a key: public tasks only
    rid, req, _ = kal.request(alice, market_id, secret=SECRET)
    with boa.reverts("registry: offer key not live until the deadline"):
        kal.assign(rid, req, gen)


# -------------------------------------------------------- 6. reentrancy

CALLBACK_TOKEN = """
# pragma version ~=0.4.3
interface Receiver:
    def on_tokens(amount: uint256): nonpayable

balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])

@deploy
def __init__(supply: uint256):
    self.balanceOf[msg.sender] = supply

@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    return True

@external
def transfer(to: address, amount: uint256) -> bool:
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    if to.is_contract:
        extcall Receiver(to).on_tokens(amount)
    return True

@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    self.allowance[owner][msg.sender] -= amount
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
    return True
"""

REENTERING_ACCOUNT = """
# pragma version ~=0.4.3
interface Marketplace:
    def deposit(amount: uint256): nonpayable
    def withdraw(amount: uint256, to: address): nonpayable

interface Token:
    def approve(spender: address, amount: uint256) -> bool: nonpayable

MARKET: immutable(address)
armed: bool
reentered: public(bool)
attempted: public(bool)

@deploy
def __init__(market: address):
    MARKET = market

@external
def fund(token: address, amount: uint256):
    extcall Token(token).approve(MARKET, amount)
    extcall Marketplace(MARKET).deposit(amount)

@external
def take(amount: uint256):
    self.armed = True
    extcall Marketplace(MARKET).withdraw(amount, self)

@external
def on_tokens(amount: uint256):
    if not self.armed or self.attempted:
        return
    self.attempted = True
    ok: bool = raw_call(
        MARKET,
        abi_encode(amount, self, method_id=method_id("withdraw(uint256,address)")),
        revert_on_failure=False,
    )
    self.reentered = ok
"""


def test_attack_a_callback_token_cannot_reenter_withdraw() -> None:
    from kalypso.contracts import source_path

    with boa.env.anchor():
        token = boa.loads(CALLBACK_TOKEN, 10**24)
        registry = boa.load_partial(str(source_path("GeneratorRegistry"))).deploy(token.address)
        market = boa.load_partial(str(source_path("ProofMarketplace"))).deploy(
            token.address, registry.address, boa.env.eoa, 0
        )
        attacker = boa.loads(REENTERING_ACCOUNT, market.address)
        token.transfer(attacker.address, 100)
        attacker.fund(token.address, 100)
        attacker.take(50)
        assert attacker.attempted()
        assert not attacker.reentered()  # the inner withdraw was refused
        assert int(market.balance_of(attacker.address)) == 50


# ------------------------------------------------- 7. short proofs in a batch


def test_attack_a_short_proof_does_not_pass_in_a_batch(
    kal: Kal, market_id: int, alice: str, gen: str
) -> None:
    inputs = encode_signals([42])
    chain_id, market = boa.env.evm.patch.chain_id, str(kal.market.address)
    salt = next(  # a task whose proof ends in a zero byte, which padding restores
        s
        for s in (i.to_bytes(32, "big") for i in range(1, 10_000))
        if mock_proof(inputs, request_id(chain_id, market, alice, s), gen)[-1] == 0
    )
    items = []
    for task_salt in (salt, os.urandom(32)):
        rid, req, _ = kal.request(alice, market_id, salt=task_salt)
        kal.assign(rid, req, gen)
        items.append((rid, req.as_tuple(), inputs, mock_proof(inputs, rid, gen)))
    items[0] = (*items[0][:3], items[0][3][:-1])
    with boa.reverts():
        kal.market.submit_proofs(items, sender=gen)


# ---------------------------------------------- 8. owner front-running


def test_attack_the_owner_cannot_raise_the_fee_under_a_market_creator(kal: Kal) -> None:
    kal.market.set_market_creation_fee(5 * UNIT, sender=kal.d.owner)
    params = MarketParams(
        verifier=kal.d.mock_verifier.address,
        slashing_penalty=PENALTY,
        public_inputs_count=1,
        all_inputs_provable=True,
    )
    sample = encode_signals([7])
    creator = str(boa.env.generate_address("creator"))
    kal.fund(creator)
    proof = mock_proof(sample, ZERO32, creator)
    with boa.reverts("markets: fee above max"):
        kal.markets.create_market(params.as_tuple(), b"{}", sample, proof, 0, sender=creator)
    kal.markets.create_market(params.as_tuple(), b"{}", sample, proof, 5 * UNIT, sender=creator)


def test_attack_a_stale_authority_proposal_cannot_be_applied(kal: Kal) -> None:
    enclaves = kal.d.enclaves
    enclaves.propose_authority(
        boa.env.generate_address("new-authority"), ZERO32, sender=kal.d.owner
    )
    delay = int(enclaves.AUTHORITY_DELAY())
    boa.env.time_travel(seconds=delay + int(enclaves.APPLY_WINDOW()) + 1)
    with boa.reverts("enclaves: proposal expired"):
        enclaves.apply_authority(sender=kal.d.owner)


def test_attack_an_attested_market_without_a_proof_verification_image_is_refused(
    kal: Kal,
) -> None:
    """Its proofs could never be attested: every task would end in a slash."""
    params = MarketParams(
        verifier=str(kal.d.enclaves.address),
        slashing_penalty=PENALTY,
        input_verification_image=IVS_IMAGE,
        public_inputs_count=1,
    )
    sample = encode(["bytes", "bytes"], [b"sample", b"\x00" * 65])
    with boa.reverts("markets: attested proofs need a proof verification image"):
        kal.markets.create_market(
            params.as_tuple(), b"{}", encode_signals([7]), sample, 2**256 - 1, sender=kal.d.owner
        )
