"""Alerts an agent holds until a receiver confirms them: numbered, bounded, optionally spilled.

Each alert is kept msgpack-encoded (a few hundred bytes instead of the ~5 KB a Python
dict of strings costs), so the bound in bytes is the memory it really takes. Past the
memory bound the newest alerts go to a spill file when one is configured (a FIFO: the
middle of the queue), bounded by the item count only; beyond the bounds the oldest
are dropped and counted. Not thread-safe:
the owner holds its own lock around every call.
"""
from __future__ import annotations

import collections
import itertools
import json
import os
import struct

import msgpack

_REC = struct.Struct(">QI")  # seq, payload length


def pack_alert(alert: dict) -> bytes:
    try:
        return msgpack.packb(alert, use_bin_type=True)
    except (TypeError, ValueError):  # odd values from a caller: keep what JSON would
        return msgpack.packb(json.loads(json.dumps(alert, default=str)), use_bin_type=True)


def unpack_alert(data: bytes) -> dict:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


class _Spill:
    """FIFO of (seq, packed alert) records in a file; restarts the file when empty."""

    def __init__(self, path: str):
        self.path = path
        self._fh = open(path, "w+b")
        self._read_pos = 0
        self._write_pos = 0
        self.count = 0

    def push(self, seq: int, data: bytes) -> None:
        self._fh.seek(self._write_pos)
        self._fh.write(_REC.pack(seq, len(data)) + data)
        self._write_pos = self._fh.tell()
        self.count += 1

    def pop_many(self, n: int) -> list:
        out = []
        if n <= 0 or not self.count:
            return out
        self._fh.flush()
        self._fh.seek(self._read_pos)
        for _ in range(min(n, self.count)):
            seq, length = _REC.unpack(self._fh.read(_REC.size))
            out.append((seq, self._fh.read(length)))
        self._read_pos = self._fh.tell()
        self.count -= len(out)
        if not self.count:
            self._fh.seek(0)
            self._fh.truncate()
            self._read_pos = self._write_pos = 0
        return out

    def close(self) -> None:
        self._fh.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


class AlertBuffer:
    def __init__(self, max_items: int = 10000, max_bytes: int = 8 << 20,
                 spill_file: str | None = None,
                 memory_items: int | None = None):
        self.max_items = max_items
        self.max_bytes = max_bytes
        # with a spill file, memory holds the head of the queue only
        self.memory_items = memory_items if (spill_file and memory_items) else max_items
        self._spill = _Spill(spill_file) if spill_file else None
        self._mem: collections.deque = collections.deque()   # (seq, packed), oldest first
        self._mem_bytes = 0
        self.last_seq = 0
        self.acked = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._mem) + (self._spill.count if self._spill else 0)

    @property
    def memory_bytes(self) -> int:
        return self._mem_bytes

    @property
    def spilled(self) -> int:
        return self._spill.count if self._spill else 0

    def push(self, alert: dict) -> int:
        self.last_seq += 1
        seq = self.last_seq
        data = pack_alert(alert)
        spill = self._spill
        if spill is not None and (spill.count or len(self._mem) >= self.memory_items
                                  or self._mem_bytes + len(data) > self.max_bytes):
            spill.push(seq, data)
            self._trim()
            return seq
        self._mem.append((seq, data))
        self._mem_bytes += len(data)
        self._trim()
        return seq

    def _trim(self) -> None:
        while len(self) > self.max_items or (self._mem_bytes > self.max_bytes and len(self._mem) > 1):
            self._refill()
            _, data = self._mem.popleft()
            self._mem_bytes -= len(data)
            self.dropped += 1

    def _refill(self) -> None:
        if self._spill is not None and self._spill.count and len(self._mem) < self.memory_items // 2 + 1:
            room = self.memory_items - len(self._mem)
            for seq, data in self._spill.pop_many(room):
                self._mem.append((seq, data))
                self._mem_bytes += len(data)

    def ack(self, seq: int) -> None:
        """Everything up to seq is confirmed: forget it."""
        if seq <= self.acked:
            return
        self.acked = seq
        while self._mem and self._mem[0][0] <= seq:
            _, data = self._mem.popleft()
            self._mem_bytes -= len(data)
            if not self._mem:
                self._refill()

    def after(self, seq: int, n: int) -> list:
        """Up to n consecutive (seq, packed alert) following seq, from memory."""
        self._refill()
        if not self._mem:
            return []
        start = max(0, seq + 1 - self._mem[0][0])
        return list(itertools.islice(self._mem, start, start + n))

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()
