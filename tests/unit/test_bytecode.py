"""The EVM code reader that decides whether a verifier can change its answers, on
hand-assembled code, on our compiled contracts, and on arbitrary bytes."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from kalypso.contracts import CONTRACTS, artifact
from kalypso.market.bytecode import MUTABLE, OPCODES, Verdict, analyse, disassemble

BY_NAME = {name: op for op, (name, _, _) in OPCODES.items()}


def asm(*items: str | bytes) -> bytes:
    """Opcode names, and bytes taken as they are (PUSH data)."""
    return b"".join(i if isinstance(i, bytes) else bytes([BY_NAME[i]]) for i in items)


def push(value: int, size: int = 1) -> bytes:
    return bytes([0x5F + size]) + value.to_bytes(size, "big")


#: a static call's other arguments (out size, out offset, in size, in offset)
ARGS = push(0x20) + push(0) + push(0xC0) + push(0)

FORBIDDEN = [
    "SLOAD", "SSTORE", "TLOAD", "TSTORE", "CALL", "DELEGATECALL", "CALLCODE", "CREATE",
    "CREATE2", "SELFDESTRUCT", "BALANCE", "SELFBALANCE", "EXTCODESIZE", "EXTCODECOPY",
    "EXTCODEHASH", "BLOCKHASH", "TIMESTAMP", "NUMBER", "COINBASE", "PREVRANDAO", "GASLIMIT",
    "BASEFEE", "BLOBHASH", "BLOBBASEFEE", "ORIGIN", "GASPRICE",
]  # fmt: skip


@pytest.mark.parametrize("name", FORBIDDEN)
def test_each_source_of_change_is_named_with_its_offset(name: str) -> None:
    analysis = analyse(asm("PUSH0", "PUSH0", "CALLDATALOAD", name, "STOP"))
    assert analysis.verdict == Verdict.CAN_CHANGE
    (finding,) = analysis.findings
    assert finding.offset == 3 and finding.what.startswith(name)
    assert f"{name} ({MUTABLE[name]}) at 0x3" in analysis.summary()


def test_fixed_reads_are_immutable() -> None:
    code = asm(
        "ADDRESS", "CALLER", "CALLVALUE", "CHAINID", "CODESIZE", "GAS", "MSIZE", "PC",
        "CALLDATASIZE", "RETURNDATASIZE", "KECCAK256", "STOP",
    )  # fmt: skip
    analysis = analyse(code)
    assert analysis.verdict == Verdict.IMMUTABLE and analysis.findings == ()
    assert analysis.summary() == "immutable: no storage, calls, or block or account reads"


def test_push_data_that_looks_like_forbidden_opcodes_is_not_flagged() -> None:
    data = bytes([0x54, 0x55, 0x5C, 0x5D, 0xF1, 0xF2, 0xF4, 0xFF, 0x42, 0x5B])
    code = bytes([0x5F + len(data)]) + data + asm("POP") + push(0x54F1, 2) + asm("STOP")
    assert analyse(code).verdict == Verdict.IMMUTABLE
    assert [i.offset for i in disassemble(code)] == [0, 11, 12, 15]


def test_a_static_call_to_the_pairing_precompile_passes() -> None:
    assert analyse(ARGS + push(0x08) + asm("GAS", "STATICCALL", "STOP")).verdict == (
        Verdict.IMMUTABLE
    )


def test_vyper_s_static_call_pattern_gas_first_then_dup() -> None:
    """Vyper pushes GAS first and DUPs it over the address: `PUSH1 7 DUP6 STATICCALL`."""
    code = asm("GAS") + ARGS + push(0x07) + asm("DUP6", "STATICCALL", "STOP")
    assert analyse(code).verdict == Verdict.IMMUTABLE


def test_a_static_call_to_a_computed_address_cannot_be_told() -> None:
    code = ARGS + asm("PUSH0", "CALLDATALOAD", "GAS", "STATICCALL", "STOP")
    analysis = analyse(code)
    assert analysis.verdict == Verdict.CANNOT_TELL
    assert "STATICCALL to a computed address" in analysis.summary()


def test_a_static_call_to_a_contract_can_change() -> None:
    code = ARGS + push(0xABCD, 20) + asm("GAS", "STATICCALL", "STOP")
    analysis = analyse(code)
    assert analysis.verdict == Verdict.CAN_CHANGE and "0xabcd" in analysis.summary()


def test_swaps_move_the_known_address() -> None:
    code = ARGS + push(0x08) + asm("CALLDATASIZE", "GAS", "STATICCALL", "STOP")
    assert analyse(code).verdict == Verdict.CANNOT_TELL  # the address is CALLDATASIZE
    code = ARGS + push(0x08) + asm("CALLDATASIZE", "SWAP1", "GAS", "STATICCALL", "STOP")
    assert analyse(code).verdict == Verdict.IMMUTABLE  # swapped: 0x08 again


def test_a_constant_pushed_before_a_jumpdest_is_not_trusted_after_it() -> None:
    code = ARGS + push(0x08) + asm("JUMPDEST", "GAS", "STATICCALL", "STOP")
    assert analyse(code).verdict == Verdict.CANNOT_TELL


def test_unreachable_bytes_are_data_until_a_jumpdest() -> None:
    assert analyse(asm("STOP", "SLOAD", "CALL")).verdict == Verdict.IMMUTABLE
    assert analyse(asm("PUSH0", "JUMP", "SLOAD")).verdict == Verdict.IMMUTABLE
    assert analyse(asm("STOP", "JUMPDEST", "SLOAD")).verdict == Verdict.CAN_CHANGE
    assert analyse(asm("PUSH0", "PUSH0", "JUMPI", "SLOAD")).verdict == Verdict.CAN_CHANGE


def test_code_end_leaves_the_data_section_out() -> None:
    code = asm("PUSH0", "PUSH0", "RETURN", "JUMPDEST", "SLOAD")
    assert analyse(code, code_end=3).verdict == Verdict.IMMUTABLE
    assert analyse(code).verdict == Verdict.CAN_CHANGE


def test_an_undefined_opcode_cannot_be_told() -> None:
    analysis = analyse(bytes([0x0C]))
    assert analysis.verdict == Verdict.CANNOT_TELL
    assert "undefined opcode 0x0c at 0x0" in analysis.summary()


def test_no_code_and_eip7702_delegations_can_change() -> None:
    assert analyse(b"").verdict == Verdict.CAN_CHANGE
    delegated = analyse(bytes.fromhex("ef0100") + b"\x11" * 20)
    assert delegated.verdict == Verdict.CAN_CHANGE and "EIP-7702" in delegated.summary()


def test_a_push_cut_short_reads_zeros() -> None:
    (ins,) = disassemble(bytes([0x61, 0x01]))
    assert ins.name == "PUSH2" and ins.value == 0x0100


def test_the_summary_groups_offsets() -> None:
    code = asm("PUSH0", "SLOAD", "SLOAD", "SLOAD", "SLOAD", "TIMESTAMP", "STOP")
    assert analyse(code).summary() == (
        "can change: SLOAD (state) at 0x1, 0x2, 0x3 (+1); TIMESTAMP (block) at 0x5"
    )


@pytest.mark.parametrize("name", list(CONTRACTS))
def test_our_contracts_verdicts(name: str) -> None:
    """The dev verifiers have no reentrancy lock or storage: immutable. The stateful
    contracts are not."""
    compiled = artifact(name)
    verdict = analyse(compiled.runtime, compiled.code_size).verdict
    stateful = name in (
        "Token",
        "GeneratorRegistry",
        "ProofMarketplace",
        "MarketRegistry",
        "EnclaveRegistry",
    )
    assert verdict == (Verdict.CAN_CHANGE if stateful else Verdict.IMMUTABLE)


@given(st.binary(max_size=2048), st.none() | st.integers(min_value=-5, max_value=3000))
@example(bytes([0x7F]), None)
@example(bytes.fromhex("ef0100"), 1)
def test_arbitrary_bytes_never_crash_it(code: bytes, end: int | None) -> None:
    analysis = analyse(code, end)
    assert analysis.verdict in set(Verdict)
    assert isinstance(analysis.summary(), str)
    for finding in analysis.findings:
        assert 0 <= finding.offset < len(code)
    rebuilt = b"".join(
        bytes([i.opcode])
        + (i.value or 0).to_bytes(i.opcode - 0x5F if 0x60 <= i.opcode <= 0x7F else 0, "big")
        for i in disassemble(code)
    )
    assert rebuilt[: len(code)] == code  # every byte read once, PUSH data as data
