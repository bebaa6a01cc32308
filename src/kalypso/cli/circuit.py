"""`kalypso circuit build`: a creator's circuit to a market's artifacts, in their folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kalypso.cli.options import Json, print_json, read_json
from kalypso.cli.output import HelpGroup, plain_console

app = typer.Typer(
    help="Your own circom circuit: build it for a market, and the id of its Generator Image.",
    no_args_is_help=True,
    cls=HelpGroup,
)


@app.command("build")
def build(
    source: Annotated[Path, typer.Argument(help="The circuit's .circom file (its main).")],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the artifacts and manifest.json (default: build/ beside it)."
        ),
    ] = None,
    sample_input: Annotated[
        Path | None,
        typer.Option(
            help="Inputs (JSON, every signal by name) to prove once: a market checks this "
            "sample proof at creation."
        ),
    ] = None,
    ptau: Annotated[
        Path | None,
        typer.Option(
            help="Powers-of-tau transcript (default: the repository's own 2^12 one, fine for "
            "trials; for a market with money, a public ceremony's final transcript)."
        ),
    ] = None,
    beacon: Annotated[
        str | None,
        typer.Option(
            help="32 bytes of hex that finish the setup: a value nobody knew in advance, e.g. "
            "the hash of an Ethereum block you announced before it was mined (default: one "
            "derived from the circuit, which anyone can predict: devnet only)."
        ),
    ] = None,
    include: Annotated[
        list[Path] | None,
        typer.Option("--include", "-l", help="More folders for `include` (circomlib is found)."),
    ] = None,
    description: Annotated[str, typer.Option(help="What it proves, for the metadata.")] = "",
    json_out: Json = False,
) -> None:
    """Compile a circuit and run its Groth16 trusted setup, from any folder.

    Writes NAME.r1cs, NAME.wasm, NAME.zkey, NAME.vkey.json (and NAME.sample.json) and a
    manifest.json with their hashes and the input schema, read from the compiler: main's
    outputs and public inputs are the public signals, its other inputs private. Give the
    folder wherever a circuit is asked for (`--circuit build/`, `circuit = "build/"`). The
    setup adds one contribution of fresh randomness, then the beacon; anyone can check the
    result with `snarkjs zkey verify`. Prints the Generator Image id of the circuit."""
    from kalypso.circuits.build import build as build_circuit
    from kalypso.enclave.generator import GeneratorImage
    from kalypso.enclave.images import ImageKind, image_id

    err = plain_console(stderr=True)
    inputs = read_json(sample_input, "sample input") if sample_input else None
    if beacon is None:
        err.print("note: no --beacon: the setup ends with a predictable one (devnet only)")
    folder = out or source.parent / "build"
    c = build_circuit(
        source, folder, ptau=ptau, beacon=beacon, sample_input=inputs, includes=include,
        description=description, progress=lambda line: err.print(f"… {line}"),
    )  # fmt: skip
    ref = f"{folder.resolve()}#{c.name}"
    generator = "0x" + image_id(ImageKind.GENERATOR, GeneratorImage.config_for(ref)).hex()
    if json_out:
        summary = {
            "circuit": c.name, "folder": str(folder.resolve()), "constraints": c.constraints,
            "inputs": c.inputs, "public_signals": c.public_signals, "sha256": c.hashes,
            "generator_image": generator,
        }  # fmt: skip
        print_json(summary)
        return
    console = plain_console()
    console.print(f"built {c.name}: {c.constraints} constraints, in {folder.resolve()}")
    console.print(f"  public signals   {', '.join(c.public_signals)} (this order)")
    private = ", ".join(c.private_inputs) or "none"
    console.print(f"  private inputs   {private}")
    console.print(f"  Generator Image  {generator} (dev id: this code and these artifacts)")
    if c.sample is None:
        console.print("  no sample proof: give --sample-input to create a market from it")


@app.command("image-id")
def image_id_of(
    circuit: Annotated[
        str, typer.Argument(help="A sample circuit's name, or a folder `build` wrote (./build/).")
    ],
    image: Annotated[
        str, typer.Option(help="generator (proves private inputs) or ivs (judges public ones).")
    ] = "generator",
    prover_url: Annotated[
        str | None,
        typer.Option(help="generator: it proves with this template prover (`enclave generator`)."),
    ] = None,
    public_encoding: Annotated[str, typer.Option(help="fixed | verbatim, with it.")] = "fixed",
    solver: Annotated[
        str | None, typer.Option(help="ivs: the circuit's solver, PATH.py:FUNCTION.")
    ] = None,
) -> None:
    """Print the dev id of the circuit's Generator Image (or Input Verification Image):
    what `kalypso enclave generator|ivs --circuit …` with the same options registers on
    the devnet, and what `market create --generator-image|--ivs-image` authorizes. It
    measures this installed code and the artifacts (and the solver file)."""
    from kalypso.circuits import load_circuit
    from kalypso.enclave.generator import GeneratorImage, legacy_prover
    from kalypso.enclave.images import ImageKind, image_id
    from kalypso.enclave.verdicts import InputVerificationImage
    from kalypso.errors import ConfigError

    if image == "ivs":
        c = load_circuit(circuit)
        config = InputVerificationImage(c.name, c.public_signals, solver).measured_config()
        typer.echo("0x" + image_id(ImageKind.INPUT_VERIFICATION, config).hex())
        return
    if image != "generator" or solver is not None:
        raise ConfigError("--image is generator or ivs; --solver goes with ivs")
    config = GeneratorImage.config_for(circuit, legacy_prover(prover_url, public_encoding))
    typer.echo("0x" + image_id(ImageKind.GENERATOR, config).hex())
