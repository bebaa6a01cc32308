"""`kalypso attest`: AWS Nitro attestation documents, and the verifier service that
turns them into the registry's `Enclave` statements."""

from __future__ import annotations

import datetime
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509

from kalypso.cli.options import Json, print_json, read_json
from kalypso.cli.output import HelpGroup, plain_console, styled
from kalypso.enclave.images import measurements_pcrs, nitro_image_id
from kalypso.enclave.nitro import NitroDocument, document_time, verify
from kalypso.enclave.verifier import MAX_DOCUMENT_AGE_MS
from kalypso.errors import AttestationError, ConfigError

app = typer.Typer(help="AWS Nitro attestation documents.", cls=HelpGroup)


@app.command("verify")
def verify_file(
    path: Annotated[
        Path, typer.Argument(help="The document: raw COSE_Sign1 bytes, as the NSM gives.")
    ],
    at_document_time: Annotated[
        bool,
        typer.Option(
            "--at-document-time",
            help="Check the certificates as of the document's own timestamp (for stored "
            "documents: their leaf certificate lives three hours).",
        ),
    ] = False,
    at: Annotated[
        int | None,
        typer.Option(help="Check as of this time, milliseconds since the UNIX epoch."),
    ] = None,
    allow_debug: Annotated[
        bool,
        typer.Option(help="Accept an enclave in debug mode (PCR0-2 zero: its host reads it)."),
    ] = False,
    test_root: Annotated[
        Path | None,
        typer.Option(
            help="Trust this PEM root instead of AWS's (tests only: such a document proves "
            "nothing about AWS hardware)."
        ),
    ] = None,
    json_out: Json = False,
) -> None:
    """Verify a Nitro attestation document: its certificate chain to the AWS Nitro
    Enclaves Root-G1 (built in, pinned by hash), its ES384 signature and its fields.
    Prints what it attests (PCRs, the Kalypso image id, public key, user data, nonce);
    exits 1 with the reason when it does not verify. Checks as of now unless told."""
    if at_document_time and at is not None:
        raise ConfigError("give --at-document-time or --at, not both")
    try:
        document = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    root = _test_root(test_root) if test_root else None
    at_ms = document_time(document) if at_document_time else at
    at_ms = int(time.time() * 1000) if at_ms is None else at_ms
    try:
        doc = verify(document, at_ms=at_ms, root=root, allow_debug=allow_debug)
    except AttestationError as exc:
        if "is valid from" in exc.args[0] and at is None and not at_document_time:
            raise AttestationError(
                f"{exc.args[0]} (a stored document? --at-document-time checks it as of "
                "its own time)"
            ) from None
        raise
    image = _image_id(doc)
    if json_out:
        print_json({
            "verified": True, "root": "test" if root else "aws", "checked_at_ms": at_ms,
            "module_id": doc.module_id, "timestamp_ms": doc.timestamp_ms, "digest": doc.digest,
            "image_id": image, "debug": doc.debug, "pcrs": {str(i): v for i, v in doc.pcrs.items()},
            "public_key": doc.public_key, "user_data": doc.user_data, "nonce": doc.nonce,
        })  # fmt: skip
        return
    _show(doc, image, at_ms, "a test root" if root else "the AWS Nitro root")


def _show(doc: NitroDocument, image: bytes | None, at_ms: int, root: str) -> None:
    console = plain_console()
    console.print(styled(("verified", "bold green"), f": chains to {root}, as of {_utc(at_ms)}"))
    console.print(f"  module id   {doc.module_id}")
    console.print(f"  timestamp   {doc.timestamp_ms} ({_utc(doc.timestamp_ms)})")
    if image is not None:
        console.print(f"  image id    0x{image.hex()} (keccak256 of the domain and PCR0-2)")
    for index in (0, 1, 2):
        if index in doc.pcrs:
            console.print(f"  {f'PCR{index}':<11} {doc.pcrs[index].hex()}")
    if more := len(doc.pcrs) - sum(i in doc.pcrs for i in (0, 1, 2)):
        console.print(f"  ({more} more PCRs: --json prints them all)")
    for name, value in (("public key", doc.public_key), ("user data", doc.user_data),
                        ("nonce", doc.nonce)):  # fmt: skip
        shown = "none" if value is None else f"0x{value.hex()} ({len(value)} bytes)"
        console.print(f"  {name:<11} {shown}")
    if doc.debug:
        console.print("  DEBUG MODE: the enclave's host can read its memory", style="bold red")


def _image_id(doc: NitroDocument) -> bytes | None:
    try:
        return nitro_image_id(doc.pcrs)
    except AttestationError:  # no 48-byte PCR0-2: not an image Kalypso can authorize
        return None


def _test_root(path: Path) -> x509.Certificate:
    try:
        root = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the test root {path}: {exc}") from None
    plain_console(stderr=True).print(
        f"WARNING: trusting the test root {path}, not AWS's: a document it accepts proves "
        "nothing about AWS hardware",
        style="bold red",
    )
    return root


def _utc(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@app.command("image-id")
def image_id_of(
    path: Annotated[
        Path,
        typer.Argument(help="The JSON `nitro-cli build-enclave` or `describe-eif` printed."),
    ],
    json_out: Json = False,
) -> None:
    """The Kalypso image id of an enclave image file, from its measurements: keccak256 of
    a domain prefix and PCR0-2 (PCR8, the signing certificate, is left out: anyone who
    rebuilds the image gets the same id). Markets authorize this id."""
    output = read_json(path, "nitro-cli output")
    if not isinstance(output, dict):
        raise ConfigError(f"{path} is not a JSON object: give what nitro-cli printed")
    pcrs = measurements_pcrs(output)
    image = "0x" + nitro_image_id(pcrs).hex()
    if json_out:
        print_json({"image_id": image, **{f"PCR{i}": pcr.hex() for i, pcr in pcrs.items()}})
        return
    for i, pcr in pcrs.items():
        print(f"PCR{i}      {pcr.hex()}")
    print(f"image id  {image}")


@app.command("serve")
def serve(
    deployment: Annotated[
        Path,
        typer.Option(envvar="KALYPSO_DEPLOYMENT", help="The deployment it signs for."),
    ],
    keystore: Annotated[
        Path | None,
        typer.Option(
            help="The authority's keystore: its address is the deployment's attestation "
            "authority (password: KALYPSO_KEYSTORE_PASSWORD or KALYPSO_KEYSTORE_PASSWORD_FILE)."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 7400,
    max_age: Annotated[
        int, typer.Option(help="Seconds a document may be old when it arrives.")
    ] = MAX_DOCUMENT_AGE_MS // 1000,
    allow_debug: Annotated[
        bool, typer.Option(help="Attest enclaves in debug mode (their host reads them).")
    ] = False,
    test_root: Annotated[
        Path | None,
        typer.Option(help="Trust this PEM root instead of AWS's (devnet tests only)."),
    ] = None,
    allow_test_root_on: Annotated[
        int | None,
        typer.Option(help="Accept --test-root on this chain id too (a rehearsal's chain)."),
    ] = None,
) -> None:
    """Serve the attestation verifier: enclaves send Nitro documents (POST /nonce, then
    POST /attest); each that verifies against the AWS root, now, with a nonce from
    here, gets the EIP-712 Enclave statement signed by this authority's key, its image
    id taken from PCR0-2. Run it on a machine you trust, with a key kept for good: the
    registry knows the authority by its address."""
    import uvicorn

    from kalypso.deployment import DEVNET_CHAIN_ID, Deployment
    from kalypso.enclave.statements import Domain
    from kalypso.enclave.verifier import AttestationVerifier
    from kalypso.enclave.verifier_api import verifier_app
    from kalypso.keys import load_account

    record = Deployment.load(deployment)
    if record.enclave_registry is None:
        raise ConfigError(f"{deployment} has no enclave registry: redeploy with this kalypso")
    root = None
    if test_root is not None:
        if record.chain_id not in (DEVNET_CHAIN_ID, allow_test_root_on):
            raise ConfigError(
                f"a test root attests nothing on chain {record.chain_id}: only the AWS root "
                f"(on a test chain of your own, --allow-test-root-on {record.chain_id})"
            )
        root = _test_root(test_root)
    account = load_account(os.environ.get("KALYPSO_PRIVATE_KEY"), keystore)
    verifier = AttestationVerifier(
        bytes(account.key),
        Domain(record.chain_id, record.enclave_registry),
        root=root,
        allow_debug=allow_debug,
        max_age_ms=max_age * 1000,
    )
    plain_console().print(
        f"attestation verifier: authority {verifier.address} for chain {record.chain_id} "
        f"(registry {record.enclave_registry}), root {'TEST' if root else 'AWS (pinned)'}, "
        f"on http://{host}:{port}"
    )
    uvicorn.run(verifier_app(verifier), host=host, port=port, log_level="warning")
