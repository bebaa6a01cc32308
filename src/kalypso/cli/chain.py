"""Commands that bring up or deploy a chain: `devnet`, `deploy`, `demo`."""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
import threading
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from web3 import Web3

from kalypso.chain.rpc import sync_web3
from kalypso.cli.output import plain_console, styled
from kalypso.contracts.admin import bytes32
from kalypso.contracts.deploy import DeployParams, deploy_web3
from kalypso.deployment import DEVNET_CHAIN_ID, default_path
from kalypso.devnet import Anvil, deploy_devnet, refuse_dev_key
from kalypso.enclave import DEV_AUTHORITY
from kalypso.errors import ChainError, ConfigError
from kalypso.keys import load_account
from kalypso.stack import DevnetStack

console = plain_console()


def devnet(
    port: Annotated[int, typer.Option(help="Port of the JSON-RPC endpoint.")] = 8545,
    block_time: Annotated[
        float, typer.Option(help="Seconds between blocks; 0 mines a block per transaction.")
    ] = 0,
    deployment: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the deployment file (default: ~/.kalypso/deployments/31337.json)."
        ),
    ] = None,
    matcher: Annotated[
        bool,
        typer.Option(
            help="Also run the enclaves, the matching engine (dev account 1) and a generator "
            "node (dev account 2) beside the chain."
        ),
    ] = True,
    matcher_port: Annotated[int, typer.Option(help="Port of the matcher's HTTP API.")] = 7300,
    generator_port: Annotated[int, typer.Option(help="Port of the generator's HTTP API.")] = 7400,
    dashboard_port: Annotated[int, typer.Option(help="Port of the dashboard.")] = 8300,
) -> None:
    """Start a local chain (anvil) with Kalypso, the sample markets, a matcher, a generator
    and funded accounts.

    Runs until Ctrl-C. The printed KALYPSO_* lines can be pasted into a shell; then
    `kalypso request create poseidon_preimage --input preimage=7 --max-price 20` gets a proof.
    """
    out = deployment or default_path(DEVNET_CHAIN_ID)
    chain = Anvil(port, block_time=block_time or None)
    with console.status(f"starting anvil on port {port} and deploying…"):
        chain.start()
    stack: DevnetStack | None = None
    workdir = Path(tempfile.mkdtemp(prefix="kalypso-devnet-"))
    try:
        setup = deploy_devnet(chain.web3())
        if matcher:
            deployment_file = setup.deployment.save(workdir / "deployment.json")
            stack = DevnetStack.build(
                workdir,
                chain.url,
                deployment_file,
                setup,
                matcher_port=matcher_port,
                generator_port=generator_port,
                dashboard_port=dashboard_port,
            )
            stack.start(lambda name: console.status(f"starting the {name}…"))
            url = stack.matcher.url
            setup = replace(setup, deployment=replace(setup.deployment, matcher_url=url))
        setup.deployment.save(out)
        d = setup.deployment
        console.print(
            styled(("devnet ready", "bold green"), f" — chain {d.chain_id} at {chain.url}")
        )
        console.print(f"  token        {d.token} ({d.token_symbol}, {d.token_decimals} decimals)")
        console.print(f"  registry     {d.registry}")
        console.print(f"  marketplace  {d.marketplace}")
        for name, market_id in d.markets.items():
            console.print(f"  market       {name} (id {market_id})")
        console.print(f"  matcher key  dev account 1 ({setup.matcher.address})")
        if stack is not None:
            console.print(f"  matcher      {stack.matcher.url} (log {stack.matcher.log})")
            me = stack.enclaves["matcher"].signing_key
            console.print(
                f"  ME enclave   {me}: seal private inputs to the key the enclave registry "
                "gives for it (matching_engine_key)"
            )
            for name, process in stack.enclaves.items():
                console.print(f"  enclave      {name} at {process.url}")
            prover = stack.generator
            console.print(
                f"  generator    {prover.account.address} (dev account 2) at {prover.url}, "
                f"in every market (log {prover.log})"
            )
            console.print(f"  dashboard    {stack.dashboard.url}/ (log {stack.dashboard.log})")
            console.print(
                "  (dev enclaves are plain processes attested by a public dev key: "
                "not confidential; see docs/trust-model.md)",
                style="dim",
            )
        console.print(f"  deployment   {out}")
        console.print("\nFunded dev accounts (100,000 KAL each; public keys, devnet only):")
        for account in setup.funded:
            console.print(f"  {account.address}  0x{account.key.hex().removeprefix('0x')}")
        console.print("\nPaste into a shell:")
        console.print(f"  export KALYPSO_RPC_URL={chain.url}")
        console.print(f"  export KALYPSO_DEPLOYMENT={out}")
        key = setup.funded[-1].key.hex().removeprefix("0x")
        console.print(f"  export KALYPSO_PRIVATE_KEY=0x{key}")
        console.print(f"  # markets: {', '.join(d.markets)}")
        console.print("\nCtrl-C stops the chain.", style="dim")
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        try:
            while not stopped.wait(0.5):
                if chain.process and chain.process.poll() is not None:
                    raise ChainError(f"anvil exited with code {chain.process.returncode}")
                for daemon in stack.exited() if stack else ():
                    raise ChainError(f"the {daemon.name} exited: {daemon.tail()}")
        except KeyboardInterrupt:
            pass
    finally:
        if stack is not None:
            stack.stop()
        kept = _keep_logs(workdir)
        chain.stop()
        console.print(
            f"devnet stopped; its daemons' logs are kept in {workdir}" if kept else "devnet stopped"
        )


def _keep_logs(workdir: Path) -> bool:
    """Delete the devnet's state (journals, keys of a chain that is gone), keep the
    daemons' logs for a post-mortem; whether any was kept."""
    for path in sorted(workdir.rglob("*"), reverse=True):  # files before their folders
        if path.is_dir():
            with contextlib.suppress(OSError):
                path.rmdir()  # only if empty
        elif path.suffix != ".log":
            path.unlink(missing_ok=True)
    if not any(workdir.rglob("*.log")):
        shutil.rmtree(workdir, ignore_errors=True)
        return False
    return True


def deploy(
    rpc_url: Annotated[str, typer.Option(envvar="KALYPSO_RPC_URL", help="JSON-RPC endpoint.")],
    keystore: Annotated[
        Path | None,
        typer.Option(
            help="Encrypted keystore of the deployer (password: KALYPSO_KEYSTORE_PASSWORD, or a "
            "file named by KALYPSO_KEYSTORE_PASSWORD_FILE, else asked)."
        ),
    ] = None,
    private_key: Annotated[
        str | None,
        typer.Option(
            envvar="KALYPSO_PRIVATE_KEY", hidden=True, help="Deployer key (prefer the env var)."
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(help="Payment token (an existing plain ERC20); default deploys one."),
    ] = None,
    treasury: Annotated[str | None, typer.Option(help="Treasury (default: the deployer).")] = None,
    market_creation_fee: Annotated[int, typer.Option(help="Fee in base units.")] = 0,
    test_verifiers: Annotated[
        bool, typer.Option(help="Also deploy the test verifier and threshold input verifier.")
    ] = False,
    attestation_authority: Annotated[
        str | None,
        typer.Option(
            help="Address that signs enclave statements (required off the devnet; the devnet "
            "uses the public dev authority)."
        ),
    ] = None,
    matching_engine_image: Annotated[
        str | None,
        typer.Option(
            help="Image id (hex32) of the Matching Engine enclave: under Nitro, the one "
            "`kalypso attest verify` prints for its document (default: this package's dev "
            "image, devnet only)."
        ),
    ] = None,
    enclave_max_age: Annotated[
        int, typer.Option(help="Seconds an enclave key stays valid after its attestation.")
    ] = 86400,
    authority_delay: Annotated[
        int, typer.Option(help="Timelock before a new attestation authority applies, seconds.")
    ] = 2 * 86400,
    out: Annotated[
        Path | None,
        typer.Option(help="Deployment file (default: ~/.kalypso/deployments/<chain id>.json)."),
    ] = None,
) -> None:
    """Deploy Kalypso's contracts to any EVM chain and write the deployment file.

    Refuses the public development keys, and the public dev attestation authority, on any
    chain but the devnet (31337).
    """
    account = load_account(private_key, keystore)
    w3 = sync_web3(rpc_url)
    try:
        chain_id = w3.eth.chain_id
    except Exception as exc:
        raise ChainError(f"cannot reach {rpc_url}: {exc}") from None
    refuse_dev_key(account, chain_id, "the deployer")
    if chain_id != DEVNET_CHAIN_ID and (
        attestation_authority is None
        or Web3.to_checksum_address(attestation_authority) == DEV_AUTHORITY
    ):
        raise ConfigError(
            f"chain {chain_id} needs its own attestation authority: the dev authority's key is "
            "public; give --attestation-authority ADDRESS"
        )
    params = DeployParams(
        treasury=Web3.to_checksum_address(treasury or account.address),
        market_creation_fee=market_creation_fee,
        token=token,
        test_verifiers=test_verifiers,
        attestation_authority=attestation_authority,
        matching_engine_image=(
            bytes32(matching_engine_image, "an image id") if matching_engine_image else None
        ),
        enclave_max_age=enclave_max_age,
        authority_delay=authority_delay,
    )
    with console.status(f"deploying to chain {chain_id}…"):
        deployment = deploy_web3(w3, account, params)
    path = deployment.save(out or default_path(chain_id))
    console.print(
        styled(
            ("deployed", "bold green"), f" to chain {chain_id} from block {deployment.deploy_block}"
        )
    )
    console.print(f"  marketplace {deployment.marketplace}\n  registry    {deployment.registry}")
    console.print(f"  token       {deployment.token}\n  enclaves    {deployment.enclave_registry}")
    console.print(f"  deployment  {path}")
    console.print("Next: authorize a matching engine (set_matching_engine) and create markets.")


def demo(
    keep: Annotated[
        bool,
        typer.Option(
            "--keep", help="Keep the chain and the dashboard running after the tour (Ctrl-C)."
        ),
    ] = False,
) -> None:
    """Run the whole on-chain lifecycle on a fresh local chain, printing each step.

    The dashboard follows it live: open the URL it prints.
    """
    from kalypso.demo import main

    main(Console(soft_wrap=True), keep=keep)  # the tour's own lines use Rich markup
