"""SDK inputs: named inputs to public signals and a secret, with the snarkjs preflight."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalypso.circuits import circuit
from kalypso.errors import ConfigError
from kalypso.market import BN254_SCALAR_FIELD, encode_signals
from kalypso.provers.snarkjs import SnarkjsWorker
from kalypso.sdk.inputs import (
    PreparedInputs,
    UnprovableInputsError,
    field_element,
    given_signals,
    named,
    prepare,
    split,
    witness_generator,
    witness_inputs,
)
from kalypso.sdk.local import _market

POSEIDON = _market(0, "poseidon_preimage")
SQUARE = _market(1, "square_root")
#: a market that records no schema: it takes raw signals
RAW = replace(SQUARE, inputs={}, public_signals=[], circuit=None, metadata={})
CHAIN_ID = 31337


@pytest.fixture(scope="module")
async def worker() -> AsyncIterator[SnarkjsWorker]:
    w = SnarkjsWorker()
    try:
        yield w
    finally:
        await w.close()


# ---- field elements


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (42, 42),
        ("42", 42),
        (" 42 ", 42),
        ("0x2a", 42),
        ("0X2A", 42),
        (BN254_SCALAR_FIELD - 1, BN254_SCALAR_FIELD - 1),
        (hex(BN254_SCALAR_FIELD - 1), BN254_SCALAR_FIELD - 1),
        ([1, "0x2", ["3"]], [1, 2, [3]]),
        ((4, "5"), [4, 5]),
        ([], []),
    ],
)
def test_field_element_reads_numbers(value: Any, expected: Any) -> None:
    assert field_element("x", value) == expected


@pytest.mark.parametrize("value", [True, False, [1, True]])
def test_field_element_refuses_booleans(value: Any) -> None:
    with pytest.raises(ConfigError, match="input 'x' is a boolean"):
        field_element("x", value)


@pytest.mark.parametrize(
    "value", [BN254_SCALAR_FIELD, -1, "-1", 2**256, hex(BN254_SCALAR_FIELD), [0, -5]]
)
def test_field_element_refuses_what_is_outside_the_field(value: Any) -> None:
    with pytest.raises(ConfigError, match="not in the BN254 scalar field"):
        field_element("x", value)


@pytest.mark.parametrize("value", ["abc", "", "1.5", 1.5, 2.0, None, {"a": 1}, "0xg", "4 2"])
def test_field_element_refuses_junk(value: Any) -> None:
    with pytest.raises(ConfigError, match="is not a number"):
        field_element("x", value)


def test_field_element_reads_decimal_text_with_leading_zeros() -> None:
    assert field_element("x", "042") == 42


@given(st.text())
def test_field_element_raises_only_config_error_on_any_text(text: str) -> None:
    try:
        number = field_element("x", text)
    except ConfigError:
        return
    assert isinstance(number, int) and 0 <= number < BN254_SCALAR_FIELD


@given(st.integers(min_value=0, max_value=BN254_SCALAR_FIELD - 1))
def test_field_element_round_trips_decimal_and_hex(number: int) -> None:
    assert field_element("x", str(number)) == number
    assert field_element("x", hex(number)) == number


# ---- names


def test_named_checks_and_converts() -> None:
    assert named(POSEIDON, {"preimage": "0x2a"}) == {"preimage": 42}
    # a public signal may be given by name (the preflight checks it)
    assert named(POSEIDON, {"preimage": 1, "hash": "7"}) == {"preimage": 1, "hash": 7}
    assert named(SQUARE, {"square": 49, "max_root": 10}) == {"square": 49, "max_root": 10}


def test_named_refuses_unknown_inputs_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        named(POSEIDON, {"preimage": 1, "bogus": 2, "also": 3})
    message = str(info.value)
    assert "market poseidon_preimage has no input 'also', 'bogus'" in message
    assert "its inputs are hash, preimage" in message


@pytest.mark.parametrize("inputs", [[49, 10], (49, 10), b"\x00" * 32])
def test_named_refuses_what_is_not_a_dict(inputs: Any) -> None:
    with pytest.raises(ConfigError, match=r"names its inputs \(square, max_root, root\)"):
        named(SQUARE, inputs)


def test_named_refuses_bad_values() -> None:
    with pytest.raises(ConfigError, match="input 'preimage'"):
        named(POSEIDON, {"preimage": "seven"})


# ---- witness inputs


def test_witness_inputs_solves_the_root() -> None:
    assert witness_inputs(SQUARE, {"square": 49, "max_root": 10}) == {
        "square": 49,
        "max_root": 10,
        "root": 7,
    }
    # a given root is left as it is
    given_root = {"square": 49, "max_root": 10, "root": 3}
    assert witness_inputs(SQUARE, given_root) == given_root


def test_witness_inputs_leaves_out_public_signal_names() -> None:
    assert witness_inputs(POSEIDON, {"preimage": 1, "hash": 5}) == {"preimage": 1}


@pytest.mark.parametrize(
    ("inputs", "reason"),
    [
        ({"square": 50, "max_root": 10}, "50 is not a perfect square"),
        ({"square": 121, "max_root": 10}, "above max_root 10"),
        ({"square": 4, "max_root": 2**16}, "not below 2\\^16"),
    ],
)
def test_witness_inputs_refuses_an_unprovable_square(inputs: dict[str, int], reason: str) -> None:
    with pytest.raises(UnprovableInputsError, match=f"no proof exists.*{reason}"):
        witness_inputs(SQUARE, inputs)


@pytest.mark.parametrize(
    ("market", "inputs", "missing"),
    [
        (POSEIDON, {}, "preimage"),
        (POSEIDON, {"hash": 1}, "preimage"),
        # a public input is never solved for
        (SQUARE, {"square": 49}, "max_root, root"),
    ],
)
def test_witness_inputs_missing_input(market: Any, inputs: dict[str, int], missing: str) -> None:
    with pytest.raises(ConfigError, match=f"needs input\\(s\\) {missing}"):
        witness_inputs(market, inputs)


# ---- without a preflight


def test_given_signals_in_snarkjs_order() -> None:
    assert given_signals(SQUARE, {"max_root": 10, "square": 49}) == [49, 10]
    assert given_signals(POSEIDON, {"preimage": 1, "hash": 5}) == [5]


def test_given_signals_needs_every_public_signal() -> None:
    with pytest.raises(ConfigError, match=r"without a preflight .* missing hash"):
        given_signals(POSEIDON, {"preimage": 1})


async def test_prepare_without_a_worker_uses_the_given_signals() -> None:
    prepared = await prepare(SQUARE, {"square": 49, "max_root": 10}, worker=None)
    assert prepared == PreparedInputs(encode_signals([49, 10]), (49, 10), None)
    with pytest.raises(ConfigError, match="missing hash"):
        await prepare(POSEIDON, {"preimage": 42}, worker=None)


async def test_prepare_a_market_without_schema_takes_raw_signals() -> None:
    assert await prepare(RAW, [1, "0x2"], worker=None) == PreparedInputs(
        encode_signals([1, 2]), (1, 2), None
    )
    data = encode_signals([3, 4])
    assert await prepare(RAW, data, worker=None) == PreparedInputs(data, (3, 4), None)
    with pytest.raises(ConfigError, match="records no input schema"):
        await prepare(RAW, {"a": 1}, worker=None)


# ---- the secret


def test_split_keeps_only_the_given_private_inputs() -> None:
    prepared = split(POSEIDON, {"preimage": 42, "hash": 9}, [9])
    assert prepared.secret == {"preimage": 42}
    assert prepared.public_signals == (9,)
    assert prepared.public_inputs == encode_signals([9])
    assert prepared.secret_bytes() == b'{"preimage":42}'
    # a root left to the solver is not a secret: the request is public
    assert split(SQUARE, {"square": 49, "max_root": 10}, [49, 10]).secret is None


def test_secret_bytes_are_canonical_json() -> None:
    market = replace(
        RAW,
        inputs={"zeta": "private", "alpha": "private", "pub": "public"},
        public_signals=["pub"],
    )
    prepared = split(market, {"zeta": 2, "pub": 3, "alpha": [1, 0]}, [3])
    assert prepared.secret == {"zeta": 2, "alpha": [1, 0]}
    assert prepared.secret_bytes() == b'{"alpha":[1,0],"zeta":2}'
    assert json.loads(prepared.secret_bytes() or b"") == prepared.secret
    assert PreparedInputs(b"", (), None).secret_bytes() is None


# ---- the preflight


async def test_prepare_poseidon_computes_the_hash(worker: SnarkjsWorker) -> None:
    wasm = circuit("poseidon_preimage").wasm
    prepared = await prepare(POSEIDON, {"preimage": 42}, worker=worker, wasm=wasm)
    expected = await worker.public_signals(wasm, {"preimage": 42}, 1)
    assert isinstance(expected, list) and len(expected) == 1
    assert prepared.public_signals == tuple(expected)
    assert prepared.public_inputs == encode_signals(expected)
    assert prepared.secret == {"preimage": 42}
    # giving the right hash as well is fine
    again = await prepare(POSEIDON, {"preimage": 42, "hash": expected[0]}, worker=worker, wasm=wasm)
    assert again.public_signals == prepared.public_signals


async def test_prepare_square_root_solves_and_computes(worker: SnarkjsWorker) -> None:
    prepared = await prepare(
        SQUARE, {"square": 49, "max_root": 10}, worker=worker, wasm=circuit("square_root").wasm
    )
    assert prepared == PreparedInputs(encode_signals([49, 10]), (49, 10), None)


async def test_prepare_refuses_a_given_signal_the_circuit_disagrees_with(
    worker: SnarkjsWorker,
) -> None:
    with pytest.raises(UnprovableInputsError, match=r"output hash = .*not the 1 you gave"):
        await prepare(
            POSEIDON,
            {"preimage": 42, "hash": 1},
            worker=worker,
            wasm=circuit("poseidon_preimage").wasm,
        )


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        # the witness fails: 6 * 6 != 49
        ({"square": 49, "max_root": 10, "root": 6}, "the circuit has no witness"),
        # the solver finds no root
        ({"square": 50, "max_root": 10}, "no proof exists"),
    ],
)
async def test_prepare_refuses_unprovable_inputs(
    worker: SnarkjsWorker, inputs: dict[str, int], match: str
) -> None:
    with pytest.raises(UnprovableInputsError, match=match):
        await prepare(SQUARE, inputs, worker=worker, wasm=circuit("square_root").wasm)


# ---- the witness generator


def test_witness_generator_finds_the_sample_wasm() -> None:
    wasm = circuit("square_root").wasm
    assert witness_generator(SQUARE, CHAIN_ID) == wasm
    assert witness_generator(SQUARE, CHAIN_ID, wasm) == wasm
    assert witness_generator(SQUARE, CHAIN_ID, str(wasm)) == wasm  # a str path too


def test_witness_generator_refuses_a_tampered_copy(tmp_path: Path) -> None:
    copy = tmp_path / "square_root.wasm"
    copy.write_bytes(circuit("square_root").wasm.read_bytes() + b"\x00")
    with pytest.raises(ConfigError, match="its SHA-256 differs"):
        witness_generator(SQUARE, CHAIN_ID, copy)
    # the poseidon wasm is not square_root's either
    with pytest.raises(ConfigError, match="its SHA-256 differs"):
        witness_generator(SQUARE, CHAIN_ID, circuit("poseidon_preimage").wasm)


def test_witness_generator_reads_what_fetch_downloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    custom = replace(SQUARE, id=9, circuit="my_circuit")
    folder = tmp_path / ".kalypso" / "artifacts" / str(CHAIN_ID) / "9"
    folder.mkdir(parents=True)
    (folder / "my_circuit.wasm").write_bytes(circuit("square_root").wasm.read_bytes())
    assert witness_generator(custom, CHAIN_ID) == folder / "my_circuit.wasm"


def test_attack_a_circuit_name_that_is_a_path_reads_no_file_outside_the_artifacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A market's creator names its circuit `../../../../planted` in the metadata and
    plants a wasm with that hash where the name leads: the SDK must not run it."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / ".kalypso" / "artifacts" / str(CHAIN_ID) / "9").mkdir(parents=True)
    (tmp_path / "planted.wasm").write_bytes(circuit("square_root").wasm.read_bytes())
    hostile = replace(SQUARE, id=9, circuit="../../../../../planted")
    with pytest.raises(ConfigError, match="no witness generator"):
        witness_generator(hostile, CHAIN_ID)


@pytest.mark.parametrize(
    "market",
    [RAW, replace(SQUARE, circuit="not_a_sample"), replace(SQUARE, circuit=None)],
)
def test_witness_generator_without_a_wasm(
    market: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="skip_preflight=True") as info:
        witness_generator(market, CHAIN_ID)
    assert f"kalypso generator fetch {market.id}" in str(info.value)
    with pytest.raises(ConfigError, match="skip_preflight=True"):
        witness_generator(market, CHAIN_ID, tmp_path / "missing.wasm")
