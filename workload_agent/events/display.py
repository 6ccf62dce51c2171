"""The developer's debugging view: one strace-like line per event (`run --events`).

    12:00:00.123456789 cat 4242/4242 openat fd=3(<f>/etc/hostname) dirfd=-100(AT_FDCWD) ... = 3

The process names and working directories here are a light view for this display
only; the detection pipeline keeps the real process state.
"""
from __future__ import annotations

import os
import time

from ..escape import escape_controls
from . import records as R
from .decode import decode_params, render_params
from .flags import errno_name
from .arch import native_arch, syscall_name
from .syscall_table import AUDIT_ARCH

_ABI_NAMES = {v: k for k, v in AUDIT_ARCH.items()}
_NATIVE = AUDIT_ARCH.get(native_arch())


def _readlink(path: str):
    try:
        return os.readlink(path)
    except OSError:
        return None


class _View:
    """cwd and comm per thread group, from /proc while the process lives."""

    def __init__(self) -> None:
        self.comm: dict[int, str] = {}
        self.cwd_of: dict[int, str] = {}
        self.tgid: dict[int, int] = {}

    def cwd(self, tid):
        tgid = self.tgid.get(tid, tid)
        live = _readlink(f"/proc/{tid}/cwd")
        if live is not None:
            self.cwd_of[tgid] = live
        return self.cwd_of.get(tgid)

    def fd_path(self, tid, fd):
        return _readlink(f"/proc/{tid}/fd/{fd}")

    def name(self, tgid: int) -> str:
        if tgid not in self.comm:
            try:
                with open(f"/proc/{tgid}/comm") as f:
                    self.comm[tgid] = f.read().strip()
            except OSError:
                self.comm[tgid] = "?"
        return self.comm[tgid]


def _exec_facts_text(r) -> str:
    """What the tracer read at the exec stop (the state applies exactly this)."""
    from . import capture_kinds as K, facts

    pf = facts.proc_facts(r.blobs)
    if pf is None:
        return " [no facts captured: the state reads /proc]"
    parts = [f"exe={facts.link_text(r.blobs, K.SLOT_EXE)}"]
    if pf.exe is not None:
        parts.append(f"exe_ino={pf.exe.ino}")
    script = facts.script_facts(r.blobs)
    if script is not None:
        parts.append(f"script_ino={script.ino}")
    if pf.has_stat:
        parts += [f"tty={pf.tty}", f"pgid={pf.pgid}", f"sid={pf.sid}"]
    if pf.has_status:
        parts += [f"euid={pf.uids[1]}", f"cap_eff={pf.cap_eff:#x}"]
    parts.append(f"loginuid={pf.login_uid}")
    return " " + " ".join(parts)


def _clock(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%H:%M:%S", time.localtime(secs)) + f".{frac:09d}"


class EventPrinter:
    def __init__(self, out) -> None:
        self.out = out
        self.view = _View()

    def _line(self, r: R.Record, text: str) -> None:
        # names, paths and argv come from the workload: a newline in one must not forge a line
        line = escape_controls(f"{_clock(r.ts_enter)} {self.view.name(r.tgid)} {r.tgid}/{r.tid} {text}")
        self.out.write(line + "\n")

    def handle(self, batch) -> None:
        v = self.view
        for r in batch:
            v.tgid[r.tid] = r.tgid
            if r.kind == R.K_SYSCALL:
                name = syscall_name(r.arch, r.nr)
                ret = r.ret if r.has_exit else None
                params = decode_params(name, r.args, ret, r.blobs, v, tid=r.tid)
                params.pop("res", None)
                notes = []
                # Unavailable values are noise in a debugging view; env is summarised.
                params = {k: v for k, v in params.items() if v is not None}
                env = params.pop("env", None)
                if isinstance(env, bytes):
                    notes.append("[env: %d vars]" % env.count(b"\0"))
                result = "?" if ret is None else (f"{ret} {errno_name(ret)}" if ret < 0 else str(ret))
                if r.flags & R.F_FOREIGN_ARCH:
                    notes.append("[foreign arch]")
                elif r.arch != _NATIVE:
                    notes.append("[%s]" % _ABI_NAMES.get(r.arch, "arch %#x" % r.arch))
                if r.flags & R.F_TRUNCATED:
                    notes.append("[truncated]")
                if r.flags & R.F_UNREADABLE:
                    notes.append("[unreadable]")
                if r.flags & R.F_NO_EXIT:
                    notes.append("[no exit]")
                tail = (" " + " ".join(notes)) if notes else ""
                self._line(r, f"{name} {render_params(name, params)} = {result}{tail}")
                if name in ("execve", "execveat") and ret == 0:
                    v.comm.pop(r.tgid, None)
            elif r.kind == R.K_CLONE:
                what = "thread" if r.flags & R.F_THREAD else "process"
                self._line(r, f"clone child={r.extra} ({what})")
                if not r.flags & R.F_THREAD:
                    v.comm[r.extra] = v.name(r.tgid)
                    if r.tgid in v.cwd_of:
                        v.cwd_of[r.extra] = v.cwd_of[r.tgid]
            elif r.kind == R.K_EXEC:
                v.comm.pop(r.tgid, None)
                extra = f" (exec from thread {r.extra})" if r.extra != r.tid else ""
                self._line(r, f"exec{extra}{_exec_facts_text(r)}")
            elif r.kind == R.K_EXIT:
                st = r.extra
                how = (f"status={os.WEXITSTATUS(st)}" if os.WIFEXITED(st)
                       else f"signal={os.WTERMSIG(st)}" if os.WIFSIGNALED(st) else f"wait={st:#x}")
                self._line(r, f"procexit {how}")
            elif r.kind == R.K_ATTACH:
                v.comm.pop(r.tgid, None)
                asked = f" asked={(r.ts_enter - r.args[0]) / 1e6:.3f}ms-ago" if r.args[0] else ""
                if r.ret < 0:
                    self._line(r, f"attach failed {errno_name(r.ret)}{asked}")
                else:
                    self._line(r, f"attach threads={r.extra}{asked}{_exec_facts_text(r)}")
            elif r.kind == R.K_DROP:
                self.out.write(f"{_clock(r.ts_enter)} DROP {r.extra} events dropped: the ring was full\n")

    def close(self, stats: dict) -> None:
        self.out.write("# " + " ".join(f"{k}={v}" for k, v in stats.items()) + "\n")
        self.out.flush()
