"""`kalypso attest verify`: a Nitro document's fields, or one line saying why not."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from kalypso.cli import app
from kalypso.enclave.images import nitro_image_id
from kalypso.testing.nitro_ca import NitroTestCA, pcrs_of

runner = CliRunner()
REAL = Path(__file__).resolve().parents[1] / "fixtures" / "nitro" / "marlin_oyster_2024-08-07.bin"
#: keccak256(b"kalypso.nitro-image.v1" ‖ PCR0 ‖ PCR1 ‖ PCR2) of the real document
REAL_IMAGE_ID = "0x08bf860dc82abdd274e8ac518f3d73e97818ebfae81fd65d771bfcbc098d7772"


def test_the_real_document_verifies_as_of_its_time_with_its_image_id() -> None:
    shown = runner.invoke(app, ["attest", "verify", str(REAL), "--at-document-time"])
    assert shown.exit_code == 0, shown.output
    assert "verified: chains to the AWS Nitro root, as of 2024-08-07T06:38:09.640Z" in shown.output
    assert REAL_IMAGE_ID in shown.output and "user data   none" in shown.output
    out = runner.invoke(app, ["attest", "verify", str(REAL), "--at", "1723012689640", "--json"])
    fields = json.loads(out.output)
    assert fields["image_id"] == REAL_IMAGE_ID and len(fields["pcrs"]) == 16
    assert fields["public_key"].startswith("0x57febcf9") and fields["nonce"] is None


def test_checked_now_the_real_document_fails_in_one_line_with_a_hint() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "kalypso.cli", "attest", "verify", str(REAL)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert run.stderr.startswith("error: [K-ENC-001]") and "--at-document-time" in run.stderr


def test_a_test_root_is_trusted_only_when_named_and_with_a_warning(tmp_path: Path) -> None:
    ca = NitroTestCA()
    document = tmp_path / "doc.bin"
    document.write_bytes(ca.issue(pcrs_of(9), public_key=b"k" * 64, user_data=b"u"))
    refused = runner.invoke(app, ["attest", "verify", str(document)])
    assert refused.exit_code != 0 and "trusted root" in str(refused.exception)
    root = tmp_path / "root.pem"
    root.write_bytes(ca.root.public_bytes(serialization.Encoding.PEM))
    shown = runner.invoke(
        app, ["attest", "verify", str(document), "--test-root", str(root), "--json"]
    )
    assert shown.exit_code == 0, shown.output
    assert "WARNING: trusting the test root" in shown.stderr
    fields = json.loads(shown.stdout)
    assert fields["root"] == "test" and fields["user_data"] == "0x75"
    assert fields["image_id"] == "0x" + nitro_image_id(pcrs_of(9)).hex()
    assert fields["checked_at_ms"] <= int(time.time() * 1000)
