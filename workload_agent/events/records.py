"""Decoding batches of event records from the C ring (layout: csrc/record.h).

Tests check these formats against the C structs through cffi (sizes, offsets and
enum values), so the header stays the single definition of the layout.
"""
from __future__ import annotations

import struct

HEADER = struct.Struct("<IHHQQiiiIq6QHHI")
BLOB = struct.Struct("<HHHHII")

# record kinds
K_SYSCALL = 1
K_CLONE = 2
K_EXEC = 3
K_EXIT = 4
K_SIGNAL = 5
K_DROP = 6
K_ATTACH = 7   # a foreign process seized at our request (csrc/attach.c)

# record flags
F_NO_EXIT = 1 << 0
F_TRUNCATED = 1 << 1
F_UNREADABLE = 1 << 2
F_FOREIGN_ARCH = 1 << 3
F_HAS_EXIT = 1 << 4
F_THREAD = 1 << 5
F_GUARD = 1 << 6    # a guard rule matched (workload_agent/tracer/guard.py); extra: its index + 1
F_DENIED = 1 << 7   # the tracer made the call fail

# blob flags
B_TRUNCATED = 1 << 0
B_UNREADABLE = 1 << 1


class Blob:
    """Memory captured from one syscall argument."""

    __slots__ = ("kind", "data", "truncated", "unreadable")

    def __init__(self, kind: int, data: bytes, truncated: bool = False, unreadable: bool = False):
        self.kind = kind
        self.data = data
        self.truncated = truncated
        self.unreadable = unreadable

    def __repr__(self) -> str:
        flags = ("T" if self.truncated else "") + ("U" if self.unreadable else "")
        return f"Blob({self.kind}, {self.data!r}{', ' + flags if flags else ''})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Blob) and (self.kind, self.data, self.truncated, self.unreadable) == (
            other.kind, other.data, other.truncated, other.unreadable)


class Record:
    __slots__ = ("kind", "flags", "ts_enter", "ts_exit", "tgid", "tid", "nr", "arch", "ret", "args",
                 "extra", "blobs")

    def __init__(self, kind, flags, ts_enter, ts_exit, tgid, tid, nr, arch, ret, args, extra, blobs):
        self.kind = kind
        self.flags = flags
        self.ts_enter = ts_enter
        self.ts_exit = ts_exit
        self.tgid = tgid
        self.tid = tid
        self.nr = nr
        self.arch = arch
        self.ret = ret
        self.args = args
        self.extra = extra
        self.blobs = blobs  # argument index -> Blob

    @property
    def has_exit(self) -> bool:
        return bool(self.flags & F_HAS_EXIT)

    def __repr__(self) -> str:
        return (f"Record(kind={self.kind}, tid={self.tid}, tgid={self.tgid}, nr={self.nr}, ret={self.ret}, "
                f"flags={self.flags:#x}, extra={self.extra}, blobs={self.blobs})")


def decode_batch(buf: bytes) -> list[Record]:
    """The records of one batch read from the ring (``buf``: bytes, so that a blob's
    slice is its own bytes object)."""
    if not isinstance(buf, bytes):
        buf = bytes(buf)
    out = []
    append = out.append
    unpack_h = HEADER.unpack_from
    unpack_b = BLOB.unpack_from
    hsize, bsize = HEADER.size, BLOB.size
    off, end = 0, len(buf)
    while off + hsize <= end:
        (length, kind, flags, ts_enter, ts_exit, tgid, tid, nr, arch, ret,
         a0, a1, a2, a3, a4, a5, nblobs, _res, extra) = unpack_h(buf, off)
        if length < hsize or off + length > end:
            raise ValueError(f"corrupt record at offset {off}: length {length}")
        blobs = {}
        if nblobs:
            p = off + hsize
            for _ in range(nblobs):
                argidx, bkind, bflags, _r1, blen, _r2 = unpack_b(buf, p)
                p += bsize
                # Slicing bytes copies them out of the batch: each blob is its own object.
                blobs[argidx] = Blob(bkind, buf[p:p + blen], bflags & B_TRUNCATED != 0,
                                     bflags & B_UNREADABLE != 0)
                p += (blen + 7) & ~7
        append(Record(kind, flags, ts_enter, ts_exit, tgid, tid, nr, arch, ret,
                      (a0, a1, a2, a3, a4, a5), extra, blobs))
        off += length
    return out
