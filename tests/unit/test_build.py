"""The contracts build, fit the EIP-170 limit, and every revert reason maps to a typed error."""

import re
from itertools import pairwise

import pytest

from kalypso import errors
from kalypso.contracts import CONTRACTS, MAX_CODE_SIZE, artifact, sources_dir

REASON = re.compile(r'"((?:escrow|config|markets|requests|registry|groth16|enclaves|mock): [^"]+)"')


@pytest.mark.parametrize("name", list(CONTRACTS))
def test_contract_fits_the_code_size_limit(name: str) -> None:
    assert 0 < artifact(name).runtime_size <= MAX_CODE_SIZE


@pytest.mark.parametrize("name", list(CONTRACTS))
def test_the_runtime_layout_comes_with_the_build(name: str) -> None:
    """Instructions, then data sections, in the runtime code; immutables after it, laid
    out one after another as `vyper -f layout` says."""
    compiled = artifact(name)
    assert len(compiled.runtime) == compiled.runtime_size
    assert 0 < compiled.code_size <= compiled.runtime_size
    spans = sorted(compiled.immutables.values())
    assert sum(length for _, length in spans) == compiled.immutables_size
    assert all(a + n == b for (a, n), (b, _) in pairwise(spans))


def contract_reasons() -> set[str]:
    folder = sources_dir()
    assert folder is not None
    return {m for path in folder.rglob("*.vy") for m in REASON.findall(path.read_text())}


def test_every_revert_reason_maps_to_a_typed_error() -> None:
    reasons = contract_reasons()
    assert len(reasons) > 50
    assert reasons <= set(errors.REASONS), sorted(reasons - set(errors.REASONS))


def test_no_mapping_for_a_reason_that_no_longer_exists() -> None:
    stale = set(errors.REASONS) - contract_reasons()
    assert {r for r in stale if not r.startswith(("ownable", "erc20"))} == set()  # snekmate's


def test_error_from_reason_gives_the_class_and_a_hint() -> None:
    err = errors.error_from_reason("requests: not the requester")
    assert isinstance(err, errors.UnauthorizedError) and isinstance(err, PermissionError)
    assert err.reason == "requests: not the requester"
    assert "only the requester" in str(err) and str(err).startswith("[K-CON-001]")
    unknown = errors.error_from_reason("something else")
    assert type(unknown) is errors.ContractError
