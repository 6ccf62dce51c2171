"""Drift without overlayfs access: was the executed file written after the agent started?

Falco reads the overlayfs layer of the exe inode (EXE_UPPER_LAYER: created or
changed in the container). From inside the container the same question is
answered by the inode times: a file whose ctime or mtime is later than the
agent's start was created or modified at run time. A memfd executable is
recognised by its path (`/memfd:NAME`, `memfd:NAME`) or by the fd it was
executed from.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple


class ExeFacts:
    __slots__ = ("ino", "ctime", "mtime", "upper", "writable")

    def __init__(self, ino=None, ctime=None, mtime=None, upper=None, writable=None):
        self.ino = ino
        self.ctime = ctime
        self.mtime = mtime
        self.upper = upper
        self.writable = writable


def is_memfd_path(path: Optional[str]) -> bool:
    return bool(path) and (path.startswith("/memfd:") or path.startswith("memfd:"))


def exe_facts(path: Optional[str], start_ns: int, uid: Optional[int] = None) -> ExeFacts:
    """Inode facts of the executed file; unknown (None) when it cannot be stat'ed."""
    if not path:
        return ExeFacts()
    try:
        st = os.stat(path)
    except OSError:
        return ExeFacts()
    upper = st.st_ctime_ns > start_ns or st.st_mtime_ns > start_ns
    writable = None
    if uid is not None:
        writable = _writable_by(st, uid)
    return ExeFacts(st.st_ino, st.st_ctime_ns, st.st_mtime_ns, upper, writable)


def facts_of(f, start_ns: int, uid: Optional[int] = None) -> ExeFacts:
    """The same judgement from inode facts the tracer read at the exec stop
    (events.facts.FileFacts; None: it could not stat the exe)."""
    if f is None:
        return ExeFacts()
    upper = f.ctime_ns > start_ns or f.mtime_ns > start_ns
    writable = None if uid is None else _writable_by_mode(f.mode, f.uid, uid)
    return ExeFacts(f.ino, f.ctime_ns, f.mtime_ns, upper, writable)


def _writable_by_mode(mode: int, owner: int, uid: int) -> bool:
    if uid == 0:
        return True
    if owner == uid:
        return bool(mode & 0o200)
    return bool(mode & 0o002)


def _writable_by(st: os.stat_result, uid: int) -> bool:
    return _writable_by_mode(st.st_mode, st.st_uid, uid)


def proc_path(path: str, tid: int) -> Tuple[str, Optional[int]]:
    """A tracee's /proc/self/... path seen from the agent, and the fd it names if any."""
    if not path.startswith("/proc/"):
        return path, None   # most executables
    for prefix in ("/proc/self/", "/proc/thread-self/"):
        if path.startswith(prefix):
            path = "/proc/%d/%s" % (tid, path[len(prefix):])
            break
    parts = path.split("/")
    if len(parts) == 5 and parts[1] == "proc" and parts[3] == "fd" and parts[4].isdigit():
        return path, int(parts[4])
    return path, None


def kernel_exe_path(path: str) -> str:
    """What /proc/PID/exe would show for an exec of ``path`` (when the process is already
    gone): the file with symlinks resolved, or for a ``#!`` script its interpreter
    (one level, as binfmt_script; nested interpreters are rare)."""
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return os.path.realpath(path)
    if head.startswith(b"#!"):
        words = head[2:].split(b"\n", 1)[0].split()
        if words and words[0].startswith(b"/"):
            return os.path.realpath(os.fsdecode(words[0]))
    return os.path.realpath(path)
