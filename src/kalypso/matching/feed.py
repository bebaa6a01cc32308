"""Feed the chain's events, in log order, into the orderbook and the matcher's ledger.

`ChainView` is everything the matcher derives from the event log: the orderbook
(`OrderBook`, pure) plus what it needs to act on the chain — each request's
committed fields (every call passes them back), its encrypted secret, the
deadlines of live tasks (to slash the overdue ones), and, from the enclave
registry, what settlement depends on: which images each market needs, which its
creator revoked, and until when each Generator Image key is valid (the contract
refuses a private task to a key that expires before the deadline, and any task
whose settlement needs a revoked image). Replaying the same events always gives
the same view, which is how a restart or a reorg rebuilds it.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from eth_utils import keccak

from kalypso.crypto import is_usable_public_key
from kalypso.market import Request
from kalypso.market.events import DecodedEvent, created_request
from kalypso.matching import Offer, OrderBook, Outcome

#: Room for log indexes within a block in the arrival sequence number.
_SEQ_PER_BLOCK = 1_000_000

_OUTCOMES = {
    "ProofSubmitted": Outcome.FULFILLED,
    "InvalidInputsProven": Outcome.INVALID_INPUTS,
    "TaskDiscarded": Outcome.DISCARDED,
    "TaskSlashed": Outcome.SLASHED,
}


#: The secret hash of a request with public inputs only (the contract's NO_SECRET_HASH).
NO_SECRET_HASH = keccak(b"")


@dataclass(frozen=True)
class Settlement:
    """The enclave images a market's settlement depends on (None: it needs none)."""

    #: opens private inputs and shows them invalid
    generator_image: bytes | None = None
    #: attests proofs: the market's verifier is the enclave registry
    proof_image: bytes | None = None
    #: alone shows public inputs invalid (no input verifier)
    input_image: bytes | None = None


@dataclass
class LiveTask:
    task_id: bytes
    market_id: int
    generator: str
    deadline: int


@dataclass
class ChainView:
    book: OrderBook
    #: whether the matcher can open a request's secret (the private-inputs hook)
    can_decrypt: Callable[[bytes, bytes], bool] = lambda request_id, secret: False
    #: the matcher's own address: another engine's skips say nothing about our matches
    #: (None, as in the dashboard: every engine's)
    engine: str | None = None
    #: the enclave registry's address and MAX_AGE (seconds a key stays valid after its
    #: attestation); None: the view does not follow enclaves (the dashboard)
    enclave_registry: str | None = None
    key_max_age: int | None = None
    settlement: dict[int, Settlement] = field(default_factory=dict)
    #: encryption key -> (image id, last second it is valid, the authority that vouched)
    enclave_keys: dict[bytes, tuple[bytes, int, str]] = field(default_factory=dict)
    #: attestation authorities removed: the keys they vouched for count no more
    removed_authorities: set[str] = field(default_factory=set)
    revoked: set[tuple[int, bytes]] = field(default_factory=set)
    #: (generator, market) -> its current offer, to re-examine it when its key refreshes
    offers: dict[tuple[str, int], Offer] = field(default_factory=dict)
    requests: dict[bytes, Request] = field(default_factory=dict)
    secrets: dict[bytes, bytes] = field(default_factory=dict)
    undecryptable: set[bytes] = field(default_factory=set)
    live: dict[bytes, LiveTask] = field(default_factory=dict)
    events_seen: Counter[str] = field(default_factory=Counter)
    last_block: int = 0
    _deadlines: list[tuple[int, bytes]] = field(default_factory=list)

    def apply(self, event: DecodedEvent) -> None:
        self.events_seen[event.name] += 1
        self.last_block = event.block_number
        handler = getattr(self, f"_on_{event.name}", None)
        if handler is not None:
            handler(event)
        elif event.name in _OUTCOMES:
            self._finished(event, _OUTCOMES[event.name])

    def overdue(
        self, now: int, markets: Collection[int] | None = None
    ) -> list[tuple[bytes, Request]]:
        """Live tasks of `markets` (None: all) past their deadline at `now`, each once.

        The contract slashes when now > deadline. A task handed out here is not handed
        out again unless `requeue_overdue` puts it back.
        """
        found: dict[bytes, Request] = {}
        while self._deadlines and self._deadlines[0][0] < now:
            deadline, task_id = heapq.heappop(self._deadlines)
            task = self.live.get(task_id)
            if task is None or task.deadline != deadline:
                continue
            if markets is None or task.market_id in markets:
                found[task_id] = self.requests[task_id]
        return list(found.items())

    def requeue_overdue(self, task_id: bytes) -> None:
        """A slash that did not go through: look at the task again later."""
        if task := self.live.get(task_id):
            heapq.heappush(self._deadlines, (task.deadline, task_id))

    # ---- markets and requests

    def key_valid_until(self, market_id: int, key: bytes) -> int | None:
        """Until when `key` is a key of `market_id`'s Generator Image, unrevoked (0: it is
        not one); None when the view does not follow enclaves."""
        if self.key_max_age is None:
            return None
        image = self.settlement.get(market_id, Settlement()).generator_image
        known = self.enclave_keys.get(key)
        if image is None or known is None or known[0] != image:
            return 0
        if (market_id, image) in self.revoked or known[2] in self.removed_authorities:
            return 0
        return known[1]

    def settleable(self, request: Request) -> bool:
        """Whether the request can still be settled: no image it needs was revoked."""
        s = self.settlement.get(request.market_id, Settlement())
        private = request.secret_hash != NO_SECRET_HASH
        needed = [s.proof_image, s.generator_image if private else s.input_image]
        return not any((request.market_id, image) in self.revoked for image in needed if image)

    def _on_MarketCreated(self, e: DecodedEvent) -> None:
        market_id = e["market_id"]
        self.book.add_market(market_id, e["slashing_penalty"])

        def image(key: str, needed: bool = True) -> bytes | None:
            value = bytes(e[key])
            return value if needed and any(value) else None

        attested = self.enclave_registry is not None and e["verifier"] == self.enclave_registry
        no_input_verifier = int(e["input_verifier"], 16) == 0
        self.settlement[market_id] = Settlement(
            generator_image=image("generator_image"),
            proof_image=image("proof_verification_image", attested),
            input_image=image("input_verification_image", no_input_verifier),
        )

    def _on_EnclaveRegistered(self, e: DecodedEvent) -> None:
        if self.key_max_age is None:
            return
        key = bytes(e["encryption_key"])
        until = e["attested_at"] + self.key_max_age
        self.enclave_keys[key] = (bytes(e["image_id"]), until, e["authority"])
        for offer in self.offers.values():  # a refreshed key may take tasks again
            if offer.encryption_key == key:
                self.book.set_offer(offer)

    def _on_AuthorityRemoved(self, e: DecodedEvent) -> None:
        self.removed_authorities.add(e["authority"])  # its keys are assigned no more

    def _on_ImageRevoked(self, e: DecodedEvent) -> None:
        market_id = e["market_id"]
        self.revoked.add((market_id, bytes(e["image_id"])))
        for request_id, request in self.requests.items():
            if request.market_id == market_id and not self.settleable(request):
                self.book.remove_request(request_id)  # a live task is left alone

    def _on_RequestCreated(self, e: DecodedEvent) -> None:
        request_id, secret = e["request_id"], e["encrypted_secret"]
        request = created_request(e)
        self.requests[request_id] = request
        if not self.settleable(request):
            return  # no generator could settle it: it waits for its expiry
        if secret:
            self.secrets[request_id] = secret
            if not self.can_decrypt(request_id, secret):
                self.undecryptable.add(request_id)
                return
        seq = e.block_number * _SEQ_PER_BLOCK + e.log_index
        self.book.add_request(request_id, request, seq, private=bool(secret))

    def _on_RequestCancelled(self, e: DecodedEvent) -> None:
        self._forget(e["request_id"])

    def _on_RequestExpired(self, e: DecodedEvent) -> None:
        self._forget(e["request_id"])

    def _on_MaxPriceIncreased(self, e: DecodedEvent) -> None:
        request_id = e["request_id"]
        if request_id in self.requests:
            self.requests[request_id] = self.requests[request_id].with_max_price(e["max_price"])
        self.book.increase_max_price(request_id, e["max_price"])

    def _forget(self, request_id: bytes) -> None:
        self.book.remove_request(request_id)
        self.requests.pop(request_id, None)
        self.secrets.pop(request_id, None)
        self.undecryptable.discard(request_id)

    # ---- tasks

    def _on_TaskAssigned(self, e: DecodedEvent) -> None:
        task_id = e["task_id"]
        self.book.task_assigned(task_id, e["market_id"], e["generator"])
        self.undecryptable.discard(task_id)  # another engine could open it
        self.live[task_id] = LiveTask(task_id, e["market_id"], e["generator"], e["deadline"])
        heapq.heappush(self._deadlines, (e["deadline"], task_id))

    def _on_AssignSkipped(self, e: DecodedEvent) -> None:
        if self.engine is None or e["engine"] == self.engine:
            self.book.assign_skipped(e["request_id"], e["generator"], e["reason"])

    def _finished(self, e: DecodedEvent, outcome: Outcome) -> None:
        task_id = e["task_id"]
        self.book.task_finished(task_id, outcome)
        self.live.pop(task_id, None)
        if outcome is not Outcome.DISCARDED:  # a discarded task's request is open again
            self._forget(task_id)

    # ---- generators (the registry's events)

    def _on_GeneratorRegistered(self, e: DecodedEvent) -> None:
        self.book.register_generator(e["generator"], e["declared_compute"], e["stake"])

    def _on_StakeAdded(self, e: DecodedEvent) -> None:
        self.book.add_stake(e["generator"], e["amount"])

    def _on_StakeRemoved(self, e: DecodedEvent) -> None:
        self.book.remove_stake(e["generator"], e["amount"])

    def _on_StakeForfeited(self, e: DecodedEvent) -> None:
        self.book.remove_stake(e["generator"], e["amount"])

    def _on_ComputeChanged(self, e: DecodedEvent) -> None:
        self.book.set_compute(e["generator"], e["declared_compute"])

    def _on_ExitRequested(self, e: DecodedEvent) -> None:
        self.book.request_exit(e["generator"])

    def _on_GeneratorWithdrawn(self, e: DecodedEvent) -> None:
        self.book.withdraw(e["generator"])

    def _on_OfferSet(self, e: DecodedEvent) -> None:
        key = e["encryption_key"]
        offer = Offer(
            generator=e["generator"],
            market_id=e["market_id"],
            price=e["price"],
            proof_time=e["proof_time"],
            compute_per_request=e["compute_per_request"],
            # A key no secret can be wrapped to counts as none: never a private task.
            encryption_key=key if is_usable_public_key(key) else bytes(32),
        )
        self.offers[(offer.generator, offer.market_id)] = offer
        self.book.set_offer(offer)

    def _on_MarketLeft(self, e: DecodedEvent) -> None:
        self.offers.pop((e["generator"], e["market_id"]), None)
        self.book.leave_market(e["generator"], e["market_id"])
