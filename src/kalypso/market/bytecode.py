"""Can a contract's answers change after deployment? A mechanical reading of its EVM code.

A market fixes its verifier's and input verifier's *addresses* only; code that reads
storage, calls other contracts or reads the block could answer one way when the market
is created and another when a generator has staked on it. `analyse` disassembles the
code (PUSH data skipped, as the EVM's own jump-destination scan does) and gives one of
three verdicts:

- **immutable**: no reachable instruction lets an answer depend on anything but the
  calldata and the code itself;
- **can change**: a reachable instruction reads or writes state, calls out, or reads
  something that differs between blocks or transactions (each listed with its offset);
- **cannot tell**: a static call whose target is not a constant, or a byte that is no
  opcode today (a later fork may give it a meaning).

What counts as a source of change:

- state: SLOAD, SSTORE, TLOAD, TSTORE; calls and creation: CALL, CALLCODE,
  DELEGATECALL, CREATE, CREATE2, SELFDESTRUCT, and STATICCALL to anything but a
  precompile (0x01-0x0a, pushed as a constant in the same block);
- other accounts, which anyone can change: BALANCE, SELFBALANCE (anyone can send
  ether), EXTCODESIZE, EXTCODECOPY, EXTCODEHASH (code appears at CREATE2 addresses and
  EIP-7702 delegations);
- the block, which moves on: BLOCKHASH, COINBASE, TIMESTAMP, NUMBER, PREVRANDAO,
  GASLIMIT, BASEFEE, BLOBHASH, BLOBBASEFEE;
- the transaction, which differs between the market's creator and a generator: ORIGIN,
  GASPRICE.

Left as fixed: ADDRESS, CHAINID, CODESIZE, CODECOPY (the contract's own code, which
holds its immutables), CALLER (the marketplace), CALLVALUE (zero in a static call),
calldata, return data (of precompiles), memory, GAS (what the caller gives; the
generator's gas estimate covers it), LOG (refused in a static call anyway).

Reachability follows the EVM: execution enters at 0 and at JUMPDESTs, and runs on
until STOP, RETURN, REVERT, INVALID, SELFDESTRUCT, JUMP or an undefined byte. Bytes
after those and before the next JUMPDEST are data (Vyper's jump tables, immutables)
and are not read as code; a data byte 0x5B starts code as far as the EVM is
concerned, so it does here too (sound, and at worst a false alarm). `code_end` stops
the reading where the caller knows the data sections begin.

Pure: no I/O; any bytes are accepted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

#: opcode -> (name, items popped, items pushed); PUSH, DUP, SWAP and LOG are added below.
_BASE: dict[int, tuple[str, int, int]] = {
    0x00: ("STOP", 0, 0),
    0x01: ("ADD", 2, 1),
    0x02: ("MUL", 2, 1),
    0x03: ("SUB", 2, 1),
    0x04: ("DIV", 2, 1),
    0x05: ("SDIV", 2, 1),
    0x06: ("MOD", 2, 1),
    0x07: ("SMOD", 2, 1),
    0x08: ("ADDMOD", 3, 1),
    0x09: ("MULMOD", 3, 1),
    0x0A: ("EXP", 2, 1),
    0x0B: ("SIGNEXTEND", 2, 1),
    0x10: ("LT", 2, 1),
    0x11: ("GT", 2, 1),
    0x12: ("SLT", 2, 1),
    0x13: ("SGT", 2, 1),
    0x14: ("EQ", 2, 1),
    0x15: ("ISZERO", 1, 1),
    0x16: ("AND", 2, 1),
    0x17: ("OR", 2, 1),
    0x18: ("XOR", 2, 1),
    0x19: ("NOT", 1, 1),
    0x1A: ("BYTE", 2, 1),
    0x1B: ("SHL", 2, 1),
    0x1C: ("SHR", 2, 1),
    0x1D: ("SAR", 2, 1),
    0x20: ("KECCAK256", 2, 1),
    0x30: ("ADDRESS", 0, 1),
    0x31: ("BALANCE", 1, 1),
    0x32: ("ORIGIN", 0, 1),
    0x33: ("CALLER", 0, 1),
    0x34: ("CALLVALUE", 0, 1),
    0x35: ("CALLDATALOAD", 1, 1),
    0x36: ("CALLDATASIZE", 0, 1),
    0x37: ("CALLDATACOPY", 3, 0),
    0x38: ("CODESIZE", 0, 1),
    0x39: ("CODECOPY", 3, 0),
    0x3A: ("GASPRICE", 0, 1),
    0x3B: ("EXTCODESIZE", 1, 1),
    0x3C: ("EXTCODECOPY", 4, 0),
    0x3D: ("RETURNDATASIZE", 0, 1),
    0x3E: ("RETURNDATACOPY", 3, 0),
    0x3F: ("EXTCODEHASH", 1, 1),
    0x40: ("BLOCKHASH", 1, 1),
    0x41: ("COINBASE", 0, 1),
    0x42: ("TIMESTAMP", 0, 1),
    0x43: ("NUMBER", 0, 1),
    0x44: ("PREVRANDAO", 0, 1),
    0x45: ("GASLIMIT", 0, 1),
    0x46: ("CHAINID", 0, 1),
    0x47: ("SELFBALANCE", 0, 1),
    0x48: ("BASEFEE", 0, 1),
    0x49: ("BLOBHASH", 1, 1),
    0x4A: ("BLOBBASEFEE", 0, 1),
    0x50: ("POP", 1, 0),
    0x51: ("MLOAD", 1, 1),
    0x52: ("MSTORE", 2, 0),
    0x53: ("MSTORE8", 2, 0),
    0x54: ("SLOAD", 1, 1),
    0x55: ("SSTORE", 2, 0),
    0x56: ("JUMP", 1, 0),
    0x57: ("JUMPI", 2, 0),
    0x58: ("PC", 0, 1),
    0x59: ("MSIZE", 0, 1),
    0x5A: ("GAS", 0, 1),
    0x5B: ("JUMPDEST", 0, 0),
    0x5C: ("TLOAD", 1, 1),
    0x5D: ("TSTORE", 2, 0),
    0x5E: ("MCOPY", 3, 0),
    0x5F: ("PUSH0", 0, 1),
    0xF0: ("CREATE", 3, 1),
    0xF1: ("CALL", 7, 1),
    0xF2: ("CALLCODE", 7, 1),
    0xF3: ("RETURN", 2, 0),
    0xF4: ("DELEGATECALL", 6, 1),
    0xF5: ("CREATE2", 4, 1),
    0xFA: ("STATICCALL", 6, 1),
    0xFD: ("REVERT", 2, 0),
    0xFE: ("INVALID", 0, 0),
    0xFF: ("SELFDESTRUCT", 1, 0),
}
OPCODES: dict[int, tuple[str, int, int]] = {
    **_BASE,
    **{0x60 + i: (f"PUSH{i + 1}", 0, 1) for i in range(32)},
    **{0x80 + i: (f"DUP{i + 1}", i + 1, i + 2) for i in range(16)},
    **{0x90 + i: (f"SWAP{i + 1}", i + 2, i + 2) for i in range(16)},
    **{0xA0 + i: (f"LOG{i}", i + 2, 0) for i in range(5)},
}

#: opcode name -> why an answer can change through it
MUTABLE: dict[str, str] = {
    **dict.fromkeys(("SLOAD", "SSTORE", "TLOAD", "TSTORE"), "state"),
    **dict.fromkeys(("CALL", "CALLCODE", "DELEGATECALL"), "call"),
    **dict.fromkeys(("CREATE", "CREATE2", "SELFDESTRUCT"), "create/destroy"),
    **dict.fromkeys(
        ("BALANCE", "SELFBALANCE", "EXTCODESIZE", "EXTCODECOPY", "EXTCODEHASH"), "accounts"
    ),
    **dict.fromkeys(
        (
            "BLOCKHASH",
            "COINBASE",
            "TIMESTAMP",
            "NUMBER",
            "PREVRANDAO",
            "GASLIMIT",
            "BASEFEE",
            "BLOBHASH",
            "BLOBBASEFEE",
        ),
        "block",
    ),
    **dict.fromkeys(("ORIGIN", "GASPRICE"), "transaction"),
}
#: execution stops at these; what follows is code only from a JUMPDEST on
_HALTS = {"STOP", "RETURN", "REVERT", "INVALID", "SELFDESTRUCT", "JUMP"}
#: the precompiles a static call may reach: ecrecover to point evaluation (Cancun)
PRECOMPILES = range(0x01, 0x0B)
#: EIP-7702: an account whose code is this prefix and an address runs that address's code
DELEGATION_PREFIX = bytes.fromhex("ef0100")


class Verdict(StrEnum):
    IMMUTABLE = "immutable"
    CAN_CHANGE = "can change"
    CANNOT_TELL = "cannot tell"


@dataclass(frozen=True)
class Instruction:
    offset: int
    opcode: int
    #: the PUSH constant (data past the end reads as zeros, as in the EVM)
    value: int | None = None

    @property
    def name(self) -> str:
        known = OPCODES.get(self.opcode)
        return known[0] if known else f"0x{self.opcode:02x}"


@dataclass(frozen=True)
class Finding:
    offset: int
    what: str
    verdict: Verdict


@dataclass(frozen=True)
class Analysis:
    verdict: Verdict
    findings: tuple[Finding, ...]
    #: a reason that applies to the whole code, when there is one (no code, a delegation)
    reason: str | None = None

    def summary(self, limit: int = 3) -> str:
        """One line: the verdict and why, each kind of finding with its first offsets."""
        if self.reason is not None:
            return f"{self.verdict}: {self.reason}"
        if not self.findings:
            return f"{self.verdict}: no storage, calls, or block or account reads"
        offsets: dict[str, list[int]] = {}
        for f in self.findings:
            if f.verdict == self.verdict:
                offsets.setdefault(f.what, []).append(f.offset)
        parts = []
        for what, at in offsets.items():
            more = f" (+{len(at) - limit})" if len(at) > limit else ""
            parts.append(f"{what} at {', '.join(f'0x{o:x}' for o in at[:limit])}{more}")
        return f"{self.verdict}: {'; '.join(parts)}"


def disassemble(code: bytes, end: int | None = None) -> Iterator[Instruction]:
    """Every instruction of `code[:end]` in order, PUSH data skipped."""
    stop = len(code) if end is None else max(0, min(end, len(code)))
    pc = 0
    while pc < stop:
        op = code[pc]
        if 0x60 <= op <= 0x7F:
            size = op - 0x5F
            data = code[pc + 1 : pc + 1 + size]
            yield Instruction(pc, op, int.from_bytes(data.ljust(size, b"\x00"), "big"))
            pc += 1 + size
        else:
            yield Instruction(pc, op, 0 if op == 0x5F else None)
            pc += 1


def analyse(code: bytes, code_end: int | None = None) -> Analysis:
    """The verdict on `code` (as `eth_getCode` returns it); `code_end`, when known, is
    where its instructions stop (data and immutables follow)."""
    if not code:
        return Analysis(
            Verdict.CAN_CHANGE, (), "no code at this address (code can be put there later)"
        )
    if code.startswith(DELEGATION_PREFIX) and len(code) == 23:
        return Analysis(
            Verdict.CAN_CHANGE,
            (),
            f"an EIP-7702 delegation to 0x{code[3:].hex()} (its key can re-delegate)",
        )
    findings: list[Finding] = []
    #: the stack of the running block: a known constant, or None; unknown below
    stack: list[int | None] = []
    reachable = True
    for ins in disassemble(code, code_end):
        name = ins.name
        if name == "JUMPDEST":
            reachable, stack = True, []
        if not reachable:
            continue
        finding = _judge(ins, name, stack)
        if finding is not None:
            findings.append(finding)
        _step(ins, stack)
        if name in _HALTS or ins.opcode not in OPCODES:
            reachable, stack = False, []
    verdicts = {f.verdict for f in findings}
    for verdict in (Verdict.CAN_CHANGE, Verdict.CANNOT_TELL):
        if verdict in verdicts:
            return Analysis(verdict, tuple(findings))
    return Analysis(Verdict.IMMUTABLE, tuple(findings))


def _judge(ins: Instruction, name: str, stack: list[int | None]) -> Finding | None:
    if ins.opcode not in OPCODES:
        return Finding(ins.offset, f"undefined opcode {name}", Verdict.CANNOT_TELL)
    if name in MUTABLE:
        return Finding(ins.offset, f"{name} ({MUTABLE[name]})", Verdict.CAN_CHANGE)
    if name != "STATICCALL":
        return None
    target = stack[-2] if len(stack) >= 2 else None
    if target is None:
        return Finding(ins.offset, "STATICCALL to a computed address", Verdict.CANNOT_TELL)
    if target in PRECOMPILES:
        return None
    return Finding(ins.offset, f"STATICCALL to 0x{target:x} (call)", Verdict.CAN_CHANGE)


def _step(ins: Instruction, stack: list[int | None]) -> None:
    """Apply `ins` to the symbolic stack: constants from PUSH, moved by DUP and SWAP."""
    if ins.opcode not in OPCODES:
        return
    _, pops, pushes = OPCODES[ins.opcode]
    if 0x80 <= ins.opcode <= 0x8F:
        n = ins.opcode - 0x7F
        stack.append(stack[-n] if len(stack) >= n else None)
    elif 0x90 <= ins.opcode <= 0x9F:
        n = ins.opcode - 0x8F
        while len(stack) < n + 1:
            stack.insert(0, None)
        stack[-1], stack[-1 - n] = stack[-1 - n], stack[-1]
    elif ins.value is not None:
        stack.append(ins.value)
    else:
        del stack[max(0, len(stack) - pops) :]
        stack.extend([None] * pushes)
