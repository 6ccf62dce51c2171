"""Falco's flag and enum tables, and the kernel -> Falco (PPM) value conversions.

Falco stores many flag parameters in its own "PPM" encoding rather than the
kernel's; ``evt.rawarg.X`` exposes that encoding and the rendered names come
from walking a table in a fixed order. Each table here is a tuple of
``(name, ppm_value)`` in Falco's render order. Kernel numbers are taken from
the Python stdlib (os, socket, errno, signal, stat) where it has them, so only
the values it lacks are written out here.
"""
from __future__ import annotations

import errno as _errno
import functools
import os
import signal as _signal
import _socket  # the constants without socket.py's enum classes (start-up)
import stat as _stat
from typing import Dict, Optional, Sequence, Tuple

Table = Tuple[Tuple[str, int], ...]

#: Kernel constants that differ by architecture follow the machine we run on:
#: the tracer only follows tracees of its own architecture (foreign-arch calls
#: are filtered by the C side).
HOST_ARCH = os.uname().machine  # platform.machine(), without importing platform
_IS_X86 = HOST_ARCH in ("x86_64", "i386", "i486", "i586", "i686", "amd64")


# --- rendering (Falco's FLAGS / ENUMFLAGS algorithm) ----------------------------

def render_flags(value: int, table: Table) -> str:
    """Resolved form of a FLAGS param: names joined by ``|``, "" if none match."""
    names = []
    rest = value
    for name, bits in table:
        if bits == 0:
            matched = value == 0
        else:
            matched = value != 0 and (rest & bits) == bits
        if matched:
            names.append(name)
            rest &= ~bits
            if bits == value:
                break
    return "|".join(names)


def render_enum(value: int, table: Table) -> str:
    """Resolved form of an ENUMFLAGS param: every entry equal to value (aliases too)."""
    return "|".join(name for name, v in table if v == value)


def render_mode(value: int) -> str:
    """Resolved form of a MODE param (permission names, low bit first)."""
    return render_flags(value & 0o7777, CHMOD_MODE)


# --- 2.2.1 open flags -------------------------------------------------------------

FILE_FLAGS: Table = (
    ("O_LARGEFILE", 2048),
    ("O_DIRECTORY", 1024),
    ("O_DIRECT", 512),
    ("O_TRUNC", 256),
    ("O_SYNC", 128),
    ("O_NONBLOCK", 64),
    ("O_EXCL", 32),
    ("O_DSYNC", 16),
    ("O_APPEND", 8),
    ("O_CREAT", 4),
    ("O_RDWR", 3),
    ("O_WRONLY", 2),
    ("O_RDONLY", 1),
    ("O_CLOEXEC", 4096),
    ("O_NONE", 0),
    ("O_TMPFILE", 8192),
    ("O_F_CREATED", 16384),
    ("FD_UPPER_LAYER", 32768),
    ("FD_LOWER_LAYER", 65536),
)
_PPM_FILE = dict(FILE_FLAGS)

# glibc defines O_LARGEFILE as 0 on 64-bit targets, but the kernel bit exists and
# a program may pass it; only these two kernel values are missing from os.
_KERNEL_O_LARGEFILE = os.O_LARGEFILE or {"aarch64": 0o400000, "arm64": 0o400000}.get(
    HOST_ARCH, 0o100000)

#: (kernel bits, PPM name). Multi-bit kernel constants (O_SYNC includes O_DSYNC,
#: O_TMPFILE includes O_DIRECTORY) count only when every bit is present.
_OPEN_BITS = (
    (_KERNEL_O_LARGEFILE, "O_LARGEFILE"),
    (os.O_DIRECTORY, "O_DIRECTORY"),
    (os.O_DIRECT, "O_DIRECT"),
    (os.O_TRUNC, "O_TRUNC"),
    (os.O_SYNC, "O_SYNC"),
    (os.O_NONBLOCK, "O_NONBLOCK"),
    (os.O_EXCL, "O_EXCL"),
    (os.O_DSYNC, "O_DSYNC"),
    (os.O_APPEND, "O_APPEND"),
    (os.O_CREAT, "O_CREAT"),
    (os.O_CLOEXEC, "O_CLOEXEC"),
    (os.O_TMPFILE, "O_TMPFILE"),
)
_O_ACCMODE = os.O_RDONLY | os.O_WRONLY | os.O_RDWR


def open_flag_kernel_bits(name: str) -> int:
    """The kernel bits behind a PPM open flag other than the access modes (0: none, such as
    O_F_CREATED, which the state sets): the PPM flag is set only when all of them are."""
    return next((bits for bits, n in _OPEN_BITS if n == name), 0)


@functools.lru_cache(maxsize=4096)
def open_flags_to_ppm(flags: int, access_mode: bool = True) -> int:
    """Kernel open(2) flags -> Falco file_flags encoding.

    ``access_mode=False`` is for calls whose flags have no access mode
    (pipe2, dup3): no O_RDONLY is synthesized for them.
    """
    res = 0
    if access_mode:
        acc = flags & _O_ACCMODE
        if acc == os.O_WRONLY:
            res |= _PPM_FILE["O_WRONLY"]
        elif acc == os.O_RDWR:
            res |= _PPM_FILE["O_RDWR"]
        else:
            res |= _PPM_FILE["O_RDONLY"]
    for bits, name in _OPEN_BITS:
        if bits and (flags & bits) == bits:
            res |= _PPM_FILE[name]
    return res


def open_mode(flags: int, mode: int) -> int:
    """The ``mode`` param of open*/creat: permission bits only when a file may be created."""
    if flags & os.O_CREAT or (flags & os.O_TMPFILE) == os.O_TMPFILE:
        return mode & 0o7777
    return 0


def sock_type_flags_to_ppm(sock_type: int) -> int:
    """socket() ``flags`` param / accept4 ``flags``: SOCK_NONBLOCK/SOCK_CLOEXEC as PPM O_* bits."""
    res = 0
    if sock_type & _socket.SOCK_NONBLOCK:
        res |= _PPM_FILE["O_NONBLOCK"]
    if sock_type & _socket.SOCK_CLOEXEC:
        res |= _PPM_FILE["O_CLOEXEC"]
    return res


# --- 2.2.2 socket families -----------------------------------------------------------

_AF_NAMES = (
    "AF_UNSPEC", "AF_LOCAL", "AF_UNIX", "AF_INET", "AF_AX25", "AF_IPX", "AF_APPLETALK",
    "AF_NETROM", "AF_BRIDGE", "AF_ATMPVC", "AF_X25", "AF_INET6", "AF_ROSE", "AF_DECnet",
    "AF_NETBEUI", "AF_SECURITY", "AF_KEY", "AF_ROUTE", "AF_NETLINK", "AF_PACKET", "AF_ASH",
    "AF_ECONET", "AF_ATMSVC", "AF_RDS", "AF_SNA", "AF_IRDA", "AF_PPPOX", "AF_WANPIPE",
    "AF_LLC", "AF_CAN", "AF_TIPC", "AF_BLUETOOTH", "AF_IUCV", "AF_RXRPC", "AF_ISDN",
    "AF_PHONET", "AF_IEEE802154", "AF_CAIF", "AF_ALG", "AF_NFC",
)
# Linux AF_* numbers the socket module does not export on every build.
_AF_FALLBACK = {
    "AF_LOCAL": _socket.AF_UNIX, "AF_ROUTE": _socket.AF_NETLINK, "AF_AX25": 3,
    "AF_IPX": 4, "AF_APPLETALK": 5, "AF_NETROM": 6, "AF_BRIDGE": 7, "AF_ATMPVC": 8,
    "AF_X25": 9, "AF_ROSE": 11, "AF_DECnet": 12, "AF_NETBEUI": 13, "AF_SECURITY": 14,
    "AF_KEY": 15, "AF_PACKET": 17, "AF_ASH": 18, "AF_ECONET": 19, "AF_ATMSVC": 20,
    "AF_RDS": 21, "AF_SNA": 22, "AF_IRDA": 23, "AF_PPPOX": 24, "AF_WANPIPE": 25,
    "AF_LLC": 26, "AF_CAN": 29, "AF_TIPC": 30, "AF_BLUETOOTH": 31, "AF_IUCV": 32,
    "AF_RXRPC": 33, "AF_ISDN": 34, "AF_PHONET": 35, "AF_IEEE802154": 36, "AF_CAIF": 37,
    "AF_ALG": 38, "AF_NFC": 39,
}
SOCKET_FAMILIES: Table = tuple(sorted(
    ((n, int(getattr(_socket, n, _AF_FALLBACK.get(n, -1)))) for n in _AF_NAMES),
    key=lambda e: e[1]))
_KNOWN_FAMILIES = frozenset(v for _, v in SOCKET_FAMILIES)


def socket_family_to_ppm(family: int) -> int:
    """The driver sends families it does not know as 0 (AF_UNSPEC)."""
    return family if family in _KNOWN_FAMILIES else 0


# --- 2.2.4 ptrace requests --------------------------------------------------------------

# (name, PPM value, Linux request, only on x86)
_PTRACE = (
    ("PTRACE_UNKNOWN", 0, None, False),
    ("PTRACE_TRACEME", 1, 0, False),
    ("PTRACE_PEEKTEXT", 2, 1, False),
    ("PTRACE_PEEKDATA", 3, 2, False),
    ("PTRACE_PEEKUSR", 4, 3, False),
    ("PTRACE_POKETEXT", 5, 4, False),
    ("PTRACE_POKEDATA", 6, 5, False),
    ("PTRACE_POKEUSR", 7, 6, False),
    ("PTRACE_CONT", 8, 7, False),
    ("PTRACE_KILL", 9, 8, False),
    ("PTRACE_SINGLESTEP", 10, 9, False),
    ("PTRACE_ATTACH", 11, 16, False),
    ("PTRACE_DETACH", 12, 17, False),
    ("PTRACE_SYSCALL", 13, 24, False),
    ("PTRACE_SETOPTIONS", 14, 0x4200, False),
    ("PTRACE_GETEVENTMSG", 15, 0x4201, False),
    ("PTRACE_GETSIGINFO", 16, 0x4202, False),
    ("PTRACE_SETSIGINFO", 17, 0x4203, False),
    ("PTRACE_GETREGSET", 18, 0x4204, False),
    ("PTRACE_SETREGSET", 19, 0x4205, False),
    ("PTRACE_SEIZE", 20, 0x4206, False),
    ("PTRACE_INTERRUPT", 21, 0x4207, False),
    ("PTRACE_LISTEN", 22, 0x4208, False),
    ("PTRACE_PEEKSIGINFO", 23, 0x4209, False),
    ("PTRACE_GETSIGMASK", 24, 0x420A, False),
    ("PTRACE_SETSIGMASK", 25, 0x420B, False),
    ("PTRACE_GETREGS", 26, 12, True),
    ("PTRACE_SETREGS", 27, 13, True),
    ("PTRACE_GETFPREGS", 28, 14, True),
    ("PTRACE_SETFPREGS", 29, 15, True),
    ("PTRACE_GETFPXREGS", 30, 18, True),
    ("PTRACE_SETFPXREGS", 31, 19, True),
    ("PTRACE_OLDSETOPTIONS", 32, 21, True),
    ("PTRACE_GET_THREAD_AREA", 33, 25, True),
    ("PTRACE_SET_THREAD_AREA", 34, 26, True),
    ("PTRACE_ARCH_PRCTL", 35, 30, True),
    ("PTRACE_SYSEMU", 36, 31, True),
    ("PTRACE_SYSEMU_SINGLESTEP", 37, 32, True),
    ("PTRACE_SINGLEBLOCK", 38, 33, True),
)
PTRACE_REQUESTS: Table = tuple((n, p) for n, p, _, _ in _PTRACE)
#: Linux request numbers of this machine, by name (for callers building requests).
PTRACE_LINUX: Dict[str, int] = {
    n: linux for n, _, linux, x86 in _PTRACE if linux is not None and (_IS_X86 or not x86)}
_PTRACE_TO_PPM = {PTRACE_LINUX[n]: p for n, p, _, _ in _PTRACE if n in PTRACE_LINUX}


def ptrace_request_to_ppm(request: int) -> int:
    return _PTRACE_TO_PPM.get(request, 0)


# --- 2.2.5 clone flags --------------------------------------------------------------------

# (name, PPM value, kernel value or None for libsinsp/driver-only bits)
_CLONE = (
    ("CLONE_FILES", 1, 0x400),
    ("CLONE_FS", 2, 0x200),
    ("CLONE_IO", 4, 0x80000000),
    ("CLONE_NEWIPC", 8, 0x08000000),
    ("CLONE_NEWNET", 16, 0x40000000),
    ("CLONE_NEWNS", 32, 0x00020000),
    ("CLONE_NEWPID", 64, 0x20000000),
    ("CLONE_NEWUTS", 128, 0x04000000),
    ("CLONE_PARENT", 256, 0x8000),
    ("CLONE_PARENT_SETTID", 512, 0x00100000),
    ("CLONE_PTRACE", 1024, 0x2000),
    ("CLONE_SIGHAND", 2048, 0x800),
    ("CLONE_SYSVSEM", 4096, 0x00040000),
    ("CLONE_THREAD", 8192, 0x00010000),
    ("CLONE_UNTRACED", 16384, 0x00800000),
    ("CLONE_VM", 32768, 0x100),
    ("CLONE_INVERTED", 65536, None),
    ("NAME_CHANGED", 131072, None),
    ("CLOSED", 262144, None),
    ("CLONE_NEWUSER", 1048576, 0x10000000),
    ("CLONE_CHILD_CLEARTID", 8388608, 0x00200000),
    ("CLONE_CHILD_SETTID", 16777216, 0x01000000),
    ("CLONE_SETTLS", 33554432, 0x00080000),
    ("CLONE_STOPPED", 67108864, None),
    ("CLONE_VFORK", 134217728, 0x4000),
    ("CLONE_NEWCGROUP", 268435456, 0x02000000),
    ("CLONE_CHILD_IN_PIDNS", 536870912, None),
)
CLONE_FLAGS: Table = tuple((n, p) for n, p, _ in _CLONE)
#: Kernel CLONE_* values by name.
CLONE_LINUX: Dict[str, int] = {n: k for n, _, k in _CLONE if k is not None}
_CLONE_BITS = tuple((k, p) for _, p, k in _CLONE if k is not None)


def clone_flags_to_ppm(flags: int) -> int:
    """Kernel clone/unshare/setns flags -> PPM; unmapped bits (CLONE_PIDFD...) are dropped."""
    res = 0
    for kbit, pbit in _CLONE_BITS:
        if flags & kbit:
            res |= pbit
    return res


# --- 2.2.6 prctl options (value = Linux value) ------------------------------------------

PRCTL_OPTIONS: Table = (
    ("PR_GET_DUMPABLE", 3),
    ("PR_SET_DUMPABLE", 4),
    ("PR_GET_KEEPCAPS", 7),
    ("PR_SET_KEEPCAPS", 8),
    ("PR_SET_NAME", 15),
    ("PR_GET_NAME", 16),
    ("PR_GET_SECCOMP", 21),
    ("PR_SET_SECCOMP", 22),
    ("PR_CAPBSET_READ", 23),
    ("PR_CAPBSET_DROP", 24),
    ("PR_GET_SECUREBITS", 27),
    ("PR_SET_SECUREBITS", 28),
    # Falco's table lists this option twice, so it renders "PR_MCE_KILL|PR_MCE_KILL".
    ("PR_MCE_KILL", 33),
    ("PR_MCE_KILL", 33),
    ("PR_SET_MM", 35),
    ("PR_SET_CHILD_SUBREAPER", 36),
    ("PR_GET_CHILD_SUBREAPER", 37),
    ("PR_SET_NO_NEW_PRIVS", 38),
    ("PR_GET_NO_NEW_PRIVS", 39),
    ("PR_GET_TID_ADDRESS", 40),
    ("PR_SET_THP_DISABLE", 41),
    ("PR_GET_THP_DISABLE", 42),
    ("PR_CAP_AMBIENT", 47),
)
PR_SET_NAME = 15
PR_GET_NAME = 16

# --- 2.2.7 bpf commands (value = index in enum bpf_cmd) -----------------------------------

_BPF_CMDS = (
    "BPF_MAP_CREATE", "BPF_MAP_LOOKUP_ELEM", "BPF_MAP_UPDATE_ELEM", "BPF_MAP_DELETE_ELEM",
    "BPF_MAP_GET_NEXT_KEY", "BPF_PROG_LOAD", "BPF_OBJ_PIN", "BPF_OBJ_GET", "BPF_PROG_ATTACH",
    "BPF_PROG_DETACH", "BPF_PROG_TEST_RUN|BPF_PROG_RUN", "BPF_PROG_GET_NEXT_ID",
    "BPF_MAP_GET_NEXT_ID", "BPF_PROG_GET_FD_BY_ID", "BPF_MAP_GET_FD_BY_ID",
    "BPF_OBJ_GET_INFO_BY_FD", "BPF_PROG_QUERY", "BPF_RAW_TRACEPOINT_OPEN", "BPF_BTF_LOAD",
    "BPF_BTF_GET_FD_BY_ID", "BPF_TASK_FD_QUERY", "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
    "BPF_MAP_FREEZE", "BPF_BTF_GET_NEXT_ID", "BPF_MAP_LOOKUP_BATCH",
    "BPF_MAP_LOOKUP_AND_DELETE_BATCH", "BPF_MAP_UPDATE_BATCH", "BPF_MAP_DELETE_BATCH",
    "BPF_LINK_CREATE", "BPF_LINK_UPDATE", "BPF_LINK_GET_FD_BY_ID", "BPF_LINK_GET_NEXT_ID",
    "BPF_ENABLE_STATS", "BPF_ITER_CREATE", "BPF_LINK_DETACH", "BPF_PROG_BIND_MAP",
)
BPF_COMMANDS: Table = tuple(
    (name, value) for value, names in enumerate(_BPF_CMDS) for name in names.split("|"))

# --- 2.2.8 mode bits -------------------------------------------------------------------------

CHMOD_MODE: Table = tuple((n, getattr(_stat, n)) for n in (
    "S_IXOTH", "S_IWOTH", "S_IROTH", "S_IXGRP", "S_IWGRP", "S_IRGRP",
    "S_IXUSR", "S_IWUSR", "S_IRUSR", "S_ISVTX", "S_ISGID", "S_ISUID"))

# --- 2.2.9 execve flags (computed by the driver; a tracer approximates them) -------------------

EXECVE_FLAGS: Table = (
    ("EXE_WRITABLE", 1),
    ("EXE_UPPER_LAYER", 2),
    ("EXE_FROM_MEMFD", 4),
    ("EXE_LOWER_LAYER", 8),
)

# --- 2.2.10 other tables (PPM value = kernel value unless a converter says otherwise) ----------

MEMFD_CREATE_FLAGS: Table = tuple((n, getattr(os, n)) for n in (
    "MFD_CLOEXEC", "MFD_ALLOW_SEALING", "MFD_HUGETLB"))

MOUNT_FLAGS: Table = (
    ("RDONLY", 1), ("NOSUID", 2), ("NODEV", 4), ("NOEXEC", 8), ("SYNCHRONOUS", 16),
    ("REMOUNT", 32), ("MANDLOCK", 64), ("DIRSYNC", 128), ("NOATIME", 1024),
    ("NODIRATIME", 2048), ("BIND", 4096), ("MOVE", 8192), ("REC", 16384), ("SILENT", 32768),
    ("POSIXACL", 65536), ("UNBINDABLE", 131072), ("PRIVATE", 262144), ("SLAVE", 524288),
    ("SHARED", 1048576), ("RELATIME", 2097152), ("KERNMOUNT", 4194304),
    ("I_VERSION", 8388608), ("STRICTATIME", 16777216), ("LAZYTIME", 33554432),
    ("NOSEC", 268435456), ("BORN", 536870912), ("ACTIVE", 1073741824),
    ("NOUSER", 2147483648),
)
_MS_MGC_MSK = 0xFFFF0000
_MS_MGC_VAL = 0xC0ED0000


def mount_flags_to_ppm(flags: int) -> int:
    """Strip the historic 0xC0ED magic from the top half, as the kernel does."""
    flags &= 0xFFFFFFFF
    if flags & _MS_MGC_MSK == _MS_MGC_VAL:
        flags &= ~_MS_MGC_MSK
    return flags


UMOUNT_FLAGS: Table = (("FORCE", 1), ("DETACH", 2), ("EXPIRE", 4), ("NOFOLLOW", 8))
UNLINKAT_FLAGS: Table = (("AT_REMOVEDIR", 0x200),)
LINKAT_FLAGS: Table = (("AT_SYMLINK_FOLLOW", 0x400), ("AT_EMPTY_PATH", 0x1000))
RENAMEAT2_FLAGS: Table = (("RENAME_NOREPLACE", 1), ("RENAME_EXCHANGE", 2), ("RENAME_WHITEOUT", 4))
FINIT_MODULE_FLAGS: Table = (
    ("MODULE_INIT_IGNORE_MODVERSIONS", 1),
    ("MODULE_INIT_IGNORE_VERMAGIC", 2),
    ("MODULE_INIT_COMPRESSED_FILE", 4),
)
CREAT_FLAGS: Table = (("FD_UPPER_LAYER_CREAT", 1), ("FD_LOWER_LAYER_CREAT", 2))

# (name, PPM value, kernel RESOLVE_* value): Falco renumbers these.
_RESOLVE = (
    ("RESOLVE_BENEATH", 1, 0x08),
    ("RESOLVE_IN_ROOT", 2, 0x10),
    ("RESOLVE_NO_MAGICLINKS", 4, 0x02),
    ("RESOLVE_NO_SYMLINKS", 8, 0x04),
    ("RESOLVE_NO_XDEV", 16, 0x01),
    ("RESOLVE_CACHED", 32, 0x20),
)
OPENAT2_FLAGS: Table = tuple((n, p) for n, p, _ in _RESOLVE)
RESOLVE_LINUX: Dict[str, int] = {n: k for n, _, k in _RESOLVE}


def resolve_flags_to_ppm(resolve: int) -> int:
    res = 0
    for _, pbit, kbit in _RESOLVE:
        if resolve & kbit:
            res |= pbit
    return res


#: AT_FDCWD as the kernel sees it (dirfd is an int in every *at() call).
AT_FDCWD = -100

# fcntl commands: the reference does not give Falco's numbering, so the Linux
# value is stored and named from the fcntl module.
try:
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - non-Unix
    _fcntl = None
_FCNTL_NAMES = (
    "F_DUPFD", "F_GETFD", "F_SETFD", "F_GETFL", "F_SETFL", "F_GETLK", "F_SETLK", "F_SETLKW",
    "F_SETOWN", "F_GETOWN", "F_SETSIG", "F_GETSIG", "F_SETLEASE", "F_GETLEASE", "F_NOTIFY",
    "F_DUPFD_CLOEXEC", "F_SETPIPE_SZ", "F_GETPIPE_SZ", "F_OFD_GETLK", "F_OFD_SETLK",
    "F_OFD_SETLKW", "F_ADD_SEALS", "F_GET_SEALS",
)
FCNTL_COMMANDS: Table = tuple(
    (n, getattr(_fcntl, n)) for n in _FCNTL_NAMES if _fcntl is not None and hasattr(_fcntl, n))
_FCNTL = dict(FCNTL_COMMANDS)
F_DUPFD = _FCNTL.get("F_DUPFD", 0)
F_DUPFD_CLOEXEC = _FCNTL.get("F_DUPFD_CLOEXEC", 1030)

# --- 2.2.11 signals ----------------------------------------------------------------------------

# Python exports aliases under the same numbers; Falco uses the canonical names.
_SIGNAL_ALIASES = frozenset({"SIGIOT", "SIGCLD", "SIGPOLL", "SIGUNUSED"})


def _signal_names() -> Dict[int, str]:
    names: Dict[int, str] = {}
    for attr in sorted(dir(_signal)):
        if not attr.startswith("SIG") or attr.startswith("SIG_") or attr in _SIGNAL_ALIASES:
            continue
        value = getattr(_signal, attr)
        if isinstance(value, int) and 1 <= int(value) <= 31:
            names.setdefault(int(value), attr)
    # SIGSTKFLT only appeared in the signal module with Python 3.11.
    names.setdefault(16, "SIGSTKFLT")
    return names


SIGNALS: Dict[int, str] = _signal_names()


def signal_name(sig: int) -> str:
    """Name of a standard signal (1-31), "" for 0 and real-time signals."""
    return SIGNALS.get(sig, "")


# --- 2.2.12 errno names ---------------------------------------------------------------------

_ERRNO_ALIASES = frozenset({"EWOULDBLOCK", "EDEADLOCK", "ENOTSUP"})
#: Kernel-internal codes that can leak to a syscall's return value.
_KERNEL_ERRNOS = {
    512: "ERESTARTSYS", 513: "ERESTARTNOINTR", 514: "ERESTARTNOHAND", 515: "ENOIOCTLCMD",
    516: "ERESTART_RESTARTBLOCK", 521: "EBADHANDLE", 522: "ENOTSYNC", 523: "EBADCOOKIE",
    524: "ENOTSUPP", 525: "ETOOSMALL", 526: "ESERVERFAULT", 527: "EBADTYPE",
    528: "EJUKEBOX", 529: "EIOCBQUEUED", 530: "EIOCBRETRY",
}


def _errno_names() -> Dict[int, str]:
    names: Dict[int, str] = {}
    for attr in sorted(dir(_errno)):
        if not attr.startswith("E") or attr in _ERRNO_ALIASES:
            continue
        value = getattr(_errno, attr)
        # Falco names 1..125 only (ENOKEY and later are printed as numbers).
        if isinstance(value, int) and 1 <= value <= 125:
            names.setdefault(value, attr)
    names.update(_KERNEL_ERRNOS)
    return names


ERRNO_NAMES: Dict[int, str] = _errno_names()


def errno_name(ret: Optional[int]) -> str:
    """``ENOENT`` for -2; "" for success, unknown codes and a missing return value."""
    if ret is None or ret >= 0:
        return ""
    return ERRNO_NAMES.get(-ret, "")


# --- 2.2.13 capabilities (bit = kernel capability number) -----------------------------------------

CAPABILITIES: Tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)


def capability_names(mask: int) -> str:
    """thread.cap_* rendering: set bits' names in ascending order, space-separated."""
    return " ".join(name for bit, name in enumerate(CAPABILITIES) if mask >> bit & 1)


#: Flag tables by the name Falco's event table gives them (used by params.py).
TABLES: Dict[str, Table] = {
    "file_flags": FILE_FLAGS,
    "socket_families": SOCKET_FAMILIES,
    "ptrace_requests": PTRACE_REQUESTS,
    "clone_flags": CLONE_FLAGS,
    "prctl_options": PRCTL_OPTIONS,
    "bpf_commands": BPF_COMMANDS,
    "chmod_mode": CHMOD_MODE,
    "execve_flags": EXECVE_FLAGS,
    "memfd_create_flags": MEMFD_CREATE_FLAGS,
    "mount_flags": MOUNT_FLAGS,
    "umount_flags": UMOUNT_FLAGS,
    "unlinkat_flags": UNLINKAT_FLAGS,
    "linkat_flags": LINKAT_FLAGS,
    "renameat2_flags": RENAMEAT2_FLAGS,
    "openat2_flags": OPENAT2_FLAGS,
    "finit_module_flags": FINIT_MODULE_FLAGS,
    "creat_flags": CREAT_FLAGS,
    "fcntl_commands": FCNTL_COMMANDS,
}


def table_names(table: Sequence[Tuple[str, int]]) -> Tuple[str, ...]:
    return tuple(n for n, _ in table)
