# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Enclave registry and attestation verifier
@license Apache-2.0
@notice Enclave keys enter only with a statement of an attestation
        authority (one of a small set): an EIP-712 `Enclave(signingKey, encryptionKey, imageId,
        timestamp)` it signs after verifying the enclave's full attestation
        document off-chain (timestamps in milliseconds, as Nitro's). A key
        is valid for `MAX_AGE` seconds from its attestation and then
        expires; the enclave attests again to stay registered.
        Attestations that registered enclaves sign are EIP-712 typed data
        of this contract (so bound to its chain and address, and through it
        to its one marketplace), naming the market, the task, its generator
        and the hash of exactly what is attested:
        - `ProofValid`: a Proof Verification Image checked the proof; this
          contract is then the market's verifier, and the proof bytes are
          abi.encode(raw proof, signature) so the requester still gets the
          real proof;
        - `InputsInvalid`: a Generator Image (private inputs) or an Input
          Verification Image (public inputs) found the inputs unprovable.
        A market's creator may revoke one of its images: the marketplace
        assigns no task that depends on it from then on, and tasks
        assigned before (in the same block too) still settle: the image's
        enclaves may still register to attest them, or a creator could
        revoke and wait for the old keys to expire.
@custom:security Adding an attestation authority (or changing the
        Matching Engine image id) is timelocked by `AUTHORITY_DELAY`, so
        users can leave before a new root of trust applies, and a proposal
        lapses `APPLY_WINDOW` after it could apply, so an old one cannot be
        sprung on users who forgot it. Removing one takes effect at once,
        for the keys it vouched for too (each key remembers its authority),
        so a compromised verifier is cut off in one transaction while a
        replacement added ahead carries on; a removed authority is retired
        for good. An attestation is bound
        to one task, so a signature cannot be replayed onto another; the
        sample proof a market is created with (task id 0) is only decoded,
        since no task exists yet.
"""

from snekmate.auth import ownable
from snekmate.auth import ownable_2step
from snekmate.utils import eip712_domain_separator as eip712
from .interfaces import IVerifier
from .interfaces import IMarketDirectory

implements: IVerifier

initializes: ownable
initializes: ownable_2step[ownable := ownable]
initializes: eip712

exports: (
    ownable_2step.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
    eip712.eip712Domain,
)


ENCLAVE_TYPEHASH: constant(bytes32) = keccak256("Enclave(address signingKey,bytes32 encryptionKey,bytes32 imageId,uint64 timestamp)")
PROOF_VALID_TYPEHASH: constant(bytes32) = keccak256("ProofValid(uint256 marketId,bytes32 taskId,address generator,bytes32 inputsHash,bytes32 proofHash)")
INPUTS_INVALID_TYPEHASH: constant(bytes32) = keccak256("InputsInvalid(uint256 marketId,bytes32 taskId,address generator,bytes32 inputsHash)")
# secp256k1 order / 2
HALF_ORDER: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168
# An attestation dated this far ahead of the chain's clock is refused.
MAX_CLOCK_SKEW: constant(uint256) = 300
# A proposed authority applies within this window after its delay, or lapses.
APPLY_WINDOW: public(constant(uint256)) = 7 * 86400
# Authorities at once: a verifier and its replacement, with room to spare.
MAX_AUTHORITIES: public(constant(uint256)) = 8
PROOF_BOUND: constant(uint256) = 4096
# abi.encode(raw proof, 65-byte signature) fits in a proof's 4,096 bytes
RAW_PROOF_BOUND: constant(uint256) = PROOF_BOUND - 224
# image kinds, as the marketplace's `market_image` numbers them
GENERATOR_IMAGE: constant(uint256) = 0
INPUT_VERIFICATION_IMAGE: constant(uint256) = 1
PROOF_VERIFICATION_IMAGE: constant(uint256) = 2


struct Enclave:
    image_id: bytes32
    encryption_key: bytes32
    # seconds (the statement's milliseconds // 1000)
    attested_at: uint256
    # who signed its statement: the key counts only while this is an authority
    authority: address


MARKETS: public(immutable(IMarketDirectory))
# Seconds a key stays valid after its attestation.
MAX_AGE: public(immutable(uint256))
# Seconds between proposing a new authority and applying it.
AUTHORITY_DELAY: public(immutable(uint256))

# the authorities, in the order they were added
authority_list: DynArray[address, MAX_AUTHORITIES]
is_authority: public(HashMap[address, bool])
# removed once, never added again
retired: public(HashMap[address, bool])
matching_engine_image: public(bytes32)
pending_authority: public(address)
pending_matching_engine_image: public(bytes32)
# 0: no change pending
pending_since: public(uint256)

# signing key (address) => its enclave
enclaves: public(HashMap[address, Enclave])
# encryption key => the signing key registered with it
encryption_key_owner: public(HashMap[bytes32, address])
# market => image => when its creator revoked it (0: not revoked)
revoked_at: public(HashMap[uint256, HashMap[bytes32, uint256]])


event EnclaveRegistered:
    signing_key: indexed(address)
    image_id: indexed(bytes32)
    encryption_key: bytes32
    attested_at: uint256
    authority: address


event ImageRevoked:
    market_id: indexed(uint256)
    image_id: indexed(bytes32)


event AuthorityChangeProposed:
    authority: indexed(address)
    matching_engine_image: bytes32
    applies_at: uint256


event AuthorityChangeCancelled:
    authority: indexed(address)


event AuthoritySet:
    authority: indexed(address)
    matching_engine_image: bytes32


event AuthorityRemoved:
    authority: indexed(address)


@deploy
def __init__(markets: IMarketDirectory, authority: address, matching_engine_image: bytes32, max_age: uint256, authority_delay: uint256):
    """
    @param markets The market registry of the one marketplace this serves.
    @param authority Signs enclave statements (the dev root on a devnet).
    @param matching_engine_image The image id of the Matching Engine.
    @param max_age Seconds a key stays valid after its attestation.
    @param authority_delay Seconds before a new authority applies.
    """
    assert markets.address != empty(address), "enclaves: zero market registry"
    assert authority != empty(address), "enclaves: zero authority"
    assert max_age > 0, "enclaves: zero max age"
    ownable.__init__()
    ownable_2step.__init__()
    eip712.__init__("Kalypso Enclaves", "1")
    MARKETS = markets
    MAX_AGE = max_age
    AUTHORITY_DELAY = authority_delay
    self.authority_list.append(authority)
    self.is_authority[authority] = True
    self.matching_engine_image = matching_engine_image
    log AuthoritySet(authority=authority, matching_engine_image=matching_engine_image)


# ------------------------------------------------------------- registration


@external
def register(market_id: uint256, signing_key: address, encryption_key: bytes32, image_id: bytes32, timestamp: uint64, signature: Bytes[65]):
    """
    @notice Register (or refresh) an enclave's keys with an authority's
            statement. Anyone may send it: the statement is the proof.
    @dev A known key refreshes only through the authority that vouched for it,
         unless that one was removed (then any authority may vouch for it anew).
    @param market_id A market that authorizes `image_id`; ignored for the
           Matching Engine image. A revoked image still registers: its keys
           then sign only for the market's tasks assigned before the
           revocation, which must not be stranded when older keys expire.
    @param signing_key The enclave's secp256k1 signing address.
    @param encryption_key The enclave's X25519 public key.
    @param image_id The measured image.
    @param timestamp When the enclave was attested, in milliseconds.
    @param signature An authority's EIP-712 signature of the statement.
    """
    assert signing_key != empty(address) and encryption_key != empty(bytes32), "enclaves: zero key"
    assert image_id != empty(bytes32), "enclaves: zero image"
    if image_id != self.matching_engine_image:
        assert market_id < staticcall MARKETS.market_count(), "enclaves: unknown market"
        assert self._authorizes(market_id, image_id), "enclaves: image not authorized"
    attested_at: uint256 = convert(timestamp, uint256) // 1000
    assert attested_at <= block.timestamp + MAX_CLOCK_SKEW, "enclaves: attested in the future"
    assert block.timestamp <= attested_at + MAX_AGE, "enclaves: attestation too old"
    digest: bytes32 = eip712._hash_typed_data_v4(keccak256(abi_encode(ENCLAVE_TYPEHASH, signing_key, encryption_key, image_id, timestamp)))
    authority: address = self._signer(digest, signature)
    assert self.is_authority[authority], "enclaves: not signed by an authority"

    known: Enclave = self.enclaves[signing_key]
    if known.attested_at != 0:
        assert known.image_id == image_id and known.encryption_key == encryption_key, "enclaves: key registered otherwise"
        assert attested_at > known.attested_at, "enclaves: attestation not newer"
        # A key stays with the authority that vouched for it while that one is in the
        # set: another (a leaked one not yet removed) cannot take honest keys down with it.
        assert known.authority == authority or not self.is_authority[known.authority], "enclaves: key of another authority"
    else:
        assert self.encryption_key_owner[encryption_key] == empty(address), "enclaves: encryption key taken"
        self.encryption_key_owner[encryption_key] = signing_key
    self.enclaves[signing_key] = Enclave(image_id=image_id, encryption_key=encryption_key, attested_at=attested_at, authority=authority)
    log EnclaveRegistered(signing_key=signing_key, image_id=image_id, encryption_key=encryption_key, attested_at=attested_at, authority=authority)


@external
def revoke_image(market_id: uint256, image_id: bytes32):
    """
    @notice A market's creator stops trusting one of its images: its
            attestations are refused for tasks assigned from now on, and
            its keys stop being offer keys. Tasks assigned before still
            settle, with any key of the image, registered before or after.
    @param market_id The market.
    @param image_id One of the market's image ids.
    """
    assert msg.sender == staticcall MARKETS.market_creator(market_id), "enclaves: not the market creator"
    assert image_id != empty(bytes32) and self._authorizes(market_id, image_id), "enclaves: image not authorized"
    assert self.revoked_at[market_id][image_id] == 0, "enclaves: image revoked"
    self.revoked_at[market_id][image_id] = block.timestamp
    log ImageRevoked(market_id=market_id, image_id=image_id)


# --------------------------------------------------------------- authority


@external
def propose_authority(authority: address, matching_engine_image: bytes32):
    """
    @notice Propose adding an attestation authority (one already in the
            set: none added) and the Matching Engine image; they apply
            after `AUTHORITY_DELAY` seconds.
    @param authority The authority to add (or keep).
    @param matching_engine_image The Matching Engine image id from then on.
    """
    ownable._check_owner()
    assert authority != empty(address), "enclaves: zero authority"
    self._check_addable(authority)
    self.pending_authority = authority
    self.pending_matching_engine_image = matching_engine_image
    self.pending_since = block.timestamp
    log AuthorityChangeProposed(authority=authority, matching_engine_image=matching_engine_image, applies_at=block.timestamp + AUTHORITY_DELAY)


@external
def cancel_authority():
    """
    @notice Withdraw a proposed authority change.
    """
    ownable._check_owner()
    assert self.pending_since != 0, "enclaves: no change pending"
    log AuthorityChangeCancelled(authority=self.pending_authority)
    self._clear_pending()


@external
def apply_authority():
    """
    @notice Apply the proposed authority once its delay has passed, within
            `APPLY_WINDOW`: it joins the set (the others stay; remove one
            with `remove_authority`).
    """
    ownable._check_owner()
    since: uint256 = self.pending_since
    assert since != 0, "enclaves: no change pending"
    assert block.timestamp >= since + AUTHORITY_DELAY, "enclaves: timelock not passed"
    assert block.timestamp <= since + AUTHORITY_DELAY + APPLY_WINDOW, "enclaves: proposal expired"
    authority: address = self.pending_authority
    if not self.is_authority[authority]:
        self._check_addable(authority)
        self.authority_list.append(authority)
        self.is_authority[authority] = True
    self.matching_engine_image = self.pending_matching_engine_image
    log AuthoritySet(authority=authority, matching_engine_image=self.matching_engine_image)
    self._clear_pending()


@external
def remove_authority(authority: address):
    """
    @notice Cut an authority off at once: its statements register nothing
            more, and every key it vouched for stops counting in this block
            (Matching Engine keys, offer keys, attestations). It is retired
            for good. Removing the last one halts all enclaves until a new
            authority applies.
    @param authority An authority in the set.
    """
    ownable._check_owner()
    assert self.is_authority[authority], "enclaves: not an authority"
    self.is_authority[authority] = False
    self.retired[authority] = True
    kept: DynArray[address, MAX_AUTHORITIES] = []
    for a: address in self.authority_list:
        if a != authority:
            kept.append(a)
    self.authority_list = kept
    if self.pending_authority == authority:
        log AuthorityChangeCancelled(authority=authority)
        self._clear_pending()
    log AuthorityRemoved(authority=authority)


@external
@view
def authorities() -> DynArray[address, MAX_AUTHORITIES]:
    """
    @notice The attestation authorities, in the order they were added.
    """
    return self.authority_list


# ---------------------------------------------------------- verification


@external
@view
def verify(ctx: IVerifier.VerifyContext, public_inputs: Bytes[2048], proof: Bytes[PROOF_BOUND]) -> bool:
    """
    @notice The verifier of an attested market: `proof` is abi.encode(raw
            proof, signature), the signature a `ProofValid` attestation of
            a registered key of the market's Proof Verification Image over
            the task and keccak256(raw proof). Reverts unless valid.
    @param ctx The task.
    @param public_inputs The task's public inputs (bound by ctx.inputs_hash).
    @param proof abi.encode(bytes raw_proof, bytes signature).
    @return True.
    """
    raw: Bytes[RAW_PROOF_BOUND] = b""
    signature: Bytes[65] = b""
    raw, signature = abi_decode(proof, (Bytes[RAW_PROOF_BOUND], Bytes[65]))
    if ctx.task_id == empty(bytes32):
        # The creation sample: no task, no enclave yet (see the header).
        return True
    image: bytes32 = staticcall MARKETS.market_image(ctx.market_id, PROOF_VERIFICATION_IMAGE)
    assert image != empty(bytes32), "enclaves: no proof verification image"
    struct_hash: bytes32 = keccak256(abi_encode(PROOF_VALID_TYPEHASH, ctx.market_id, ctx.task_id, ctx.generator, ctx.inputs_hash, keccak256(raw)))
    self._check_attestation(ctx, struct_hash, signature, image)
    return True


@external
@view
def verify_batch(ctxs: DynArray[IVerifier.VerifyContext, 32], public_inputs: DynArray[uint256, 512], proofs: DynArray[uint256[8], 32]) -> bool:
    """
    @notice Attested proofs do not fit the batch rows: submit them one by
            one. Always reverts.
    @return Never returns.
    """
    raise "enclaves: no batches, submit one by one"


@external
@view
def attested_invalid(ctx: IVerifier.VerifyContext, image_id: bytes32, evidence: Bytes[PROOF_BOUND]) -> bool:
    """
    @notice Whether `evidence` is an `InputsInvalid` attestation of the
            task by a registered key of `image_id`; reverts otherwise.
    @param ctx The task.
    @param image_id The image the marketplace requires (the market's
           Generator Image for private inputs, else its Input Verification
           Image).
    @param evidence The 65-byte signature.
    @return True.
    """
    assert len(evidence) == 65, "enclaves: bad signature"
    struct_hash: bytes32 = keccak256(abi_encode(INPUTS_INVALID_TYPEHASH, ctx.market_id, ctx.task_id, ctx.generator, ctx.inputs_hash))
    self._check_attestation(ctx, struct_hash, slice(evidence, 0, 65), image_id)
    return True


@external
@view
def key_valid_until(encryption_key: bytes32, market_id: uint256, image_id: bytes32) -> uint256:
    """
    @notice Until when `encryption_key` is a key of a registered enclave of
            `image_id` that `market_id` has not revoked.
    @param encryption_key An X25519 public key.
    @param market_id The market.
    @param image_id The image the key must come from.
    @return The last second it is valid (its attestation + MAX_AGE), or 0
            when it is not such a key (or the image is revoked, or the
            authority that vouched for it removed).
    """
    signer: address = self.encryption_key_owner[encryption_key]
    enclave: Enclave = self.enclaves[signer]
    if signer == empty(address) or enclave.image_id != image_id or self.revoked_at[market_id][image_id] != 0 or not self.is_authority[enclave.authority]:
        return 0
    return enclave.attested_at + MAX_AGE


@external
@view
def matching_engine_key(signing_key: address) -> bytes32:
    """
    @notice The key requesters encrypt private inputs to: the encryption
            key of a registered, unexpired Matching Engine enclave.
    @param signing_key The enclave's signing address.
    @return Its X25519 public key.
    """
    enclave: Enclave = self.enclaves[signing_key]
    assert enclave.attested_at != 0 and enclave.image_id == self.matching_engine_image, "enclaves: not a matching engine enclave"
    assert self.is_authority[enclave.authority], "enclaves: authority removed"
    assert block.timestamp <= enclave.attested_at + MAX_AGE, "enclaves: enclave key expired"
    return enclave.encryption_key


@external
@view
def statement_digest(signing_key: address, encryption_key: bytes32, image_id: bytes32, timestamp: uint64) -> bytes32:
    """
    @notice The EIP-712 digest an authority signs for an enclave.
    @return The digest (EIP-712: 0x1901, domain separator, struct hash).
    """
    return eip712._hash_typed_data_v4(keccak256(abi_encode(ENCLAVE_TYPEHASH, signing_key, encryption_key, image_id, timestamp)))


# ---------------------------------------------------------------- internal


@internal
@view
def _check_attestation(ctx: IVerifier.VerifyContext, struct_hash: bytes32, signature: Bytes[65], image_id: bytes32):
    assert ctx.chain_id == chain.id, "enclaves: wrong chain"
    assert image_id != empty(bytes32), "enclaves: no such image"
    signer: address = self._signer(eip712._hash_typed_data_v4(struct_hash), signature)
    enclave: Enclave = self.enclaves[signer]
    assert enclave.attested_at != 0 and enclave.image_id == image_id, "enclaves: not an authorized enclave"
    assert self.is_authority[enclave.authority], "enclaves: authority removed"
    assert block.timestamp <= enclave.attested_at + MAX_AGE, "enclaves: enclave key expired"
    revoked: uint256 = self.revoked_at[ctx.market_id][image_id]
    # No task is assigned once its image is revoked, so a task assigned in
    # the revocation's second came before it in the block.
    assert revoked == 0 or ctx.assigned_at <= revoked, "enclaves: image revoked"


@internal
@pure
def _signer(digest: bytes32, signature: Bytes[65]) -> address:
    assert len(signature) == 65, "enclaves: bad signature"
    s: uint256 = extract32(signature, 32, output_type=uint256)
    # the low-s form only (EIP-2), so a signature has one encoding
    assert s <= HALF_ORDER, "enclaves: bad signature"
    signer: address = ecrecover(digest, convert(slice(signature, 64, 1), uint256), extract32(signature, 0, output_type=uint256), s)
    assert signer != empty(address), "enclaves: bad signature"
    return signer


@internal
@view
def _authorizes(market_id: uint256, image_id: bytes32) -> bool:
    for kind: uint256 in [GENERATOR_IMAGE, INPUT_VERIFICATION_IMAGE, PROOF_VERIFICATION_IMAGE]:
        if staticcall MARKETS.market_image(market_id, kind) == image_id:
            return True
    return False


@internal
@view
def _check_addable(authority: address):
    assert not self.retired[authority], "enclaves: authority removed"
    assert self.is_authority[authority] or len(self.authority_list) < MAX_AUTHORITIES, "enclaves: too many authorities"


@internal
def _clear_pending():
    self.pending_authority = empty(address)
    self.pending_matching_engine_image = empty(bytes32)
    self.pending_since = 0
