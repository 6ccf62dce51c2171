"""The fd table seen from an event: the table's entry, or what the tracer read at the stop
(the fd's /proc link and socket ends) when the table does not know the fd or knows another
file under its number; the decode context (cwd, fd paths, socket ends) for events.decode."""
from __future__ import annotations

from typing import Optional

from ..events import capture_kinds as K, facts
from ..events.sockaddr import AF_INET, AF_UNIX, SockAddr, parse_sockaddr
from ..rules.event import Fd, Process
from . import fds, procfs
from .sockets import socket_names


class FdLookup:
    """Mixed into StateTracker; ``_cur_blobs``/``_cur_fds`` describe the record at hand."""


    def cwd(self, tid) -> Optional[str]:
        p = self.threads.get(tid)
        return None if p is None else p.cwd

    def _fd(self, p: Process, tid: int, num: int) -> Optional[Fd]:
        """The table entry; what the tracer read at the stop when the table does not know
        the fd (inherited, created by an untraced call) or knows another file under that
        number (its close was not traced); /proc only for records without that capture."""
        fd = p.fds.get(num)
        i = self._cur_fds.get(num)
        if i is not None:
            link = facts.link_text(self._cur_blobs, K.SLOT_FD + i)
            if link is not None and (fd is None or not fds.same_origin(
                    fd, link, self._blob_addr(K.SLOT_FD_LOCAL + i), self._blob_addr(K.SLOT_FD_PEER + i))):
                fd = fds.fd_from_link(num, link)
                if link.startswith("socket:"):
                    self._apply_socket(fd, self._blob_addr(K.SLOT_FD_LOCAL + i),
                                       self._blob_addr(K.SLOT_FD_PEER + i))
                p.fds[num] = fd
            return fd
        if fd is None and num >= 0:
            self.count_proc_read("fd")
            link = procfs.readlink(f"/proc/{tid}/fd/{num}")
            if link is not None:
                fd = fds.fd_from_link(num, link)
                if link.startswith("socket:"):
                    self._apply_socket(fd, *socket_names(p.pid, fd.num))
                p.fds[num] = fd
        return fd

    def _blob_addr(self, slot: int) -> Optional[SockAddr]:
        b = self._cur_blobs.get(slot)
        if b is None or b.unreadable or not b.data:
            return None
        return parse_sockaddr(b.data)

    def _apply_socket(self, fd: Fd, local: Optional[SockAddr], peer: Optional[SockAddr]) -> None:
        end = local or peer
        if end is None:
            return
        if end.family == AF_UNIX:
            fd.type, fd.typechar = "unix", "u"
            fds.set_unix(fd, None, (peer.path if peer else None) or local.path if local else "")
            return
        fd.type = "ipv4" if end.family == AF_INET else "ipv6"
        fd.typechar = fds.TYPECHAR[fd.type]
        fd.sotype = "tcp"
        if local is not None and peer is not None and peer.is_ip and peer.port:
            fds.set_tuple(fd, local.ip, local.port or 0, peer.ip, peer.port or 0, server=False,
                        client_is_local=True)
        elif local is not None and local.is_ip:
            fds.set_bound(fd, local.ip, local.port or 0)
        fd.name_changed = False

    def fd_path(self, tid, fd) -> Optional[str]:
        p = self.threads.get(tid)
        if p is None:
            return None
        entry = self._fd(p, tid, fd)
        if entry is None or entry.type not in ("file", "directory"):
            return None
        return entry.name

    def _sock_end(self, tid, fd, which: int) -> Optional[SockAddr]:
        p = self.threads.get(tid)
        if p is None:
            return None
        i = self._cur_fds.get(fd)
        if i is not None:   # read at the stop
            return self._blob_addr((K.SLOT_FD_LOCAL, K.SLOT_FD_PEER)[which] + i)
        entry = p.fds.get(fd)
        cached = getattr(entry, "_ends", None) if entry is not None else None
        if cached is None:
            self.count_proc_read("socket ends")
            cached = socket_names(p.pid, fd)
            if entry is not None:
                entry._ends = cached
        return cached[which]

    def sock_local(self, tid, fd) -> Optional[SockAddr]:
        return self._sock_end(tid, fd, 0)

    def sock_peer(self, tid, fd) -> Optional[SockAddr]:
        return self._sock_end(tid, fd, 1)

