"""Process objects: seeding from /proc, inheritance at clone, the image at execve.

One rules.event.Process per thread group; its threads share it (libsinsp keeps
per-thread copies, but every field rules read is per process or identical across
the threads of one). Lists (args, env, cgroups) are replaced, never mutated, so a
child may share them with its parent until either execs.
"""
from __future__ import annotations

import dataclasses
import operator
import os
from typing import Dict, Optional

from ..rules.event import Container, Process
from . import procfs
from .fds import copy_fd, fd_from_link
from .users import UserDb


def _last(ids) -> Optional[int]:
    return ids[-1] if ids else None


def apply_status(p: Process, status: Dict[str, str], users: UserDb) -> None:
    """uid/gid, capabilities and namespace ids from /proc/PID/status."""
    uids = procfs.status_ids(status, "Uid")
    if uids and len(uids) > 1:
        p.user = users.user(uids[1])
    gids = procfs.status_ids(status, "Gid")
    if gids and len(gids) > 1:
        p.group = users.group(gids[1])
    for attr, key in (("cap_inheritable", "CapInh"), ("cap_permitted", "CapPrm"),
                      ("cap_effective", "CapEff")):
        mask = procfs.status_mask(status, key)
        if mask is not None:
            setattr(p, attr, mask)
    vpid = _last(procfs.status_ids(status, "NSpid"))
    if vpid is not None:
        p.vpid = p.vtid = vpid
    vpgid = _last(procfs.status_ids(status, "NSpgid"))
    if vpgid is not None:
        p.vpgid = vpgid
    vsid = _last(procfs.status_ids(status, "NSsid"))
    if vsid is not None:
        p.sid = vsid


def apply_stat(p: Process, st: procfs.Stat) -> None:
    p.tty = st.tty
    p.pgid = st.pgrp
    if p.sid is None:
        p.sid = st.session
    if p.vpgid is None:
        p.vpgid = st.pgrp


def apply_facts(p: Process, f, users: UserDb) -> None:
    """The identity the tracer read at an exec or attach stop (events.facts.ProcFacts)."""
    if f.has_stat:
        p.tty = f.tty
        p.pgid = f.pgid
        p.sid = f.sid
        p.vpgid = f.pgid
        p.pfmajor, p.pfminor = f.pf_maj, f.pf_min
        p.vmsize, p.vmrss = f.vm_size_kb, f.vm_rss_kb
    if f.has_status:
        p.user = users.user(f.uids[1])
        p.group = users.group(f.gids[1])
        p.cap_inheritable, p.cap_permitted, p.cap_effective = f.cap_inh, f.cap_prm, f.cap_eff
        if f.vpid:
            p.vpid = p.vtid = f.vpid
        if f.vpgid:
            p.vpgid = f.vpgid
        if f.vsid:
            p.sid = f.vsid
        p.vmswap = f.vm_swap_kb
    p.loginuid = f.login_uid
    p.loginuser = users.user(p.loginuid) if p.loginuid >= 0 else None
    if f.fdlimit:
        p.fdlimit = f.fdlimit


def seed(pid: int, users: UserDb, container: Container, with_fds: bool) -> Optional[Process]:
    """A process that existed before we saw it, from /proc (None if it is gone)."""
    st = procfs.read_stat(pid)
    if st is None:
        return None
    p = Process(pid=pid, tid=pid, name=st.comm, start_ts=st.start_ns, container=container)
    p.ppid = st.ppid   # linked to the parent object by the caller
    argv = procfs.read_nul_list(f"/proc/{pid}/cmdline") or []
    p.exe = argv[0] if argv else st.comm
    p.args = argv[1:]
    p.env = procfs.read_nul_list(f"/proc/{pid}/environ") or []
    p.exepath = procfs.exe_path(procfs.readlink(f"/proc/{pid}/exe"))
    cwd = procfs.readlink(f"/proc/{pid}/cwd")
    p.cwd = None if cwd is None else cwd.rstrip("/") + "/"
    apply_status(p, procfs.read_status(pid), users)
    apply_stat(p, st)
    if p.vpid is None:
        p.vpid = p.vtid = pid
    loginuid = procfs.read_int(f"/proc/{pid}/loginuid")
    p.loginuid = -1 if loginuid is None or loginuid == 4294967295 else loginuid
    if p.loginuid >= 0:
        p.loginuser = users.user(p.loginuid)
    p.fdlimit = procfs.fdlimit(pid)
    p.cgroups = procfs.read_cgroups(pid)
    p.nthreads = 1
    p.is_exe_from_memfd = bool(p.exepath and p.exepath.startswith("memfd:"))
    p.is_exe_upper_layer = False
    if with_fds:
        try:
            names = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            names = []
        for n in names:
            link = procfs.readlink(f"/proc/{pid}/fd/{n}")
            if link is not None and n.isdigit():
                p.fds[int(n)] = fd_from_link(int(n), link)
    return p


_INHERITED = ("name", "exe", "exepath", "args", "env", "cwd", "tty", "sid", "pgid", "vpgid",
              "loginuid", "user", "group", "loginuser", "cap_inheritable", "cap_permitted",
              "cap_effective", "is_exe_writable", "is_exe_upper_layer", "is_exe_lower_layer",
              "is_exe_from_memfd", "exe_ino", "exe_ino_ctime", "exe_ino_mtime",
              "pidns_init_start_ts", "cgroups", "fdlimit", "container", "session_leader",
              "vpgid_leader", "pgid_leader", "exec_session")


# What a child does not inherit starts at its default (the defaults that are factories,
# args/env/cgroups/fds, are all inherited or set below).
_FRESH = {f.name: f.default for f in dataclasses.fields(Process)
          if f.name not in _INHERITED and f.default is not dataclasses.MISSING}
_inherited = operator.itemgetter(*_INHERITED)


def fork_child(parent: Process, pid: int, start_ts: int, *, share_fds: bool) -> Process:
    """A new process created by fork/vfork/clone without CLONE_THREAD."""
    # Process(...) then one setattr per inherited field is ~60 attribute stores per fork;
    # the same object is built from two dicts.
    child = object.__new__(Process)
    d = child.__dict__
    d.update(_FRESH)
    try:
        d.update(zip(_INHERITED, _inherited(parent.__dict__)))
    except KeyError:  # a parent not built by Process(): attribute by attribute
        for attr in _INHERITED:
            d[attr] = getattr(parent, attr)
    d["pid"] = d["tid"] = pid
    d["parent"] = parent
    d["start_ts"] = start_ts
    # Each process owns its fd objects: a child's FD_CLOEXEC change or close must not
    # reach the parent's table.
    child.fds = parent.fds if share_fds else {n: copy_fd(fd, n, getattr(fd, "cloexec", False))
                                             for n, fd in parent.fds.items()}
    child.nthreads = 1
    if parent.vpid is not None and parent.vpid == parent.pid:
        child.vpid = child.vtid = pid   # same (host) pid namespace
    return child
