"""File descriptor entries in Falco's forms, and which fd an event's fd.* fields describe.

Entries are rules.event.Fd objects kept in the process's table (``Process.fds``);
two private attributes ride along: ``cloexec`` (dropped at a successful execve)
and ``sotype`` (the socket's l4 protocol before it has a role, when fd.l4proto
still reads ``<NA>``).
"""
from __future__ import annotations

import ipaddress
import socket as _socket
from typing import Dict, Optional, Tuple

from ..events.decode import FsPath, normalize_path
from ..events.flags import FILE_FLAGS
from ..events.sockaddr import AF_INET, AF_INET6, AF_NETLINK, AF_UNIX, SockTuple, format_tuple
from ..rules.event import Fd

_PPM = dict(FILE_FLAGS)
PPM_O_DIRECTORY = _PPM["O_DIRECTORY"]
PPM_O_CLOEXEC = _PPM["O_CLOEXEC"]

# Falco's event table (falco-fields.md §2.1 / §1.10): category, and where the fd
# the event refers to comes from: "ret" the returned fd, "dup" the new fd on
# success else the old one, or the name of the param holding it.
EVENT_INFO: Dict[str, Tuple[str, Optional[str]]] = {
    "execve": ("process", None), "execveat": ("process", None), "clone": ("process", None),
    "clone3": ("process", None), "fork": ("process", None), "vfork": ("process", None),
    "procexit": ("process", None), "ptrace": ("process", None), "prctl": ("process", None),
    "kill": ("signal", None), "tkill": ("signal", None), "tgkill": ("signal", None),
    "setns": ("process", "fd"), "unshare": ("process", None),
    "setuid": ("user", None), "setgid": ("user", None), "setresuid": ("user", None),
    "setresgid": ("user", None), "setreuid": ("user", None), "setregid": ("user", None),
    "capset": ("process", None), "setsid": ("process", None), "chroot": ("process", None),
    "open": ("file", "ret"), "openat": ("file", "ret"), "openat2": ("file", "ret"),
    "creat": ("file", "ret"), "open_by_handle_at": ("file", "ret"),
    "close": ("io_other", "fd"), "chdir": ("file", None), "fchdir": ("file", "fd"),
    "unlink": ("file", None), "unlinkat": ("file", "dirfd"), "rmdir": ("file", None),
    "rename": ("file", None), "renameat": ("file", None), "renameat2": ("file", None),
    "mkdir": ("file", None), "mkdirat": ("file", "dirfd"), "symlink": ("file", None),
    "symlinkat": ("file", "linkdirfd"), "link": ("file", None), "linkat": ("file", None),
    "chmod": ("file", None), "fchmod": ("file", "fd"), "fchmodat": ("file", "dirfd"),
    "mount": ("file", None), "umount": ("file", None), "umount2": ("file", None),
    "memfd_create": ("memory", "ret"), "userfaultfd": ("file", "ret"),
    "init_module": ("other", None), "finit_module": ("other", "fd"), "bpf": ("other", "ret"),
    "socket": ("net", "ret"), "socketpair": ("ipc", "fd1"), "bind": ("net", "fd"),
    "listen": ("net", "fd"), "connect": ("net", "fd"), "accept": ("net", "ret"),
    "accept4": ("net", "ret"), "sendto": ("io_write", "fd"), "sendmsg": ("io_write", "fd"),
    "recvfrom": ("io_read", "fd"), "recvmsg": ("io_read", "fd"),
    "dup": ("io_other", "dup"), "dup2": ("io_other", "dup"), "dup3": ("io_other", "dup"),
    "fcntl": ("io_other", "fd"), "pipe": ("ipc", "fd1"), "pipe2": ("ipc", "fd1"),
    "eventfd": ("ipc", "ret"), "eventfd2": ("ipc", "ret"), "signalfd": ("signal", "ret"),
    "signalfd4": ("signal", "ret"), "timerfd_create": ("time", "ret"),
    "inotify_init": ("file", "ret"), "inotify_init1": ("file", "ret"),
    "epoll_create": ("wait", "ret"), "epoll_create1": ("wait", "ret"),
    "io_uring_setup": ("io_other", "ret"), "pidfd_open": ("process", "ret"),
    "pidfd_getfd": ("process", "ret"), "shutdown": ("net", "fd"),
    "getsockname": ("net", "fd"), "getpeername": ("net", "fd"),
    "utimensat": ("file", "fd"), "truncate": ("file", None), "ftruncate": ("file", "fd"),
    "io_uring_register": ("io_other", "fd"),
}

TYPECHAR = {
    "file": "f", "directory": "d", "ipv4": "4", "ipv6": "6", "unix": "u", "pipe": "p",
    "event": "e", "signalfd": "s", "eventpoll": "l", "inotify": "i", "timerfd": "t",
    "netlink": "n", "bpf": "b", "userfaultfd": "u", "io_uring": "r", "memfd": "m", "pidfd": "P",
}

#: fd.typechar guessed from the event when the fd is not in the table.
GUESSED_TYPECHAR = {
    "openat": "f", "openat2": "f", "creat": "f", "socket": "4", "accept": "4", "accept4": "4",
    "pipe": "p", "pipe2": "p", "eventfd": "e", "eventfd2": "e", "signalfd": "s",
    "signalfd4": "s", "timerfd_create": "t", "inotify_init": "i", "inotify_init1": "i",
}

#: Fds created by these events have a fixed type and an empty name.
ANON_TYPES = {
    "eventfd": "event", "eventfd2": "event", "signalfd": "signalfd", "signalfd4": "signalfd",
    "timerfd_create": "timerfd", "inotify_init": "inotify", "inotify_init1": "inotify",
    "epoll_create": "eventpoll", "epoll_create1": "eventpoll", "userfaultfd": "userfaultfd",
    "io_uring_setup": "io_uring", "bpf": "bpf", "pidfd_open": "pidfd",
}

# /proc/PID/fd/N link targets of anonymous inodes -> Falco fd type.
_ANON_LINKS = (
    ("anon_inode:[eventfd]", "event"), ("anon_inode:[signalfd]", "signalfd"),
    ("anon_inode:[eventpoll]", "eventpoll"), ("anon_inode:inotify", "inotify"),
    ("anon_inode:[timerfd]", "timerfd"), ("anon_inode:[userfaultfd]", "userfaultfd"),
    ("anon_inode:[io_uring]", "io_uring"), ("anon_inode:[pidfd]", "pidfd"),
    ("anon_inode:bpf", "bpf"), ("anon_inode:[bpf", "bpf"),
)

_SOCK_TYPE_MASK = 0xF
_L4_BY_SOCKTYPE = {_socket.SOCK_STREAM: "tcp", _socket.SOCK_DGRAM: "udp", _socket.SOCK_RAW: "raw"}
_ICMP_PROTOS = (1, 58)


_new_fd = object.__new__
_FD_FIELDS = frozenset(Fd.__dataclass_fields__)


def new_fd(num: int, type_: Optional[str], name: Optional[str] = "", cloexec: bool = False,
           nameraw: Optional[str] = None) -> Fd:
    # Fd(...) sets all its fields; an open makes one per event. The fields left at their
    # defaults are read from the class (a dataclass keeps them there): only these are stored.
    fd = _new_fd(Fd)
    fd.num = num
    fd.type = type_
    fd.typechar = TYPECHAR.get(type_ or "", "o")
    fd.name = name
    fd.nameraw = nameraw
    fd.cloexec = cloexec
    fd.sotype = None
    return fd


def copy_fd(fd: Fd, num: int, cloexec: bool = False) -> Fd:
    # Every fork copies the whole table: the fields are copied as one dict.
    new = _new_fd(Fd)
    new.__dict__.update({k: v for k, v in fd.__dict__.items() if k in _FD_FIELDS})
    new.num = num
    new.cloexec = cloexec
    new.sotype = getattr(fd, "sotype", None)
    new.name_changed = False
    return new


def file_fd(num: int, name, ppm_flags: int) -> Fd:
    """The entry an open of ``name`` (its path param: FsPath, str or None) makes."""
    names = getattr(name, "fd_names", None) if type(name) is FsPath else None
    if names is None:
        path = str(name) if name is not None else None
        raw = name.raw if isinstance(name, FsPath) else path
        names = (normalize_path(path) if path and path.startswith("/") else path,
                 _collapse_slashes(raw) if raw is not None else None)
        if type(name) is FsPath:
            # An FsPath never changes and one object serves every open of an absolute
            # path (events.decode): its fd names are worked out once.
            name.fd_names = names
    fd = _new_fd(Fd)
    fd.num = num
    if ppm_flags & PPM_O_DIRECTORY:
        fd.type = "directory"
        fd.typechar = TYPECHAR["directory"]
    else:
        fd.type = "file"
        fd.typechar = TYPECHAR["file"]
    fd.name, fd.nameraw = names
    fd.cloexec = bool(ppm_flags & PPM_O_CLOEXEC)
    fd.sotype = None
    return fd


def _collapse_slashes(path: str) -> str:
    if "//" not in path:
        return path
    while "//" in path:
        path = path.replace("//", "/")
    return path


def socket_fd(num: int, family: int, sock_type: int, proto: int) -> Fd:
    type_ = {AF_INET: "ipv4", AF_INET6: "ipv6", AF_UNIX: "unix", AF_NETLINK: "netlink"}.get(family)
    fd = new_fd(num, type_ or "<NA>", "", bool(sock_type & _socket.SOCK_CLOEXEC))
    if type_ is None:
        fd.typechar = "o"
    l4 = _L4_BY_SOCKTYPE.get(sock_type & _SOCK_TYPE_MASK)
    if l4 == "raw" and proto in _ICMP_PROTOS:
        l4 = "icmp"
    fd.sotype = l4
    if type_ in ("ipv4", "ipv6"):
        fd.l4proto = "<NA>"  # no role yet
    return fd


def _unmap(ip: Optional[str]) -> Optional[str]:
    if ip is None or ":" not in ip:
        return ip
    try:
        mapped = ipaddress.ip_address(ip.split("%", 1)[0]).ipv4_mapped
    except ValueError:
        return ip
    return str(mapped) if mapped is not None else ip


def set_tuple(fd: Fd, cip: str, cport: int, sip: str, sport: int, *, server: bool,
              client_is_local: Optional[bool]) -> None:
    """Give an IP socket its connected tuple and role."""
    cip, sip = _unmap(cip), _unmap(sip)
    l4 = getattr(fd, "sotype", None) or "tcp"
    if l4 in ("icmp", "raw"):
        name = "%s->%s" % (cip, sip)
    else:
        name = "%s:%d->%s:%d" % (cip, cport, sip, sport)
    fd.name_changed = fd.name != name
    fd.name = fd.nameraw = name
    fd.cip, fd.cport, fd.sip, fd.sport = cip, cport, sip, sport
    fd.l4proto = l4
    fd.is_server = server
    fd.client_is_local = client_is_local
    fd.connected = True


def set_bound(fd: Fd, ip: str, port: int) -> None:
    ip = _unmap(ip)
    name = "%s:%d" % (ip, port)
    fd.name_changed = fd.name != name
    fd.name = fd.nameraw = name
    fd.sip, fd.sport = ip, port
    fd.l4proto = getattr(fd, "sotype", None) or fd.l4proto
    fd.is_server = True


def set_unix(fd: Fd, t: Optional[SockTuple], path: Optional[str] = None) -> None:
    name = format_tuple(t) if t is not None else (path or "")
    fd.name_changed = fd.name != name
    fd.name = fd.nameraw = name


def fd_from_link(num: int, link: str) -> Fd:
    """An fd first seen in /proc/PID/fd (inherited, or created by an untraced call)."""
    if link.startswith("/"):
        if link.startswith("/memfd:"):
            name = link[len("/memfd:"):]
            if name.endswith(" (deleted)"):
                name = name[:-len(" (deleted)")]
            return new_fd(num, "memfd", name)
        if link.endswith(" (deleted)"):
            link = link[:-len(" (deleted)")]
        return new_fd(num, "file", link)
    if link.startswith("pipe:"):
        return new_fd(num, "pipe", "")
    for prefix, type_ in _ANON_LINKS:
        if link.startswith(prefix):
            return new_fd(num, type_, "")
    return new_fd(num, None, "")


def _category(type_: Optional[str]) -> str:
    if type_ in ("file", "directory"):
        return "file"
    if type_ in ("ipv4", "ipv6", "unix", "netlink", "socket", "<NA>"):
        return "socket"
    return type_ or ""


def same_origin(fd: Fd, link: str, local=None, peer=None) -> bool:
    """Whether a table entry is still the file a /proc fd link (read at the stop) names.
    close is not traced, so the number may have been reused behind the table's back: then
    the stop's view wins. A file opened through a symlink keeps its opened name only while
    the link matches it."""
    if link.startswith("socket:"):
        if _category(fd.type) != "socket":
            return False
        if fd.type in ("ipv4", "ipv6") and local is not None and local.is_ip and fd.name:
            # A socket bound to port 0 (or a wildcard address) got its port from the kernel.
            ip, port = _unmap(local.ip), local.port
            return any((eip in (ip, "0.0.0.0", "::", None)) and eport in (port, 0, None)
                       for eip, eport in ((fd.sip, fd.sport), (fd.cip, fd.cport)))
        return True
    fresh = fd_from_link(fd.num, link)
    if _category(fd.type) != _category(fresh.type):
        return False
    if fresh.type == "file" and fd.name and fresh.name:
        return fd.name.rstrip("/") == fresh.name.rstrip("/")
    return True


def event_fd_text(fd: Optional[Fd]) -> str:
    """FD param resolved form: ``<typechar[l4]>name`` (``<f>/etc/passwd``, ``<4t>a:1->b:2``)."""
    if fd is None or fd.type is None:
        return ""
    tc = fd.typechar
    if fd.type in ("ipv4", "ipv6") and fd.l4proto and fd.l4proto != "<NA>":
        tc += fd.l4proto[0]
    return "<%s>%s" % (tc, fd.name or "")
