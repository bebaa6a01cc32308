"""EnclaveRegistry: registering enclave keys, revoking images, the timelocked authority,
and the attestations it checks (invalid inputs, attested proofs) through the marketplace."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import boa
import pytest
from eth_abi import encode
from eth_utils import keccak

from kalypso.enclave import (
    DEV_AUTHORITY,
    DEV_AUTHORITY_KEY,
    Authority,
    Domain,
    EnclaveIdentity,
    EnclaveStatement,
    TaskAttestation,
)
from kalypso.market import MarketParams, Request, RequestKinds, RequestState, encode_signals
from tests.unit.helpers import PENALTY, UNIT, Kal, events, mock_proof, now, state

GEN_IMAGE = keccak(b"test/generator-image")
IVS_IMAGE = keccak(b"test/ivs-image")
PVS_IMAGE = keccak(b"test/pvs-image")
OTHER_IMAGE = keccak(b"test/other-image")
PRICE = 10 * UNIT
RAW_PROOF = b"a real proof, checked off-chain by the Proof Verification Image"


def domain(kal: Kal) -> Domain:
    return Domain(boa.env.evm.patch.chain_id, str(kal.d.enclaves.address))


def attest(kal: Kal, identity: EnclaveIdentity, image: bytes, **kw: Any) -> Any:
    return Authority(kw.pop("key", DEV_AUTHORITY_KEY)).attest(
        identity, image, "test", domain(kal), now_ms=kw.pop("now_ms", now() * 1000)
    )


def register(kal: Kal, market_id: int, image: bytes, **kw: Any) -> EnclaveIdentity:
    """A fresh enclave of `image`, registered for `market_id`."""
    identity = EnclaveIdentity()
    a = attest(kal, identity, image, **kw)
    kal.d.enclaves.register(market_id, *statement_args(a.statement), a.signature)
    return identity


def statement_args(s: EnclaveStatement) -> tuple[Any, ...]:
    return (s.signing_key, s.encryption_key, s.image_id, s.timestamp_ms)


def create(kal: Kal, **terms: Any) -> int:
    """A market of public and private requests with the test verifier, an IVS and a
    Generator Image unless overridden."""
    params = MarketParams(
        verifier=kal.d.mock_verifier.address,
        slashing_penalty=PENALTY,
        generator_image=GEN_IMAGE,
        input_verification_image=IVS_IMAGE,
        proof_verification_image=PVS_IMAGE,
        public_inputs_count=1,
        request_kinds=RequestKinds.BOTH,
    )
    params = replace(params, **terms)
    sample = encode_signals([7])
    proof = mock_proof(sample, b"\x00" * 32, str(kal.d.owner))
    return int(
        kal.markets.create_market(
            params.as_tuple(), b"{}", sample, proof, 2**256 - 1, sender=kal.d.owner
        )
    )


@pytest.fixture(scope="module")
def market(kal: Kal) -> int:
    return create(kal)


@pytest.fixture(scope="module")
def attested_market(kal: Kal) -> int:
    """Proofs checked by the Proof Verification Image: the registry is the verifier."""
    sample = encode(["bytes", "bytes"], [b"sample", b"\x00" * 65])
    params = MarketParams(
        verifier=str(kal.d.enclaves.address),
        slashing_penalty=PENALTY,
        input_verification_image=IVS_IMAGE,
        proof_verification_image=PVS_IMAGE,
        public_inputs_count=1,
    )
    return int(
        kal.markets.create_market(
            params.as_tuple(), b"{}", encode_signals([7]), sample, 2**256 - 1, sender=kal.d.owner
        )
    )


def task(kal: Kal, market_id: int, requester: str, generator: str, secret: bytes = b"") -> Any:
    rid, req, inputs = kal.request(requester, market_id, secret=secret)
    kal.assign(rid, req, generator)
    return rid, req, inputs


def verdict(
    kal: Kal, rid: bytes, req: Request, generator: str, proof: bytes | None = None
) -> TaskAttestation:
    return TaskAttestation(
        req.market_id, rid, generator, req.inputs_hash, None if proof is None else keccak(proof)
    )


@pytest.fixture
def generator(kal: Kal, market: int, attested_market: int) -> str:
    who = boa.env.generate_address("generator")
    kal.register(who, market)
    kal.registry.join_market(attested_market, PRICE, 600, 1, b"\x00" * 32, sender=who)
    return str(who)


# ---------------------------------------------------------------- register


def test_a_statement_of_the_authority_registers_both_keys(kal: Kal, market: int) -> None:
    identity = EnclaveIdentity()
    a = attest(kal, identity, GEN_IMAGE)
    kal.d.enclaves.register(market, *statement_args(a.statement), a.signature)
    (log,) = events(kal.d.enclaves, "EnclaveRegistered")
    assert (log.signing_key, log.image_id) == (identity.address, GEN_IMAGE)
    assert log.attested_at == a.statement.timestamp_ms // 1000  # milliseconds in, seconds kept
    assert kal.d.enclaves.enclaves(identity.address) == (
        GEN_IMAGE,
        identity.encryption.public_bytes,
        now(),
        DEV_AUTHORITY,  # who vouched for it
    )
    assert kal.d.enclaves.encryption_key_owner(identity.encryption.public_bytes) == (
        identity.address
    )
    key, until = identity.encryption.public_bytes, now() + int(kal.d.enclaves.MAX_AGE())
    assert kal.d.enclaves.key_valid_until(key, market, GEN_IMAGE) == until
    assert kal.d.enclaves.key_valid_until(key, market, IVS_IMAGE) == 0


def test_the_statement_digest_is_the_pythons(kal: Kal) -> None:
    s = EnclaveStatement(str(boa.env.generate_address()), os.urandom(32), GEN_IMAGE, 1234567)
    assert kal.d.enclaves.statement_digest(*statement_args(s)) == domain(kal).digest(
        s.struct_hash()
    )


def test_a_statement_signed_by_another_key_is_refused(kal: Kal, market: int) -> None:
    with boa.reverts("enclaves: not signed by an authority"):
        register(kal, market, GEN_IMAGE, key=os.urandom(32))


@pytest.mark.parametrize("field", ["signing_key", "encryption_key", "image_id", "timestamp_ms"])
def test_a_tampered_statement_is_refused(kal: Kal, market: int, field: str) -> None:
    a = attest(kal, EnclaveIdentity(), GEN_IMAGE)
    changed = {
        "signing_key": str(boa.env.generate_address()),
        "encryption_key": os.urandom(32),
        "image_id": IVS_IMAGE,
        "timestamp_ms": a.statement.timestamp_ms - 1,
    }[field]
    tampered = replace(a.statement, **{field: changed})
    with boa.reverts("enclaves: not signed by an authority"):
        kal.d.enclaves.register(market, *statement_args(tampered), a.signature)


def test_a_statement_for_another_registry_is_refused(kal: Kal, market: int) -> None:
    """The EIP-712 domain binds the chain and the registry's address."""
    identity = EnclaveIdentity()
    for elsewhere in (
        Domain(boa.env.evm.patch.chain_id + 1, str(kal.d.enclaves.address)),
        Domain(boa.env.evm.patch.chain_id, str(kal.market.address)),
    ):
        a = Authority(DEV_AUTHORITY_KEY).attest(
            identity, GEN_IMAGE, "test", elsewhere, now_ms=now() * 1000
        )
        with boa.reverts("enclaves: not signed by an authority"):
            kal.d.enclaves.register(market, *statement_args(a.statement), a.signature)


def test_max_age_is_in_seconds_and_timestamps_in_milliseconds(kal: Kal, market: int) -> None:
    max_age = int(kal.d.enclaves.MAX_AGE())
    # exactly MAX_AGE seconds old: still accepted; one second more: refused
    register(kal, market, GEN_IMAGE, now_ms=(now() - max_age) * 1000)
    with boa.reverts("enclaves: attestation too old"):
        register(kal, market, GEN_IMAGE, now_ms=(now() - max_age - 1) * 1000)


def test_an_attestation_from_the_future_is_refused(kal: Kal, market: int) -> None:
    register(kal, market, GEN_IMAGE, now_ms=(now() + 300) * 1000)  # clock skew allowed
    with boa.reverts("enclaves: attested in the future"):
        register(kal, market, GEN_IMAGE, now_ms=(now() + 301) * 1000)


def test_only_an_image_the_market_authorizes_registers(kal: Kal, market: int) -> None:
    with boa.reverts("enclaves: image not authorized"):
        register(kal, market, OTHER_IMAGE)
    with boa.reverts("enclaves: unknown market"):
        register(kal, 10**6, GEN_IMAGE)
    with boa.reverts("enclaves: zero image"):
        register(kal, market, b"\x00" * 32)


def test_the_matching_engine_image_needs_no_market(kal: Kal, market: int) -> None:
    image = kal.d.enclaves.matching_engine_image()
    identity = register(kal, 10**6, image)
    assert kal.d.enclaves.matching_engine_key(identity.address) == identity.encryption.public_bytes
    other = register(kal, market, GEN_IMAGE)
    with boa.reverts("enclaves: not a matching engine enclave"):
        kal.d.enclaves.matching_engine_key(other.address)


def test_a_key_refreshes_only_with_a_newer_attestation_of_the_same_keys(
    kal: Kal, market: int
) -> None:
    identity = register(kal, market, GEN_IMAGE)
    boa.env.time_travel(seconds=10)
    fresh = attest(kal, identity, GEN_IMAGE)
    kal.d.enclaves.register(market, *statement_args(fresh.statement), fresh.signature)
    assert kal.d.enclaves.enclaves(identity.address)[2] == now()
    with boa.reverts("enclaves: attestation not newer"):
        kal.d.enclaves.register(market, *statement_args(fresh.statement), fresh.signature)
    moved = attest(kal, identity, IVS_IMAGE, now_ms=(now() + 1) * 1000)
    with boa.reverts("enclaves: key registered otherwise"):
        kal.d.enclaves.register(market, *statement_args(moved.statement), moved.signature)


def test_an_encryption_key_belongs_to_one_enclave(kal: Kal, market: int) -> None:
    first = register(kal, market, GEN_IMAGE)
    second = EnclaveIdentity()
    second.encryption = first.encryption
    a = attest(kal, second, GEN_IMAGE)
    with boa.reverts("enclaves: encryption key taken"):
        kal.d.enclaves.register(market, *statement_args(a.statement), a.signature)


def test_keys_expire_after_max_age(kal: Kal, market: int) -> None:
    identity = register(kal, market, GEN_IMAGE)
    key = identity.encryption.public_bytes
    expiry = int(kal.d.enclaves.key_valid_until(key, market, GEN_IMAGE))
    assert expiry == now() + int(kal.d.enclaves.MAX_AGE())
    who = boa.env.generate_address("late-joiner")
    kal.fund(who)
    kal.registry.register(who, 4, 500 * UNIT, sender=who)
    boa.env.time_travel(seconds=int(kal.d.enclaves.MAX_AGE()))
    kal.registry.join_market(market, PRICE, 600, 1, key, sender=who)  # valid to the second
    boa.env.time_travel(seconds=1)
    with boa.reverts("registry: key not of the generator image"):
        kal.registry.update_offer(market, PRICE, 600, 1, key, sender=who)


# ------------------------------------------------------------------ revoke


def test_the_market_creator_revokes_an_image(kal: Kal, market: int) -> None:
    identity = register(kal, market, GEN_IMAGE)
    with boa.reverts("enclaves: not the market creator"):
        kal.d.enclaves.revoke_image(market, GEN_IMAGE, sender=boa.env.generate_address())
    with boa.reverts("enclaves: image not authorized"):
        kal.d.enclaves.revoke_image(market, OTHER_IMAGE, sender=kal.d.owner)
    kal.d.enclaves.revoke_image(market, GEN_IMAGE, sender=kal.d.owner)
    (log,) = events(kal.d.enclaves, "ImageRevoked")
    assert (log.market_id, log.image_id) == (market, GEN_IMAGE)
    with boa.reverts("enclaves: image revoked"):
        kal.d.enclaves.revoke_image(market, GEN_IMAGE, sender=kal.d.owner)
    assert kal.d.enclaves.key_valid_until(identity.encryption.public_bytes, market, GEN_IMAGE) == 0
    # a key may still register, for the tasks assigned before; it is no offer key
    late = register(kal, market, GEN_IMAGE)
    assert kal.d.enclaves.key_valid_until(late.encryption.public_bytes, market, GEN_IMAGE) == 0


# --------------------------------------------------------------- authority


def test_a_new_authority_applies_only_after_the_timelock(kal: Kal, market: int) -> None:
    registry, owner = kal.d.enclaves, kal.d.owner
    new_key = os.urandom(32)
    new = Authority(new_key)
    with boa.reverts("ownable: caller is not the owner"):
        registry.propose_authority(new.address, OTHER_IMAGE, sender=boa.env.generate_address())
    with boa.reverts("enclaves: no change pending"):
        registry.apply_authority(sender=owner)
    registry.propose_authority(new.address, OTHER_IMAGE, sender=owner)
    delay = int(registry.AUTHORITY_DELAY())
    boa.env.time_travel(seconds=delay - 1)
    with boa.reverts("enclaves: timelock not passed"):
        registry.apply_authority(sender=owner)
    with boa.reverts("enclaves: not signed by an authority"):
        register(kal, market, GEN_IMAGE, key=new_key)
    boa.env.time_travel(seconds=1)
    registry.apply_authority(sender=owner)
    (log,) = events(registry, "AuthoritySet")
    assert (log.authority, log.matching_engine_image) == (new.address, OTHER_IMAGE)
    assert list(registry.authorities()) == [DEV_AUTHORITY, new.address]  # added, not swapped
    assert registry.matching_engine_image() == OTHER_IMAGE
    register(kal, market, GEN_IMAGE, key=new_key)
    register(kal, market, GEN_IMAGE)


def test_proposing_an_authority_already_in_the_set_changes_only_the_image(kal: Kal) -> None:
    registry, owner = kal.d.enclaves, kal.d.owner
    registry.propose_authority(DEV_AUTHORITY, OTHER_IMAGE, sender=owner)
    boa.env.time_travel(seconds=int(registry.AUTHORITY_DELAY()))
    registry.apply_authority(sender=owner)
    assert list(registry.authorities()) == [DEV_AUTHORITY]
    assert registry.matching_engine_image() == OTHER_IMAGE


def test_the_set_of_authorities_is_bounded(kal: Kal) -> None:
    registry, owner = kal.d.enclaves, kal.d.owner
    delay = int(registry.AUTHORITY_DELAY())
    image = registry.matching_engine_image()
    for _ in range(int(registry.MAX_AUTHORITIES()) - 1):
        registry.propose_authority(boa.env.generate_address(), image, sender=owner)
        boa.env.time_travel(seconds=delay)
        registry.apply_authority(sender=owner)
    with boa.reverts("enclaves: too many authorities"):
        registry.propose_authority(boa.env.generate_address(), image, sender=owner)
    registry.remove_authority(registry.authorities()[1], sender=owner)
    registry.propose_authority(boa.env.generate_address(), image, sender=owner)


def test_removing_the_pending_authority_cancels_its_proposal(kal: Kal) -> None:
    registry, owner = kal.d.enclaves, kal.d.owner
    registry.propose_authority(DEV_AUTHORITY, OTHER_IMAGE, sender=owner)
    registry.remove_authority(DEV_AUTHORITY, sender=owner)
    assert list(registry.authorities()) == [] and registry.pending_since() == 0
    boa.env.time_travel(seconds=int(registry.AUTHORITY_DELAY()))
    with boa.reverts("enclaves: no change pending"):
        registry.apply_authority(sender=owner)
    with boa.reverts("enclaves: not signed by an authority"):  # halted until one is added
        register(kal, 0, registry.matching_engine_image())


def test_a_proposed_authority_can_be_cancelled(kal: Kal) -> None:
    registry, owner = kal.d.enclaves, kal.d.owner
    before = list(registry.authorities())
    registry.propose_authority(Authority(os.urandom(32)).address, OTHER_IMAGE, sender=owner)
    registry.cancel_authority(sender=owner)
    boa.env.time_travel(seconds=int(registry.AUTHORITY_DELAY()))
    with boa.reverts("enclaves: no change pending"):
        registry.apply_authority(sender=owner)
    assert list(registry.authorities()) == before


def test_attack_a_leaked_authority_key_is_cut_off_at_once(
    kal: Kal, market: int, alice: str, generator: str
) -> None:
    """The verifier's key leaks (here the dev authority's, public anyway). The thief
    registers a Matching Engine of its own, so private inputs would be sealed to it, and
    an IVS key that calls any task's inputs invalid. The owner removes that authority:
    in the same block both keys stop counting and the thief registers nothing more,
    while the enclaves another authority (added ahead, through the timelock) vouched for
    carry on. A removed authority never comes back."""
    registry, owner = kal.d.enclaves, kal.d.owner
    spare_key = os.urandom(32)
    spare = Authority(spare_key).address
    registry.propose_authority(spare, registry.matching_engine_image(), sender=owner)
    boa.env.time_travel(seconds=int(registry.AUTHORITY_DELAY()))
    registry.apply_authority(sender=owner)
    honest = register(kal, market, IVS_IMAGE, key=spare_key)
    thief_me = register(kal, 0, registry.matching_engine_image())
    thief_ivs = register(kal, market, IVS_IMAGE)
    rid, req, inputs = task(kal, market, alice, generator)
    said = verdict(kal, rid, req, generator)
    assert registry.matching_engine_key(thief_me.address) == thief_me.encryption.public_bytes

    with boa.reverts("ownable: caller is not the owner"):
        registry.remove_authority(DEV_AUTHORITY, sender=boa.env.generate_address())
    registry.remove_authority(DEV_AUTHORITY, sender=owner)
    (log,) = events(registry, "AuthorityRemoved")
    assert log.authority == DEV_AUTHORITY
    assert list(registry.authorities()) == [spare]
    with boa.reverts("enclaves: authority removed"):
        registry.matching_engine_key(thief_me.address)
    with boa.reverts("enclaves: authority removed"):
        claim(kal, rid, req, inputs, thief_ivs.sign(domain(kal), said), generator)
    key = thief_ivs.encryption.public_bytes
    assert registry.key_valid_until(key, market, IVS_IMAGE) == 0
    with boa.reverts("enclaves: not signed by an authority"):
        register(kal, market, IVS_IMAGE)
    with boa.reverts("enclaves: authority removed"):
        registry.propose_authority(DEV_AUTHORITY, registry.matching_engine_image(), sender=owner)
    with boa.reverts("enclaves: not an authority"):
        registry.remove_authority(DEV_AUTHORITY, sender=owner)
    claim(kal, rid, req, inputs, honest.sign(domain(kal), said), generator)
    assert state(kal, rid).state == RequestState.INVALID_INPUTS


def test_attack_a_leaked_authority_cannot_take_honest_keys_down_with_it(
    kal: Kal, market: int
) -> None:
    """Before the owner removes it, a leaked authority re-signs every honest key (dated a
    little ahead, so the honest authority cannot refresh them back): removing it would
    then kill them all. A key refreshes only through the authority that vouched for it
    while that one is in the set; once it is removed, any authority may vouch anew."""
    registry, owner = kal.d.enclaves, kal.d.owner
    honest_key = os.urandom(32)
    registry.propose_authority(Authority(honest_key).address, OTHER_IMAGE, sender=owner)
    boa.env.time_travel(seconds=int(registry.AUTHORITY_DELAY()))
    registry.apply_authority(sender=owner)
    identity = register(kal, market, IVS_IMAGE, key=honest_key)
    vouched_by_dev = register(kal, market, IVS_IMAGE)
    ahead = attest(kal, identity, IVS_IMAGE, now_ms=(now() + 200) * 1000)  # the dev key leaked
    with boa.reverts("enclaves: key of another authority"):
        kal.d.enclaves.register(market, *statement_args(ahead.statement), ahead.signature)
    registry.remove_authority(DEV_AUTHORITY, sender=owner)
    key = identity.encryption.public_bytes
    assert registry.key_valid_until(key, market, IVS_IMAGE) > now()  # untouched
    boa.env.time_travel(seconds=1)
    refreshed = attest(kal, identity, IVS_IMAGE, key=honest_key)
    kal.d.enclaves.register(market, *statement_args(refreshed.statement), refreshed.signature)
    # a key of a removed authority may move to a current one
    moved = attest(kal, vouched_by_dev, IVS_IMAGE, key=honest_key)
    kal.d.enclaves.register(market, *statement_args(moved.statement), moved.signature)
    assert kal.d.enclaves.enclaves(vouched_by_dev.address)[3] == Authority(honest_key).address


def test_the_marketplace_takes_its_enclave_registry_once(kal: Kal) -> None:
    with boa.reverts("config: enclave registry already set"):
        kal.market.set_enclave_registry(kal.d.enclaves.address, sender=kal.d.owner)


# --------------------------------------------------- invalid inputs, attested


def claim(kal: Kal, rid: bytes, req: Request, inputs: bytes, evidence: bytes, who: str) -> None:
    kal.market.submit_invalid_inputs(rid, req.as_tuple(), inputs, evidence, sender=who)


def test_public_inputs_shown_invalid_by_the_input_verification_image(
    kal: Kal, market: int, alice: str, generator: str
) -> None:
    ivs = register(kal, market, IVS_IMAGE)
    rid, req, inputs = task(kal, market, alice, generator)
    before = kal.market.balance_of(alice)
    claim(
        kal, rid, req, inputs, ivs.sign(domain(kal), verdict(kal, rid, req, generator)), generator
    )
    (log,) = events(kal.market, "InvalidInputsProven")
    assert (log.task_id, log.payment, log.refund) == (rid, PRICE, req.max_price - PRICE)
    assert state(kal, rid).state == RequestState.INVALID_INPUTS
    assert kal.market.balance_of(alice) == before + req.max_price - PRICE


def test_private_inputs_need_the_generator_image(
    kal: Kal, market: int, alice: str, generator: str
) -> None:
    ivs, gen_enclave = register(kal, market, IVS_IMAGE), register(kal, market, GEN_IMAGE)
    key = gen_enclave.encryption.public_bytes
    kal.registry.update_offer(market, PRICE, 600, 1, key, sender=generator)
    rid, req, inputs = task(kal, market, alice, generator, secret=b"sealed preimage")
    said = verdict(kal, rid, req, generator)
    with boa.reverts("enclaves: not an authorized enclave"):
        claim(kal, rid, req, inputs, ivs.sign(domain(kal), said), generator)
    claim(kal, rid, req, inputs, gen_enclave.sign(domain(kal), said), generator)
    assert state(kal, rid).state == RequestState.INVALID_INPUTS


def test_an_attestation_is_bound_to_its_task(
    kal: Kal, market: int, alice: str, generator: str
) -> None:
    ivs = register(kal, market, IVS_IMAGE)
    rid, req, inputs = task(kal, market, alice, generator)
    other_rid, other_req, _ = task(kal, market, alice, generator)
    d = domain(kal)
    replayed = ivs.sign(d, verdict(kal, other_rid, other_req, generator))
    wrong = [
        replayed,  # another task's
        ivs.sign(d, replace(verdict(kal, rid, req, generator), generator=alice)),
        ivs.sign(d, replace(verdict(kal, rid, req, generator), inputs_hash=keccak(b"x"))),
        ivs.sign(d, replace(verdict(kal, rid, req, generator), market_id=market + 1)),
        ivs.sign(replace(d, chain_id=d.chain_id + 1), verdict(kal, rid, req, generator)),
        ivs.sign(d, verdict(kal, rid, req, generator, proof=b"a ProofValid, not InputsInvalid")),
    ]
    for evidence in wrong:
        with boa.reverts("enclaves: not an authorized enclave"):
            claim(kal, rid, req, inputs, evidence, generator)
    with boa.reverts("enclaves: bad signature"):
        claim(kal, rid, req, inputs, replayed[:64], generator)
    with boa.reverts("requests: not the generator"):
        claim(kal, rid, req, inputs, ivs.sign(d, verdict(kal, rid, req, generator)), alice)


def test_an_unregistered_or_expired_enclave_is_refused(
    kal: Kal, market: int, alice: str, generator: str
) -> None:
    rid, req, inputs = task(kal, market, alice, generator)
    said = verdict(kal, rid, req, generator)
    with boa.reverts("enclaves: not an authorized enclave"):
        claim(kal, rid, req, inputs, EnclaveIdentity().sign(domain(kal), said), generator)
    ivs = register(kal, market, IVS_IMAGE, now_ms=(now() - int(kal.d.enclaves.MAX_AGE())) * 1000)
    boa.env.time_travel(seconds=1)
    with boa.reverts("enclaves: enclave key expired"):
        claim(kal, rid, req, inputs, ivs.sign(domain(kal), said), generator)


def test_revoking_an_image_refuses_only_tasks_assigned_after_it(
    kal: Kal, market: int, alice: str, generator: str
) -> None:
    ivs = register(kal, market, IVS_IMAGE)
    before = task(kal, market, alice, generator)
    boa.env.time_travel(seconds=5)
    kal.d.enclaves.revoke_image(market, IVS_IMAGE, sender=kal.d.owner)
    rid, req, _ = kal.request(alice, market)
    with boa.reverts("requests: image revoked"):  # the IVS alone shows public inputs invalid
        kal.assign(rid, req, generator)
    rid, req, inputs = before
    claim(
        kal, rid, req, inputs, ivs.sign(domain(kal), verdict(kal, rid, req, generator)), generator
    )
    assert state(kal, rid).state == RequestState.INVALID_INPUTS


def test_a_market_without_an_image_of_the_kind_has_no_path(
    kal: Kal, alice: str, generator: str
) -> None:
    bare = create(
        kal,
        generator_image=b"\x00" * 32,
        input_verification_image=b"\x00" * 32,
        all_inputs_provable=True,
        request_kinds=RequestKinds.PUBLIC,
    )
    kal.registry.join_market(bare, PRICE, 600, 1, b"\x00" * 32, sender=generator)
    rid, req, inputs = task(kal, bare, alice, generator)
    with boa.reverts("requests: no invalid-input path"):
        claim(kal, rid, req, inputs, b"\x00" * 65, generator)


# ------------------------------------------------------------ attested proofs


def attested(pvs: EnclaveIdentity, kal: Kal, rid: bytes, req: Request, generator: str) -> bytes:
    signature = pvs.sign(domain(kal), verdict(kal, rid, req, generator, proof=RAW_PROOF))
    return encode(["bytes", "bytes"], [RAW_PROOF, signature])


def test_a_proof_attested_by_the_proof_verification_image_is_paid(
    kal: Kal, attested_market: int, alice: str, generator: str
) -> None:
    pvs = register(kal, attested_market, PVS_IMAGE)
    rid, req, inputs = task(kal, attested_market, alice, generator)
    proof = attested(pvs, kal, rid, req, generator)
    kal.market.submit_proof(rid, req.as_tuple(), inputs, proof, sender=generator)
    (log,) = events(kal.market, "ProofSubmitted")
    assert (log.task_id, log.payment) == (rid, PRICE)
    assert log.proof == proof  # the requester gets the raw proof with its attestation
    assert state(kal, rid).state == RequestState.FULFILLED


def test_an_attested_proof_is_bound_to_its_bytes_and_task(
    kal: Kal, attested_market: int, alice: str, generator: str
) -> None:
    pvs = register(kal, attested_market, PVS_IMAGE)
    rid, req, inputs = task(kal, attested_market, alice, generator)
    other_rid, other_req, _ = task(kal, attested_market, alice, generator)
    d = domain(kal)
    signature = pvs.sign(d, verdict(kal, rid, req, generator, proof=RAW_PROOF))
    wrong = [
        encode(["bytes", "bytes"], [RAW_PROOF + b"!", signature]),
        attested(pvs, kal, other_rid, other_req, generator),
        encode(["bytes", "bytes"], [RAW_PROOF, pvs.sign(d, verdict(kal, rid, req, generator))]),
        attested(register(kal, attested_market, IVS_IMAGE), kal, rid, req, generator),
    ]
    for proof in wrong:  # the verifier's own reason reaches the sender
        with boa.reverts("enclaves: not an authorized enclave"):
            kal.market.submit_proof(rid, req.as_tuple(), inputs, proof, sender=generator)
    assert state(kal, rid).state == RequestState.ASSIGNED


def test_attested_proofs_do_not_batch(
    kal: Kal, attested_market: int, alice: str, generator: str
) -> None:
    pvs = register(kal, attested_market, PVS_IMAGE)
    items = []
    for _ in range(2):
        rid, req, inputs = task(kal, attested_market, alice, generator)
        items.append((rid, req.as_tuple(), inputs, attested(pvs, kal, rid, req, generator)[:256]))
    with boa.reverts("enclaves: no batches, submit one by one"):
        kal.market.submit_proofs(items, sender=generator)


# ------------------------------------------------------ generator offer keys


def test_a_private_markets_offer_key_must_be_its_generator_images(kal: Kal, market: int) -> None:
    who = boa.env.generate_address("private-generator")
    kal.fund(who)
    kal.registry.register(who, 4, 500 * UNIT, sender=who)
    join = kal.registry.join_market
    with boa.reverts("registry: key not of the generator image"):
        join(market, PRICE, 600, 1, os.urandom(32), sender=who)
    ivs = register(kal, market, IVS_IMAGE)
    with boa.reverts("registry: key not of the generator image"):
        join(market, PRICE, 600, 1, ivs.encryption.public_bytes, sender=who)
    enclave = register(kal, market, GEN_IMAGE)
    join(market, PRICE, 600, 1, enclave.encryption.public_bytes, sender=who)
    with boa.reverts("registry: key not of the generator image"):
        kal.registry.update_offer(market, PRICE, 600, 1, os.urandom(32), sender=who)
    kal.registry.update_offer(market, PRICE, 600, 1, b"\x00" * 32, sender=who)  # no private tasks


def test_any_key_in_a_market_without_a_generator_image(kal: Kal, market_id: int) -> None:
    who = boa.env.generate_address("public-generator")
    kal.fund(who)
    kal.registry.register(who, 4, 500 * UNIT, sender=who)
    kal.registry.join_market(market_id, PRICE, 600, 1, os.urandom(32), sender=who)
