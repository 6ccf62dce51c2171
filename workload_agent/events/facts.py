"""Process and file facts the tracer read at a stop (csrc/record.h: wa_proc_facts,
wa_file_facts): the state applies these, it never re-reads /proc for them."""
from __future__ import annotations

import struct
from typing import Optional

from . import capture_kinds as K

FILE_FACTS = struct.Struct("<QQIIIIqq")
PROC_FACTS = struct.Struct("<I7i4I4III5QQ3Q2QQ" + "48s" + "16s")

PF_STAT = 1 << 0
PF_STATUS = 1 << 1
PF_EXE = 1 << 2
PF_LOGINUID = 1 << 3
PF_FDLIMIT = 1 << 4

_NO_LOGINUID = 0xFFFFFFFF


class FileFacts:
    __slots__ = ("dev", "ino", "mode", "uid", "gid", "nlink", "ctime_ns", "mtime_ns")

    def __init__(self, dev, ino, mode, uid, gid, nlink, ctime_ns, mtime_ns):
        self.dev, self.ino, self.mode, self.uid = dev, ino, mode, uid
        self.gid, self.nlink, self.ctime_ns, self.mtime_ns = gid, nlink, ctime_ns, mtime_ns

    @classmethod
    def unpack(cls, data: bytes) -> "FileFacts":
        return cls(*FILE_FACTS.unpack_from(data))

    def __repr__(self) -> str:
        return f"FileFacts(dev={self.dev:#x}, ino={self.ino}, mode={self.mode:o}, nlink={self.nlink})"


class ProcFacts:
    """One process as it was at an exec (or attach) stop. Groups that could not be read
    are None (``valid`` says which were)."""

    __slots__ = ("valid", "ppid", "pgid", "sid", "tty", "vpid", "vpgid", "vsid", "uids", "gids",
                 "loginuid", "cap_inh", "cap_prm", "cap_eff", "cap_bnd", "cap_amb", "start_ticks",
                 "vm_size_kb", "vm_rss_kb", "vm_swap_kb", "pf_min", "pf_maj", "fdlimit", "exe",
                 "comm")

    @classmethod
    def unpack(cls, data: bytes) -> "ProcFacts":
        v = PROC_FACTS.unpack_from(data)
        f = cls()
        f.valid = v[0]
        f.ppid, f.pgid, f.sid, f.tty, f.vpid, f.vpgid, f.vsid = v[1:8]
        f.uids, f.gids = v[8:12], v[12:16]
        f.loginuid = v[16]
        # v[17]: padding
        f.cap_inh, f.cap_prm, f.cap_eff, f.cap_bnd, f.cap_amb = v[18:23]
        f.start_ticks, f.vm_size_kb, f.vm_rss_kb, f.vm_swap_kb, f.pf_min, f.pf_maj, f.fdlimit = v[23:30]
        f.exe = FileFacts.unpack(v[30]) if f.valid & PF_EXE else None
        f.comm = v[31].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        return f

    @property
    def has_stat(self) -> bool:
        return bool(self.valid & PF_STAT)

    @property
    def has_status(self) -> bool:
        return bool(self.valid & PF_STATUS)

    @property
    def login_uid(self) -> int:
        """-1 when unset (the kernel's (uid_t)-1) or unknown."""
        if not self.valid & PF_LOGINUID or self.loginuid == _NO_LOGINUID:
            return -1
        return self.loginuid


def link_text(blobs, slot: int) -> Optional[str]:
    """A /proc magic link the tracer read at the stop (None: not captured or unreadable)."""
    b = blobs.get(slot)
    if b is None or b.kind != K.LINK or b.unreadable:
        return None
    return b.data.decode("utf-8", "surrogateescape")


def proc_facts(blobs) -> Optional[ProcFacts]:
    b = blobs.get(K.SLOT_PROC)
    if b is None or b.kind != K.PROC_FACTS or len(b.data) < PROC_FACTS.size:
        return None
    return ProcFacts.unpack(b.data)


def script_facts(blobs) -> Optional[FileFacts]:
    b = blobs.get(K.SLOT_SCRIPT)
    if b is None or b.kind != K.FILE_FACTS or len(b.data) < FILE_FACTS.size:
        return None
    return FileFacts.unpack(b.data)
