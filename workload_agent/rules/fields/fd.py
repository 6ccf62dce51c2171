"""fd.* fields: the file descriptor the event refers to."""
from __future__ import annotations

import ipaddress
from functools import lru_cache
from operator import attrgetter
from typing import List, Optional

from . import types as T
from .spec import ARG_INDEX, MULTI_EITHER, MULTI_LIST, FieldSpec, inline

@lru_cache(maxsize=4096)
def _ip(text: Optional[str]):
    if text is None:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _fd(get):
    def f(e):
        fd = e.fd
        return None if fd is None else get(fd)
    return f


def _fd_attr(attr: str):
    """An fd attribute as it is (the rule groups read it inline)."""
    assert attr.isidentifier()
    return inline(_fd(attrgetter(attr)), f"None if (_d := e.fd) is None else _d.{attr}")


def _directory(fd) -> Optional[str]:
    if fd.directory is not None:
        return fd.directory
    if fd.type == "directory":
        return fd.name
    if fd.type not in (None, "file") or fd.name is None:
        return None
    name = fd.name
    i = name.rfind("/")
    if i <= 0:
        return "/"
    return name[:i]


def _filename(fd) -> Optional[str]:
    if fd.type != "file" or fd.name is None:
        return None
    return fd.name.rsplit("/", 1)[-1]


def _fd_call(fn, name: str):
    """fd.X computed by ``fn(fd)``: the rule groups call ``fn`` on the event's fd
    themselves (one call less)."""
    return inline(_fd(fn), f"None if (_d := e.fd) is None else {name}(_d)", **{name: fn})


def _is_ip(fd) -> bool:
    return fd.type in ("ipv4", "ipv6")


def _local_remote(fd, local: bool, port: bool):
    if not _is_ip(fd) or fd.client_is_local is None:
        return None
    client_side = fd.client_is_local == local
    if port:
        return fd.cport if client_side else fd.sport
    return _ip(fd.cip if client_side else fd.sip)


def _ends(fd, port: bool):
    """Both tuple ends (client, server), for fd.ip/fd.port/fd.net."""
    if not _is_ip(fd):
        return None
    if port:
        vals = [v for v in (fd.cport, fd.sport) if v is not None]
    else:
        vals = [v for v in (_ip(fd.cip), _ip(fd.sip)) if v is not None]
    return vals or None


def _sockfamily(fd):
    if _is_ip(fd):
        return "ip"
    if fd.type == "unix":
        return "unix"
    return None


def _types(index):
    if index is None:
        def all_(e):
            p = e.proc
            if p is None or e.fd is None:
                return None
            seen = []
            for fd in p.fds.values():
                t = fd.type or "<NA>"
                if t not in seen:
                    seen.append(t)
            return seen
        return all_

    def one(e, n=index):
        p = e.proc
        if p is None or e.fd is None:
            return None
        fd = p.fds.get(n)
        return None if fd is None else [fd.type or "<NA>"]
    return one


def _container_prefixed(attr):
    def f(e):
        fd = e.fd
        if fd is None:
            return None
        v = fd.name if attr == "name" else _directory(fd)
        if v is None:
            return None
        c = None if e.proc is None else e.proc.container
        return f"{'host' if c is None else c.id}:{v}"
    return f


def _port_text(get):
    def f(e):
        v = get(e)
        return None if v is None else str(v)
    return f


def _f(name, type_, desc, get, **kw):
    return FieldSpec(name, type_, desc, get, **kw)


FIELDS: List[FieldSpec] = [
    _f("fd.num", T.INT64, "The fd number (-1 for failed opens).", _fd_attr("num")),
    _f("fd.type", T.CHARBUF, "file, directory, ipv4, ipv6, unix, pipe, ...", _fd_attr("type")),
    _f("fd.typechar", T.CHARBUF, "One-letter fd type (f, d, 4, 6, u, p, ...).",
       _fd_attr("typechar")),
    _f("fd.name", T.CHARBUF, "Path, socket tuple or other name of the fd.", _fd_attr("name")),
    _f("fd.nameraw", T.CHARBUF, "Path exactly as passed (files); else as fd.name.",
       _fd(lambda fd: fd.nameraw if fd.nameraw is not None else fd.name)),
    _f("fd.directory", T.CHARBUF, "Directory of a file fd (the path itself for directories).",
       _fd_call(_directory, "_w_fd_directory")),
    _f("fd.filename", T.CHARBUF, "Last path component of a file fd.", _fd_call(_filename, "_w_fd_filename")),
    _f("fd.ip", T.IPADDR, "Client or server IP (filter only).", _fd(lambda fd: _ends(fd, False)),
       multi=MULTI_EITHER, filter_only=True),
    _f("fd.cip", T.IPADDR, "Client IP.", _fd(lambda fd: _ip(fd.cip) if _is_ip(fd) else None)),
    _f("fd.sip", T.IPADDR, "Server IP.", _fd(lambda fd: _ip(fd.sip) if _is_ip(fd) else None)),
    _f("fd.lip", T.IPADDR, "Local IP.", _fd(lambda fd: _local_remote(fd, True, False))),
    _f("fd.rip", T.IPADDR, "Remote IP.", _fd(lambda fd: _local_remote(fd, False, False))),
    _f("fd.port", T.PORT, "Client or server port (filter only).", _fd(lambda fd: _ends(fd, True)),
       multi=MULTI_EITHER, filter_only=True),
    _f("fd.cport", T.PORT, "Client port.", _fd(lambda fd: fd.cport if _is_ip(fd) else None)),
    _f("fd.sport", T.PORT, "Server port.", _fd(lambda fd: fd.sport if _is_ip(fd) else None)),
    _f("fd.lport", T.PORT, "Local port.", _fd(lambda fd: _local_remote(fd, True, True))),
    _f("fd.rport", T.PORT, "Remote port.", _fd(lambda fd: _local_remote(fd, False, True))),
    _f("fd.net", T.IPNET, "Client or server IP inside a CIDR (filter only).",
       _fd(lambda fd: _ends(fd, False)), multi=MULTI_EITHER, filter_only=True),
    _f("fd.cnet", T.IPNET, "Client IP inside a CIDR (filter only).",
       _fd(lambda fd: _ip(fd.cip) if _is_ip(fd) else None), filter_only=True),
    _f("fd.snet", T.IPNET, "Server IP inside a CIDR (filter only).",
       _fd(lambda fd: _ip(fd.sip) if _is_ip(fd) else None), filter_only=True),
    _f("fd.lnet", T.IPNET, "Local IP inside a CIDR (filter only).",
       _fd(lambda fd: _local_remote(fd, True, False)), filter_only=True),
    _f("fd.rnet", T.IPNET, "Remote IP inside a CIDR (filter only).",
       _fd(lambda fd: _local_remote(fd, False, False)), filter_only=True),
    _f("fd.proto", T.PORT, "Client or server port, as protocol (filter only).",
       _fd(lambda fd: _ends(fd, True)), multi=MULTI_EITHER, filter_only=True),
    _f("fd.cproto", T.CHARBUF, "Client port as text.",
       _port_text(_fd(lambda fd: fd.cport if _is_ip(fd) else None))),
    _f("fd.sproto", T.CHARBUF, "Server port as text.",
       _port_text(_fd(lambda fd: fd.sport if _is_ip(fd) else None))),
    _f("fd.lproto", T.CHARBUF, "Local port as text.",
       _port_text(_fd(lambda fd: _local_remote(fd, True, True)))),
    _f("fd.rproto", T.CHARBUF, "Remote port as text.",
       _port_text(_fd(lambda fd: _local_remote(fd, False, True)))),
    _f("fd.l4proto", T.CHARBUF, "tcp, udp, icmp, raw, or '<NA>'.",
       _fd(lambda fd: None if not fd.in_table else (fd.l4proto or "<NA>"))),
    _f("fd.sockfamily", T.CHARBUF, "ip or unix.", _fd(_sockfamily)),
    _f("fd.is_server", T.BOOL, "Listening/bound socket, or the server end is local.",
       _fd(lambda fd: fd.is_server if fd.in_table else None)),
    _f("fd.connected", T.BOOL, "The socket is connected.",
       _fd(lambda fd: bool(fd.connected) if fd.in_table else None)),
    _f("fd.name_changed", T.BOOL, "The fd's name changed while parsing this event.",
       _fd(lambda fd: bool(fd.name_changed) if fd.in_table else None)),
    # Matching these against host names needs live DNS resolution of the rule's
    # names, which the agent does not do: they never match and print <NA>.
    _f("fd.sip.name", T.CHARBUF, "Server IP's resolved name (needs DNS; not available).",
       lambda e: None, live=False),
    _f("fd.cip.name", T.CHARBUF, "Client IP's resolved name (needs DNS; not available).",
       lambda e: None, live=False),
    _f("fd.lip.name", T.CHARBUF, "Local IP's resolved name (needs DNS; not available).",
       lambda e: None, live=False),
    _f("fd.rip.name", T.CHARBUF, "Remote IP's resolved name (needs DNS; not available).",
       lambda e: None, live=False),
    _f("fd.uid", T.CHARBUF, "tid followed by fd number.",
       lambda e: None if e.fd is None or e.proc is None else f"{e.tid}{e.fd.num}"),
    _f("fd.containername", T.CHARBUF, "container.id:fd.name.", _container_prefixed("name")),
    _f("fd.containerdirectory", T.CHARBUF, "container.id:fd.directory.",
       _container_prefixed("directory")),
    _f("fd.dev", T.INT32, "Device number of the file.",
       _fd(lambda fd: (fd.dev or 0) if fd.in_table else None)),
    _f("fd.dev.major", T.INT32, "Major device number.",
       _fd(lambda fd: ((fd.dev or 0) >> 20) if fd.in_table else None)),
    _f("fd.dev.minor", T.INT32, "Minor device number.",
       _fd(lambda fd: ((fd.dev or 0) & 0xFFFFF) if fd.in_table else None)),
    _f("fd.ino", T.INT64, "Inode number.", _fd(lambda fd: (fd.ino or 0) if fd.in_table else None)),
    _f("fd.types", T.CHARBUF, "Distinct fd types of the process's open fds ([N]: of fd N).",
       _types, arg=ARG_INDEX, multi=MULTI_LIST, multi_with_arg=MULTI_LIST),
    _f("fd.is_upper_layer", T.BOOL, "File on the overlayfs upper layer.",
       _fd(lambda fd: fd.is_upper_layer if fd.in_table else None)),
    _f("fd.is_lower_layer", T.BOOL, "File on an overlayfs lower layer.",
       _fd(lambda fd: fd.is_lower_layer if fd.in_table else None)),
]
