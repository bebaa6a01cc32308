# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Proof requests and their tasks
@license Apache-2.0
@notice The life of a request: created with its escrow, assigned by an
        authorized matching engine to a generator (a task), then proven,
        shown invalid, discarded, slashed, cancelled or expired.
        The task id is the request id: a request has at most one live
        task at a time.
@dev Storage per request is one hash of its immutable fields and one
     packed state slot. Callers pass the fields back (`Request`, read from
     `RequestCreated`) and the contract checks them against the hash; only
     `submit_proof` and `submit_invalid_inputs` need the public inputs.
@custom:security Checks, then effects, then token and registry calls;
     every external function is non-reentrant (the pragma of this module:
     a contract's pragma does not reach its modules' functions).
     Assignment refuses a task whose settlement depends on a revoked image
     or, for private inputs, on an offer key that expires before the
     deadline, so an honest generator is never handed a task it cannot
     settle.
"""

from ..interfaces import IVerifier
from ..interfaces import IInputVerifier
from ..interfaces import IGeneratorRegistry
from ..interfaces import IEnclaveRegistry
from . import escrow
from . import config
from . import markets

uses: escrow
uses: config
uses: markets


MIN_PROOF_TIME: constant(uint256) = 1
MAX_PROOF_TIME: constant(uint256) = 86400
MAX_EXPIRY_HORIZON: constant(uint256) = 30 * 86400
MAX_SECRET_BYTES: constant(uint256) = 1024
SECRET_BOUND: constant(uint256) = 2048
KEY_BOUND: constant(uint256) = 256
MAX_BATCH: constant(uint256) = 32
# The whole proof batch is copied to memory at its maximum size, and memory
# costs gas quadratically: proofs batch by 16, of 256 bytes at most (the
# verifier takes each as a row of 8 words, see IVerifier).
MAX_PROOF_BATCH: constant(uint256) = 16
BATCH_PROOF_BOUND: constant(uint256) = 256
BATCH_SIGNALS: constant(uint256) = MAX_PROOF_BATCH * markets.MAX_SIGNALS
MAX_PRICE: constant(uint256) = 2**96 - 1
# the secret hash of a request with public inputs only
NO_SECRET_HASH: constant(bytes32) = keccak256(b"")
BPS: constant(uint256) = 10000
# Share of a task's penalty paid when its generator hands it back; it goes
# to the treasury, never to the requester, who could force a discard.
DISCARD_PENALTY_BPS: constant(uint256) = 2000
# Share of a slashed penalty paid to whoever calls `slash`.
SLASH_BOUNTY_BPS: constant(uint256) = 5000

# request states
UNKNOWN: constant(uint256) = 0
OPEN: constant(uint256) = 1
ASSIGNED: constant(uint256) = 2
FULFILLED: constant(uint256) = 3
INVALID_INPUTS: constant(uint256) = 4
# cancelled or expired unassigned, refunded: stored as an empty state slot
# beside the kept hash, which is cheaper than writing both slots
CLOSED: constant(uint256) = 5
SLASHED: constant(uint256) = 6


# The immutable fields of a request, committed by `request_hash`.
struct Request:
    market_id: uint256
    requester: address
    refund_address: address
    max_price: uint256
    proof_time: uint256
    expiry: uint256
    inputs_hash: bytes32
    secret_hash: bytes32


struct Assignment:
    request_id: bytes32
    request: Request
    generator: address
    price: uint256
    generator_secret: Bytes[KEY_BOUND]


struct ProofItem:
    task_id: bytes32
    request: Request
    public_inputs: Bytes[markets.MAX_INPUTS_BYTES]
    proof: Bytes[BATCH_PROOF_BOUND]


# The packed slot: state | generator index | deadline | price | compute.
struct TaskState:
    state: uint256
    generator_index: uint256
    deadline: uint256
    price: uint256
    compute: uint256


REGISTRY: public(immutable(IGeneratorRegistry))

request_hash: public(HashMap[bytes32, bytes32])
_packed_state: HashMap[bytes32, uint256]


event RequestCreated:
    request_id: indexed(bytes32)
    market_id: indexed(uint256)
    requester: indexed(address)
    refund_address: address
    max_price: uint256
    proof_time: uint256
    expiry: uint256
    salt: bytes32
    public_inputs: Bytes[markets.INPUTS_BOUND]
    encrypted_secret: Bytes[SECRET_BOUND]


event RequestCancelled:
    request_id: indexed(bytes32)
    market_id: indexed(uint256)
    refund: uint256


event RequestExpired:
    request_id: indexed(bytes32)
    market_id: indexed(uint256)
    refund: uint256


event MaxPriceIncreased:
    request_id: indexed(bytes32)
    market_id: indexed(uint256)
    max_price: uint256


event TaskAssigned:
    task_id: indexed(bytes32)
    market_id: indexed(uint256)
    generator: indexed(address)
    price: uint256
    deadline: uint256
    generator_secret: Bytes[KEY_BOUND]


event AssignSkipped:
    request_id: indexed(bytes32)
    generator: indexed(address)
    engine: indexed(address)
    reason: String[64]


event ProofSubmitted:
    task_id: indexed(bytes32)
    market_id: indexed(uint256)
    generator: indexed(address)
    payment: uint256
    refund: uint256
    proof: Bytes[markets.PROOF_BOUND]


event InvalidInputsProven:
    task_id: indexed(bytes32)
    market_id: indexed(uint256)
    generator: indexed(address)
    payment: uint256
    refund: uint256


event TaskDiscarded:
    task_id: indexed(bytes32)
    market_id: indexed(uint256)
    generator: indexed(address)
    penalty: uint256


event TaskSlashed:
    task_id: indexed(bytes32)
    market_id: indexed(uint256)
    generator: indexed(address)
    slasher: address
    penalty: uint256
    bounty: uint256
    refund: uint256


@deploy
def __init__(registry: IGeneratorRegistry):
    assert registry.address != empty(address), "requests: zero registry"
    REGISTRY = registry


# ---------------------------------------------------------------- requests


@external
def create_request(
    market_id: uint256,
    salt: bytes32,
    max_price: uint256,
    proof_time: uint256,
    expiry: uint256,
    refund_address: address,
    public_inputs: Bytes[markets.INPUTS_BOUND],
    encrypted_secret: Bytes[SECRET_BOUND],
) -> bytes32:
    """
    @notice Ask for a proof. `max_price` is escrowed from the caller's
            internal balance if it suffices, otherwise pulled.
    @param market_id The market (circuit).
    @param salt Chosen by the client; the id is known before sending.
    @param max_price Most the caller pays; the rest of it is refunded.
    @param proof_time The response-time guarantee, in seconds.
    @param expiry Latest time at which the request can be assigned.
    @param refund_address Receives refunds (internal balance).
    @param public_inputs The public inputs, encoded as the market says.
    @param encrypted_secret Private inputs encrypted to the matching
           engine, or empty.
    @return request_id keccak256(chain id, this contract, caller, salt).
    """
    request_id: bytes32 = keccak256(abi_encode(chain.id, self, msg.sender, salt))
    assert self._packed_state[request_id] == 0 and self.request_hash[request_id] == empty(bytes32), "requests: request exists"
    markets._check_inputs(market_id, public_inputs, len(encrypted_secret) > 0)
    assert len(encrypted_secret) <= MAX_SECRET_BYTES, "requests: secret too large"
    assert max_price > 0, "requests: zero price"
    assert max_price <= MAX_PRICE, "requests: price too large"
    assert proof_time >= MIN_PROOF_TIME and proof_time <= MAX_PROOF_TIME, "requests: bad proof time"
    assert expiry >= block.timestamp and expiry <= block.timestamp + MAX_EXPIRY_HORIZON, "requests: bad expiry"
    assert refund_address != empty(address), "requests: zero refund address"

    request: Request = Request(
        market_id=market_id,
        requester=msg.sender,
        refund_address=refund_address,
        max_price=max_price,
        proof_time=proof_time,
        expiry=expiry,
        inputs_hash=keccak256(public_inputs),
        secret_hash=keccak256(encrypted_secret),
    )
    self.request_hash[request_id] = self._hash(request)
    self._store(request_id, TaskState(state=OPEN, generator_index=0, deadline=0, price=0, compute=0))
    escrow._charge(msg.sender, max_price)
    log RequestCreated(
        request_id=request_id,
        market_id=market_id,
        requester=msg.sender,
        refund_address=refund_address,
        max_price=max_price,
        proof_time=proof_time,
        expiry=expiry,
        salt=salt,
        public_inputs=public_inputs,
        encrypted_secret=encrypted_secret,
    )
    return request_id


@external
def cancel_request(request_id: bytes32, request: Request):
    """
    @notice The requester withdraws an unassigned request; the escrow goes
            to its refund address.
    @param request_id The request.
    @param request Its fields, as in `RequestCreated`.
    """
    self._check_request(request_id, request)
    assert msg.sender == request.requester, "requests: not the requester"
    assert self._load(request_id).state == OPEN, "requests: not open"
    self._packed_state[request_id] = 0
    escrow._credit(request.refund_address, request.max_price)
    log RequestCancelled(request_id=request_id, market_id=request.market_id, refund=request.max_price)


@external
def cancel_expired(request_id: bytes32, request: Request):
    """
    @notice Anyone refunds a request that was never assigned before its
            expiry.
    @param request_id The request.
    @param request Its fields, as in `RequestCreated`.
    """
    self._check_request(request_id, request)
    assert self._load(request_id).state == OPEN, "requests: not open"
    assert block.timestamp > request.expiry, "requests: not expired"
    self._packed_state[request_id] = 0
    escrow._credit(request.refund_address, request.max_price)
    log RequestExpired(request_id=request_id, market_id=request.market_id, refund=request.max_price)


@external
def increase_max_price(request_id: bytes32, request: Request, new_max_price: uint256):
    """
    @notice The requester raises the price of an unassigned request; the
            difference is escrowed like the original.
    @param request_id The request.
    @param request Its current fields.
    @param new_max_price The new price, above the current one.
    @dev The fields change, so the stored hash is replaced; followers read
         the new price from `MaxPriceIncreased`.
    """
    self._check_request(request_id, request)
    assert msg.sender == request.requester, "requests: not the requester"
    assert self._load(request_id).state == OPEN, "requests: not open"
    assert block.timestamp <= request.expiry, "requests: expired"
    assert new_max_price > request.max_price, "requests: price not higher"
    assert new_max_price <= MAX_PRICE, "requests: price too large"
    extra: uint256 = new_max_price - request.max_price
    updated: Request = request
    updated.max_price = new_max_price
    self.request_hash[request_id] = self._hash(updated)
    escrow._charge(msg.sender, extra)
    log MaxPriceIncreased(request_id=request_id, market_id=request.market_id, max_price=new_max_price)


# -------------------------------------------------------------- assignment


@external
def assign(request_id: bytes32, request: Request, generator: address, price: uint256, generator_secret: Bytes[KEY_BOUND]):
    """
    @notice An authorized matching engine assigns a request to a
            generator; reverts with the failed rule (any other caller
            reverts with "requests: not a matching engine").
    @param request_id The request.
    @param request Its fields, as in `RequestCreated`.
    @param generator The chosen generator.
    @param price The generator's current quote, at most `max_price`.
    @param generator_secret The content key re-encrypted to the
           generator's key for this market, or empty.
    """
    assert config._is_matching_engine(msg.sender, request.market_id), "requests: not a matching engine"
    reason: String[64] = self._assign(request_id, request, generator, price, generator_secret)
    assert reason == "", reason


@external
def assign_batch(assignments: DynArray[Assignment, MAX_BATCH]) -> uint256:
    """
    @notice Assign many requests at once. An item that breaks a rule is
            skipped with `AssignSkipped(engine, reason)`, the rest go
            through. A caller that may not assign one of the items' markets
            reverts the whole batch: only an engine's own transactions log
            skips, so nobody can make an engine believe it was revoked.
    @param assignments Up to 32 assignments.
    @return How many were assigned.
    """
    assigned: uint256 = 0
    for a: Assignment in assignments:
        assert config._is_matching_engine(msg.sender, a.request.market_id), "requests: not a matching engine"
        reason: String[64] = self._assign(a.request_id, a.request, a.generator, a.price, a.generator_secret)
        if reason == "":
            assigned += 1
        else:
            log AssignSkipped(request_id=a.request_id, generator=a.generator, engine=msg.sender, reason=reason)
    return assigned


# -------------------------------------------------------------- settlement


@external
def submit_proof(task_id: bytes32, request: Request, public_inputs: Bytes[markets.INPUTS_BOUND], proof: Bytes[markets.PROOF_BOUND]):
    """
    @notice The assigned generator submits its proof before the deadline;
            it is paid its price and the rest of the escrow is refunded.
            A rejected proof reverts: the task stays pending.
    @param task_id The task (= request id).
    @param request Its fields, as in `RequestCreated`.
    @param public_inputs The request's public inputs, exactly.
    @param proof The proof, as the market's verifier reads it.
    """
    ctx: IVerifier.VerifyContext = self._settle_proof(task_id, request, public_inputs, proof)
    assert staticcall IVerifier(markets._verifier(request.market_id)).verify(ctx, public_inputs, proof), "requests: proof rejected"


@external
def submit_proofs(items: DynArray[ProofItem, MAX_PROOF_BATCH]):
    """
    @notice Submit several proofs of one market in one transaction, checked
            by one `verify_batch` of the market's verifier (for Groth16: a
            random linear combination, n + 3 pairings instead of 4n); any
            failure reverts the whole batch.
    @dev The verifier takes flat arrays (IVerifier): the field-element
         inputs of a market that declares them, concatenated (they were
         checked canonical when each request was made, and each item's
         bytes are checked against its request), and each proof as a row
         of 8 words. Only proofs of exactly 256 bytes batch: padding a
         shorter one would let a proof through that `verify` refuses.
    @param items Up to 16 proofs of exactly 256 bytes, all for the same
           market; other proofs go one by one through `submit_proof`.
    """
    assert len(items) > 0, "requests: empty batch"
    market_id: uint256 = items[0].request.market_id
    if len(items) == 1:
        # One proof: `verify` spares building the batch arrays in memory.
        ctx: IVerifier.VerifyContext = self._settle_proof(items[0].task_id, items[0].request, items[0].public_inputs, items[0].proof)
        assert staticcall IVerifier(markets._verifier(market_id)).verify(ctx, items[0].public_inputs, items[0].proof), "requests: proof rejected"
        return
    count: uint256 = markets._inputs_count(market_id)
    contexts: DynArray[IVerifier.VerifyContext, MAX_PROOF_BATCH] = []
    signals: DynArray[uint256, BATCH_SIGNALS] = []
    proofs: DynArray[uint256[8], MAX_PROOF_BATCH] = []
    for item: ProofItem in items:
        assert item.request.market_id == market_id, "requests: mixed markets"
        contexts.append(self._settle_proof(item.task_id, item.request, item.public_inputs, item.proof))
        if count != 0:
            values: DynArray[uint256, markets.MAX_SIGNALS] = abi_decode(item.public_inputs, DynArray[uint256, markets.MAX_SIGNALS])
            for value: uint256 in values:
                signals.append(value)
        assert len(item.proof) == BATCH_PROOF_BOUND, "requests: batched proofs are 256 bytes"
        proofs.append(abi_decode(item.proof, uint256[8]))
    # A static call after the effects: the verifier cannot change state, and
    # a rejected batch reverts every effect above.
    assert staticcall IVerifier(markets._verifier(market_id)).verify_batch(contexts, signals, proofs), "requests: proof rejected"


@external
def submit_invalid_inputs(task_id: bytes32, request: Request, public_inputs: Bytes[markets.INPUTS_BOUND], evidence: Bytes[markets.PROOF_BOUND]):
    """
    @notice The assigned generator shows, before the deadline, that the
            inputs cannot be proven. The task is cancelled, the generator
            paid its price, the rest refunded. The evidence is read by, in
            this order:
            - for a request with private inputs in a market with a
              Generator Image: an `InputsInvalid` attestation of that image
              (the only party that saw the private inputs);
            - the market's on-chain input verifier, if it has one;
            - an `InputsInvalid` attestation of its Input Verification
              Image.
    @param task_id The task (= request id).
    @param request Its fields, as in `RequestCreated`.
    @param public_inputs The request's public inputs, exactly.
    @param evidence What the input verifier reads, or the attestation's
           65-byte signature.
    """
    task: TaskState = self._live_task(task_id, request, public_inputs)
    generator: address = staticcall REGISTRY.generator_at(task.generator_index)
    assert msg.sender == generator, "requests: not the generator"
    input_verifier: address = markets._input_verifier(request.market_id)
    ctx: IVerifier.VerifyContext = self._context(task_id, request, generator, task)
    image: bytes32 = empty(bytes32)
    if request.secret_hash != NO_SECRET_HASH:
        image = markets._image(request.market_id, markets.GENERATOR_IMAGE)
    if image == empty(bytes32) and input_verifier != empty(address):
        assert staticcall IInputVerifier(input_verifier).inputs_invalid(ctx, public_inputs, evidence), "requests: inputs not shown invalid"
    else:
        if image == empty(bytes32):
            image = markets._image(request.market_id, markets.INPUT_VERIFICATION_IMAGE)
        assert image != empty(bytes32), "requests: no invalid-input path"
        enclaves: address = config.enclave_registry
        assert enclaves != empty(address), "requests: no enclave registry"
        assert staticcall IEnclaveRegistry(enclaves).attested_invalid(ctx, image, evidence), "requests: inputs not shown invalid"

    self._finish(task_id, TaskState(state=INVALID_INPUTS, generator_index=task.generator_index, deadline=task.deadline, price=task.price, compute=0))
    reward: address = self._pay_out(task, markets._penalty(request.market_id))
    escrow._credit(reward, task.price)
    escrow._credit(request.refund_address, request.max_price - task.price)
    log InvalidInputsProven(task_id=task_id, market_id=request.market_id, generator=generator, payment=task.price, refund=request.max_price - task.price)


@external
def discard(task_id: bytes32, request: Request):
    """
    @notice The assigned generator hands a task back before its deadline,
            paying a reduced penalty to the treasury; the request is open
            again (until its expiry).
    @custom:security The penalty never goes to the requester: a requester
            who could make a request unprovable would profit from the
            discard it forces.
    @param task_id The task (= request id).
    @param request Its fields, as in `RequestCreated`.
    """
    self._check_request(task_id, request)
    task: TaskState = self._load(task_id)
    assert task.state == ASSIGNED, "requests: not assigned"
    assert block.timestamp <= task.deadline, "requests: deadline passed"
    generator: address = staticcall REGISTRY.generator_at(task.generator_index)
    assert msg.sender == generator, "requests: not the generator"
    penalty: uint256 = markets._penalty(request.market_id) * DISCARD_PENALTY_BPS // BPS

    self._store(task_id, TaskState(state=OPEN, generator_index=0, deadline=0, price=0, compute=0))
    self._release(task, markets._penalty(request.market_id), penalty, False)
    escrow._credit(config.treasury, penalty)
    log TaskDiscarded(task_id=task_id, market_id=request.market_id, generator=generator, penalty=penalty)


@external
def slash(task_id: bytes32, request: Request):
    """
    @notice Anyone slashes a task whose deadline passed: the requester is
            refunded in full, the penalty goes half to the caller, half to
            the treasury, and the generator's missed deadlines grow.
    @custom:security The generator itself (or any address of its) may be
            the caller and keep the bounty, so a missed deadline costs a
            generator at least half the penalty: market creators size the
            penalty with that in mind.
    @param task_id The task (= request id).
    @param request Its fields, as in `RequestCreated`.
    """
    self._check_request(task_id, request)
    task: TaskState = self._load(task_id)
    assert task.state == ASSIGNED, "requests: not assigned"
    assert block.timestamp > task.deadline, "requests: deadline not passed"
    penalty: uint256 = markets._penalty(request.market_id)
    bounty: uint256 = penalty * SLASH_BOUNTY_BPS // BPS

    self._finish(task_id, TaskState(state=SLASHED, generator_index=task.generator_index, deadline=task.deadline, price=0, compute=0))
    generator: address = empty(address)
    reward: address = empty(address)
    generator, reward = self._release(task, penalty, penalty, True)
    escrow._credit(msg.sender, bounty)
    escrow._credit(config.treasury, penalty - bounty)
    escrow._credit(request.refund_address, request.max_price)
    log TaskSlashed(
        task_id=task_id,
        market_id=request.market_id,
        generator=generator,
        slasher=msg.sender,
        penalty=penalty,
        bounty=bounty,
        refund=request.max_price,
    )


@external
def release_stake(to: address, amount: uint256):
    """
    @notice Pay out stake the registry released (unstake, exit). This
            contract holds staked tokens beside the internal balances.
    @param to The generator.
    @param amount Amount in the token's base unit.
    """
    assert msg.sender == REGISTRY.address, "requests: not the registry"
    escrow._send(to, amount)


# ------------------------------------------------------------------- views


@external
@view
def request_state(request_id: bytes32) -> TaskState:
    """
    @notice The state of a request and of its task.
    @param request_id The request (= task id).
    @return state (0 unknown, 1 open, 2 assigned, 3 fulfilled, 4 invalid
            inputs, 5 closed: cancelled or expired, 6 slashed), generator
            index, deadline, agreed price and compute locked.
    """
    if self._packed_state[request_id] == 0 and self.request_hash[request_id] != empty(bytes32):
        return TaskState(state=CLOSED, generator_index=0, deadline=0, price=0, compute=0)
    return self._load(request_id)


@external
@view
def is_fulfilled(request_id: bytes32) -> bool:
    """
    @notice Whether a proof was accepted for this request.
    @param request_id The request.
    @return True once `ProofSubmitted` happened for it.
    """
    return self._load(request_id).state == FULFILLED


@external
@pure
def hash_request(request: Request) -> bytes32:
    """
    @notice The commitment stored for a request's fields.
    @param request The fields.
    @return keccak256(abi.encode(request)).
    """
    return self._hash(request)


# ---------------------------------------------------------------- internal


@internal
def _assign(request_id: bytes32, request: Request, generator: address, price: uint256, generator_secret: Bytes[KEY_BOUND]) -> String[64]:
    """
    @dev Returns "" when assigned, else the rule that failed (and changes
         nothing).
    """
    if not config._is_matching_engine(msg.sender, request.market_id):
        return "requests: not a matching engine"
    stored: bytes32 = self.request_hash[request_id]
    if self._load(request_id).state != OPEN:
        if stored == empty(bytes32) and self._packed_state[request_id] == 0:
            return "requests: unknown request"
        return "requests: not open"
    if stored != self._hash(request):
        return "requests: fields mismatch"
    if block.timestamp > request.expiry:
        return "requests: expired"
    if price > request.max_price:
        return "requests: price above max"
    flags: uint256 = markets._flags(request.market_id)
    enclaves: address = empty(address)
    key_image: bytes32 = empty(bytes32)
    if flags != 0 or request.secret_hash != NO_SECRET_HASH:
        enclaves = config.enclave_registry
        if self._revoked(enclaves, request, flags):
            return "requests: image revoked"
        if request.secret_hash != NO_SECRET_HASH:
            key_image = markets._image(request.market_id, markets.GENERATOR_IMAGE)
    deadline: uint256 = block.timestamp + request.proof_time
    penalty: uint256 = markets._penalty(request.market_id)
    code: uint256 = 0
    index: uint256 = 0
    compute: uint256 = 0
    code, index, compute = extcall REGISTRY.lock(generator, request.market_id, price, request.proof_time, penalty, enclaves, key_image, deadline)
    if code != 0:
        return self._lock_failure(code)
    self._store(request_id, TaskState(state=ASSIGNED, generator_index=index, deadline=deadline, price=price, compute=compute))
    log TaskAssigned(task_id=request_id, market_id=request.market_id, generator=generator, price=price, deadline=deadline, generator_secret=generator_secret)
    return ""


@internal
@pure
def _lock_failure(code: uint256) -> String[64]:
    if code == 1:
        return "registry: not registered"
    if code == 2:
        return "registry: generator exiting"
    if code == 3:
        return "registry: not in market"
    if code == 4:
        return "registry: price is not the quote"
    if code == 5:
        return "registry: proof time too long"
    if code == 6:
        return "registry: not enough compute"
    if code == 7:
        return "registry: not enough free stake"
    return "registry: offer key not live until the deadline"


@internal
@view
def _revoked(enclaves: address, request: Request, flags: uint256) -> bool:
    """
    @dev Whether settling the request would need an image its market's
         creator revoked: the Proof Verification Image of attested proofs,
         the Input Verification Image where it alone shows public inputs
         invalid. (A private request's Generator Image is checked with the
         offer key, by the registry.)
    """
    market_id: uint256 = request.market_id
    if flags & markets.ATTESTED_PROOFS != 0:
        if staticcall IEnclaveRegistry(enclaves).revoked_at(market_id, markets._image(market_id, markets.PROOF_VERIFICATION_IMAGE)) != 0:
            return True
    if flags & markets.IVS_ONLY != 0 and request.secret_hash == NO_SECRET_HASH:
        if staticcall IEnclaveRegistry(enclaves).revoked_at(market_id, markets._image(market_id, markets.INPUT_VERIFICATION_IMAGE)) != 0:
            return True
    return False


@internal
def _settle_proof(task_id: bytes32, request: Request, public_inputs: Bytes[markets.INPUTS_BOUND], proof: Bytes[markets.PROOF_BOUND]) -> IVerifier.VerifyContext:
    """
    @dev Checks and effects of an accepted proof; the caller verifies the
         proof (singly or in a batch) with the returned context and reverts
         everything if it fails.
    """
    task: TaskState = self._live_task(task_id, request, public_inputs)
    generator: address = staticcall REGISTRY.generator_at(task.generator_index)
    assert msg.sender == generator, "requests: not the generator"
    self._finish(task_id, TaskState(state=FULFILLED, generator_index=task.generator_index, deadline=task.deadline, price=task.price, compute=0))
    reward: address = self._pay_out(task, markets._penalty(request.market_id))
    refund: uint256 = request.max_price - task.price
    escrow._credit(reward, task.price)
    escrow._credit(request.refund_address, refund)
    log ProofSubmitted(task_id=task_id, market_id=request.market_id, generator=generator, payment=task.price, refund=refund, proof=proof)
    return self._context(task_id, request, generator, task)


@internal
@view
def _live_task(task_id: bytes32, request: Request, public_inputs: Bytes[markets.INPUTS_BOUND]) -> TaskState:
    self._check_request(task_id, request)
    assert keccak256(public_inputs) == request.inputs_hash, "requests: inputs mismatch"
    task: TaskState = self._load(task_id)
    assert task.state == ASSIGNED, "requests: not assigned"
    assert block.timestamp <= task.deadline, "requests: deadline passed"
    return task


@internal
def _pay_out(task: TaskState, penalty: uint256) -> address:
    """
    @dev Release a completed task's lock; returns the reward address.
    """
    generator: address = empty(address)
    reward: address = empty(address)
    generator, reward = self._release(task, penalty, 0, False)
    return reward


@internal
def _release(task: TaskState, penalty: uint256, forfeit: uint256, missed: bool) -> (address, address):
    """
    @dev Returns (generator, reward address). A forfeit moves no tokens:
         this contract holds the stake; the caller credits it.
    """
    return extcall REGISTRY.settle(task.generator_index, task.compute, penalty, forfeit, missed)


@internal
@view
def _context(task_id: bytes32, request: Request, generator: address, task: TaskState) -> IVerifier.VerifyContext:
    return IVerifier.VerifyContext(
        chain_id=chain.id,
        market_id=request.market_id,
        task_id=task_id,
        generator=generator,
        inputs_hash=request.inputs_hash,
        assigned_at=task.deadline - request.proof_time,
    )


@internal
@view
def _check_request(request_id: bytes32, request: Request):
    stored: bytes32 = self.request_hash[request_id]
    if stored == empty(bytes32):
        assert self._packed_state[request_id] == 0, "requests: request finished"
        raise "requests: unknown request"
    assert stored == self._hash(request), "requests: fields mismatch"


@internal
@pure
def _hash(request: Request) -> bytes32:
    return keccak256(abi_encode(request))


@internal
@view
def _load(request_id: bytes32) -> TaskState:
    packed: uint256 = self._packed_state[request_id]
    return TaskState(
        state=packed & 255,
        generator_index=(packed >> 8) & (2**32 - 1),
        deadline=(packed >> 40) & (2**40 - 1),
        price=(packed >> 80) & (2**96 - 1),
        compute=packed >> 176,
    )


@internal
def _finish(request_id: bytes32, task: TaskState):
    """
    @dev A final state: the fields are never needed again, so the hash is
         cleared (a gas refund); the packed state keeps the id taken.
    """
    self.request_hash[request_id] = empty(bytes32)
    self._store(request_id, task)


@internal
def _store(request_id: bytes32, task: TaskState):
    self._packed_state[request_id] = (
        task.state
        | (task.generator_index << 8)
        | (task.deadline << 40)
        | (task.price << 80)
        | (task.compute << 176)
    )
