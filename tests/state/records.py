"""Hand-built tracer records for unit tests of the state tracker."""
from __future__ import annotations

import itertools
import platform
import socket
import struct

from workload_agent.events import capture_kinds as K
from workload_agent.events import records as R
from workload_agent.events.records import Blob, Record
from workload_agent.events.syscall_table import AUDIT_ARCH, SYSCALLS

ARCH_NAME = {"arm64": "aarch64"}.get(platform.machine(), platform.machine())
ARCH = AUDIT_ARCH[ARCH_NAME]
NR = SYSCALLS[ARCH_NAME]
_MASK = (1 << 64) - 1
_clock = itertools.count(1_900_000_000_000_000_000, 1000)

# pids no real process has (pid_max is at most 2^22), so /proc never answers for them
FAKE = 4_300_000


def syscall(name, tid, ret, args=(), blobs=None, tgid=None, no_exit=False):
    regs = tuple(a & _MASK for a in args) + (0,) * (6 - len(args))
    ts = next(_clock)
    flags = 0 if no_exit else R.F_HAS_EXIT
    return Record(R.K_SYSCALL, flags, ts, ts + 10, tid if tgid is None else tgid, tid, NR[name],
                  ARCH, 0 if ret is None else ret, regs, 0,
                  {i: Blob(kind, data) for i, (kind, data) in (blobs or {}).items()})


def clone(parent, child, thread=False, flags=0, tgid=None, event=1):
    ts = next(_clock)
    return Record(R.K_CLONE, R.F_THREAD if thread else 0, ts, 0, parent if tgid is None else tgid,
                  parent, event, ARCH, 0, (flags, 0, 0, 0, 0, 0), child, {})


def exec_(tid, former=None):
    ts = next(_clock)
    return Record(R.K_EXEC, 0, ts, 0, tid, tid, 0, ARCH, 0, (0,) * 6,
                  tid if former is None else former, {})


def exit_(tid, status=0, tgid=None):
    ts = next(_clock)
    return Record(R.K_EXIT, 0, ts, 0, tid if tgid is None else tgid, tid, 0, ARCH, 0, (0,) * 6,
                  status, {})


def path(p: str):
    return (K.PATH, p.encode() + b"\0")


def argv(*items: str):
    return (K.ARGV, b"".join(i.encode() + b"\0" for i in items))


def execve(tid, filename, args, env=("PATH=/bin",), ret=0):
    return syscall("execve", tid, ret, (1, 2, 3),
                   {0: path(filename), 1: argv(*args), 2: argv(*env)})


def openat(tid, name, ret, flags=0, dirfd=-100):
    return syscall("openat", tid, ret, (dirfd, 1, flags, 0), {1: path(name)})


def sockaddr_in(ip: str, port: int):
    return (K.SOCKADDR, struct.pack("=H", socket.AF_INET) + struct.pack("!H", port)
            + socket.inet_aton(ip) + b"\0" * 8)
