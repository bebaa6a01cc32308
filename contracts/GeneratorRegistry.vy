# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Generator registry: stakes, compute and market offers
@license Apache-2.0
@notice Generators register with a stake and a declared compute, join
        markets with an offer (price, proof time, compute per request,
        encryption key) and leave by requesting exit (no new tasks) and
        withdrawing once their live tasks are done. The marketplace locks a task's
        penalty and compute here at assignment and releases (or forfeits)
        them at settlement.
@dev Invariants: used compute <= declared compute; locked stake <= stake;
     locked stake = sum of the penalties of live tasks.
@custom:security Only the marketplace set once by the owner may lock and
        settle. Stake is never withdrawable below what live tasks lock.
        There is no unbonding delay: only a live task's locked penalty can
        be taken, and it stays locked until the task ends, so a delay after
        the last task would protect nothing (free stake is withdrawable at
        once with `unstake` anyway).
        Staked tokens are held by the marketplace (one vault for every
        token the system holds); this registry keeps the accounting and
        asks the marketplace to pay stake out.
"""

from ethereum.ercs import IERC20
from snekmate.auth import ownable
from snekmate.auth import ownable_2step
from .interfaces import IMarketDirectory
from .interfaces import IEnclaveRegistry
from .interfaces import IStakeVault
from .interfaces import IMarketplace

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
MAX_U32: constant(uint256) = 2**32 - 1
MAX_U40: constant(uint256) = 2**40 - 1
MAX_PROOF_TIME_BITS: constant(uint256) = 2**32 - 1
MAX_PRICE: constant(uint256) = 2**96 - 1
MAX_STAKE: constant(uint256) = 2**128 - 1
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
NO_LIVE_KEY: constant(uint256) = 8


# What the `generators` view returns; storage packs it in two slots.
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


# The unpacked working copy of a generator's two slots.
struct Record:
    status: uint256
    index: uint256
    declared_compute: uint256
    used_compute: uint256
    missed_deadlines: uint256
    exit_requested_at: uint256
    stake: uint256
    locked_stake: uint256
    # 1 when rewards go to another address than the generator's own
    custom_reward: uint256


TOKEN: public(immutable(IERC20))

marketplace: public(address)
generator_at: public(HashMap[uint256, address])
generator_count: public(uint256)
# status u8 | index u32 | declared compute u32 | used compute u32 | missed u32 | exit time u40
# | custom reward u1
_record_a: HashMap[address, uint256]
# stake u128 | locked stake u128
_record_b: HashMap[address, uint256]
# empty: rewards go to the generator itself
_reward_address: HashMap[address, address]
# joined u8 | price u96 | proof time u32 | compute per request u32
_offer: HashMap[address, HashMap[uint256, uint256]]
_offer_key: HashMap[address, HashMap[uint256, bytes32]]


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


event GeneratorWithdrawn:
    generator: indexed(address)
    amount: uint256


event StakeForfeited:
    generator: indexed(address)
    amount: uint256
    missed: bool


@deploy
def __init__(token: IERC20):
    assert token.address != empty(address), "registry: zero token"
    ownable.__init__()
    ownable_2step.__init__()
    TOKEN = token


@external
def set_marketplace(marketplace: address):
    """
    @notice Bind the marketplace, once. It alone may lock and settle, and
            it holds the staked tokens.
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
    @notice Become a generator. The stake is pulled from the caller (approve
            this registry) into the marketplace's custody.
    @param reward_address Receives earnings (internal balance in the marketplace).
    @param declared_compute Capacity, in the unit offers use per request.
    @param stake Initial stake, in the token's base unit (may be 0).
    """
    g: Record = self._get(msg.sender)
    assert g.status == UNREGISTERED, "registry: already registered"
    assert reward_address != empty(address), "registry: zero address"
    assert declared_compute > 0 and declared_compute <= MAX_COMPUTE, "registry: bad compute"
    assert stake <= MAX_STAKE, "registry: stake too large"
    if g.index == 0:
        g.index = self.generator_count + 1
        assert g.index <= MAX_GENERATORS, "registry: registry full"
        self.generator_count = g.index
        self.generator_at[g.index] = msg.sender
    g.status = ACTIVE
    g.declared_compute = declared_compute
    g.stake = stake
    g.exit_requested_at = 0
    g.custom_reward = self._store_reward_address(reward_address)
    self._put(msg.sender, g)
    if stake > 0:
        self._pull(msg.sender, stake)
    log GeneratorRegistered(generator=msg.sender, index=g.index, reward_address=reward_address, declared_compute=declared_compute, stake=stake)


@external
def add_stake(amount: uint256):
    """
    @notice Add to the caller's stake.
    @param amount Pulled from the caller (approve this registry).
    """
    assert amount > 0, "registry: zero amount"
    g: Record = self._get(msg.sender)
    assert g.status != UNREGISTERED, "registry: not registered"
    g.stake += amount
    assert g.stake <= MAX_STAKE, "registry: stake too large"
    self._put(msg.sender, g)
    self._pull(msg.sender, amount)
    log StakeAdded(generator=msg.sender, amount=amount)


@external
def unstake(amount: uint256):
    """
    @notice Take back free stake (stake not locked by live tasks).
    @param amount Sent to the caller.
    """
    assert amount > 0, "registry: zero amount"
    g: Record = self._get(msg.sender)
    assert g.status != UNREGISTERED, "registry: not registered"
    assert g.stake - g.locked_stake >= amount, "registry: stake locked"
    g.stake -= amount
    self._put(msg.sender, g)
    extcall IStakeVault(self.marketplace).release_stake(msg.sender, amount)
    log StakeRemoved(generator=msg.sender, amount=amount)


@external
def set_declared_compute(declared_compute: uint256):
    """
    @notice Raise or lower the caller's declared compute, never below what
            live tasks use.
    @param declared_compute The new capacity.
    """
    g: Record = self._get(msg.sender)
    assert g.status != UNREGISTERED, "registry: not registered"
    assert declared_compute > 0 and declared_compute <= MAX_COMPUTE, "registry: bad compute"
    assert declared_compute >= g.used_compute, "registry: compute in use"
    g.declared_compute = declared_compute
    self._put(msg.sender, g)
    log ComputeChanged(generator=msg.sender, declared_compute=declared_compute)


@external
def set_reward_address(reward_address: address):
    """
    @notice Change where the caller's earnings are credited.
    @param reward_address The new receiver.
    """
    g: Record = self._get(msg.sender)
    assert g.status != UNREGISTERED, "registry: not registered"
    assert reward_address != empty(address), "registry: zero address"
    g.custom_reward = self._store_reward_address(reward_address)
    self._put(msg.sender, g)
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
    @param encryption_key X25519 key private inputs are re-encrypted to;
           in a market with a Generator Image, a registered key of that
           image (or zero: no private tasks).
    """
    assert self._get(msg.sender).status == ACTIVE, "registry: not active"
    assert market_id < staticcall self._markets().market_count(), "registry: unknown market"
    assert self._offer[msg.sender][market_id] & 1 == 0, "registry: already in market"
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
    assert self._offer[msg.sender][market_id] & 1 == 1, "registry: not in market"
    self._set_offer(market_id, price, proof_time, compute_per_request, encryption_key)


@external
def leave_market(market_id: uint256):
    """
    @notice Stop taking tasks of a market; live tasks are unaffected.
    @param market_id The market.
    """
    assert self._offer[msg.sender][market_id] & 1 == 1, "registry: not in market"
    self._offer[msg.sender][market_id] = 0
    self._offer_key[msg.sender][market_id] = empty(bytes32)
    log MarketLeft(generator=msg.sender, market_id=market_id)


# ----------------------------------------------------------------- exit


@external
def request_exit():
    """
    @notice Stop taking tasks at once; the stake is withdrawable once no
            task is live.
    """
    g: Record = self._get(msg.sender)
    assert g.status == ACTIVE, "registry: not active"
    g.status = EXITING
    g.exit_requested_at = block.timestamp
    self._put(msg.sender, g)
    log ExitRequested(generator=msg.sender)


@external
def withdraw():
    """
    @notice Finish an exit: the whole stake goes back to the caller, who
            may register again later (offers are kept until left).
    """
    g: Record = self._get(msg.sender)
    assert g.status == EXITING, "registry: not exiting"
    assert g.used_compute == 0, "registry: tasks live"
    amount: uint256 = g.stake
    g.status = UNREGISTERED
    g.stake = 0
    self._put(msg.sender, g)
    if amount > 0:
        extcall IStakeVault(self.marketplace).release_stake(msg.sender, amount)
    log GeneratorWithdrawn(generator=msg.sender, amount=amount)


# ---------------------------------------------------------- marketplace


@external
def lock(
    generator: address,
    market_id: uint256,
    price: uint256,
    max_proof_time: uint256,
    penalty: uint256,
    enclaves: address,
    key_image: bytes32,
    key_until: uint256,
) -> (uint256, uint256, uint256):
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
    @param enclaves The enclave registry (when `key_image` is set).
    @param key_image For a task with private inputs, the market's Generator
           Image: the offer key must be a key of it, unrevoked, that stays
           valid until `key_until`; empty for other tasks.
    @param key_until The task's deadline.
    @return (code, generator index, compute locked); code 0 is success.
    """
    assert msg.sender == self.marketplace, "registry: not the marketplace"
    g: Record = self._get(generator)
    if g.status == UNREGISTERED:
        return NOT_REGISTERED, 0, 0
    if g.status == EXITING:
        return IS_EXITING, 0, 0
    offer: uint256 = self._offer[generator][market_id]
    if offer & 1 == 0:
        return NOT_IN_MARKET, 0, 0
    if (offer >> 8) & MAX_PRICE != price:
        return NOT_THE_QUOTE, 0, 0
    if (offer >> 104) & MAX_PROOF_TIME_BITS > max_proof_time:
        return TOO_SLOW, 0, 0
    compute: uint256 = offer >> 136
    if g.used_compute + compute > g.declared_compute:
        return NO_COMPUTE, 0, 0
    if g.locked_stake + penalty > g.stake:
        return NO_STAKE, 0, 0
    if key_image != empty(bytes32):
        key: bytes32 = self._offer_key[generator][market_id]
        if key == empty(bytes32) or staticcall IEnclaveRegistry(enclaves).key_valid_until(key, market_id, key_image) < key_until:
            return NO_LIVE_KEY, 0, 0
    g.used_compute += compute
    g.locked_stake += penalty
    self._put(generator, g)
    return OK, g.index, compute


@external
def settle(index: uint256, compute: uint256, penalty: uint256, forfeit: uint256, missed: bool) -> (address, address):
    """
    @notice Release a finished task's compute and locked penalty; forfeit
            `forfeit` of the stake, which the marketplace (holding the
            tokens) credits to whom it is due.
    @param index The generator's index.
    @param compute Compute the task locked.
    @param penalty Stake the task locked.
    @param forfeit Stake taken (<= penalty).
    @param missed Whether this counts as a missed deadline.
    @return (generator, reward address).
    """
    assert msg.sender == self.marketplace, "registry: not the marketplace"
    generator: address = self.generator_at[index]
    g: Record = self._get(generator)
    g.used_compute -= compute
    g.locked_stake -= penalty
    g.stake -= forfeit
    if missed:
        g.missed_deadlines += 1
    self._put(generator, g)
    if forfeit > 0:
        log StakeForfeited(generator=generator, amount=forfeit, missed=missed)
    return generator, self._reward_of(generator, g)


# ------------------------------------------------------------------ views


@external
@view
def generators(generator: address) -> Generator:
    """
    @notice A generator's registration, stake and compute.
    @param generator The generator.
    @return status (0 unregistered, 1 active, 2 exiting), index, reward
            address, stake, locked stake, declared and used compute, exit
            request time and missed deadlines.
    """
    g: Record = self._get(generator)
    return Generator(
        status=g.status,
        index=g.index,
        reward_address=self._reward_of(generator, g) if g.index != 0 else empty(address),
        stake=g.stake,
        locked_stake=g.locked_stake,
        declared_compute=g.declared_compute,
        used_compute=g.used_compute,
        exit_requested_at=g.exit_requested_at,
        missed_deadlines=g.missed_deadlines,
    )


@external
@view
def offers(generator: address, market_id: uint256) -> Offer:
    """
    @notice A generator's offer in a market.
    @param generator The generator.
    @param market_id The market.
    @return joined, price, proof time, compute per request, encryption key.
    """
    offer: uint256 = self._offer[generator][market_id]
    return Offer(
        joined=offer & 1 == 1,
        price=(offer >> 8) & MAX_PRICE,
        proof_time=(offer >> 104) & MAX_PROOF_TIME_BITS,
        compute_per_request=offer >> 136,
        encryption_key=self._offer_key[generator][market_id],
    )


@external
@view
def free_stake(generator: address) -> uint256:
    """
    @notice Stake not locked by live tasks.
    @param generator The generator.
    @return stake - locked stake.
    """
    g: Record = self._get(generator)
    return g.stake - g.locked_stake


# ------------------------------------------------------------- internal


@internal
@view
def _get(generator: address) -> Record:
    a: uint256 = self._record_a[generator]
    b: uint256 = self._record_b[generator]
    return Record(
        status=a & 255,
        index=(a >> 8) & MAX_U32,
        declared_compute=(a >> 40) & MAX_U32,
        used_compute=(a >> 72) & MAX_U32,
        missed_deadlines=(a >> 104) & MAX_U32,
        exit_requested_at=(a >> 136) & MAX_U40,
        stake=b & MAX_STAKE,
        locked_stake=b >> 128,
        custom_reward=(a >> 176) & 1,
    )


@internal
def _put(generator: address, g: Record):
    self._record_a[generator] = (
        g.status
        | (g.index << 8)
        | (g.declared_compute << 40)
        | (g.used_compute << 72)
        | (g.missed_deadlines << 104)
        | (g.exit_requested_at << 136)
        | (g.custom_reward << 176)
    )
    self._record_b[generator] = g.stake | (g.locked_stake << 128)


@internal
@view
def _reward_of(generator: address, g: Record) -> address:
    if g.custom_reward == 0:
        return generator
    return self._reward_address[generator]


@internal
def _store_reward_address(reward_address: address) -> uint256:
    """
    @dev Rewards to the generator itself need no slot (and no read when
         paying); returns the `custom_reward` flag.
    """
    if reward_address == msg.sender:
        return 0
    self._reward_address[msg.sender] = reward_address
    return 1


@internal
def _set_offer(market_id: uint256, price: uint256, proof_time: uint256, compute_per_request: uint256, encryption_key: bytes32):
    assert price <= MAX_PRICE, "registry: price too large"
    assert proof_time > 0 and proof_time <= MAX_PROOF_TIME, "registry: bad proof time"
    assert compute_per_request > 0, "registry: bad compute"
    assert compute_per_request <= self._get(msg.sender).declared_compute, "registry: compute above declared"
    if encryption_key != empty(bytes32):
        self._check_key(market_id, encryption_key)
    self._offer[msg.sender][market_id] = 1 | (price << 8) | (proof_time << 104) | (compute_per_request << 136)
    if self._offer_key[msg.sender][market_id] != encryption_key:
        self._offer_key[msg.sender][market_id] = encryption_key
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
@view
def _check_key(market_id: uint256, encryption_key: bytes32):
    """
    @dev Private inputs of a market with a Generator Image are re-wrapped
         to the offer key: it must be a registered, unexpired key of that
         image, or the generator's node would hold them in the clear.
    """
    markets: IMarketDirectory = self._markets()
    image: bytes32 = staticcall markets.market_image(market_id, 0)
    if image == empty(bytes32):
        return
    enclaves: address = staticcall markets.enclave_registry()
    assert enclaves != empty(address) and staticcall IEnclaveRegistry(enclaves).key_valid_until(encryption_key, market_id, image) >= block.timestamp, "registry: key not of the generator image"


@internal
@view
def _markets() -> IMarketDirectory:
    return IMarketDirectory(staticcall IMarketplace(self.marketplace).market_registry())


@internal
def _pull(payer: address, amount: uint256):
    """
    @dev Stake is held by the marketplace with everyone else's tokens, so a
         forfeit moves no tokens; credited by the measured balance change.
    """
    vault: address = self.marketplace
    assert vault != empty(address), "registry: marketplace not set"
    before: uint256 = staticcall TOKEN.balanceOf(vault)
    assert extcall TOKEN.transferFrom(payer, vault, amount, default_return_value=True), "registry: transfer failed"
    assert staticcall TOKEN.balanceOf(vault) - before == amount, "registry: transfer failed"
