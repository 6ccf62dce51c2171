"""Addresses of a tracee's socket that no syscall argument carries.

connect() names only the remote end; Falco's driver reads the local end from the
kernel socket. We borrow the socket itself: pidfd_getfd(2) (Linux >= 5.6, allowed
to the tracer) duplicates the tracee's fd into the agent, getsockname() reads it,
and our copy is closed at once (the tracee's socket is untouched). When that is
not possible (older kernel, the fd is already closed) the address is unknown.
"""
from __future__ import annotations

import ctypes
import os
import socket
from typing import Optional, Tuple

from ..events.sockaddr import SockAddr

_NR_PIDFD_GETFD = 438   # the same on x86_64 and aarch64
try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _syscall = _libc.syscall
except (OSError, AttributeError):  # pragma: no cover
    _syscall = None
_available = _syscall is not None and hasattr(os, "pidfd_open")


def _sockaddr(family: int, addr) -> Optional[SockAddr]:
    if family in (socket.AF_INET, socket.AF_INET6) and isinstance(addr, tuple):
        return SockAddr(family, ip=addr[0].split("%", 1)[0], port=addr[1])
    if family == socket.AF_UNIX:
        if isinstance(addr, bytes):
            addr = "@" + addr[1:].decode("utf-8", "surrogateescape") if addr[:1] == b"\0" else \
                addr.decode("utf-8", "surrogateescape")
        return SockAddr(family, path=addr or "")
    return None


def socket_names(tgid: int, fd: int) -> Tuple[Optional[SockAddr], Optional[SockAddr]]:
    """(local, peer) of the tracee's socket ``fd``; None for what cannot be read."""
    global _available
    if not _available or fd < 0:
        return None, None
    try:
        pidfd = os.pidfd_open(tgid)
    except OSError:
        return None, None
    try:
        nfd = _syscall(_NR_PIDFD_GETFD, pidfd, fd, 0)
        if nfd < 0:
            if ctypes.get_errno() == 38:  # ENOSYS: never again
                _available = False
            return None, None
    finally:
        os.close(pidfd)
    try:
        s = socket.socket(fileno=nfd)
    except OSError:
        os.close(nfd)
        return None, None
    try:
        local = peer = None
        try:
            local = _sockaddr(s.family, s.getsockname())
        except OSError:
            pass
        try:
            peer = _sockaddr(s.family, s.getpeername())
        except OSError:
            pass
        return local, peer
    finally:
        s.close()  # our duplicate only
