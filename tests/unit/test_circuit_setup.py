"""The trusted-setup readers behind `kalypso market create --ptau`."""

from __future__ import annotations

from pathlib import Path

import pytest

from kalypso.circuits import build_dir, manifest
from kalypso.circuits.setup import check_fits, ptau_power, r1cs_constraints
from kalypso.errors import ConfigError

PTAU = build_dir() / "pot12_final.ptau"


def test_the_ptau_power_is_read_from_its_header() -> None:
    assert ptau_power(PTAU) == 12 == manifest()["ptau"]["power"]


def test_constraints_up_to_two_to_the_power_fit() -> None:
    power = ptau_power(PTAU)
    check_fits(4096, power)
    with pytest.raises(ConfigError, match="4097 constraints"):
        check_fits(4097, power)


def test_r1cs_constraints_match_the_manifest() -> None:
    for name, entry in manifest()["circuits"].items():
        assert r1cs_constraints(build_dir() / f"{name}.r1cs") == entry["constraints"]


def test_other_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a ptau file"):
        ptau_power(build_dir() / "square_root.r1cs")
    with pytest.raises(ConfigError, match="cannot read"):
        ptau_power(tmp_path / "missing.ptau")
    truncated = tmp_path / "short.ptau"
    truncated.write_bytes(PTAU.read_bytes()[:20])
    with pytest.raises(ConfigError, match="truncated"):
        ptau_power(truncated)
