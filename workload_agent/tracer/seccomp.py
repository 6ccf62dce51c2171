"""Builds the seccomp-BPF program the workload installs before exec.

Policy lives here, not in C: which syscalls stop (RET_TRACE), which of them need the
exit stop (RET_TRACE data bit), and what is refused. The program decides on the
arch and syscall number only (plus clone's flags), so the kernel's action cache can
skip it for every syscall that is allowed.
"""
from __future__ import annotations

import errno
import struct

TYPE_CHECKING = False  # typing costs milliseconds at every container start
if TYPE_CHECKING:
    from typing import Mapping

from ..events.arch import SOCKETCALL, compat_arch, native_arch, numbers_of
from ..events.syscall_table import AUDIT_ARCH, SYSCALLS

# RET_TRACE data bits, read by csrc/tracer.c at the seccomp stop.
DATA_EXIT = 0x1
DATA_FOREIGN = 0x2
DATA_GUARD = 0x4   # run the guard check (tracer/guard.py compiles it) at this stop

RET_ALLOW = 0x7FFF0000
RET_TRACE = 0x7FF00000
RET_ERRNO = 0x00050000

_LD_ABS_W = 0x20
_JEQ = 0x15
_JGE = 0x35
_JSET = 0x45
_JA = 0x05
_RET = 0x06

_OFF_NR = 0
_OFF_ARCH = 4
_OFF_ARG0_LO = 16  # little-endian low word of args[0]

CLONE_UNTRACED = 0x00800000
X32_SYSCALL_BIT = 0x40000000

class _Asm:
    """Tiny assembler: conditional jumps name labels; offsets are resolved at the end."""

    def __init__(self) -> None:
        self.ins: list[list] = []
        self.labels: dict[str, int] = {}

    def label(self, name: str) -> None:
        self.labels[name] = len(self.ins)

    def emit(self, code: int, k=0, jt=0, jf=0) -> None:
        self.ins.append([code, jt, jf, k])

    def extend(self, raw: list[tuple[int, int, int, int]]) -> None:
        self.ins.extend([list(i) for i in raw])

    def assemble(self) -> bytes:
        out = []
        for pc, (code, jt, jf, k) in enumerate(self.ins):
            if isinstance(jt, str):
                jt = self.labels[jt] - pc - 1
            if isinstance(jf, str):
                jf = self.labels[jf] - pc - 1
            if code == _JA and isinstance(k, str):
                k = self.labels[k] - pc - 1
            if not (0 <= jt <= 255 and 0 <= jf <= 255):
                raise ValueError(f"BPF jump out of range at {pc}")
            out.append(struct.pack("<HBBI", code, jt, jf, k & 0xFFFFFFFF))
        return b"".join(out)


def _ranges(actions: Mapping[int, int], default: int) -> list[tuple[int, int]]:
    """[(first_nr, action)] covering 0..2**32, merging neighbours with one action."""
    out: list[tuple[int, int]] = []
    prev = None
    for nr in sorted(actions):
        if prev is None or nr != prev + 1:
            if not out or out[-1][1] != default:
                out.append((0 if prev is None else prev + 1, default))
        if not out or out[-1][1] != actions[nr]:
            out.append((nr, actions[nr]))
        prev = nr
    if prev is None:
        return [(0, default)]
    if out[-1][1] != default:
        out.append((prev + 1, default))
    if out[0][0] != 0:
        out.insert(0, (0, default))
    return out


def _tree(ranges: list[tuple[int, int]]) -> list[tuple[int, int, int, int]]:
    """Binary search over range starts; leaves return. Long left halves get a JA trampoline."""
    if len(ranges) == 1:
        return [(_RET, 0, 0, ranges[0][1])]
    mid = len(ranges) // 2
    left, right = _tree(ranges[:mid]), _tree(ranges[mid:])
    if len(left) <= 255:
        return [(_JGE, len(left), 0, ranges[mid][0])] + left + right
    return [(_JGE, 0, 1, ranges[mid][0]), (_JA, 0, 0, len(left))] + left + right


def _arch_block(asm: _Asm, arch: str, traced: Mapping[str, int],
                guarded: frozenset = frozenset()) -> None:
    table = SYSCALLS[arch]
    real = set(table.values())
    actions = {nr: RET_TRACE | traced[name]
               for nr, name in numbers_of(arch, traced).items() if nr in real}
    carried = [traced[name] for name, _ in SOCKETCALL.values() if name in traced]
    if carried and "socketcall" in table:
        # The filter sees only the multiplexer; the tracer keeps the sub-calls it traces.
        data = 0
        for bits in carried:
            data |= bits
        actions[table["socketcall"]] = RET_TRACE | data
    for name in guarded:
        if name in table and name != "clone":  # clone stops for the guard on CLONE_UNTRACED only
            actions[table[name]] = actions.get(table[name], RET_TRACE) | DATA_GUARD
    if "clone3" in table and "clone3" not in guarded:
        actions[table["clone3"]] = RET_ERRNO | errno.ENOSYS  # flags live in memory: uninspectable
    # Each block returns on its own: BPF jumps only forward, conditionals at most 255.
    asm.emit(_LD_ABS_W, _OFF_NR)
    if arch == "x86_64":
        asm.emit(_JGE, X32_SYSCALL_BIT, 0, 1)
        asm.emit(_RET, RET_ERRNO | errno.ENOSYS)
    if "clone" in table:
        asm.emit(_JEQ, table["clone"], 0, 4)
        asm.emit(_LD_ABS_W, _OFF_ARG0_LO)
        asm.emit(_JSET, CLONE_UNTRACED, 0, 1)
        # CLONE_UNTRACED would escape the tracer: refused, by the guard (recorded) or here
        asm.emit(_RET, (actions.get(table["clone"], RET_TRACE) | DATA_GUARD)
                 if "clone" in guarded else RET_ERRNO | errno.EPERM)
        asm.emit(_LD_ABS_W, _OFF_NR)
    asm.extend(_tree(_ranges(actions, RET_ALLOW)))


def build_filter(traced: Mapping[str, int], arch: str | None = None, *, guarded=(),
                 foreign_deny: bool = False) -> bytes:
    """traced: syscall name -> RET_TRACE data bits (DATA_EXIT...); guarded: syscalls the
    guard checks (tracer/guard.py); foreign_deny: every syscall through the compat ABI
    stops for the guard, which refuses it. Otherwise the compat ABI's calls stop like the
    native ones: the tracer decodes them alike. Returns sock_filter[] bytes."""
    arch = arch or native_arch()
    guarded = frozenset(guarded)
    compat = compat_arch(arch)
    asm = _Asm()
    asm.emit(_LD_ABS_W, _OFF_ARCH)
    asm.emit(_JEQ, AUDIT_ARCH[arch], 0, 1)
    asm.emit(_JA, "native")
    has_compat = compat is not None
    if has_compat:
        asm.emit(_JEQ, AUDIT_ARCH[compat], 0, 1)
        asm.emit(_JA, "compat")
    asm.emit(_RET, RET_ERRNO | errno.ENOSYS)  # any other ABI (x32 is caught per number)
    if has_compat:
        asm.label("compat")
        if foreign_deny:
            asm.emit(_RET, RET_TRACE | DATA_FOREIGN | DATA_GUARD)
        else:
            _arch_block(asm, compat, traced)
    asm.label("native")
    _arch_block(asm, arch, traced, guarded)
    return asm.assemble()
