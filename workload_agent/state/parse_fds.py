"""Fd lifecycle: open, close, dup, fcntl, pipes, anonymous fds, memfds."""
from __future__ import annotations


from ..events.decode import (FsPath, normalize_path)
from ..events.display import syscall_name
from ..events.flags import F_DUPFD, F_DUPFD_CLOEXEC
from ..rules.event import Fd
from . import fds
from .values import _ok

_F_SETFD = 2
_FD_CLOEXEC = 1
_MFD_CLOEXEC = 1
_CLOSE_RANGE_CLOEXEC = 4


def _h_open(t, p, tid, r, values, ret):
    name = values.get("name") if "name" in values else values.get("path")
    if ret is not None and ret >= 0:
        flags = values.get("flags") or 0
        fd = fds.file_fd(ret, name, flags if isinstance(flags, int) else 0)
        fd.name_changed = True
        t._changed = fd
        p.fds[ret] = fd
        return fd
    path = str(name) if name is not None else None
    raw = name.raw if isinstance(name, FsPath) else path
    ename = syscall_name(r.arch, r.nr)
    failed = Fd(-1, typechar=fds.GUESSED_TYPECHAR.get(ename, "o"),
                name=normalize_path(path) if path and path.startswith("/") else (path or ""),
                nameraw=raw)
    return failed


def _h_close(t, p, tid, r, values, ret):
    num = values.get("fd")
    if not isinstance(num, int):
        return None
    fd = t._fd(p, tid, num)
    table = p.fds

    def remove():
        if fd is not None and table.get(num) is fd:
            del table[num]
    t._after = remove
    return fd if fd is not None else Fd(num, typechar="o", name="")


def _h_close_range(t, p, tid, r, values, ret):
    if ret != 0:
        return None
    first, last, flags = r.args[0] & 0xFFFFFFFF, r.args[1] & 0xFFFFFFFF, r.args[2]
    for num in [n for n in p.fds if first <= n <= last]:
        if flags & _CLOSE_RANGE_CLOEXEC:
            p.fds[num].cloexec = True
        else:
            del p.fds[num]
    return None


def _h_dup(t, p, tid, r, values, ret):
    old = values.get("oldfd")
    if not isinstance(old, int):
        return None
    src = t._fd(p, tid, old)
    if not _ok(ret):
        return src
    if src is None:
        src = Fd(old, typechar="o", name="")
    flags = values.get("flags") or 0
    new = fds.copy_fd(src, ret, cloexec=bool(isinstance(flags, int) and flags & fds.PPM_O_CLOEXEC))
    p.fds[ret] = new
    return new


def _h_fcntl(t, p, tid, r, values, ret):
    num, cmd = values.get("fd"), values.get("cmd")
    if not isinstance(num, int):
        return None
    src = t._fd(p, tid, num)
    if _ok(ret) and cmd in (F_DUPFD, F_DUPFD_CLOEXEC) and src is not None:
        p.fds[ret] = fds.copy_fd(src, ret, cloexec=cmd == F_DUPFD_CLOEXEC)
    elif ret == 0 and cmd == _F_SETFD and src is not None:
        src.cloexec = bool(r.args[2] & _FD_CLOEXEC)
    return src


def _h_pipe(t, p, tid, r, values, ret):
    if ret != 0:
        return None
    flags = values.get("flags") or 0
    cloexec = bool(isinstance(flags, int) and flags & fds.PPM_O_CLOEXEC)
    first = None
    for key in ("fd1", "fd2"):
        num = values.get(key)
        if isinstance(num, int) and num >= 0:
            p.fds[num] = fds.new_fd(num, "pipe", "", cloexec)
            first = first or p.fds[num]
    return first


def _h_anon(t, p, tid, r, values, ret):
    name = syscall_name(r.arch, r.nr)
    if not _ok(ret) or (name == "bpf" and ret == 0):   # most bpf commands return 0, not an fd
        return None
    fd = fds.new_fd(ret, fds.ANON_TYPES[name], "")
    p.fds[ret] = fd
    return fd


def _h_memfd(t, p, tid, r, values, ret):
    if not _ok(ret):
        return None
    name = values.get("name")
    fd = fds.new_fd(ret, "memfd", name if isinstance(name, str) else "",
                  bool(r.args[1] & _MFD_CLOEXEC))
    fd.name_changed = True
    t._changed = fd
    p.fds[ret] = fd
    return fd


