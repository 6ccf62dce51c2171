"""Reading a process's state from /proc (seeding, and facts the tracer does not carry).

Every reader returns None (or an empty value) when the process is gone or the
file is unreadable: the tracee may have exited before Python handles its record.
"""
from __future__ import annotations

import os
import time
from typing import Dict, List, Optional

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_BOOT_EPOCH_NS = time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)


def read_bytes(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def readlink(path: str) -> Optional[str]:
    try:
        return os.readlink(path)
    except OSError:
        return None


class Stat:
    """The /proc/PID/stat fields the tracker uses."""
    __slots__ = ("comm", "ppid", "pgrp", "session", "tty", "start_ns")

    def __init__(self, comm, ppid, pgrp, session, tty, start_ns):
        self.comm = comm
        self.ppid = ppid
        self.pgrp = pgrp
        self.session = session
        self.tty = tty
        self.start_ns = start_ns


def read_stat(pid: int) -> Optional[Stat]:
    data = read_bytes(f"/proc/{pid}/stat")
    if not data:
        return None
    try:
        lp, rp = data.index(b"("), data.rindex(b")")
        comm = data[lp + 1:rp].decode("utf-8", "surrogateescape")
        f = data[rp + 2:].split()
        return Stat(comm, int(f[1]), int(f[2]), int(f[3]), int(f[4]),
                    _BOOT_EPOCH_NS + int(f[19]) * 1_000_000_000 // _CLK_TCK)
    except (ValueError, IndexError):
        return None


def read_status(pid: int) -> Dict[str, str]:
    data = read_bytes(f"/proc/{pid}/status")
    out: Dict[str, str] = {}
    if not data:
        return out
    for line in data.decode("utf-8", "replace").splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out[k] = v.strip()
    return out


def status_ids(status: Dict[str, str], key: str) -> Optional[List[int]]:
    try:
        return [int(x) for x in status[key].split()]
    except (KeyError, ValueError):
        return None


def status_mask(status: Dict[str, str], key: str) -> Optional[int]:
    try:
        return int(status[key], 16)
    except (KeyError, ValueError):
        return None


def read_nul_list(path: str) -> Optional[List[str]]:
    data = read_bytes(path)
    if data is None:
        return None
    items = data.split(b"\0")
    if items and items[-1] == b"":
        items.pop()
    return [i.decode("utf-8", "surrogateescape") for i in items]


def read_int(path: str) -> Optional[int]:
    data = read_bytes(path)
    try:
        return int(data) if data else None
    except ValueError:
        return None


def read_cgroups(pid: int):
    data = read_bytes(f"/proc/{pid}/cgroup")
    out = []
    if not data:
        return out
    for line in data.decode("utf-8", "replace").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for name in (parts[1] or "unified").split(","):
            if name.startswith("name="):
                name = name[5:]
            out.append((name, parts[2]))
    return out


def exe_path(link: Optional[str]) -> Optional[str]:
    """Falco's exepath from a /proc/PID/exe link: without " (deleted)"; memfds as memfd:NAME."""
    if link is None:
        return None
    if link.endswith(" (deleted)"):
        link = link[:-len(" (deleted)")]
    if link.startswith("/memfd:"):
        return link[1:]
    return link


def fdlimit(pid: int) -> Optional[int]:
    data = read_bytes(f"/proc/{pid}/limits")
    if not data:
        return None
    for line in data.decode("ascii", "replace").splitlines():
        if line.startswith("Max open files"):
            try:
                return int(line.split()[3])
            except (ValueError, IndexError):
                return None
    return None
