"""`make rehearsal`'s short version: the whole operator path behind the hosted-provider
simulator, from keystores to a slashed generator and a clean shutdown, in about 85 s.

Repeated runs found four lag races, each now fixed; the fourth (gas priced by a node a
block behind), and two more of its kind found since, have their own tests in
tests/integration/test_lagging_nodes.py."""

from __future__ import annotations

from pathlib import Path

from kalypso.testing.rehearsal import Rehearsal
from kalypso.testing.rehearsal_plan import SHORT


def test_the_short_rehearsal_passes(tmp_path: Path) -> None:
    report = Rehearsal(tmp_path, SHORT, say=lambda _: None).run()
    assert report.verdict() == "pass", report.render()
    assert report.fulfilled == SHORT.requests and report.slashed == 1 and report.stuck == 0
    assert report.rpc["operator"]["calls"] > 0 and report.rpc["generator-a"]["calls"] > 0
