"""Architectures: which one we run on, its compat ABI, and syscall names per ABI.

The numbers come from syscall_table.py (generated); this hand-written module adds what
a table of numbers cannot say: that i386's ``setuid32`` is the ``setuid`` a rule means,
and which call each ``socketcall`` sub-call stands for. The tracer decodes the compat
ABI (``int 0x80`` on x86_64) like the native one, under the native names, so a rule on
``connect`` sees a connect whichever entry the workload used.
"""
from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs milliseconds at every container start
if TYPE_CHECKING:
    from typing import Dict, Iterable, Optional, Tuple

from .syscall_table import AUDIT_ARCH, SYSCALLS

#: The 32-bit ABI a 64-bit kernel also accepts for any process.
COMPAT_ARCH = {"x86_64": "i386", "aarch64": "arm"}

#: socketcall(2) call numbers (linux/net.h) -> (the syscall it stands for, argument count).
#: send/recv have no syscall of their own: they are sendto/recvfrom without an address.
SOCKETCALL: Dict[int, Tuple[str, int]] = {
    1: ("socket", 3), 2: ("bind", 3), 3: ("connect", 3), 4: ("listen", 2), 5: ("accept", 3),
    6: ("getsockname", 3), 7: ("getpeername", 3), 8: ("socketpair", 4), 9: ("sendto", 4),
    10: ("recvfrom", 4), 11: ("sendto", 6), 12: ("recvfrom", 6), 13: ("shutdown", 2),
    14: ("setsockopt", 5), 15: ("getsockopt", 5), 16: ("sendmsg", 3), 17: ("recvmsg", 3),
    18: ("accept4", 4), 19: ("recvmmsg", 5), 20: ("sendmmsg", 4),
}

#: Numbers for calls a compat ABI reaches only through socketcall (i386 has no accept):
#: above the generated tables, below the C core's WA_MAX_NR.
_SOCKETCALL_ONLY_BASE = 1000

_SUFFIXES = ("_time64", "32", "64")


def native_arch() -> str:
    m = os.uname().machine  # platform.machine(), without importing platform
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


def compat_arch(arch: Optional[str] = None) -> Optional[str]:
    """The compat ABI of arch (default: ours) when its syscall table is known."""
    compat = COMPAT_ARCH.get(arch or native_arch())
    return compat if compat in SYSCALLS else None


def _native_of(arch: str) -> str:
    for native, compat in COMPAT_ARCH.items():
        if compat == arch and native in SYSCALLS:
            return native
    return arch


def _canonical(name: str, native: Dict[str, int]) -> str:
    """i386's ``setuid32``/``fcntl64`` are the native ``setuid``/``fcntl``."""
    if name in native:
        return name
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and name[:-len(suffix)] in native:
            return name[:-len(suffix)]
    return name


# arch -> numbers(arch), made when first asked for: a start needs one or two of them
_NUMBERS: Dict[str, Dict[int, str]] = {}


def numbers(arch: str) -> Dict[int, str]:
    """Syscall number -> the name rules use, for a native or compat ABI (not to be changed:
    every caller shares it)."""
    out = _NUMBERS.get(arch)
    if out is not None:
        return out
    native = SYSCALLS[_native_of(arch)]
    out = {nr: _canonical(name, native) for name, nr in SYSCALLS[arch].items()}
    if arch != _native_of(arch):
        for k, name in enumerate(sorted({n for n, _ in SOCKETCALL.values()} - set(out.values()))):
            out[_SOCKETCALL_ONLY_BASE + k] = name
    _NUMBERS[arch] = out
    return out


_BY_AUDIT: Dict[int, Dict[int, str]] = {}   # AUDIT_ARCH_* -> numbers(), filled when asked


def syscall_name(audit_arch: int, nr: int) -> str:
    """The name of syscall nr of an ABI (AUDIT_ARCH_*), as rules name it."""
    table = _BY_AUDIT.get(audit_arch)
    if table is None:
        arch = next((a for a in SYSCALLS if AUDIT_ARCH[a] == audit_arch), None)
        table = _BY_AUDIT[audit_arch] = numbers(arch) if arch is not None else {}
    return table.get(nr, f"syscall_{nr}")


def numbers_of(arch: str, names: Iterable[str]) -> Dict[int, str]:
    """The numbers under which an ABI reaches these syscalls (several for setuid on i386)."""
    wanted = set(names)
    return {nr: name for nr, name in numbers(arch).items() if name in wanted}


def socketcall_routes(arch: str, names: Iterable[str]) -> Dict[int, Tuple[int, int]]:
    """socketcall call number -> (number of the syscall it carries, argument count), for
    the carried syscalls among names."""
    by_name = {}
    for nr, name in sorted(numbers(arch).items(), reverse=True):
        by_name[name] = nr  # the lowest number wins
    wanted = set(names)
    return {call: (by_name[name], nargs) for call, (name, nargs) in SOCKETCALL.items()
            if name in wanted and name in by_name}
