"""The examples in the docs run: every Python block of docs/sdk.md, in order, as one script
against the devnet stack (the README's own example runs in test_sdk.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from kalypso.devnet import dev_account
from tests.integration.conftest import SdkDevnet

DOCS = Path(__file__).resolve().parents[2] / "docs"


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), re.S)


def test_the_sdk_guide_runs_from_top_to_bottom(sdk_devnet: SdkDevnet, tmp_path: Path) -> None:
    blocks = python_blocks(DOCS / "sdk.md")
    assert len(blocks) >= 10
    script = tmp_path / "sdk_guide.py"
    script.write_text("\n\n".join(blocks))
    env = {**os.environ, **sdk_devnet.env(dev_account(5))}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "50 is not a perfect square; nothing was sent" in out
    assert "2.25 KAL" in out and "INVALID_INPUTS refund 3 KAL" in out
    assert "matched at 5 KAL paid 5 KAL" in out
    assert "because p90 of" in out or "because cheapest offer" in out
