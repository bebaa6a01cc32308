# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Generator registry: stakes, compute and market offers
@license Apache-2.0
@notice Generators register with a stake and a declared compute, join
        markets with an offer (price, proof time, compute per request,
        encryption key) and leave by requesting exit, waiting out the
        unbonding delay and withdrawing. The marketplace locks a task's
        penalty and compute here at assignment and releases (or forfeits)
        them at settlement.
@dev Invariants: used compute <= declared compute; locked stake <= stake;
     locked stake = sum of the penalties of live tasks.
@custom:security Only the marketplace set once by the owner may lock and
        settle. Stake is never withdrawable below what live tasks lock.
"""

from ethereum.ercs import IERC20
from snekmate.auth import ownable
from snekmate.auth import ownable_2step
from .interfaces import IMarketDirectory

initializes: ownable
initializes: ownable_2step[ownable := ownable]

exports: (
    ownable_2step.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
)


MAX_PROOF_TIME: constant(uint256) = 86400
MAX_COMPUTE: constant(uint256) = 2**32 - 1
MAX_PRICE: constant(uint256) = 2**96 - 1
MAX_GENERATORS: constant(uint256) = 2**32 - 1

# generator status
UNREGISTERED: constant(uint256) = 0
ACTIVE: constant(uint256) = 1
EXITING: constant(uint256) = 2

# lock failure codes (the marketplace maps them to reason strings)
OK: constant(uint256) = 0
NOT_REGISTERED: constant(uint256) = 1
IS_EXITING: constant(uint256) = 2
NOT_IN_MARKET: constant(uint256) = 3
NOT_THE_QUOTE: constant(uint256) = 4
TOO_SLOW: constant(uint256) = 5
NO_COMPUTE: constant(uint256) = 6
NO_STAKE: constant(uint256) = 7


struct Generator:
    status: uint256
    index: uint256
    reward_address: address
    stake: uint256
    locked_stake: uint256
    declared_compute: uint256
    used_compute: uint256
    exit_requested_at: uint256
    missed_deadlines: uint256


struct Offer:
    joined: bool
    price: uint256
    proof_time: uint256
    compute_per_request: uint256
    encryption_key: bytes32


TOKEN: public(immutable(IERC20))
UNBONDING_DELAY: public(immutable(uint256))

marketplace: public(address)
generators: public(HashMap[address, Generator])
offers: public(HashMap[address, HashMap[uint256, Offer]])
generator_at: public(HashMap[uint256, address])
generator_count: public(uint256)


event MarketplaceSet:
    marketplace: indexed(address)


event GeneratorRegistered:
    generator: indexed(address)
    index: uint256
    reward_address: address
    declared_compute: uint256
    stake: uint256


event StakeAdded:
    generator: indexed(address)
    amount: uint256


event StakeRemoved:
    generator: indexed(address)
    amount: uint256


event ComputeChanged:
    generator: indexed(address)
    declared_compute: uint256


event RewardAddressChanged:
    generator: indexed(address)
    reward_address: address


event OfferSet:
    generator: indexed(address)
    market_id: indexed(uint256)
    joined: bool
    price: uint256
    proof_time: uint256
    compute_per_request: uint256
    encryption_key: bytes32


event MarketLeft:
    generator: indexed(address)
    market_id: indexed(uint256)


event ExitRequested:
    generator: indexed(address)
    withdrawable_at: uint256


event GeneratorWithdrawn:
    generator: indexed(address)
    amount: uint256


event StakeForfeited:
    generator: indexed(address)
    amount: uint256
    missed: bool


@deploy
def __init__(token: IERC20, unbonding_delay: uint256):
    assert token.address != empty(address), "registry: zero token"
    ownable.__init__()
    ownable_2step.__init__()
    TOKEN = token
    UNBONDING_DELAY = unbonding_delay


@external
def set_marketplace(marketplace: address):
    """
    @notice Bind the marketplace, once. It alone may lock and settle.
    @param marketplace The ProofMarketplace contract.
    """
    ownable._check_owner()
    assert self.marketplace == empty(address), "registry: marketplace already set"
    assert marketplace.is_contract, "registry: marketplace not a contract"
    self.marketplace = marketplace
    log MarketplaceSet(marketplace=marketplace)


# ---------------------------------------------------------------- stake


@external
def register(reward_address: address, declared_compute: uint256, stake: uint256):
    """
    @notice Become a generator. The stake is pulled from the caller.
    @param reward_address Receives earnings (internal balance in the marketplace).
    @param declared_compute Capacity, in the unit offers use per request.
    @param stake Initial stake, in the token's base unit (may be 0).
    """
    g: Generator = self.generators[msg.sender]
    assert g.status == UNREGISTERED, "registry: already registered"
    assert reward_address != empty(address), "registry: zero address"
    assert declared_compute > 0 and declared_compute <= MAX_COMPUTE, "registry: bad compute"
    index: uint256 = g.index
    if index == 0:
        index = self.generator_count + 1
        assert index <= MAX_GENERATORS, "registry: registry full"
        self.generator_count = index
        self.generator_at[index] = msg.sender
    self.generators[msg.sender] = Generator(
        status=ACTIVE,
        index=index,
        reward_address=reward_address,
        stake=stake,
        locked_stake=0,
        declared_compute=declared_compute,
        used_compute=0,
        exit_requested_at=0,
        missed_deadlines=g.missed_deadlines,
    )
    if stake > 0:
        self._pull(msg.sender, stake)
    log GeneratorRegistered(generator=msg.sender, index=index, reward_address=reward_address, declared_compute=declared_compute, stake=stake)


@external
def add_stake(amount: uint256):
    """
    @notice Add to the caller's stake.
    @param amount Pulled from the caller.
    """
    assert amount > 0, "registry: zero amount"
    assert self.generators[msg.sender].status != UNREGISTERED, "registry: not registered"
    self.generators[msg.sender].stake += amount
    self._pull(msg.sender, amount)
    log StakeAdded(generator=msg.sender, amount=amount)


@external
def unstake(amount: uint256):
    """
    @notice Take back free stake (stake not locked by live tasks).
    @param amount Sent to the caller.
    """
    assert amount > 0, "registry: zero amount"
    g: Generator = self.generators[msg.sender]
    assert g.status != UNREGISTERED, "registry: not registered"
    assert g.stake - g.locked_stake >= amount, "registry: stake locked"
    self.generators[msg.sender].stake = g.stake - amount
    assert extcall TOKEN.transfer(msg.sender, amount, default_return_value=True), "registry: transfer failed"
    log StakeRemoved(generator=msg.sender, amount=amount)


@external
def set_declared_compute(declared_compute: uint256):
    """
    @notice Raise or lower the caller's declared compute, never below what
            live tasks use.
    @param declared_compute The new capacity.
    """
    g: Generator = self.generators[msg.sender]
    assert g.status != UNREGISTERED, "registry: not registered"
    assert declared_compute > 0 and declared_compute <= MAX_COMPUTE, "registry: bad compute"
    assert declared_compute >= g.used_compute, "registry: compute in use"
    self.generators[msg.sender].declared_compute = declared_compute
    log ComputeChanged(generator=msg.sender, declared_compute=declared_compute)


@external
def set_reward_address(reward_address: address):
    """
    @notice Change where the caller's earnings are credited.
    @param reward_address The new receiver.
    """
    assert self.generators[msg.sender].status != UNREGISTERED, "registry: not registered"
    assert reward_address != empty(address), "registry: zero address"
    self.generators[msg.sender].reward_address = reward_address
    log RewardAddressChanged(generator=msg.sender, reward_address=reward_address)


# --------------------------------------------------------------- offers


@external
def join_market(market_id: uint256, price: uint256, proof_time: uint256, compute_per_request: uint256, encryption_key: bytes32):
    """
    @notice Offer to prove for a market.
    @param market_id The market.
    @param price Price per proof, in the token's base unit.
    @param proof_time Seconds the caller promises per proof.
    @param compute_per_request Compute one task of this market takes.
    @param encryption_key X25519 key private inputs are re-encrypted to.
    """
    assert self.generators[msg.sender].status == ACTIVE, "registry: not active"
    assert market_id < staticcall IMarketDirectory(self.marketplace).market_count(), "registry: unknown market"
    assert not self.offers[msg.sender][market_id].joined, "registry: already in market"
    self._set_offer(market_id, price, proof_time, compute_per_request, encryption_key)


@external
def update_offer(market_id: uint256, price: uint256, proof_time: uint256, compute_per_request: uint256, encryption_key: bytes32):
    """
    @notice Change the caller's offer in a market; live tasks keep their
            terms.
    @param market_id The market.
    @param price Price per proof.
    @param proof_time Promised seconds per proof.
    @param compute_per_request Compute one task takes.
    @param encryption_key X25519 key for private inputs.
    """
    assert self.offers[msg.sender][market_id].joined, "registry: not in market"
    self._set_offer(market_id, price, proof_time, compute_per_request, encryption_key)


@external
def leave_market(market_id: uint256):
    """
    @notice Stop taking tasks of a market; live tasks are unaffected.
    @param market_id The market.
    """
    assert self.offers[msg.sender][market_id].joined, "registry: not in market"
    self.offers[msg.sender][market_id] = empty(Offer)
    log MarketLeft(generator=msg.sender, market_id=market_id)


# ----------------------------------------------------------------- exit


@external
def request_exit():
    """
    @notice Stop taking tasks at once; the stake is withdrawable after the
            unbonding delay, once no task is live.
    """
    assert self.generators[msg.sender].status == ACTIVE, "registry: not active"
    self.generators[msg.sender].status = EXITING
    self.generators[msg.sender].exit_requested_at = block.timestamp
    log ExitRequested(generator=msg.sender, withdrawable_at=block.timestamp + UNBONDING_DELAY)


@external
def withdraw():
    """
    @notice Finish an exit: the whole stake goes back to the caller, who
            may register again later.
    """
    g: Generator = self.generators[msg.sender]
    assert g.status == EXITING, "registry: not exiting"
    assert block.timestamp >= g.exit_requested_at + UNBONDING_DELAY, "registry: still unbonding"
    assert g.used_compute == 0, "registry: tasks live"
    self.generators[msg.sender].status = UNREGISTERED
    self.generators[msg.sender].stake = 0
    if g.stake > 0:
        assert extcall TOKEN.transfer(msg.sender, g.stake, default_return_value=True), "registry: transfer failed"
    log GeneratorWithdrawn(generator=msg.sender, amount=g.stake)


# ---------------------------------------------------------- marketplace


@external
def lock(generator: address, market_id: uint256, price: uint256, max_proof_time: uint256, penalty: uint256) -> (uint256, uint256, uint256):
    """
    @notice Lock compute and `penalty` of stake for a new task, if the
            generator may take it.
    @dev Returns a failure code instead of reverting so that a batch can
         skip one item; nothing changes on failure.
    @param generator The generator.
    @param market_id The task's market.
    @param price The price the matching engine offers: must be the quote.
    @param max_proof_time The request's proof time.
    @param penalty The market's slashing penalty.
    @return (code, generator index, compute locked); code 0 is success.
    """
    assert msg.sender == self.marketplace, "registry: not the marketplace"
    status: uint256 = self.generators[generator].status
    if status == UNREGISTERED:
        return NOT_REGISTERED, 0, 0
    if status == EXITING:
        return IS_EXITING, 0, 0
    offer: Offer = self.offers[generator][market_id]
    if not offer.joined:
        return NOT_IN_MARKET, 0, 0
    if offer.price != price:
        return NOT_THE_QUOTE, 0, 0
    if offer.proof_time > max_proof_time:
        return TOO_SLOW, 0, 0
    used: uint256 = self.generators[generator].used_compute + offer.compute_per_request
    if used > self.generators[generator].declared_compute:
        return NO_COMPUTE, 0, 0
    locked: uint256 = self.generators[generator].locked_stake + penalty
    if locked > self.generators[generator].stake:
        return NO_STAKE, 0, 0
    self.generators[generator].used_compute = used
    self.generators[generator].locked_stake = locked
    return OK, self.generators[generator].index, offer.compute_per_request


@external
def settle(index: uint256, compute: uint256, penalty: uint256, forfeit: uint256, missed: bool) -> (address, address):
    """
    @notice Release a finished task's compute and locked penalty; forfeit
            `forfeit` of the stake to the marketplace.
    @param index The generator's index.
    @param compute Compute the task locked.
    @param penalty Stake the task locked.
    @param forfeit Stake taken (<= penalty), sent to the marketplace.
    @param missed Whether this counts as a missed deadline.
    @return (generator, reward address).
    """
    assert msg.sender == self.marketplace, "registry: not the marketplace"
    generator: address = self.generator_at[index]
    g: Generator = self.generators[generator]
    self.generators[generator].used_compute = g.used_compute - compute
    self.generators[generator].locked_stake = g.locked_stake - penalty
    if missed:
        self.generators[generator].missed_deadlines = g.missed_deadlines + 1
    if forfeit > 0:
        self.generators[generator].stake = g.stake - forfeit
        assert extcall TOKEN.transfer(msg.sender, forfeit, default_return_value=True), "registry: transfer failed"
        log StakeForfeited(generator=generator, amount=forfeit, missed=missed)
    return generator, g.reward_address


@external
@view
def free_stake(generator: address) -> uint256:
    """
    @notice Stake not locked by live tasks.
    @param generator The generator.
    @return stake - locked stake.
    """
    return self.generators[generator].stake - self.generators[generator].locked_stake


# ------------------------------------------------------------- internal


@internal
def _set_offer(market_id: uint256, price: uint256, proof_time: uint256, compute_per_request: uint256, encryption_key: bytes32):
    assert price <= MAX_PRICE, "registry: price too large"
    assert proof_time > 0 and proof_time <= MAX_PROOF_TIME, "registry: bad proof time"
    assert compute_per_request > 0, "registry: bad compute"
    assert compute_per_request <= self.generators[msg.sender].declared_compute, "registry: compute above declared"
    self.offers[msg.sender][market_id] = Offer(
        joined=True,
        price=price,
        proof_time=proof_time,
        compute_per_request=compute_per_request,
        encryption_key=encryption_key,
    )
    log OfferSet(
        generator=msg.sender,
        market_id=market_id,
        joined=True,
        price=price,
        proof_time=proof_time,
        compute_per_request=compute_per_request,
        encryption_key=encryption_key,
    )


@internal
def _pull(payer: address, amount: uint256):
    before: uint256 = staticcall TOKEN.balanceOf(self)
    assert extcall TOKEN.transferFrom(payer, self, amount, default_return_value=True), "registry: transfer failed"
    assert staticcall TOKEN.balanceOf(self) - before == amount, "registry: transfer failed"
