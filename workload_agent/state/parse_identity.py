"""Identity and context: cwd, uids/gids, capabilities, session and group, comm, user
namespaces, child subreapers."""
from __future__ import annotations

import struct

from ..events import capture_kinds as K
from ..events.decode import (normalize_path, resolve_relative)
from ..events.display import syscall_name
from ..events.flags import CLONE_LINUX
from . import procfs
from .process_tree import apply_status
from .values import _ok, _s32

_CLONE_NEWUSER = CLONE_LINUX.get("CLONE_NEWUSER", 0x10000000)
_PR_SET_CHILD_SUBREAPER = 36
_CAP_ALL = (1 << 41) - 1
_NO_UID = (-1, 0xFFFFFFFF)


def _h_chdir(t, p, tid, r, values, ret):
    if ret == 0:
        path = values.get("path")
        if isinstance(path, str):
            if not path.startswith("/"):
                path = resolve_relative(p.cwd, path) or path
            if path.startswith("/"):
                p.cwd = normalize_path(path).rstrip("/") + "/"
    return None


def _h_fchdir(t, p, tid, r, values, ret):
    num = values.get("fd")
    fd = t._fd(p, tid, num) if isinstance(num, int) else None
    if ret == 0:
        if fd is not None and fd.type in ("file", "directory") and fd.name:
            p.cwd = fd.name.rstrip("/") + "/"
        else:
            t.count_proc_read("fchdir")
            cwd = procfs.readlink(f"/proc/{tid}/cwd")
            if cwd is not None:
                p.cwd = cwd.rstrip("/") + "/"
    return fd


def _h_setuid(t, p, tid, r, values, ret):
    if ret != 0:
        return None
    name = syscall_name(r.arch, r.nr)
    key = {"setuid": "uid", "setreuid": "euid", "setresuid": "euid",
           "setgid": "gid", "setregid": "egid", "setresgid": "egid"}[name]
    v = values.get(key)
    if isinstance(v, int) and v not in _NO_UID:
        if "uid" in key:
            p.user = t.users.user(v)
        else:
            p.group = t.users.group(v)
    return None


def _h_capset(t, p, tid, r, values, ret):
    if ret != 0:
        return None
    b = r.blobs.get(1)
    if b is not None and b.kind == K.CAPDATA and not b.unreadable and len(b.data) >= 24:
        # two struct __user_cap_data_struct {effective, permitted, inheritable}: low, high 32 bits
        e0, p0, i0, e1, p1, i1 = struct.unpack_from("<6I", b.data)
        p.cap_effective, p.cap_permitted, p.cap_inheritable = (
            e0 | e1 << 32, p0 | p1 << 32, i0 | i1 << 32)
        return None
    t.count_proc_read("capset")
    status = procfs.read_status(tid)
    if status:
        apply_status(p, status, t.users)
    return None


def _h_userns(t, p, tid, r, values, ret):
    flags = r.args[1] if syscall_name(r.arch, r.nr) == "setns" else r.args[0]
    if ret == 0 and flags & _CLONE_NEWUSER:
        p.cap_inheritable = p.cap_permitted = p.cap_effective = _CAP_ALL
    return None


def _h_setsid(t, p, tid, r, values, ret):
    if _ok(ret):
        p.sid = p.vpgid = ret
        p.pgid = p.pid
        p.tty = 0
        p.session_leader = p.pgid_leader = p.vpgid_leader = p
    return None


def _h_setpgid(t, p, tid, r, values, ret):
    if ret != 0:
        return None
    target_pid = _s32(r.args[0]) or p.pid
    target = t.procs.get(target_pid)
    if target is not None:
        pgid = _s32(r.args[1]) or target.pid
        target.pgid = target.vpgid = pgid
        target.pgid_leader = target.vpgid_leader = t.procs.get(pgid)
    return None


def _h_prctl(t, p, tid, r, values, ret):
    comm = r.blobs.get(K.SLOT_COMM)
    if ret == 0 and comm is not None and not comm.unreadable:
        p.name = comm.data.decode("utf-8", "surrogateescape")
    if ret == 0 and _s32(r.args[0]) == _PR_SET_CHILD_SUBREAPER:
        if r.args[1]:
            t.subreapers.add(p.pid)
        else:
            t.subreapers.discard(p.pid)
    return None


