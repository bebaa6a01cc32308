"""The contracts build, fit the EIP-170 limit, and every revert reason maps to a typed error."""

import re
import sys
from itertools import pairwise
from pathlib import Path

import pytest
from vyper.compiler.input_bundle import FilesystemInputBundle
from vyper.compiler.phases import CompilerData

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


#: snekmate's ownership functions: they make no external call, so nothing can re-enter
#: through them, and their module is not ours to give the pragma.
UNGUARDED_BY_DESIGN = {"transfer_ownership", "accept_ownership"}


@pytest.mark.parametrize(
    "name", ["ProofMarketplace", "MarketRegistry", "GeneratorRegistry", "EnclaveRegistry"]
)
def test_every_state_changing_function_is_non_reentrant(name: str) -> None:
    """Read from the compiler's own function types: a contract's `pragma nonreentrancy`
    does not reach its modules' functions (issue 17), so each module must carry it."""
    folder = sources_dir()
    assert folder is not None, "the Vyper sources are not here"
    bundle = FilesystemInputBundle([folder.parent, *map(Path, sys.path)])
    source = folder / CONTRACTS[name]
    module = CompilerData(bundle.load_file(source), bundle).global_ctx
    unguarded = {
        f.name
        for f in module.exposed_functions
        if f.mutability.name in ("NONPAYABLE", "PAYABLE") and not f.nonreentrant
    }
    assert unguarded <= UNGUARDED_BY_DESIGN, sorted(unguarded - UNGUARDED_BY_DESIGN)
