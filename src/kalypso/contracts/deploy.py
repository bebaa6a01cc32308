"""Deploy a whole Kalypso deployment: token, registry, marketplace and test verifiers.

`deploy_web3` targets any JSON-RPC chain and returns the `Deployment` record;
`deploy_boa` deploys the same set in titanoboa's in-process EVM for unit tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from kalypso.contracts import source_path
from kalypso.contracts.web3tx import deploy, send
from kalypso.deployment import CONTRACTS_VERSION, Deployment

TOKEN_UNIT = 10**18
#: First value of the threshold input verifier's range that is unprovable.
SAMPLE_INPUT_LIMIT = 1_000_000


@dataclass(frozen=True)
class DeployParams:
    treasury: str
    market_creation_fee: int = 0
    #: An existing ERC20; None deploys the development token.
    token: str | None = None
    initial_supply: int = 1_000_000_000 * TOKEN_UNIT
    token_name: str = "Kalypso Token"
    token_symbol: str = "KAL"
    #: Also deploy the test verifier and threshold input verifier.
    test_verifiers: bool = True
    #: Signs enclave statements; None: the devnet's public dev authority.
    attestation_authority: str | None = None
    #: The Matching Engine image id; None: this package's image (`kalypso enclave matcher`).
    matching_engine_image: bytes | None = None
    #: Seconds an enclave key stays valid after its attestation.
    enclave_max_age: int = 86400
    #: Seconds before a new attestation authority applies.
    authority_delay: int = 2 * 86400

    def enclave_args(self) -> tuple[str, bytes, int, int]:
        """(authority, Matching Engine image, max age, delay) for `EnclaveRegistry`."""
        from kalypso.enclave import DEV_AUTHORITY, ImageKind, image_id

        image = self.matching_engine_image or image_id(ImageKind.MATCHING_ENGINE, {})
        authority = self.attestation_authority or DEV_AUTHORITY
        return authority, image, self.enclave_max_age, self.authority_delay


def deploy_web3(w3: Web3, account: LocalAccount, params: DeployParams) -> Deployment:
    """Deploy to the chain behind `w3`, paid by `account` (which becomes the owner)."""
    if params.token is None:
        token, first = deploy(
            w3, account, "Token", params.token_name, params.token_symbol, params.initial_supply
        )
    else:
        token = w3.eth.contract(
            address=Web3.to_checksum_address(params.token), abi=_erc20_metadata_abi()
        )
        first = None
    registry, receipt = deploy(w3, account, "GeneratorRegistry", token.address)
    first = first or receipt
    marketplace, _ = deploy(
        w3,
        account,
        "ProofMarketplace",
        token.address,
        registry.address,
        params.treasury,
        params.market_creation_fee,
    )
    send(w3, account, registry.functions.set_marketplace(marketplace.address))
    markets, _ = deploy(w3, account, "MarketRegistry", marketplace.address)
    send(w3, account, marketplace.functions.set_market_registry(markets.address))
    enclaves, _ = deploy(w3, account, "EnclaveRegistry", markets.address, *params.enclave_args())
    send(w3, account, marketplace.functions.set_enclave_registry(enclaves.address))
    verifiers: dict[str, str] = {}
    if params.test_verifiers:
        verifiers["mock_verifier"] = deploy(w3, account, "MockVerifier")[0].address
        verifiers["threshold_input_verifier"] = deploy(
            w3, account, "ThresholdInputVerifier", SAMPLE_INPUT_LIMIT
        )[0].address
    return Deployment(
        chain_id=w3.eth.chain_id,
        deploy_block=first["blockNumber"],
        token=token.address,
        registry=registry.address,
        marketplace=marketplace.address,
        market_registry=markets.address,
        enclave_registry=enclaves.address,
        token_symbol=token.functions.symbol().call(),
        token_decimals=token.functions.decimals().call(),
        version=CONTRACTS_VERSION,
        verifiers=verifiers,
    )


@dataclass
class BoaDeployment:
    """Contracts deployed in titanoboa's EVM (test and benchmark helper)."""

    owner: str
    treasury: str
    token: Any
    registry: Any
    marketplace: Any
    markets: Any
    enclaves: Any
    mock_verifier: Any
    input_verifier: Any


def deploy_boa(
    *,
    market_creation_fee: int = 0,
    enclaves: DeployParams | None = None,
) -> BoaDeployment:
    """Deploy everything in the current titanoboa environment, from the Vyper sources.

    `enclaves` gives the enclave registry's settings (by default the devnet's).
    """
    import boa

    owner = boa.env.eoa
    treasury = boa.env.generate_address("treasury")
    token = boa.load_partial(str(source_path("Token"))).deploy(
        "Kalypso Token", "KAL", 1_000_000_000 * TOKEN_UNIT
    )
    registry = boa.load_partial(str(source_path("GeneratorRegistry"))).deploy(token.address)
    marketplace = boa.load_partial(str(source_path("ProofMarketplace"))).deploy(
        token.address, registry.address, treasury, market_creation_fee
    )
    registry.set_marketplace(marketplace.address)
    markets = boa.load_partial(str(source_path("MarketRegistry"))).deploy(marketplace.address)
    marketplace.set_market_registry(markets.address)
    settings = enclaves or DeployParams(treasury=str(treasury))
    enclave_registry = boa.load_partial(str(source_path("EnclaveRegistry"))).deploy(
        markets.address, *settings.enclave_args()
    )
    marketplace.set_enclave_registry(enclave_registry.address)
    mock_verifier = boa.load_partial(str(source_path("MockVerifier"))).deploy()
    input_verifier = boa.load_partial(str(source_path("ThresholdInputVerifier"))).deploy(
        SAMPLE_INPUT_LIMIT
    )
    return BoaDeployment(
        owner=str(owner),
        treasury=str(treasury),
        token=token,
        registry=registry,
        marketplace=marketplace,
        markets=markets,
        enclaves=enclave_registry,
        mock_verifier=mock_verifier,
        input_verifier=input_verifier,
    )


def _erc20_metadata_abi() -> list[dict[str, Any]]:
    from kalypso.contracts import artifact

    return [e for e in artifact("Token").abi if e.get("name") in {"symbol", "decimals"}]
