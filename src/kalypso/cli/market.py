"""`kalypso market create|audit`: put a Groth16 circuit on the marketplace, and check a
market's verifier code and its artifacts (DESIGN §8, market creators); `list` and `show`
are in `market_view`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text
from web3 import Web3

from kalypso.circuits import (
    CIRCUIT_NAME,
    Circuit,
    load_circuit,
    load_schema,
    sha256_file,
)
from kalypso.circuits.setup import check_fits, ptau_power, zkey_vkey
from kalypso.cli import market_view
from kalypso.cli.once import New, once
from kalypso.cli.options import DeploymentPath, RpcUrl, read_json
from kalypso.cli.output import HelpGroup, plain_console, styled
from kalypso.contracts.admin import bytes32
from kalypso.contracts.client import MarketplaceClient
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.contracts.web3tx import Signing
from kalypso.devnet import refuse_dev_key
from kalypso.errors import ConfigError
from kalypso.keys import load_account
from kalypso.market import catalog
from kalypso.market.audit import AuditFiles, audit_market
from kalypso.market.groth16 import (
    NO_IMAGE,
    ZERO_ADDRESS,
    Groth16Market,
    create_action,
    create_resuming,
    groth16_terms,
)
from kalypso.market.types import RequestKinds
from kalypso.provers import InvalidInputs
from kalypso.provers.proof import Groth16Proof
from kalypso.provers.snarkjs import SnarkjsGroth16Prover

app = typer.Typer(
    help="List, show, create and audit proof markets.", no_args_is_help=True, cls=HelpGroup
)
console = plain_console()

CircuitName = Annotated[
    str | None,
    typer.Option(
        "--circuit",
        help="A sample circuit by name, or the folder `kalypso circuit build` wrote (./build).",
    ),
]
ZkeyPath = Annotated[Path | None, typer.Option(help="Groth16 proving key (.zkey).")]
VkeyPath = Annotated[Path | None, typer.Option(help="Verification key (snarkjs JSON).")]
WasmPath = Annotated[Path | None, typer.Option(help="Witness generator (.wasm).")]
R1csPath = Annotated[Path | None, typer.Option(help="Constraint system (.r1cs).")]
PtauPath = Annotated[Path | None, typer.Option(help="Powers-of-tau transcript (.ptau).")]


def _file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise ConfigError(f"no {what} file at {path}")
    return path


def _image(value: str | None, option: str) -> bytes:
    return NO_IMAGE if value is None else bytes32(value, f"an image id for {option}")


def prove_sample(c: Circuit, inputs: dict[str, Any]) -> Groth16Proof:
    """A proof of `inputs` with the circuit's wasm and zkey (snarkjs)."""

    async def run() -> Groth16Proof | InvalidInputs:
        prover = SnarkjsGroth16Prover(c.wasm, c.zkey)
        try:
            return await prover.prove(inputs)
        finally:
            await prover.close()

    result = asyncio.run(run())
    if isinstance(result, InvalidInputs):
        raise ConfigError(f"the sample inputs are not provable: {result}")
    return result


def resolve_circuit(
    sample_circuit: str | None,
    zkey: Path | None,
    vkey: Path | None,
    wasm: Path | None,
    r1cs: Path | None,
    schema: Path | None,
) -> Circuit:
    if sample_circuit is not None:
        if any(p is not None for p in (zkey, vkey, wasm, r1cs, schema)):
            raise ConfigError("give either --circuit or --zkey/--vkey/--wasm/--r1cs/--schema")
        return load_circuit(sample_circuit)
    given = {"--zkey": zkey, "--vkey": vkey, "--wasm": wasm, "--r1cs": r1cs, "--schema": schema}
    missing = [flag for flag, path in given.items() if path is None]
    if missing:
        raise ConfigError(f"give --circuit NAME, or all of {', '.join(missing)}")
    assert zkey and vkey and wasm and r1cs and schema
    if not CIRCUIT_NAME.fullmatch(wasm.stem):
        raise ConfigError(
            f"name the wasm after the circuit (letters, digits, _ and -): {wasm.name}"
        )
    return Circuit.from_files(
        wasm.stem,  # the artifacts' name, not the market's: generators fetch NAME.wasm
        load_schema(_file(schema, "schema")),
        wasm=_file(wasm, "wasm"),
        zkey=_file(zkey, "zkey"),
        vkey=_file(vkey, "vkey"),
        r1cs=_file(r1cs, "r1cs"),
    )


class RequestChoice(StrEnum):
    public = "public"
    private = "private"
    both = "both"


def create(
    name: Annotated[str, typer.Argument(help="The market's name, recorded in its metadata.")],
    rpc_url: RpcUrl,
    sample_circuit: CircuitName = None,
    zkey: ZkeyPath = None,
    vkey: VkeyPath = None,
    wasm: WasmPath = None,
    r1cs: R1csPath = None,
    schema: Annotated[
        Path | None,
        typer.Option(help='{"inputs": {name: "public"|"private"}, "public_signals": [...]}'),
    ] = None,
    sample_input: Annotated[
        Path | None,
        typer.Option(help="Inputs (JSON) proven for the sample proof the market checks."),
    ] = None,
    ptau: Annotated[
        Path | None,
        typer.Option(help="Transcript the zkey was made from: size-checked, hash recorded."),
    ] = None,
    penalty_base_units: Annotated[
        int, typer.Option(help="Slashing penalty in token base units.")
    ] = 100 * TOKEN_UNIT,
    input_verifier: Annotated[
        str | None, typer.Option(help="Contract that decides invalid public inputs.")
    ] = None,
    generator_image: Annotated[str | None, typer.Option(help="Generator Image id (hex32).")] = None,
    ivs_image: Annotated[
        str | None, typer.Option(help="Input Verification Image id (hex32).")
    ] = None,
    requests: Annotated[
        RequestChoice,
        typer.Option(
            help="The requests the market takes: public inputs only (a generator computes "
            "any private signal), private inputs only (opened by the --generator-image), or "
            "both. Each kind needs a way to be shown invalid: public, an --input-verifier "
            "or --ivs-image (or --all-inputs-provable); private, the --generator-image."
        ),
    ] = RequestChoice.public,
    all_inputs_provable: Annotated[
        bool,
        typer.Option(
            help="Every well-formed public input has a proof: public requests need no "
            "invalid-input path. Refused for markets that take private inputs."
        ),
    ] = False,
    deployment: DeploymentPath = None,
    keystore: Annotated[
        Path | None,
        typer.Option(
            help="Encrypted keystore of the creator (password: KALYPSO_KEYSTORE_PASSWORD, or a "
            "file named by KALYPSO_KEYSTORE_PASSWORD_FILE, else asked)."
        ),
    ] = None,
    private_key: Annotated[
        str | None,
        typer.Option(envvar="KALYPSO_PRIVATE_KEY", hidden=True, help="Creator key (env var)."),
    ] = None,
    new: New = False,
) -> None:
    """Deploy a Groth16 verifier for a circuit and create its market.

    The verification key must be the zkey's, the sample proof must verify (locally and
    on-chain); the metadata records the schema, artifact hashes and transcript hash.
    Safe to run again after a crash: a market the earlier run created is reported, and a
    verifier it deployed is reused.
    """
    c = resolve_circuit(sample_circuit, zkey, vkey, wasm, r1cs, schema)
    if sample_circuit is None and sample_input is None:
        raise ConfigError("give --sample-input FILE: inputs proven for the market's sample proof")
    if ptau is not None:
        check_fits(c.constraints, ptau_power(_file(ptau, "ptau")))
        c = replace(c, transcript_sha256=sha256_file(ptau))
    images = _image(generator_image, "--generator-image"), _image(ivs_image, "--ivs-image")
    if input_verifier is not None and not Web3.is_address(input_verifier):
        raise ConfigError(f"--input-verifier {input_verifier!r} is not an address")
    account = load_account(private_key, keystore)
    client = MarketplaceClient.connect(rpc_url, deployment)
    refuse_dev_key(account, client.deployment.chain_id, "the market creator")

    with console.status("checking the verification key against the zkey…"):
        vkey_json = c.vkey_json()
        if zkey_vkey(c.zkey) != vkey_json:
            raise ConfigError(f"{c.vkey} is not the verification key of {c.zkey}")
        if int(vkey_json.get("nPublic", -1)) != len(c.public_signals):
            raise ConfigError(
                f"the key has {vkey_json.get('nPublic')} public signals, the schema lists "
                f"{len(c.public_signals)}"
            )
    if sample_input is not None:
        inputs = read_json(sample_input, "sample input")
        if not isinstance(inputs, dict):
            raise ConfigError(f"the sample input {sample_input} is not a JSON object")
        with console.status("proving the sample inputs…"):
            sample = prove_sample(c, inputs)
    else:
        sample = c.sample_proof()
    if not sample.verify_local(vkey_json):
        raise ConfigError("the sample proof does not verify against the verification key")

    terms = groth16_terms(
        c,
        slashing_penalty=penalty_base_units,
        input_verifier=Web3.to_checksum_address(input_verifier or ZERO_ADDRESS),
        generator_image=images[0],
        input_verification_image=images[1],
        all_inputs_provable=all_inputs_provable,
        request_kinds=RequestKinds[requests.name.upper()],
    )
    signer = Signing(client.w3, account, client.deployment.chain_id)

    def run(notes: dict[str, Any], note: Callable[[str, Any], None]) -> Groth16Market:
        with console.status("deploying the verifier and creating the market…"):
            return create_resuming(client, signer, c, name, terms, sample, notes, note)

    args = create_action(name, c, terms)
    market = once(signer, "market create", args, function="create_market", new=new, run=run)
    if market is None:
        return
    console.print(styled(("market created", "bold green"), f": {name} (id {market.market_id})"))
    console.print(f"  market id   {market.market_id}")
    reused = " (deployed by an earlier run cut short)" if market.reused_verifier else ""
    console.print(f"  verifier    {market.verifier}{reused}")
    console.print(f"  constraints {c.constraints}, public signals {len(c.public_signals)}")
    if c.transcript_sha256 is None:
        console.print("  no --ptau: the transcript hash is not recorded", style="yellow")


def audit(
    market: Annotated[str, typer.Argument(help="The market to audit, by id or name.")],
    rpc_url: RpcUrl,
    sample_circuit: CircuitName = None,
    zkey: ZkeyPath = None,
    vkey: VkeyPath = None,
    wasm: WasmPath = None,
    r1cs: R1csPath = None,
    ptau: PtauPath = None,
    deployment: DeploymentPath = None,
) -> None:
    """Check a market's verifier code, and the market against local artifacts.

    Always: the verifier and input verifier are code that cannot change its answers
    (kalypso's own contracts byte for byte, or code with no storage, calls or block
    reads). With files: their hashes against its metadata, the zkey against the r1cs
    and the transcript, and the key in the verifier's code against the zkey's. Exits 1
    when any check fails.
    """
    if sample_circuit is not None:
        if any(p is not None for p in (zkey, vkey, wasm, r1cs, ptau)):
            raise ConfigError("give either --circuit or --zkey/--vkey/--wasm/--r1cs/--ptau")
        c = load_circuit(sample_circuit)
        files = AuditFiles(c.zkey, c.vkey, c.wasm, c.r1cs, c.transcript)
    else:
        files = AuditFiles(zkey, vkey, wasm, r1cs, ptau)
    for kind in ("zkey", "vkey", "wasm", "r1cs", "ptau"):
        path = getattr(files, kind)
        if path is not None:
            _file(path, kind)
    client = MarketplaceClient.connect(rpc_url, deployment)
    market_id = catalog.market_id(client, market)
    with console.status(f"auditing market {market_id}…"):
        checks = audit_market(client, market_id, files)
    table = Table(title=f"market {market_id}")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for check in checks:
        result = Text("ok", "green") if check.ok else Text("FAILED", "bold red")
        table.add_row(check.name, result, check.detail)
    console.print(table)
    failed = [c for c in checks if not c.ok]
    if failed:
        console.print(f"{len(failed)} of {len(checks)} checks FAILED", style="bold red")
        raise typer.Exit(1)
    console.print(f"all {len(checks)} checks ok", style="bold green")


app.command("list")(market_view.list_markets)
app.command("show")(market_view.show)
app.command("create")(create)
app.command("audit")(audit)
