"""Thin wrapper over the C tracer core: start a traced workload, read record batches.

Python never calls ptrace or wait here: the C thread owns both.
"""
from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs milliseconds at every container start
if TYPE_CHECKING:
    from typing import Mapping, Sequence

from ..events import arch as archs
from ..events.records import decode_batch
from ..events.syscall_table import AUDIT_ARCH, SYSCALLS
from . import guard, seccomp


ATTACH_STATS = ("requested", "attached", "gone", "denied", "busy", "known", "overflow")


class TraceStartError(RuntimeError):
    """Tracing could not start; the workload is not running."""


class WorkloadExecError(RuntimeError):
    """The workload's own exec failed (not found, not executable...)."""

    def __init__(self, message: str, errno_: int):
        super().__init__(message)
        self.errno = errno_


class CaptureSpec:
    """What to do for one syscall: take the exit stop? what memory to read per argument?
    (A plain class, not a dataclass or a named tuple: this module is on every start's way
    to the workload's exec, and their modules cost milliseconds to import.)"""

    __slots__ = ("exit_needed", "args", "when")

    def __init__(self, exit_needed: bool = True, args: tuple = (), when: tuple = ()):
        self.exit_needed = exit_needed
        self.args = args    # per argument: (capture kind, len_arg or -1)
        #: (argument index, value): read argument memory only when that argument has it
        self.when = when

    def _values(self) -> tuple:
        return (self.exit_needed, self.args, self.when)

    def __eq__(self, other) -> bool:
        return isinstance(other, CaptureSpec) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return f"CaptureSpec(exit_needed={self.exit_needed!r}, args={self.args!r}, when={self.when!r})"


_lib = None
_ffi = None


def _core():
    global _lib, _ffi
    if _lib is None:
        from ._core import ffi, lib
        _lib, _ffi = lib, ffi
    return _ffi, _lib


MIN_KERNEL = (5, 3)  # PTRACE_GET_SYSCALL_INFO; the seccomp stop after the entry stop (4.8)


def kernel_version(release: str | None = None) -> tuple[int, int]:
    """(major, minor) of a release like "6.1.0-18-amd64"; (0, 0) when it is not one
    (parsed by hand: the re module is not otherwise needed before the workload's exec)."""
    parts = (release or os.uname().release).split(".", 2)
    if len(parts) < 2 or not parts[0].isdigit():
        return (0, 0)
    minor = parts[1]
    digits = len(minor) - len(minor.lstrip("0123456789"))
    return (int(parts[0]), int(minor[:digits])) if digits else (0, 0)


def available() -> tuple[bool, str]:
    if kernel_version() < MIN_KERNEL:
        return False, (f"kernel {os.uname().release} is too old: the tracer needs Linux "
                       f">= {MIN_KERNEL[0]}.{MIN_KERNEL[1]} (PTRACE_GET_SYSCALL_INFO)")
    try:
        _core()
    except ImportError as exc:
        return False, f"the C tracer extension is not built ({exc})"
    return True, ""


class Tracer:
    def __init__(self, argv: Sequence[str], *, path: str, env: Mapping[str, str] | None = None,
                 syscalls: Mapping[str, CaptureSpec], use_seccomp: bool = True,
                 ring_bytes: int = 8 << 20, sigmask: int = 0, max_argv_bytes: int = 16384,
                 wake_gap_us: int = 2000, prefilter=None, never_drop: bool = False,
                 self_protect: str = "deny", foreign_arch: str = "decode", follow_cpu: bool = True):
        ffi, lib = _core()
        self._ffi, self._lib = ffi, lib
        arch = archs.native_arch()
        unknown = sorted(n for n in syscalls if not any(n in t for t in SYSCALLS.values()))
        if unknown:
            raise ValueError(f"unknown syscalls: {', '.join(unknown)}")
        self.syscalls = dict(syscalls)
        specs = self._spec_table(arch, syscalls)
        self._keep = [specs]
        self._specs = specs
        compat = self._compat_config(archs.compat_arch(arch), syscalls)
        rules = guard.guard_rules(arch, syscalls, self_protect=self_protect)
        self.guard_labels = [r.label for r in rules]
        foreign_deny = foreign_arch == "deny"
        # security waits for the alert as long as it takes; availability not forever
        self._guard = guard.build(ffi, rules, arch, foreign_deny=foreign_deny,
                                  ack_timeout_ms=0 if never_drop else 2000)
        self._filter = None
        if use_seccomp:
            traced = {n: (seccomp.DATA_EXIT if s.exit_needed else 0) for n, s in syscalls.items()}
            prog = seccomp.build_filter(traced, arch, guarded=guard.guarded_syscalls(rules),
                                        foreign_deny=foreign_deny)
            self._filter = ffi.new("char[]", prog)
            self._filter_len = len(prog) // 8
        c_path = ffi.new("char[]", os.fsencode(path))
        c_argv = [ffi.new("char[]", os.fsencode(a)) for a in argv]
        env = os.environ if env is None else env
        c_env = [ffi.new("char[]", os.fsencode(k) + b"=" + os.fsencode(v)) for k, v in env.items()]
        argv_arr = ffi.new("char *[]", c_argv + [ffi.NULL])
        env_arr = ffi.new("char *[]", c_env + [ffi.NULL])
        mask = ffi.new("uint64_t *", sigmask)
        self._keep += [c_path, c_argv, c_env, argv_arr, env_arr, mask]
        cfg = ffi.new("struct wa_config *")
        cfg.path = c_path
        cfg.argv = argv_arr
        cfg.envp = env_arr
        cfg.filter = self._filter if self._filter is not None else ffi.NULL
        cfg.filter_len = self._filter_len if self._filter is not None else 0
        cfg.specs = specs
        cfg.ring_bytes = ring_bytes
        cfg.max_str = 4096
        cfg.max_argv_bytes = max_argv_bytes
        cfg.max_argv_items = 1024
        cfg.sigmask = mask
        cfg.compat = compat if compat is not None else ffi.NULL
        cfg.wake_gap_us = wake_gap_us
        self._table = SYSCALLS[arch]
        cfg.prefilter = self._prefilter_c(prefilter)
        cfg.never_drop = 1 if never_drop else 0
        cfg.guard = self._guard
        cfg.follow_cpu = 1 if follow_cpu else 0
        self._cfg = cfg
        self._t = None
        self._buf = ffi.new("char[]", 1 << 20)
        self._notice_buf = ffi.new("char[]", 1 << 18)   # the scanner thread's own
        self.pid = None

    def _prefilter_c(self, prefilter):
        if not prefilter:
            return self._ffi.NULL
        pf, keep = prefilter.to_c(self._ffi, self._lib, self._table)
        self._keep += [pf] + keep   # alive until close: the tracer may still be reading the old one
        return pf

    def set_prefilter(self, prefilter) -> None:
        """Swap what the tracer drops at the stop (new rules pushed while running)."""
        if self._t is not None:
            self._lib.wa_set_prefilter(self._t, self._prefilter_c(prefilter))

    def _spec_table(self, arch: str, syscalls: Mapping[str, CaptureSpec]):
        """struct wa_spec[WA_MAX_NR] of one ABI, by its syscall numbers."""
        ffi, lib = self._ffi, self._lib
        specs = ffi.new("struct wa_spec[]", lib.WA_MAX_NR)
        for nr, name in archs.numbers_of(arch, syscalls).items():
            if nr >= lib.WA_MAX_NR:
                continue
            spec = syscalls[name]
            s = specs[nr]
            s.traced = 1
            s.exit_needed = 1 if spec.exit_needed else 0
            for i in range(6):
                kind, len_arg = spec.args[i] if i < len(spec.args) else (0, -1)
                s.kind[i] = kind
                s.len_arg[i] = len_arg if 0 <= len_arg < 6 else 255
            if spec.when:
                s.when_arg = spec.when[0] + 1
                s.when_value = spec.when[1]
        return specs

    def _compat_config(self, compat: str | None, syscalls: Mapping[str, CaptureSpec]):
        """struct wa_compat: the compat ABI decoded like the native one (same specs by name)."""
        if compat is None:
            return None
        ffi, lib = self._ffi, self._lib
        specs = self._spec_table(compat, syscalls)
        c = ffi.new("struct wa_compat *")
        c.arch = AUDIT_ARCH[compat]
        c.specs = specs
        c.socketcall_nr = SYSCALLS[compat].get("socketcall", -1)
        for call in range(lib.WA_SOCKETCALL_MAX):
            c.socketcall_to[call] = -1
        for call, (nr, nargs) in archs.socketcall_routes(compat, syscalls).items():
            c.socketcall_to[call] = nr
            c.socketcall_nargs[call] = nargs
        self._keep += [specs, c]
        return c

    def start(self) -> int:
        ffi, lib = self._ffi, self._lib
        err = ffi.new("char[]", 512)
        exec_errno = ffi.new("int *")
        t = lib.wa_start(self._cfg, err, 512, exec_errno)
        if t == ffi.NULL:
            msg = ffi.string(err).decode(errors="replace")
            if exec_errno[0]:
                raise WorkloadExecError(msg, exec_errno[0])
            raise TraceStartError(msg)
        self._t = t
        self.pid = lib.wa_pid(t)
        return self.pid

    def wait(self, timeout: float) -> bool:
        return bool(self._lib.wa_wait(self._t, int(timeout * 1000)))

    def read_raw(self) -> bytes:
        n = self._lib.wa_read(self._t, self._buf, len(self._buf))
        return self._ffi.buffer(self._buf, n)[:] if n else b""

    def read(self):
        raw = self.read_raw()
        return decode_batch(raw) if raw else []

    def done(self) -> int | None:
        """The main workload process's raw wait status once it has exited, else None."""
        st = self._ffi.new("int *")
        return st[0] if self._lib.wa_done(self._t, st) else None

    def stats(self) -> dict:
        s = self._ffi.new("struct wa_stats *")
        self._lib.wa_get_stats(self._t, s)
        return {k: getattr(s, k) for k, _ in self._ffi.typeof("struct wa_stats").fields}

    def ack(self) -> None:
        """Everything read so far is handled: tracees held at a guarded stop go on."""
        if self._t is not None:
            self._lib.wa_ack(self._t)

    # ---- foreign processes (csrc/attach.c); policy is the caller's (attach/scanner.py) ----

    def attach(self, pid: int) -> bool:
        """Ask the tracer thread to seize pid; its ATTACH record tells how it went."""
        return self._t is not None and self._lib.wa_attach(self._t, pid) == 0

    def attach_kick(self) -> None:
        if self._t is not None:
            self._lib.wa_attach_kick(self._t)

    def knows(self, pid: int) -> bool:
        """Whether the tracer follows this tid already (a hint, read without locking)."""
        return self._t is not None and bool(self._lib.wa_task_known(self._t, pid))

    def announced(self, pid: int) -> bool:
        """Whether pid is a process we attached to whose ATTACH record has gone out."""
        return self._t is not None and self._lib.wa_task_known(self._t, pid) == 2

    def notice(self, pid: int):
        """Alert mode: the ATTACH record of a foreign process read from /proc now, without
        seizing it (None when it is gone): its facts are those of the moment it was seen."""
        from ..events import records as R
        from ..events.syscall_table import AUDIT_ARCH

        n = self._lib.wa_notice_record(pid, self._notice_buf, len(self._notice_buf),
                                       self._cfg.max_argv_bytes, AUDIT_ARCH[archs.native_arch()])
        if not n:
            return None
        recs = R.decode_batch(bytes(self._ffi.buffer(self._notice_buf, n)))
        return recs[0] if recs else None

    def scan_start(self, period: float) -> bool:
        """Start the C watcher that wakes scan_wait when a pid we do not follow appears."""
        return self._t is not None and self._lib.wa_scan_start(self._t, int(period * 1e6)) == 0

    def scan_wait(self, timeout: float) -> bool:
        return self._t is not None and bool(self._lib.wa_scan_wait(self._t, int(timeout * 1000)))

    def scan_stop(self) -> None:
        if self._t is not None:
            self._lib.wa_scan_stop(self._t)

    def attach_stats(self) -> dict:
        s = self._ffi.new("struct wa_attach_stats *")
        self._lib.wa_get_attach_stats(self._t, s)
        return {k: getattr(s, k) for k in ATTACH_STATS}

    def close(self) -> None:
        if self._t is not None:
            self._lib.wa_free(self._t)
            self._t = None


def exit_code(status: int) -> int:
    """A raw wait status as a shell would report it: signal death is 128+N."""
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return 1
