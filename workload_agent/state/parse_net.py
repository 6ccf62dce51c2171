"""Sockets: creation, connect/accept tuples, bind, listen, datagram peers."""
from __future__ import annotations

import socket as _socket
from typing import Optional

from ..events.sockaddr import AF_INET, AF_INET6, AF_UNIX, SockAddr, SockTuple
from ..rules.event import Fd
from . import fds
from .sockets import socket_names
from .values import _ok, _s32

_EINPROGRESS = 115


def _h_socketpair(t, p, tid, r, values, ret):
    if ret != 0:
        return None
    first = None
    for key in ("fd1", "fd2"):
        num = values.get(key)
        if isinstance(num, int) and num >= 0:
            p.fds[num] = fds.socket_fd(num, r.args[0] & 0xFFFF, r.args[1] & 0xFFFFFFFF, 0)
            first = first or p.fds[num]
    return first


def _h_socket(t, p, tid, r, values, ret):
    if not _ok(ret):
        return None
    fd = fds.socket_fd(ret, r.args[0] & 0xFFFF, r.args[1] & 0xFFFFFFFF, r.args[2] & 0xFFFFFFFF)
    p.fds[ret] = fd
    return fd


_SOCKET_TYPES = frozenset({"ipv4", "ipv6", "unix", "netlink", "socket"})


def _socket_entry(t, p, tid, num: int, family: Optional[int]) -> Optional[Fd]:
    fd = t._fd(p, tid, num)
    if fd is not None and fd.type not in _SOCKET_TYPES and family is not None:
        fd = None  # a stale entry (its close was not traced): the event proves it is a socket now
    if fd is None and family is not None:
        fd = fds.socket_fd(num, family, _socket.SOCK_STREAM, 0)
        p.fds[num] = fd
    return fd


def _h_connect(t, p, tid, r, values, ret):
    num = values.get("fd")
    if not isinstance(num, int):
        return None
    addr = values.get("addr")
    fd = _socket_entry(t, p, tid, num, addr.family if isinstance(addr, SockAddr) else None)
    if fd is None or not (ret == 0 or ret == -_EINPROGRESS):
        return fd
    tup = values.get("tuple")
    if isinstance(tup, SockTuple):
        if tup.family == AF_UNIX:
            fds.set_unix(fd, tup)
        elif tup.family in (AF_INET, AF_INET6):
            if tup.sip and tup.sip not in ("0.0.0.0", "::"):
                t._local_ips.add(tup.sip)
            fds.set_tuple(fd, tup.sip, tup.sport or 0, tup.dip, tup.dport or 0, server=False,
                        client_is_local=True)
        if fd.name_changed:
            t._changed = fd
    return fd


def _h_accept(t, p, tid, r, values, ret):
    if not _ok(ret):
        return None
    lnum = _s32(r.args[0])
    listener = t._fd(p, tid, lnum)
    tup = values.get("tuple")
    flags = values.get("flags") or 0
    cloexec = bool(isinstance(flags, int) and flags & fds.PPM_O_CLOEXEC)
    family = tup.family if isinstance(tup, SockTuple) else AF_INET
    fd = fds.socket_fd(ret, family, _socket.SOCK_STREAM, 0)
    fd.cloexec = cloexec
    if listener is not None and getattr(listener, "sotype", None):
        fd.sotype = listener.sotype
    if isinstance(tup, SockTuple):
        if family == AF_UNIX:
            fds.set_unix(fd, tup)
        else:
            sip, sport = tup.dip, tup.dport or 0
            if sip in ("0.0.0.0", "::", None):
                # A wildcard listener: the connection's own local address is the server end.
                local, _ = socket_names(p.pid, ret)
                if local is not None and local.is_ip:
                    sip, sport = local.ip, local.port or sport
            fds.set_tuple(fd, tup.sip, tup.sport or 0, sip, sport, server=True,
                        client_is_local=tup.sip in t._local_ips)
    fd.name_changed = True
    t._changed = fd
    p.fds[ret] = fd
    return fd


def _h_bind(t, p, tid, r, values, ret):
    num = values.get("fd")
    if not isinstance(num, int):
        return None
    addr = values.get("addr")
    fd = _socket_entry(t, p, tid, num, addr.family if isinstance(addr, SockAddr) else None)
    if fd is None or ret != 0 or not isinstance(addr, SockAddr):
        return fd
    if addr.is_ip:
        fds.set_bound(fd, addr.ip, addr.port or 0)
        if addr.ip not in ("0.0.0.0", "::"):
            t._local_ips.add(addr.ip)
    elif addr.family == AF_UNIX:
        fds.set_unix(fd, None, addr.path)
    if fd.name_changed:
        t._changed = fd
    return fd


def _h_listen(t, p, tid, r, values, ret):
    num = values.get("fd")
    fd = t._fd(p, tid, num) if isinstance(num, int) else None
    if fd is not None and ret == 0:
        fd.is_server = True
    return fd


def _h_send(t, p, tid, r, values, ret):
    num = values.get("fd")
    fd = t._fd(p, tid, num) if isinstance(num, int) else None
    if fd is None or not _ok(ret) or fd.type not in ("ipv4", "ipv6"):
        return fd
    tup = values.get("tuple")
    # An unconnected (UDP) socket sending to a new peer takes that peer as its tuple.
    if isinstance(tup, SockTuple) and tup.family in (AF_INET, AF_INET6) and tup.dport \
            and not fd.is_server and (fd.sip, fd.sport) != (tup.dip, tup.dport):
        fds.set_tuple(fd, tup.sip, tup.sport or 0, tup.dip, tup.dport, server=False,
                    client_is_local=True)
        if fd.name_changed:
            t._changed = fd
    fd.connected = True
    return fd


def _h_recv(t, p, tid, r, values, ret):
    num = values.get("fd")
    fd = t._fd(p, tid, num) if isinstance(num, int) else None
    if fd is None or not _ok(ret) or fd.type not in ("ipv4", "ipv6") or fd.name:
        return fd
    tup = values.get("tuple")
    if isinstance(tup, SockTuple) and tup.sport:
        # A datagram from a peer to this (bound) socket: the peer is the client.
        fds.set_tuple(fd, tup.sip, tup.sport or 0, tup.dip, tup.dport or 0, server=True,
                    client_is_local=tup.sip in t._local_ips)
        t._changed = fd
    return fd


