"""`kalypso market create|audit`: put a Groth16 circuit on the marketplace, and check a
market's verifier code and its artifacts (DESIGN §8, market creators)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from web3 import Web3

from kalypso.circuits import Circuit, circuit, load_schema, sample_ptau, sha256_file
from kalypso.circuits.setup import check_fits, ptau_power, zkey_vkey
from kalypso.cli.options import DEFAULT_RPC, DeploymentPath, Json, RpcUrl, client, print_json
from kalypso.contracts.client import MarketplaceClient
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.devnet import refuse_dev_key
from kalypso.errors import ConfigError
from kalypso.keys import load_account
from kalypso.market.audit import AuditFiles, audit_market
from kalypso.market.groth16 import NO_IMAGE, ZERO_ADDRESS, create_groth16_market
from kalypso.market.types import RequestKinds
from kalypso.provers import InvalidInputs
from kalypso.provers.proof import Groth16Proof
from kalypso.provers.snarkjs import SnarkjsGroth16Prover
from kalypso.sdk import Kalypso, Market, MarketStats

app = typer.Typer(help="List, show, create and audit proof markets.", no_args_is_help=True)
console = Console(soft_wrap=True)

CircuitName = Annotated[
    str | None, typer.Option("--circuit", help="A sample circuit (circuits/build) by name.")
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
    if value is None:
        return NO_IMAGE
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"{option} must be 32 bytes of hex (0x + 64 digits)")
    return raw


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(_file(path, what).read_text())
    except ValueError as exc:
        raise ConfigError(f"the {what} {path} is not valid JSON: {exc}") from None


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
    name: str,
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
        return circuit(sample_circuit)
    given = {"--zkey": zkey, "--vkey": vkey, "--wasm": wasm, "--r1cs": r1cs, "--schema": schema}
    missing = [flag for flag, path in given.items() if path is None]
    if missing:
        raise ConfigError(f"give --circuit NAME, or all of {', '.join(missing)}")
    assert zkey and vkey and wasm and r1cs and schema
    return Circuit.from_files(
        name,
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
) -> None:
    """Deploy a Groth16 verifier for a circuit and create its market.

    The verification key must be the zkey's, the sample proof must verify (locally and
    on-chain); the metadata records the schema, artifact hashes and transcript hash.
    """
    c = resolve_circuit(name, sample_circuit, zkey, vkey, wasm, r1cs, schema)
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
        inputs = _read_json(sample_input, "sample input")
        if not isinstance(inputs, dict):
            raise ConfigError(f"the sample input {sample_input} is not a JSON object")
        with console.status("proving the sample inputs…"):
            sample = prove_sample(c, inputs)
    else:
        sample = c.sample_proof()
    if not sample.verify_local(vkey_json):
        raise ConfigError("the sample proof does not verify against the verification key")

    with console.status("deploying the verifier and creating the market…"):
        market = create_groth16_market(
            client,
            account,
            c,
            name=name,
            slashing_penalty=penalty_base_units,
            input_verifier=Web3.to_checksum_address(input_verifier or ZERO_ADDRESS),
            generator_image=images[0],
            input_verification_image=images[1],
            all_inputs_provable=all_inputs_provable,
            request_kinds=RequestKinds[requests.name.upper()],
            sample=sample,
        )
    console.print(f"[bold green]market created[/]: {name} (id {market.market_id})")
    console.print(f"  market id   {market.market_id}")
    console.print(f"  verifier    {market.verifier}")
    console.print(f"  constraints {c.constraints}, public signals {len(c.public_signals)}")
    if c.transcript_sha256 is None:
        console.print("  [yellow]no --ptau: the transcript hash is not recorded[/]")


def audit(
    market_id: Annotated[int, typer.Argument(help="The market to audit.")],
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
        c = circuit(sample_circuit)
        files = AuditFiles(c.zkey, c.vkey, c.wasm, c.r1cs, sample_ptau())
    else:
        files = AuditFiles(zkey, vkey, wasm, r1cs, ptau)
    for kind in ("zkey", "vkey", "wasm", "r1cs", "ptau"):
        path = getattr(files, kind)
        if path is not None:
            _file(path, kind)
    client = MarketplaceClient.connect(rpc_url, deployment)
    with console.status(f"auditing market {market_id}…"):
        checks = audit_market(client, market_id, files)
    table = Table(title=f"market {market_id}")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for check in checks:
        result = "[green]ok[/]" if check.ok else "[bold red]FAILED[/]"
        table.add_row(check.name, result, check.detail)
    console.print(table)
    failed = [c for c in checks if not c.ok]
    if failed:
        console.print(f"[bold red]{len(failed)} of {len(checks)} checks FAILED[/]")
        raise typer.Exit(1)
    console.print(f"[bold green]all {len(checks)} checks ok[/]")


def list_markets(
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    as_json: Json = False,
) -> None:
    """Every market, with its live statistics."""
    with client(rpc_url, deployment, None, None) as k:
        with console.status("reading the markets…"):
            rows = [(m, k.stats(m)) for m in k.markets()]
        if as_json:
            print_json([_market_json(k, m, s) for m, s in rows])
            return
        table = Table(title="markets")
        for column in ("id", "name", "proofs", "private", "gens", "open", "p50", "time"):
            numeric = column in ("id", "gens", "open", "p50", "time")
            table.add_column(column, justify="right" if numeric else "left", no_wrap=True)
        for m, s in rows:
            table.add_row(
                str(m.id),
                escape(m.name) + (f" [yellow]({escape(m.name_note)})[/]" if m.name_note else ""),
                m.proof_system + ("*" if m.proof_verification_image != NO_IMAGE else ""),
                ", ".join(m.private_inputs) or "-",
                str(s.active_generators),
                str(s.open_requests),
                k.show(s.price_p50) if s.price_p50 is not None else "-",
                f"{s.typical_proof_time} s" if s.typical_proof_time is not None else "-",
            )
        console.print(table)
        console.print(
            "gens: live generator offers; p50: median recent price; time: typical "
            "proof time; *: verified by a Proof Verification Image"
        )
        if any(m.name_note for m, _ in rows):
            console.print(
                "a contested name addresses the market the deployment file records, else "
                "none: address such a market by id"
            )


def show(
    market: Annotated[str, typer.Argument(help="The market, by name or id.")],
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    as_json: Json = False,
) -> None:
    """One market: its terms, its circuit's inputs and its statistics."""
    with client(rpc_url, deployment, None, None) as k:
        m = k.market(market)
        s = k.stats(m)
        data = _market_json(k, m, s)
        if as_json:
            print_json(data)
            return
        console.print(f"[bold]{escape(m.name)}[/] (market {m.id})")
        for key in (
            "verifier",
            "proof_system",
            "slashing_penalty_units",
            "input_verifier",
            "generator_image",
            "input_verification_image",
            "proof_verification_image",
        ):
            if data[key] is not None:
                console.print(f"  {key.removesuffix('_units').replace('_', ' '):<26} {data[key]}")
        console.print(f"  requests                   {data['requests']}")
        console.print(f"  inputs                     {data['inputs'] or 'raw public signals'}")
        console.print(f"  public signals             {', '.join(m.public_signals) or '—'}")
        console.print(f"  open requests              {s.open_requests}")
        for offer in s.offers:
            console.print(
                f"  offer                      {offer.generator}: "
                f"{k.show(offer.price)} within {offer.proof_time} s"
            )
        for p in ("price_p50", "price_p90"):
            value = getattr(s, p)
            console.print(
                f"  {p.replace('_', ' '):<26} {k.show(value) if value is not None else '—'}"
            )
        typical = s.typical_proof_time
        console.print(
            f"  typical proof time         {f'{typical} s' if typical is not None else '—'}"
        )
        console.print("[bold]at stake[/]")
        for line in data["at_stake"]:
            console.print(f"  - {line}", highlight=False)


def _market_json(k: Kalypso, m: Market, s: MarketStats) -> dict[str, Any]:
    def image(value: bytes) -> str | None:
        return None if value == NO_IMAGE else "0x" + value.hex()

    return {
        "id": m.id,
        "name": m.name,
        "name_note": m.name_note,
        "verifier": m.verifier,
        "proof_system": m.proof_system,
        "slashing_penalty": m.slashing_penalty,
        "slashing_penalty_units": k.show(m.slashing_penalty),
        "input_verifier": m.input_verifier,
        "generator_image": image(m.generator_image),
        "input_verification_image": image(m.input_verification_image),
        "proof_verification_image": image(m.proof_verification_image),
        "requests": m.request_kinds.name.lower(),
        "inputs": m.inputs,
        "public_signals": m.public_signals,
        "circuit": m.circuit,
        "at_stake": m.stakes(k.show),
        "stats": {
            "open_requests": s.open_requests,
            "active_generators": s.active_generators,
            "offers": [
                {"generator": o.generator, "price": o.price, "proof_time": o.proof_time}
                for o in s.offers
            ],
            "price_p50": s.price_p50,
            "price_p90": s.price_p90,
            "recent_prices": len(s.prices),
            "typical_proof_time": s.typical_proof_time,
            "block_time": s.block_time,
        },
    }


app.command("list")(list_markets)
app.command("show")(show)
app.command("create")(create)
app.command("audit")(audit)
