"""Every error Kalypso raises, one tree rooted at `KalypsoError`.

    KalypsoError
    ├── ConfigError                 bad configuration or arguments          (ValueError)
    │   ├── MatcherKeyError         the matcher's key may not assign in its markets
    │   ├── AmbiguousMarketError    a market name several markets carry     (LookupError)
    │   └── UnauditedMarketError    a market's verifier code can change its answers
    ├── BuildError                  contracts or circuits could not be built
    ├── ChainError                  the RPC endpoint failed or is unreachable (ConnectionError)
    │   ├── DeploymentError         a deployment file is missing, stale or for another chain
    │   └── TransactionDroppedError a sent transaction was never mined (its nonce went elsewhere)
    ├── DecryptionError             a private input does not open (wrong key, tampered) (ValueError)
    ├── AttestationError            an attestation document or statement fails a check (ValueError)
    ├── ProverError                 a prover plugin failed (crashed, bad answer, unreachable)
    │   └── ProverTimeout           a proof took longer than the plugin's timeout (TimeoutError)
    └── ContractError               a contract reverted; `.reason` is its reason string
        ├── UnauthorizedError       the caller may not do this             (PermissionError)
        ├── NotFoundError           no such market, request or generator   (LookupError)
        ├── InvalidStateError       not allowed in the object's current state or time
        ├── InvalidArgumentError    an argument is out of range            (ValueError)
        │   └── InvalidInputsError  public inputs malformed, too large or out of the field
        ├── InsufficientFundsError  a balance, allowance or free stake is too small
        ├── ProofRejectedError      the market's verifier rejected a proof
        └── IneligibleGeneratorError the generator may not take this task now

Contract reverts are turned into these by `error_from_reason`, from the reason string
each contract gives (`"requests: not open"`). `REASONS` lists every reason string the
contracts use, with the class and a hint saying what to do; a test checks that none
is missing.
"""

from __future__ import annotations

from collections.abc import Sequence


class KalypsoError(Exception):
    """Root of every error Kalypso raises."""

    code = "K-GEN-000"

    def __str__(self) -> str:
        return f"[{self.code}] {super().__str__()}"


class ConfigError(KalypsoError, ValueError):
    code = "K-CFG-001"


class MatcherKeyError(ConfigError):
    """The matching engine's signing key is not authorized for (some of) its markets."""

    code = "K-MATCH-001"


class AmbiguousMarketError(ConfigError, LookupError):
    """A market name that two or more markets' metadata carry: it addresses none of them
    (anyone can create a market named like another). `ids` are every market carrying it."""

    code = "K-CFG-002"

    def __init__(self, name: str, ids: Sequence[int]) -> None:
        self.name = name
        self.ids = sorted(ids)
        super().__init__(
            f"market name {name!r} is ambiguous: {self.users}; address the market by id, "
            "or record the name in the deployment file"
        )

    @property
    def users(self) -> str:
        """Who carries the name: "markets 1 and 7 both use it"."""
        *rest, last = self.ids
        every = "both" if len(rest) == 1 else "all"
        return f"markets {', '.join(map(str, rest))} and {last} {every} use it"


class UnauditedMarketError(ConfigError):
    """A market's verifier or input verifier is code whose answers can change (or whose
    code cannot be judged): a generator refuses to stake on it unless told to trust it."""

    code = "K-AUD-001"


class BuildError(KalypsoError):
    code = "K-BLD-001"


class ChainError(KalypsoError, ConnectionError):
    code = "K-RPC-001"


class DeploymentError(ChainError):
    code = "K-DEP-001"


class TransactionDroppedError(ChainError):
    """A transaction was sent but never mined: timed out, or its nonce was used by another."""

    code = "K-RPC-002"


class DecryptionError(KalypsoError, ValueError):
    """A private input does not open: wrong key, tampered bytes, or bound to another request."""

    code = "K-CRY-001"


class AttestationError(KalypsoError, ValueError):
    """An enclave attestation does not verify: wrong issuer, image, age, or tampered."""

    code = "K-ENC-001"


class ServiceError(KalypsoError, ConnectionError):
    """A Kalypso service (an enclave, the attestation verifier) did not answer as it must."""

    code = "K-SVC-001"


class ProverError(KalypsoError):
    """A prover plugin failed: not a verdict on the inputs, so the task may be retried.

    Invalid inputs are not an error: `Prover.prove` returns `InvalidInputs` for them.
    """

    code = "K-PRV-001"


class ProverTimeout(ProverError, TimeoutError):
    """A proof ran past the plugin's timeout; the plugin killed it."""

    code = "K-PRV-002"


class VerdictRefused(ProverError):
    """An attesting enclave refuses the prover's verdict or proof (inputs it finds
    provable, a proof it rejects): asking again gives the same answer, so the node hands
    the task back at once instead of retrying into a slash."""

    code = "K-PRV-003"


class ContractError(KalypsoError):
    """A contract call reverted. `reason` is the contract's reason string."""

    code = "K-CON-000"

    def __init__(self, reason: str, hint: str = "") -> None:
        self.reason = reason
        self.hint = hint
        super().__init__(f"{reason}" + (f" — {hint}" if hint else ""))


class UnauthorizedError(ContractError, PermissionError):
    code = "K-CON-001"


class NotFoundError(ContractError, LookupError):
    code = "K-CON-002"


class InvalidStateError(ContractError):
    code = "K-CON-003"


class InvalidArgumentError(ContractError, ValueError):
    code = "K-CON-004"


class InvalidInputsError(InvalidArgumentError):
    code = "K-CON-005"


class InsufficientFundsError(ContractError):
    code = "K-CON-006"


class ProofRejectedError(ContractError):
    code = "K-CON-007"


class IneligibleGeneratorError(ContractError):
    code = "K-CON-008"


_Rule = tuple[type[ContractError], str]

REASONS: dict[str, _Rule] = {
    # escrow: internal balances
    "escrow: insufficient balance": (InsufficientFundsError, "deposit more or withdraw less"),
    # the payment token's own reasons (snekmate's ERC20, the devnet token)
    "erc20: transfer amount exceeds balance": (
        InsufficientFundsError,
        "the wallet holds fewer tokens than that",
    ),
    "erc20: insufficient allowance": (
        InsufficientFundsError,
        "approve the marketplace for the amount first",
    ),
    "erc20: transfer to the zero address": (InvalidArgumentError, "give a receiver address"),
    "erc20: access is denied": (
        UnauthorizedError,
        "only the token's owner and the minters it named may mint",
    ),
    "erc20: mint to the zero address": (InvalidArgumentError, "give a receiver address"),
    "erc20: minter is the zero address": (InvalidArgumentError, "give a minter address"),
    "erc20: minter is owner address": (
        InvalidArgumentError,
        "the owner mints already; its minter role moves only with the ownership",
    ),
    "erc20: new owner is the zero address": (InvalidArgumentError, "give the new owner"),
    "escrow: transfer failed": (
        InsufficientFundsError,
        "approve the marketplace for the amount, or deposit it first",
    ),
    "escrow: zero address": (InvalidArgumentError, "give a receiver address"),
    "escrow: zero amount": (InvalidArgumentError, "amounts must be positive"),
    "escrow: zero token": (InvalidArgumentError, "deploy with a token address"),
    # config: owner settings
    "config: zero address": (InvalidArgumentError, "give a non-zero address"),
    "config: zero treasury": (InvalidArgumentError, "give a non-zero treasury"),
    "config: enclave registry already set": (InvalidStateError, "the enclave registry is set once"),
    "config: enclave registry not a contract": (
        InvalidArgumentError,
        "deploy the EnclaveRegistry first",
    ),
    "config: market registry already set": (InvalidStateError, "the market registry is set once"),
    "config: market registry not a contract": (
        InvalidArgumentError,
        "deploy the MarketRegistry first",
    ),
    "ownable: caller is not the owner": (UnauthorizedError, "only the owner may do this"),
    "ownable: new owner is the zero address": (InvalidArgumentError, "give the new owner"),
    "ownable_2step: caller is not the new owner": (
        UnauthorizedError,
        "only the pending owner may accept ownership",
    ),
    # markets
    "markets: input not in field": (
        InvalidInputsError,
        "every public input must be below the BN254 scalar field modulus",
    ),
    "markets: input verifier not a contract": (InvalidArgumentError, "deploy the input verifier"),
    "markets: bad image kind": (InvalidArgumentError, "image kinds are 0, 1 and 2"),
    "markets: inputs too large": (
        InvalidInputsError,
        "inline public inputs are capped at 1024 bytes; pass larger ones by reference",
    ),
    "markets: no invalid-input path for public inputs": (
        InvalidArgumentError,
        "give an input verifier or an input verification image, or declare all public inputs "
        "provable (or take private requests only)",
    ),
    "markets: private inputs need a generator image": (
        InvalidArgumentError,
        "a market that takes secrets needs a Generator Image: only it opens them and can show "
        "them invalid",
    ),
    "markets: provable markets take no private inputs": (
        InvalidArgumentError,
        "nobody can check a secret's preimage but the Generator Image: take public requests "
        "only, or drop all_inputs_provable",
    ),
    "markets: bad request kinds": (
        InvalidArgumentError,
        "request kinds are 1 (public), 2 (private) or 3 (both)",
    ),
    "markets: attested proofs need a proof verification image": (
        InvalidArgumentError,
        "a market verified by the enclave registry must name its Proof Verification Image",
    ),
    "markets: fee above max": (
        InvalidStateError,
        "the market creation fee rose above your max fee; check the fee and send again",
    ),
    "markets: zero marketplace": (InvalidArgumentError, "deploy with the marketplace address"),
    "markets: not the market registry": (
        UnauthorizedError,
        "markets are created through the MarketRegistry",
    ),
    "markets: market exists": (InvalidStateError, "the market id is taken"),
    "markets: sample proof rejected": (ProofRejectedError, "give a proof the verifier accepts"),
    "markets: too many public inputs": (InvalidArgumentError, "at most 30 public signals"),
    "markets: unknown market": (NotFoundError, "list markets with `kalypso market list`"),
    "markets: verifier not a contract": (InvalidArgumentError, "deploy the verifier first"),
    "markets: wrong input count": (
        InvalidInputsError,
        "encode exactly the market's public signals as uint256[]",
    ),
    "markets: zero penalty": (InvalidArgumentError, "a market needs a slashing penalty"),
    "markets: penalty too large": (InvalidArgumentError, "penalties are capped at 2**88 - 1"),
    # requests and tasks
    "requests: bad expiry": (InvalidArgumentError, "expiry must be between now and 30 days ahead"),
    "requests: bad proof time": (InvalidArgumentError, "proof time must be 1 s to 1 day"),
    "requests: deadline not passed": (
        InvalidStateError,
        "a task can be slashed after its deadline",
    ),
    "requests: deadline passed": (InvalidStateError, "the task's deadline has passed"),
    "requests: empty batch": (InvalidArgumentError, "send at least one item"),
    "requests: expired": (InvalidStateError, "the request expired; cancel it to get the refund"),
    "requests: fields mismatch": (
        InvalidArgumentError,
        "pass the request's fields exactly as in RequestCreated (and MaxPriceIncreased)",
    ),
    "requests: inputs mismatch": (InvalidInputsError, "pass the request's public inputs exactly"),
    "requests: inputs not shown invalid": (
        ProofRejectedError,
        "the market's input verifier says these inputs are valid: prove them",
    ),
    "requests: mixed markets": (InvalidArgumentError, "batch proofs of one market only"),
    "requests: batched proofs are 256 bytes": (
        InvalidArgumentError,
        "only 256-byte proofs batch; submit other proofs one by one",
    ),
    "requests: market takes no private inputs": (
        InvalidInputsError,
        "this market takes public inputs only: send no secret",
    ),
    "requests: market takes private inputs only": (
        InvalidInputsError,
        "this market takes private requests only: seal the private inputs",
    ),
    "requests: image revoked": (
        InvalidStateError,
        "the market's creator revoked an enclave image this request needs; it cannot be "
        "assigned: cancel it",
    ),
    "requests: no invalid-input path": (
        InvalidStateError,
        "this market has neither an input verifier nor an image that attests invalid inputs",
    ),
    "requests: no enclave registry": (
        InvalidStateError,
        "the deployment has no enclave registry; the owner must set it",
    ),
    "requests: not a matching engine": (
        UnauthorizedError,
        "only authorized matching engines assign",
    ),
    "requests: not assigned": (InvalidStateError, "the task is not live"),
    "requests: not expired": (InvalidStateError, "wait until the request's expiry has passed"),
    "requests: not open": (InvalidStateError, "the request is assigned or finished"),
    "requests: not the generator": (UnauthorizedError, "only the assigned generator may do this"),
    "requests: not the requester": (UnauthorizedError, "only the requester may do this"),
    "requests: price above max": (
        InvalidArgumentError,
        "the quote is above the request's max price",
    ),
    "requests: price not higher": (InvalidArgumentError, "the new max price must be higher"),
    "requests: price too large": (InvalidArgumentError, "prices are capped at 2**96 - 1"),
    "requests: proof rejected": (ProofRejectedError, "the market's verifier rejected the proof"),
    "requests: request exists": (InvalidArgumentError, "choose another salt"),
    "requests: request finished": (InvalidStateError, "the request is already settled"),
    "requests: not the registry": (UnauthorizedError, "only the generator registry may do this"),
    "requests: secret too large": (
        InvalidArgumentError,
        "inline encrypted secrets are capped at 1024 bytes",
    ),
    "requests: unknown request": (NotFoundError, "check the request id and the chain"),
    "requests: zero price": (InvalidArgumentError, "offer a positive max price"),
    "requests: zero refund address": (InvalidArgumentError, "give a refund address"),
    "requests: zero registry": (InvalidArgumentError, "deploy with a registry address"),
    # generator registry
    "registry: already in market": (InvalidStateError, "use update_offer to change an offer"),
    "registry: already registered": (InvalidStateError, "the address is already a generator"),
    "registry: bad compute": (InvalidArgumentError, "compute must be between 1 and 2**32 - 1"),
    "registry: bad proof time": (InvalidArgumentError, "proof time must be 1 s to 1 day"),
    "registry: compute above declared": (
        InvalidArgumentError,
        "compute per request cannot exceed the declared compute",
    ),
    "registry: compute in use": (InvalidStateError, "live tasks use more compute; wait for them"),
    "registry: generator exiting": (IneligibleGeneratorError, "the generator requested exit"),
    "registry: key not of the generator image": (
        UnauthorizedError,
        "this market's private inputs go only to its Generator Image: offer the key of a "
        "registered enclave of that image (`kalypso enclave generator`), or a zero key",
    ),
    "registry: marketplace already set": (InvalidStateError, "the marketplace is set once"),
    "registry: marketplace not a contract": (InvalidArgumentError, "deploy the marketplace first"),
    "registry: not active": (InvalidStateError, "register (again) first"),
    "registry: not enough compute": (IneligibleGeneratorError, "the generator's compute is busy"),
    "registry: not enough free stake": (
        IneligibleGeneratorError,
        "the generator's free stake is below the market's penalty",
    ),
    "registry: not exiting": (InvalidStateError, "request exit first"),
    "registry: offer key not live until the deadline": (
        IneligibleGeneratorError,
        "the generator's offer key is not a key of the market's Generator Image that stays "
        "valid until the deadline: its enclave must attest again (or the image was revoked)",
    ),
    "registry: not in market": (
        IneligibleGeneratorError,
        "the generator has not joined the market",
    ),
    "registry: not registered": (NotFoundError, "register as a generator first"),
    "registry: not the marketplace": (UnauthorizedError, "only the marketplace may do this"),
    "registry: price is not the quote": (
        IneligibleGeneratorError,
        "the generator changed its price; match again",
    ),
    "registry: price too large": (InvalidArgumentError, "prices are capped at 2**96 - 1"),
    "registry: proof time too long": (
        IneligibleGeneratorError,
        "the generator promises a longer proof time than the request allows",
    ),
    "registry: registry full": (InvalidStateError, "no more generator indices"),
    "registry: stake too large": (InvalidArgumentError, "stakes are capped at 2**128 - 1"),
    "registry: marketplace not set": (InvalidStateError, "the deployer must call set_marketplace"),
    "registry: stake locked": (InsufficientFundsError, "live tasks lock that stake"),
    "registry: tasks live": (InvalidStateError, "finish or hand back live tasks first"),
    "registry: transfer failed": (InsufficientFundsError, "approve the registry for the stake"),
    "registry: unknown market": (NotFoundError, "list markets with `kalypso market list`"),
    "registry: zero address": (InvalidArgumentError, "give a non-zero address"),
    "registry: zero amount": (InvalidArgumentError, "amounts must be positive"),
    "registry: zero token": (InvalidArgumentError, "deploy with a token address"),
    # Groth16 verifier
    "groth16: bad batch": (
        InvalidArgumentError,
        "give one context and one 8-word proof row per item, and the circuit's public "
        "inputs of every item, concatenated",
    ),
    "groth16: bad proof length": (ProofRejectedError, "a Groth16 proof is abi.encode(uint256[8])"),
    "groth16: empty IC": (InvalidArgumentError, "the verifying key needs IC points"),
    "groth16: input not in field": (
        InvalidInputsError,
        "every public input must be below the BN254 scalar field modulus",
    ),
    "groth16: invalid proof": (ProofRejectedError, "the proof does not prove these public inputs"),
    "groth16: invalid proof in batch": (
        ProofRejectedError,
        "a proof of the batch is invalid: verify them one by one to find it",
    ),
    "groth16: point not on curve": (ProofRejectedError, "a proof point is not on BN254"),
    "groth16: proof point not in field": (
        ProofRejectedError,
        "a proof coordinate is not below the BN254 base field modulus",
    ),
    "groth16: wrong input count": (
        InvalidInputsError,
        "give exactly the circuit's public signals as uint256[]",
    ),
    # enclave registry and attestations
    "enclaves: attestation not newer": (
        InvalidArgumentError,
        "a refresh needs a newer attestation than the registered one",
    ),
    "enclaves: attestation too old": (
        InvalidArgumentError,
        "attest the enclave again: the statement is past the registry's MAX_AGE",
    ),
    "enclaves: attested in the future": (
        InvalidArgumentError,
        "the statement's timestamp (milliseconds) is ahead of the chain: check the clock",
    ),
    "enclaves: bad signature": (InvalidArgumentError, "give a 65-byte, low-s signature"),
    "enclaves: enclave key expired": (
        InvalidStateError,
        "the enclave's key is past the registry's MAX_AGE: it must attest again",
    ),
    "enclaves: encryption key taken": (
        InvalidArgumentError,
        "another enclave registered this encryption key",
    ),
    "enclaves: image not authorized": (
        UnauthorizedError,
        "the market does not list this image id: compare it with `kalypso market show`",
    ),
    "enclaves: image revoked": (
        UnauthorizedError,
        "the market's creator revoked this image for tasks assigned after the revocation",
    ),
    "enclaves: key registered otherwise": (
        InvalidArgumentError,
        "this signing key is registered with another image or encryption key",
    ),
    "enclaves: no batches, submit one by one": (
        InvalidArgumentError,
        "attested proofs go one by one through submit_proof",
    ),
    "enclaves: no change pending": (InvalidStateError, "propose an authority first"),
    "enclaves: no proof verification image": (
        InvalidStateError,
        "the market has no Proof Verification Image to attest its proofs",
    ),
    "enclaves: no such image": (InvalidStateError, "the market has no image of that kind"),
    "enclaves: not a matching engine enclave": (
        NotFoundError,
        "no registered Matching Engine enclave has this signing key",
    ),
    "enclaves: not an authorized enclave": (
        ProofRejectedError,
        "the attestation is not signed by a registered key of the market's image",
    ),
    "enclaves: not signed by an authority": (
        UnauthorizedError,
        "the statement must be signed by one of the registry's attestation authorities "
        "(`kalypso admin show` lists them)",
    ),
    "enclaves: not an authority": (
        NotFoundError,
        "that address is not an attestation authority (`kalypso admin show` lists them)",
    ),
    "enclaves: authority removed": (
        UnauthorizedError,
        "the attestation authority that vouched for this enclave was removed: attest it "
        "again through a current authority (a removed one is never added back)",
    ),
    "enclaves: key of another authority": (
        UnauthorizedError,
        "a registered key refreshes only through the authority that vouched for it, while "
        "that one is in the set: attest it there, or start the enclave again (new keys)",
    ),
    "enclaves: too many authorities": (
        InvalidStateError,
        "the registry holds at most MAX_AUTHORITIES authorities: remove one first",
    ),
    "enclaves: not the market creator": (
        UnauthorizedError,
        "only the market's creator may revoke its images",
    ),
    "enclaves: timelock not passed": (
        InvalidStateError,
        "a new authority applies AUTHORITY_DELAY seconds after it is proposed",
    ),
    "enclaves: unknown market": (NotFoundError, "list markets with `kalypso market list`"),
    "enclaves: wrong chain": (InvalidArgumentError, "the context is for another chain"),
    "enclaves: zero authority": (InvalidArgumentError, "give an authority address"),
    "enclaves: zero image": (InvalidArgumentError, "give an image id"),
    "enclaves: zero key": (InvalidArgumentError, "give both the signing and encryption key"),
    "enclaves: zero market registry": (
        InvalidArgumentError,
        "deploy with the market registry's address",
    ),
    "enclaves: proposal expired": (
        InvalidStateError,
        "the proposal lapsed: propose the authority again and apply it within the window",
    ),
    "enclaves: zero max age": (InvalidArgumentError, "keys need a positive MAX_AGE"),
    # test contracts
    "mock: bad batch": (InvalidArgumentError, "give one input and one proof per batch item"),
    "mock: bad proof": (
        ProofRejectedError,
        "the test verifier expects keccak(keccak(inputs)‖task‖generator)",
    ),
}


def error_from_reason(reason: str) -> ContractError:
    """The typed error for a contract's revert reason (unknown ones are `ContractError`)."""
    cls, hint = REASONS.get(reason, (ContractError, ""))
    return cls(reason, hint)
