"""Raw sockaddr bytes (as read from the tracee) -> addresses, and Falco's text forms.

Byte strings come from an untrusted process: every length is checked and a
buffer that is too short for its family yields a SockAddr with only the family
(or None when even the family is missing), never an exception.
"""
from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass
from typing import Optional

AF_UNSPEC = socket.AF_UNSPEC
AF_UNIX = socket.AF_UNIX
AF_INET = socket.AF_INET
AF_INET6 = socket.AF_INET6
AF_NETLINK = getattr(socket, "AF_NETLINK", 16)

# sa_family_t is a host-order u16 (the tracee has our architecture).
_FAMILY = struct.Struct("=H")
_IN = struct.Struct("!H4s")        # sin_port, sin_addr (after the family)
_IN6 = struct.Struct("!HI16s")     # sin6_port, sin6_flowinfo, sin6_addr
_NL = struct.Struct("=HII")        # nl_pad, nl_pid, nl_groups
_UNIX_PATH_MAX = 108


def decode_text(data: bytes) -> str:
    """Tracee bytes -> str the way Python decodes file names (lossless, never raises)."""
    return data.decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class SockAddr:
    family: int
    #: textual IP for AF_INET/AF_INET6
    ip: Optional[str] = None
    port: Optional[int] = None
    #: AF_UNIX path; abstract names start with "@"; "" for an unnamed socket
    path: Optional[str] = None
    #: AF_NETLINK port id and multicast groups
    nl_pid: Optional[int] = None
    nl_groups: Optional[int] = None

    @property
    def is_ip(self) -> bool:
        return self.family in (AF_INET, AF_INET6) and self.ip is not None


def parse_sockaddr(data: bytes) -> Optional[SockAddr]:
    """Decode a sockaddr of any family; None when not even the family is there."""
    if len(data) < _FAMILY.size:
        return None
    (family,) = _FAMILY.unpack_from(data)
    body = data[_FAMILY.size:]
    if family == AF_INET:
        if len(body) < _IN.size:
            return SockAddr(family)
        port, addr = _IN.unpack_from(body)
        return SockAddr(family, ip=socket.inet_ntop(AF_INET, addr), port=port)
    if family == AF_INET6:
        if len(body) < _IN6.size:
            return SockAddr(family)
        port, _flow, addr = _IN6.unpack_from(body)
        return SockAddr(family, ip=socket.inet_ntop(AF_INET6, addr), port=port)
    if family == AF_UNIX:
        return SockAddr(family, path=_unix_path(body[:_UNIX_PATH_MAX]))
    if family == AF_NETLINK:
        if len(body) < _NL.size:
            return SockAddr(family)
        _pad, pid, groups = _NL.unpack_from(body)
        return SockAddr(family, nl_pid=pid, nl_groups=groups)
    return SockAddr(family)


def _unix_path(sun_path: bytes) -> str:
    if not sun_path:
        return ""
    if sun_path[0] == 0:
        # Abstract namespace: the name is every byte the address length covers, NULs
        # included, so it is not cut at one: shown with a leading "@" and each NUL as "@",
        # as ss(8) does. Trailing NULs (an address length of sizeof(sockaddr_un)) are padding
        # to the eye and dropped.
        return "@" + decode_text(sun_path[1:].rstrip(b"\0").replace(b"\0", b"@"))
    return decode_text(sun_path.split(b"\0", 1)[0])


def _ip_port(ip: str, port: int) -> str:
    return "%s:%d" % (ip, port)


def format_sockaddr(sa: Optional[SockAddr]) -> str:
    """Falco's SOCKADDR rendering: ``ip:port``, a unix path, else ``family N``."""
    if sa is None:
        return "NULL"
    if sa.is_ip:
        return _ip_port(sa.ip, sa.port or 0)  # type: ignore[arg-type]
    if sa.family == AF_UNIX and sa.path is not None:
        return sa.path
    return "family %d" % sa.family


@dataclass(frozen=True)
class SockTuple:
    """Falco's SOCKTUPLE: source -> destination of a connection."""
    family: int
    sip: Optional[str] = None
    sport: Optional[int] = None
    dip: Optional[str] = None
    dport: Optional[int] = None
    #: AF_UNIX: the socket path, and Falco's kernel socket pointers (0 when unknown)
    path: Optional[str] = None
    src_ptr: int = 0
    dst_ptr: int = 0


def _zero_ip(family: int) -> str:
    return "0.0.0.0" if family == AF_INET else "::"


def _unmap(ip: str) -> str:
    """IPv4-mapped IPv6 addresses are shown as plain IPv4."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    mapped = getattr(addr, "ipv4_mapped", None)
    return str(mapped) if mapped is not None else ip


def make_tuple(src: Optional[SockAddr], dst: Optional[SockAddr]) -> Optional[SockTuple]:
    """Build a tuple from the two ends; an unknown end becomes the zero address.

    Returns None when neither end is usable (then Falco leaves the param empty).
    """
    ends = [e for e in (src, dst) if e is not None and (e.is_ip or e.family == AF_UNIX)]
    if not ends:
        return None
    family = ends[0].family
    if family == AF_UNIX:
        path = ""
        for end in (dst, src):
            if end is not None and end.family == AF_UNIX and end.path:
                path = end.path
                break
        return SockTuple(AF_UNIX, path=path)

    def side(end: Optional[SockAddr]):
        if end is None or not end.is_ip:
            return _zero_ip(family), 0
        return end.ip, end.port or 0

    sip, sport = side(src)
    dip, dport = side(dst)
    return SockTuple(family, sip=sip, sport=sport, dip=dip, dport=dport)


def format_tuple(t: Optional[SockTuple]) -> str:
    """``sip:sport->dip:dport`` for IP, ``<src>-><dst> <path>`` (hex pointers) for unix."""
    if t is None:
        return "NULL"
    if t.family == AF_UNIX:
        return "%x->%x %s" % (t.src_ptr, t.dst_ptr, t.path or "")
    sip, dip = t.sip or "", t.dip or ""
    if t.family == AF_INET6:
        sip, dip = _unmap(sip), _unmap(dip)
    return "%s->%s" % (_ip_port(sip, t.sport or 0), _ip_port(dip, t.dport or 0))
