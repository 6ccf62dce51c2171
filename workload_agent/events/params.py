"""Per-syscall argument facts: what the C tracer captures, and Falco's exit-event params.

This table is the single source of truth for both sides of the tracer:

* ``Spec.args``: for each of the six register arguments, ``(capture kind,
  len_arg)`` telling csrc/ what memory to read (see capture_kinds);
* ``Spec.exit_needed``: whether the syscall-exit stop is taken by default.
  Falco evaluates every event with its result (``evt.res``, outputs print it,
  failed calls are evaluated too), so it is True everywhere except close; the
  rules engine may drop it for syscalls no enabled rule or state needs;
* ``Spec.params``: Falco's exit-event parameters in Falco's order, each with
  its Falco type, its rendering table/format and the *source* decode.py uses
  to compute it from registers, return value and blobs.

Sources are small tuples interpreted by decode.py, so a syscall's facts stay
in one row here:

    ("ret",)                  return value (signed)
    ("int", i) ("uint", i)    register i as s32 / u32
    ("umode", i)              register i as the kernel's umode_t (16 bits) for mkdir/chmod
    ("s64", i) ("u64", i)     register i as s64 / u64
    ("path", i)               PATH blob of arg i (FSPATH/FSRELPATH resolution by type)
    ("atpath", i, d)          PATH blob of arg i resolved against dirfd register d
    ("str", i)                string blob of arg i (PATH or STR)
    ("buf", i)                bytes blob of arg i
    ("sockaddr", i)           SOCKADDR/SOCKADDR_OUT/MSGHDR_NAME blob of arg i
    ("tuple", role, fd_i, addr_i)  SOCKTUPLE; role: connect/accept/send/recv
    ("argv0", i) ("argv_rest", i) ("argv_all", i)   ARGV blob of arg i
    ("exec_comm", i)          comm after a successful exec of PATH arg i
    ("pair", i, k)            k-th int of the INT_PAIR_OUT blob of arg i
    ("open_flags", i) ("open_mode", flags_i, mode_i) ("creat_mode", i)
    ("how", field)            field of the OPEN_HOW blob of arg 2 (openat2)
    ("how_mode",)             open_how.mode, masked like open's mode
    ("sock_flags", i)         SOCK_NONBLOCK/SOCK_CLOEXEC of register i as PPM O_* bits
    ("fd_flags", i)           open flags without access mode (pipe2, dup3)
    ("family", i) ("clone_flags", i) ("ptrace_req", i) ("mount_flags", i)
    ("prctl_str",) ("prctl_int",)
    ("const", v)              a fixed value
    ("ctx",)                  only the state context knows it (ctx.proc_params)
    ("none",)                 not obtainable by a ptrace tracer: unavailable
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, Optional, Tuple

from . import capture_kinds as K
from .arch import native_arch
from .flags import CLONE_LINUX, PR_SET_NAME, clone_flags_to_ppm
from .syscall_table import SYSCALLS

ArgSpec = Tuple[int, int]  # (capture kind, len_arg index or -1)

#: Falco param types (see reference §0.2 / §1.9).
PARAM_TYPES = frozenset({
    "ERRNO", "FD", "PID", "UID", "GID", "FLAGS8", "FLAGS16", "FLAGS32", "ENUMFLAGS8",
    "ENUMFLAGS16", "ENUMFLAGS32", "MODE", "FSPATH", "FSRELPATH", "CHARBUF", "BYTEBUF",
    "SOCKADDR", "SOCKTUPLE", "SIGTYPE", "UINT8", "UINT16", "UINT32", "UINT64", "INT32",
    "INT64", "ABSTIME", "DYN",
})


@dataclass(frozen=True)
class ParamSpec:
    """How one exit-event parameter is typed and where its value comes from (a row of a
    syscall's layout). The value itself, as rules see it, is rules.event.Param."""
    name: str
    type: str
    src: Tuple
    #: flag table name (flags.TABLES) for FLAGS*/ENUMFLAGS*/MODE
    table: Optional[str] = None
    #: "dec", "oct" or "hex" for numbers
    fmt: str = "dec"
    #: FSRELPATH: the name of the dirfd param it is relative to
    rel: Optional[str] = None


@dataclass(frozen=True)
class Spec:
    args: Tuple[ArgSpec, ...]
    exit_needed: bool
    params: Tuple[ParamSpec, ...]
    #: False: not a Falco event type; the param names are ours (generic in Falco)
    falco: bool = True
    #: layout and event type Falco uses when the call succeeds (execveat -> execve)
    success_params: Optional[Tuple[ParamSpec, ...]] = None
    success_event: Optional[str] = None
    #: (argument index, value): argument memory is read only when that argument has the
    #: value (the other cases pass integers where this one passes a pointer)
    capture_when: Tuple[int, ...] = ()

    def params_for(self, ret: Optional[int]) -> Tuple[ParamSpec, ...]:
        if self.success_params is not None and ret == 0:
            return self.success_params
        return self.params


def _args(*entries) -> Tuple[ArgSpec, ...]:
    """Capture spec for up to six args: a kind or (kind, len_arg) each, NONE-padded."""
    out = []
    for e in entries:
        out.append(tuple(e) if isinstance(e, tuple) else (e, -1))
    while len(out) < 6:
        out.append((K.NONE, -1))
    return tuple(out)


def P(name, type_, src, table=None, fmt="dec", rel=None) -> ParamSpec:
    return ParamSpec(name, type_, src, table, fmt, rel)


# Shorthands for params that recur across many events.
RES = P("res", "ERRNO", ("ret",))
FD_RET = P("fd", "FD", ("ret",))
NA = ("none",)
CTX = ("ctx",)


def _fd(name: str, i: int) -> ParamSpec:
    return P(name, "FD", ("int", i))


def _path(name: str, i: int) -> ParamSpec:
    return P(name, "FSPATH", ("path", i))


def _relpath(name: str, i: int, dirfd_param: str) -> ParamSpec:
    return P(name, "FSRELPATH", ("path", i), rel=dirfd_param)


def _exec_params(argv: int, envp: int, comm_src: Tuple = CTX) -> Tuple[ParamSpec, ...]:
    return (
        RES,
        P("exe", "CHARBUF", ("argv0", argv)),
        P("args", "BYTEBUF", ("argv_rest", argv)),
        P("tid", "PID", CTX),
        P("pid", "PID", CTX),
        P("ptid", "PID", CTX),
        P("cwd", "CHARBUF", CTX),
        P("fdlimit", "UINT64", CTX),
        P("pgft_maj", "UINT64", CTX),
        P("pgft_min", "UINT64", CTX),
        P("vm_size", "UINT32", CTX),
        P("vm_rss", "UINT32", CTX),
        P("vm_swap", "UINT32", CTX),
        P("comm", "CHARBUF", comm_src),
        P("cgroups", "BYTEBUF", CTX),
        P("env", "BYTEBUF", ("argv_all", envp)),
        P("tty", "UINT32", CTX),
        P("vpgid", "PID", CTX),
        P("loginuid", "UID", CTX),
        P("flags", "FLAGS32", CTX, table="execve_flags"),
        P("cap_inheritable", "UINT64", CTX, fmt="hex"),
        P("cap_permitted", "UINT64", CTX, fmt="hex"),
        P("cap_effective", "UINT64", CTX, fmt="hex"),
        P("exe_ino", "UINT64", CTX),
        P("exe_ino_ctime", "ABSTIME", CTX),
        P("exe_ino_mtime", "ABSTIME", CTX),
        P("uid", "UID", CTX),
        P("trusted_exepath", "FSPATH", CTX),
        P("pgid", "PID", CTX),
        P("gid", "GID", CTX),
    )


def _clone_params(flags_src: Tuple) -> Tuple[ParamSpec, ...]:
    return (
        P("res", "PID", ("ret",)),
        P("exe", "CHARBUF", CTX),
        P("args", "BYTEBUF", CTX),
        P("tid", "PID", CTX),
        P("pid", "PID", CTX),
        P("ptid", "PID", CTX),
        P("cwd", "CHARBUF", CTX),
        P("fdlimit", "INT64", CTX),
        P("pgft_maj", "UINT64", CTX),
        P("pgft_min", "UINT64", CTX),
        P("vm_size", "UINT32", CTX),
        P("vm_rss", "UINT32", CTX),
        P("vm_swap", "UINT32", CTX),
        P("comm", "CHARBUF", CTX),
        P("cgroups", "BYTEBUF", CTX),
        P("flags", "FLAGS32", flags_src, table="clone_flags"),
        P("uid", "UINT32", CTX),
        P("gid", "UINT32", CTX),
        P("vtid", "PID", CTX),
        P("vpid", "PID", CTX),
        P("pidns_init_start_ts", "UINT64", CTX),
    )


def _open_tail() -> Tuple[ParamSpec, ...]:
    return (P("dev", "UINT32", NA, fmt="hex"), P("ino", "UINT64", NA))


# What a tracer sees of fork/vfork: the kernel applies these clone flags.
_VFORK_PPM = clone_flags_to_ppm(CLONE_LINUX["CLONE_VM"] | CLONE_LINUX["CLONE_VFORK"])

SPECS: Dict[str, Spec] = {
    # --- process ---------------------------------------------------------------
    # After a successful exec the new comm is the executed file's basename.
    "execve": Spec(
        _args(K.PATH, K.ARGV, K.ARGV), True,
        _exec_params(1, 2) + (_path("filename", 0),),
        success_params=_exec_params(1, 2, ("exec_comm", 0)) + (_path("filename", 0),)),
    "execveat": Spec(
        _args(K.NONE, K.PATH, K.ARGV, K.ARGV), True, _exec_params(2, 3),
        success_params=_exec_params(2, 3, ("exec_comm", 1))
        + (P("filename", "FSPATH", ("atpath", 1, 0)),),
        success_event="execve"),
    "clone": Spec(_args(), True, _clone_params(("clone_flags", 0))),
    "clone3": Spec(_args(), True, _clone_params(NA)),
    "fork": Spec(_args(), True, _clone_params(("const", 0))),
    "vfork": Spec(_args(), True, _clone_params(("const", _VFORK_PPM))),
    "ptrace": Spec(_args(), True, (
        RES,
        P("addr", "DYN", ("u64", 2), fmt="hex"),
        P("data", "DYN", ("u64", 3), fmt="hex"),
        P("request", "ENUMFLAGS16", ("ptrace_req", 0), table="ptrace_requests"),
        P("pid", "PID", ("int", 1)),
    )),
    # The comm after PR_SET_NAME is read at the exit (slot 5 is no register prctl uses).
    "prctl": Spec(_args(K.NONE, K.STR, K.NONE, K.NONE, K.NONE, K.COMM_OUT), True, (
        RES,
        P("option", "ENUMFLAGS32", ("int", 0), table="prctl_options"),
        P("arg2_str", "CHARBUF", ("prctl_str",)),
        P("arg2_int", "INT64", ("prctl_int",)),
    ), capture_when=(0, PR_SET_NAME)),
    "kill": Spec(_args(), True, (RES, P("pid", "PID", ("int", 0)), P("sig", "SIGTYPE", ("uint", 1)))),
    "tkill": Spec(_args(), True, (RES, P("tid", "PID", ("int", 0)), P("sig", "SIGTYPE", ("uint", 1)))),
    "tgkill": Spec(_args(), True, (
        RES, P("pid", "PID", ("int", 0)), P("tid", "PID", ("int", 1)),
        P("sig", "SIGTYPE", ("uint", 2)))),
    "setns": Spec(_args(), True, (
        RES, _fd("fd", 0), P("nstype", "FLAGS32", ("clone_flags", 1), table="clone_flags"))),
    "unshare": Spec(_args(), True, (
        RES, P("flags", "FLAGS32", ("clone_flags", 0), table="clone_flags"))),
    "setuid": Spec(_args(), True, (RES, P("uid", "UID", ("uint", 0)))),
    "setgid": Spec(_args(), True, (RES, P("gid", "GID", ("uint", 0)))),
    "setreuid": Spec(_args(), True, (RES, P("ruid", "UID", ("uint", 0)), P("euid", "UID", ("uint", 1)))),
    # Falco types setregid's ids as UID (sic).
    "setregid": Spec(_args(), True, (RES, P("rgid", "UID", ("uint", 0)), P("egid", "UID", ("uint", 1)))),
    "setresuid": Spec(_args(), True, (
        RES, P("ruid", "UID", ("uint", 0)), P("euid", "UID", ("uint", 1)),
        P("suid", "UID", ("uint", 2)))),
    "setresgid": Spec(_args(), True, (
        RES, P("rgid", "GID", ("uint", 0)), P("egid", "GID", ("uint", 1)),
        P("sgid", "GID", ("uint", 2)))),
    # The new masks: the cap data the call passes, read at the stop (applied by the state).
    "capset": Spec(_args(K.NONE, K.CAPDATA), True, (
        RES, P("cap_inheritable", "UINT64", CTX, fmt="hex"),
        P("cap_permitted", "UINT64", CTX, fmt="hex"),
        P("cap_effective", "UINT64", CTX, fmt="hex"))),
    "setsid": Spec(_args(), True, (P("res", "PID", ("ret",)),)),
    "setpgid": Spec(_args(), True, (
        RES, P("pid", "PID", ("int", 0)), P("pgid", "PID", ("int", 1))), falco=False),
    "chroot": Spec(_args(K.PATH), True, (RES, _path("path", 0))),
    "process_vm_writev": Spec(_args(), True, (
        RES, P("pid", "PID", ("int", 0)), P("liovcnt", "UINT64", ("u64", 2)),
        P("riovcnt", "UINT64", ("u64", 4))), falco=False),
    "pivot_root": Spec(_args(K.PATH, K.PATH), True, (
        RES, _path("new_root", 0), _path("put_old", 1)), falco=False),
    "init_module": Spec(_args((K.BUF, 1), K.NONE, K.STR), True, (
        RES, P("img", "BYTEBUF", ("buf", 0)), P("length", "UINT64", ("u64", 1)),
        P("uargs", "CHARBUF", ("str", 2)))),
    "finit_module": Spec(_args(K.NONE, K.STR), True, (
        RES, _fd("fd", 0), P("uargs", "CHARBUF", ("str", 1)),
        P("flags", "FLAGS32", ("uint", 2), table="finit_module_flags"))),
    "bpf": Spec(_args(), True, (
        FD_RET, P("cmd", "ENUMFLAGS32", ("int", 0), table="bpf_commands"))),
    # --- files -------------------------------------------------------------------
    "open": Spec(_args(K.PATH), True, (
        FD_RET, _path("name", 0),
        P("flags", "FLAGS32", ("open_flags", 1), table="file_flags"),
        P("mode", "UINT32", ("open_mode", 1, 2), fmt="oct")) + _open_tail()),
    "openat": Spec(_args(K.NONE, K.PATH), True, (
        FD_RET, _fd("dirfd", 0), _relpath("name", 1, "dirfd"),
        P("flags", "FLAGS32", ("open_flags", 2), table="file_flags"),
        P("mode", "UINT32", ("open_mode", 2, 3), fmt="oct")) + _open_tail()),
    "openat2": Spec(_args(K.NONE, K.PATH, (K.OPEN_HOW, 3)), True, (
        FD_RET, _fd("dirfd", 0), _relpath("name", 1, "dirfd"),
        P("flags", "FLAGS32", ("how", "flags"), table="file_flags"),
        P("mode", "UINT32", ("how_mode",), fmt="oct"),
        P("resolve", "FLAGS32", ("how", "resolve"), table="openat2_flags")) + _open_tail()),
    "creat": Spec(_args(K.PATH), True, (
        FD_RET, _path("name", 0), P("mode", "UINT32", ("creat_mode", 1), fmt="oct"))
        + _open_tail() + (P("creat_flags", "FLAGS16", ("const", 0), table="creat_flags"),)),
    "open_by_handle_at": Spec(_args(), True, (
        FD_RET, _fd("mountfd", 0),
        P("flags", "FLAGS32", ("open_flags", 2), table="file_flags"),
        P("path", "FSPATH", CTX), P("dev", "UINT32", NA, fmt="hex"), P("ino", "UINT64", NA))),
    # close is decoded without its exit: the kernel releases the fd even when
    # close() reports an error (EINTR/EIO), so state may drop it at entry, and
    # close is too frequent to pay for a second stop.
    "close": Spec(_args(), False, (RES, _fd("fd", 0))),
    "close_range": Spec(_args(), True, (
        RES, P("first", "UINT32", ("uint", 0)), P("last", "UINT32", ("uint", 1)),
        P("flags", "UINT32", ("uint", 2))), falco=False),
    "chdir": Spec(_args(K.PATH), True, (RES, P("path", "CHARBUF", ("str", 0)))),
    "fchdir": Spec(_args(), True, (RES, _fd("fd", 0))),
    "unlink": Spec(_args(K.PATH), True, (RES, _path("path", 0))),
    "unlinkat": Spec(_args(K.NONE, K.PATH), True, (
        RES, _fd("dirfd", 0), _relpath("name", 1, "dirfd"),
        P("flags", "FLAGS32", ("uint", 2), table="unlinkat_flags"))),
    "rmdir": Spec(_args(K.PATH), True, (RES, _path("path", 0))),
    "rename": Spec(_args(K.PATH, K.PATH), True, (RES, _path("oldpath", 0), _path("newpath", 1))),
    "renameat": Spec(_args(K.NONE, K.PATH, K.NONE, K.PATH), True, (
        RES, _fd("olddirfd", 0), _relpath("oldpath", 1, "olddirfd"),
        _fd("newdirfd", 2), _relpath("newpath", 3, "newdirfd"))),
    "renameat2": Spec(_args(K.NONE, K.PATH, K.NONE, K.PATH), True, (
        RES, _fd("olddirfd", 0), _relpath("oldpath", 1, "olddirfd"),
        _fd("newdirfd", 2), _relpath("newpath", 3, "newdirfd"),
        P("flags", "FLAGS32", ("uint", 4), table="renameat2_flags"))),
    # futimens() is utimensat(fd, NULL, ...): the file is then the fd itself. `times`
    # is the raw pointer: 0 means "now" (a plain touch), anything else explicit times.
    "utimensat": Spec(_args(K.NONE, K.PATH), True, (
        RES, _fd("fd", 0), _relpath("path", 1, "fd"),
        P("times", "UINT64", ("u64", 2), fmt="hex"),
        P("flags", "UINT32", ("uint", 3), fmt="hex")), falco=False),
    "truncate": Spec(_args(K.PATH), True, (
        RES, _path("path", 0), P("length", "UINT64", ("u64", 1))), falco=False),
    "ftruncate": Spec(_args(), True, (
        RES, _fd("fd", 0), P("length", "UINT64", ("u64", 1))), falco=False),
    "mkdir": Spec(_args(K.PATH), True, (
        RES, _path("path", 0), P("mode", "UINT32", ("umode", 1), fmt="hex"))),
    "mkdirat": Spec(_args(K.NONE, K.PATH), True, (
        RES, _fd("dirfd", 0), _relpath("path", 1, "dirfd"),
        P("mode", "UINT32", ("umode", 2), fmt="hex"))),
    "symlink": Spec(_args(K.STR, K.PATH), True, (
        RES, P("target", "CHARBUF", ("str", 0)), _path("linkpath", 1))),
    "symlinkat": Spec(_args(K.STR, K.NONE, K.PATH), True, (
        RES, P("target", "CHARBUF", ("str", 0)), _fd("linkdirfd", 1),
        _relpath("linkpath", 2, "linkdirfd"))),
    "link": Spec(_args(K.PATH, K.PATH), True, (RES, _path("oldpath", 0), _path("newpath", 1))),
    "linkat": Spec(_args(K.NONE, K.PATH, K.NONE, K.PATH), True, (
        RES, _fd("olddir", 0), _relpath("oldpath", 1, "olddir"),
        _fd("newdir", 2), _relpath("newpath", 3, "newdir"),
        P("flags", "FLAGS32", ("uint", 4), table="linkat_flags"))),
    "chmod": Spec(_args(K.PATH), True, (
        RES, _path("filename", 0), P("mode", "MODE", ("umode", 1), table="chmod_mode", fmt="oct"))),
    "fchmod": Spec(_args(), True, (
        RES, _fd("fd", 0), P("mode", "MODE", ("umode", 1), table="chmod_mode", fmt="oct"))),
    "fchmodat": Spec(_args(K.NONE, K.PATH), True, (
        RES, _fd("dirfd", 0), _relpath("filename", 1, "dirfd"),
        P("mode", "MODE", ("umode", 2), table="chmod_mode", fmt="oct"))),
    "mount": Spec(_args(K.STR, K.PATH, K.STR), True, (
        RES, P("dev", "CHARBUF", ("str", 0)), _path("dir", 1), P("type", "CHARBUF", ("str", 2)),
        P("flags", "FLAGS32", ("mount_flags", 3), table="mount_flags"))),
    "umount2": Spec(_args(K.PATH), True, (
        RES, _path("name", 0), P("flags", "FLAGS32", ("uint", 1), table="umount_flags"))),
    "memfd_create": Spec(_args(K.STR), True, (
        FD_RET, P("name", "CHARBUF", ("str", 0)),
        P("flags", "FLAGS32", ("uint", 1), table="memfd_create_flags"))),
    # Falco keeps the raw kernel value here and renders it with the open-flag table.
    "userfaultfd": Spec(_args(), True, (
        RES, P("flags", "FLAGS32", ("uint", 0), table="file_flags"))),
    # --- fd table ---------------------------------------------------------------------
    "dup": Spec(_args(), True, (P("res", "FD", ("ret",)), _fd("oldfd", 0))),
    "dup2": Spec(_args(), True, (P("res", "FD", ("ret",)), _fd("oldfd", 0), _fd("newfd", 1))),
    "dup3": Spec(_args(), True, (
        P("res", "FD", ("ret",)), _fd("oldfd", 0), _fd("newfd", 1),
        P("flags", "FLAGS32", ("fd_flags", 2), table="file_flags"))),
    "fcntl": Spec(_args(), True, (
        P("res", "FD", ("ret",)), _fd("fd", 0),
        P("cmd", "ENUMFLAGS8", ("int", 1), table="fcntl_commands"),
        P("arg", "UINT64", ("u64", 2), fmt="hex"))),
    "pipe": Spec(_args(K.INT_PAIR_OUT), True, (
        RES, P("fd1", "FD", ("pair", 0, 0)), P("fd2", "FD", ("pair", 0, 1)),
        P("ino", "UINT64", NA))),
    "pipe2": Spec(_args(K.INT_PAIR_OUT), True, (
        RES, P("fd1", "FD", ("pair", 0, 0)), P("fd2", "FD", ("pair", 0, 1)),
        P("ino", "UINT64", NA), P("flags", "FLAGS32", ("fd_flags", 1), table="file_flags"))),
    "eventfd": Spec(_args(), True, (FD_RET, P("initval", "UINT64", ("uint", 0))), falco=False),
    "eventfd2": Spec(_args(), True, (
        FD_RET, P("initval", "UINT64", ("uint", 0)), P("flags", "UINT32", ("uint", 1), fmt="hex")),
        falco=False),
    "signalfd": Spec(_args(), True, (FD_RET, _fd("sigfd", 0)), falco=False),
    "signalfd4": Spec(_args(), True, (
        FD_RET, _fd("sigfd", 0), P("flags", "UINT32", ("uint", 3), fmt="hex")), falco=False),
    "timerfd_create": Spec(_args(), True, (
        FD_RET, P("clockid", "UINT32", ("uint", 0)), P("flags", "UINT32", ("uint", 1), fmt="hex")),
        falco=False),
    "inotify_init": Spec(_args(), True, (FD_RET,), falco=False),
    "inotify_init1": Spec(_args(), True, (
        FD_RET, P("flags", "UINT32", ("uint", 0), fmt="hex")), falco=False),
    "epoll_create": Spec(_args(), True, (FD_RET, P("size", "INT32", ("int", 0))), falco=False),
    "epoll_create1": Spec(_args(), True, (
        FD_RET, P("flags", "UINT32", ("uint", 0), fmt="hex")), falco=False),
    "io_uring_setup": Spec(_args(), True, (
        FD_RET, P("entries", "UINT32", ("uint", 0))), falco=False),
    # Submissions through the ring are invisible to seccomp and ptrace: registering
    # files or buffers is the step to see.
    "io_uring_register": Spec(_args(), True, (
        RES, _fd("fd", 0), P("opcode", "UINT32", ("uint", 1)),
        P("nr_args", "UINT32", ("uint", 3))), falco=False),
    "pidfd_open": Spec(_args(), True, (
        FD_RET, P("pid", "PID", ("int", 0)), P("flags", "UINT32", ("uint", 1), fmt="hex")),
        falco=False),
    "pidfd_getfd": Spec(_args(), True, (
        FD_RET, _fd("pidfd", 0), _fd("targetfd", 1), P("flags", "UINT32", ("uint", 2), fmt="hex")),
        falco=False),
    # --- network ----------------------------------------------------------------------
    "socket": Spec(_args(), True, (
        FD_RET, P("domain", "ENUMFLAGS32", ("family", 0), table="socket_families"),
        P("type", "UINT32", ("uint", 1)), P("proto", "UINT32", ("uint", 2)),
        P("flags", "FLAGS32", ("sock_flags", 1), table="file_flags"))),
    "socketpair": Spec(_args(K.NONE, K.NONE, K.NONE, K.INT_PAIR_OUT), True, (
        RES, P("fd1", "FD", ("pair", 3, 0)), P("fd2", "FD", ("pair", 3, 1)),
        P("source", "UINT64", NA, fmt="hex"), P("peer", "UINT64", NA, fmt="hex"),
        P("domain", "ENUMFLAGS32", ("family", 0), table="socket_families"),
        P("type", "UINT32", ("uint", 1)), P("proto", "UINT32", ("uint", 2)))),
    "connect": Spec(_args(K.SOCKNAME_OUT, (K.SOCKADDR, 2)), True, (
        RES, P("tuple", "SOCKTUPLE", ("tuple", "connect", 0, 1)), _fd("fd", 0),
        P("addr", "SOCKADDR", ("sockaddr", 1)))),
    "bind": Spec(_args(K.NONE, (K.SOCKADDR, 2)), True, (
        RES, P("addr", "SOCKADDR", ("sockaddr", 1)), _fd("fd", 0))),
    "listen": Spec(_args(), True, (RES, _fd("fd", 0), P("backlog", "INT32", ("int", 1)))),
    "accept": Spec(_args(K.NONE, (K.SOCKADDR_OUT, 2), K.NONE, K.NONE, K.NONE, K.SOCKNAME_RET), True, (
        FD_RET, P("tuple", "SOCKTUPLE", ("tuple", "accept", 0, 1)),
        P("queuepct", "UINT8", ("const", 0)), P("queuelen", "UINT32", ("const", 0)),
        P("queuemax", "UINT32", ("const", 0)))),
    "accept4": Spec(_args(K.NONE, (K.SOCKADDR_OUT, 2), K.NONE, K.NONE, K.NONE, K.SOCKNAME_RET), True, (
        FD_RET, P("tuple", "SOCKTUPLE", ("tuple", "accept", 0, 1)),
        P("queuepct", "UINT8", ("const", 0)), P("queuelen", "UINT32", ("const", 0)),
        P("queuemax", "UINT32", ("const", 0)),
        P("flags", "INT32", ("sock_flags", 3), fmt="hex"))),
    "getpeername": Spec(_args(K.NONE, (K.SOCKADDR_OUT, 2)), True, (
        RES, _fd("fd", 0), P("addr", "SOCKADDR", ("sockaddr", 1))), falco=False),
    "getsockname": Spec(_args(K.NONE, (K.SOCKADDR_OUT, 2)), True, (
        RES, _fd("fd", 0), P("addr", "SOCKADDR", ("sockaddr", 1))), falco=False),
    "shutdown": Spec(_args(), True, (RES, _fd("fd", 0), P("how", "INT32", ("int", 1))),
                     falco=False),
    "sendto": Spec(_args(K.NONE, (K.BUF, 2), K.NONE, K.NONE, (K.SOCKADDR, 5)), True, (
        RES, P("data", "BYTEBUF", ("buf", 1)), _fd("fd", 0), P("size", "UINT32", ("uint", 2)),
        P("tuple", "SOCKTUPLE", ("tuple", "send", 0, 4)))),
    # The message payload (iovecs) is not captured: data/size are unavailable.
    "sendmsg": Spec(_args(K.NONE, K.MSGHDR_NAME), True, (
        RES, P("data", "BYTEBUF", NA), _fd("fd", 0), P("size", "UINT32", NA),
        P("tuple", "SOCKTUPLE", ("tuple", "send", 0, 1)))),
    # Received bytes would need an exit-time buffer read, which no capture kind
    # provides yet: data is unavailable.
    "recvfrom": Spec(_args(K.NONE, K.NONE, K.NONE, K.NONE, (K.SOCKADDR_OUT, 5)), True, (
        RES, P("data", "BYTEBUF", NA), P("tuple", "SOCKTUPLE", ("tuple", "recv", 3, 4)),
        _fd("fd", 0), P("size", "UINT32", ("uint", 2)))),
    # MSGHDR_NAME is read at entry, when recvmsg's msg_name is not filled yet:
    # the source comes from state (ctx.sock_peer) instead.
    "recvmsg": Spec(_args(), True, (
        RES, P("size", "UINT32", NA), P("data", "BYTEBUF", NA),
        P("tuple", "SOCKTUPLE", ("tuple", "recv", 0, 1)), P("msgcontrol", "BYTEBUF", NA),
        _fd("fd", 0))),
}

#: The issue's default traced set (before rules compute their own).
DEFAULT_SYSCALLS: FrozenSet[str] = frozenset({
    "execve", "execveat", "open", "openat", "openat2", "creat", "connect", "accept",
    "accept4", "bind", "listen", "socket", "sendto", "sendmsg", "unlink", "unlinkat",
    "rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "symlink", "symlinkat",
    "link", "linkat", "chmod", "fchmod", "fchmodat", "setuid", "setgid", "setreuid",
    "setregid", "setresuid", "setresgid", "capset", "ptrace", "process_vm_writev",
    "memfd_create", "mount", "umount2", "pivot_root", "chroot", "setns", "unshare",
    "init_module", "finit_module", "bpf", "userfaultfd", "dup", "dup2", "dup3", "kill",
    "tkill", "tgkill", "prctl",
})

#: Syscalls traced only to keep process/fd/cwd state right (reference §3.4).
#: Every call the state tracker applies (what `record` traces so a capture keeps state true).
STATEFUL_SYSCALLS: FrozenSet[str] = frozenset({
    "clone", "clone3", "fork", "vfork", "execve", "execveat", "chdir", "fchdir", "close",
    "close_range", "open", "openat", "openat2", "creat", "open_by_handle_at", "dup", "dup2",
    "dup3", "fcntl", "pipe", "pipe2", "socket", "socketpair", "bind", "connect", "accept",
    "accept4", "getpeername", "getsockname", "shutdown", "sendto", "sendmsg", "recvfrom",
    "recvmsg", "eventfd", "eventfd2", "signalfd", "signalfd4", "timerfd_create",
    "inotify_init", "inotify_init1", "epoll_create", "epoll_create1", "memfd_create",
    "userfaultfd", "io_uring_setup", "bpf", "pidfd_open", "pidfd_getfd", "setuid", "setgid",
    "setreuid", "setregid", "setresuid", "setresgid", "capset", "unshare", "setns", "setsid",
    "chroot", "prctl", "mount", "umount2",
})

#: The calls that do a legacy call's job where it does not exist: aarch64 (like every
#: architecture that came after the *at calls) has only these, and its libc's open()
#: is openat, its fork() is clone. A rule that names the legacy call is evaluated
#: against these there (see equivalents()), so a rule on `open` still sees opens.
#: Each is (replacement, condition that makes it the legacy call, "" when any is).
AT_FORMS: Dict[str, Tuple[Tuple[str, str], ...]] = {
    "open": (("openat", ""),),
    "creat": (("openat", "evt.arg.flags contains O_CREAT and evt.arg.flags contains O_TRUNC"
                         " and evt.arg.flags contains O_WRONLY"),),
    "unlink": (("unlinkat", "not evt.arg.flags contains AT_REMOVEDIR"),),
    "rmdir": (("unlinkat", "evt.arg.flags contains AT_REMOVEDIR"),),
    "rename": (("renameat", ""), ("renameat2", "")),
    "mkdir": (("mkdirat", ""),), "symlink": (("symlinkat", ""),), "link": (("linkat", ""),),
    "chmod": (("fchmodat", ""),), "pipe": (("pipe2", ""),), "dup2": (("dup3", ""),),
    "fork": (("clone", "not evt.arg.flags contains CLONE_VM"),),
    "vfork": (("clone", "evt.arg.flags contains CLONE_VFORK"),),
    "eventfd": (("eventfd2", ""),), "signalfd": (("signalfd4", ""),),
    "inotify_init": (("inotify_init1", ""),), "epoll_create": (("epoll_create1", ""),),
}

#: Syscalls that exist only on some architectures (aarch64 has the *at variants only).
LEGACY_X86_ONLY: FrozenSet[str] = frozenset(AT_FORMS)


def equivalents(arch: Optional[str] = None) -> Dict[str, Tuple[Tuple[str, str], ...]]:
    """{legacy call: its AT_FORMS} for the legacy calls that arch (default: this
    machine) lacks; empty on x86_64."""
    table = SYSCALLS.get(arch or native_arch(), {})
    return {old: new for old, new in AT_FORMS.items() if old not in table}


def event_type(name: str, ret: Optional[int]) -> str:
    """Falco's evt.type for a syscall with this result (a successful execveat is an execve)."""
    spec = SPECS.get(name)
    if spec is not None and spec.success_event and ret == 0:
        return spec.success_event
    return name


def _with_dirfds(spec: Spec) -> Tuple[ArgSpec, ...]:
    """The spec's captures, each relative-path argument told which dirfd register it
    resolves against (the tracer reads that directory at the stop)."""
    args = list(spec.args)
    layouts = (spec.params,) + ((spec.success_params,) if spec.success_params else ())
    for layout in layouts:
        by_name = {p.name: p for p in layout}
        for p in layout:
            dirfd = None
            if p.src[0] == "atpath":
                i, dirfd = p.src[1], p.src[2]
            elif p.type == "FSRELPATH" and p.src[0] == "path" and p.rel in by_name:
                i = p.src[1]
                rel = by_name[p.rel].src
                dirfd = rel[1] if rel[0] == "int" else None
            if dirfd is not None and args[i][0] == K.PATH:
                args[i] = (K.PATH, dirfd)
    return tuple(args)


#: Calls whose record establishes the fd's state itself (its address, its new number):
#: nothing to resolve at the stop.
_FD_STATE_IN_RECORD = frozenset({"connect", "bind", "accept", "accept4"})


def _with_fd_origins(name: str, spec: Spec, args: Tuple[ArgSpec, ...]) -> Tuple[ArgSpec, ...]:
    """Every fd argument resolved at the stop (its /proc link and socket ends): an fd the
    state has not seen, or whose number was reused, is judged by what it was then."""
    if name in _FD_STATE_IN_RECORD:
        return args
    out = list(args)
    # A dirfd matters only for a relative path, whose base the tracer sends already.
    dirfds = {d for kind, d in args if kind == K.PATH and d >= 0}
    for p in spec.params + (spec.success_params or ()):
        if p.type == "FD" and p.src[0] == "int" and out[p.src[1]][0] == K.NONE \
                and p.src[1] not in dirfds:
            out[p.src[1]] = (K.FD_ORIGIN, -1)
    return tuple(out)


def capture_table() -> Dict[str, Tuple[Tuple[ArgSpec, ...], bool]]:
    """What the C side needs per syscall name: the six arg captures and exit_needed."""
    return {name: (_with_fd_origins(name, spec, _with_dirfds(spec)), spec.exit_needed)
            for name, spec in SPECS.items()}


def param_types(name: str) -> Dict[str, ParamSpec]:
    """Every param a syscall's events may carry, by name (all layouts)."""
    spec = SPECS.get(name)
    if spec is None:
        return {}
    out = {p.name: p for p in spec.params}
    for p in spec.success_params or ():
        out.setdefault(p.name, p)
    return out
