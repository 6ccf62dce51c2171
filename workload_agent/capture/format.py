"""The capture file format: enriched events plus the state their fields read.

Layout::

    MAGIC (8 bytes) | format version (u16 LE) | chunk | chunk | ...
    chunk = CHUNK_TAG (4) | compressed length (u32) | raw length (u32) | crc32 of the
            compressed bytes (u32) | zlib data

Each chunk is compressed on its own, so a file cut anywhere replays every whole
chunk before the cut. A chunk holds a stream of msgpack arrays, tagged by their
first element:

    ["H", header]                   first record of the file (schema, host, command)
    ["O", class, id, [values]]      a snapshot of a Process/Fd/User/Group/Container/Mount
    ["E", [values]]                 an Event; object values are references to snapshots
    ["D", ts, count]                the tracer dropped `count` events
    ["Z", summary]                  clean end of the recording

A snapshot is written the first time an object is seen and again only when its
encoded value changed, so a process referenced by a thousand events is stored once.
Object fields are written in the order the header's schema names them, which lets a
reader of the same format version rebuild objects by name.
"""
from __future__ import annotations

import dataclasses
import struct
import time
import zlib
from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Tuple, Union

import msgpack

from ..events.decode import FsPath
from ..events.sockaddr import SockAddr, SockTuple
from ..rules import event as E

MAGIC = b"WACAPT\r\n"  # the \r\n catches a text-mode transfer mangling the file
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sH")
CHUNK_TAG = b"WAck"
_CHUNK = struct.Struct("<4sIII")
MAX_CHUNK = 64 << 20  # larger lengths can only come from damage

# msgpack extension codes
EXT_REF = 1     # reference to a snapshot: packed int id
EXT_TUPLE = 2   # a tuple (arrays come back as lists; some extractors tell them apart)
EXT_BIGINT = 3  # an int beyond 64 bits, as decimal text
EXT_INLINE = 4  # an event's Param, written in place (never shared)
EXT_VALUE = 5   # a decoded param value object (socket address, path): [class, [fields]]

# The objects snapshotted by reference, by the name written in the file.
CLASSES = {c.__name__: c for c in (E.Process, E.Fd, E.User, E.Group, E.Container, E.Mount)}
# Written in place rather than by reference.
INLINE = {c.__name__: c for c in (E.Param,)}
# Param values that are objects: written as [class name, constructor arguments].
VALUES = {c.__name__: c for c in (SockAddr, SockTuple, FsPath)}
_REF_TYPES = tuple(CLASSES.values())
_INLINE_TYPES = tuple(INLINE.values())
_EVENT_FIELDS = [f.name for f in dataclasses.fields(E.Event) if not f.name.startswith("_")]


def schema() -> Dict[str, List[str]]:
    """Field names per class, in the order their values are written."""
    out = {name: [f.name for f in dataclasses.fields(cls)] for name, cls in {**CLASSES, **INLINE}.items()}
    out["Event"] = list(_EVENT_FIELDS)
    return out


class CaptureError(Exception):
    """The capture cannot be read. ``str()`` names the file and, when known, the byte offset."""

    def __init__(self, path: str, message: str, offset: Optional[int] = None):
        self.path = path
        self.offset = offset
        self.message = message
        where = f"{path}: " if offset is None else f"{path}: at byte {offset}: "
        super().__init__(where + message)


class CaptureVersionError(CaptureError):
    pass


# -- writing ------------------------------------------------------------------------------


def _value_args(obj) -> list:
    if type(obj) is FsPath:
        return [obj.raw, obj.resolved]
    return [getattr(obj, f.name) for f in dataclasses.fields(obj)]


def _default(obj):
    if type(obj).__name__ in VALUES and type(obj) is VALUES[type(obj).__name__]:
        return msgpack.ExtType(EXT_VALUE, _pack([type(obj).__name__, _plain(_value_args(obj))]))
    if isinstance(obj, tuple):
        return msgpack.ExtType(EXT_TUPLE, _pack([_plain(v) for v in obj]))
    if isinstance(obj, bool):
        return obj
    if isinstance(obj, int):  # an int subclass (IntEnum, IntFlag)
        return int(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, (bytearray, memoryview)):
        return bytes(obj)
    raise TypeError(f"cannot store a {type(obj).__name__} in a capture")


def _pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True, strict_types=True, default=_default,
                         unicode_errors="surrogateescape")


def _plain(v):
    """Ints that msgpack cannot hold become EXT_BIGINT; everything else as is."""
    if type(v) is int and not (-(1 << 63) <= v < (1 << 64)):
        return msgpack.ExtType(EXT_BIGINT, str(v).encode())
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {_plain(k): _plain(x) for k, x in v.items()}
    return v


class _Interner:
    """Assigns snapshot ids to state objects and says which snapshots are new."""

    def __init__(self) -> None:
        # id(obj) -> (obj, encoded values, snapshot id); the obj is kept so its id
        # cannot be reused by a different object while we remember it.
        self.known: Dict[int, Tuple[Any, list, int]] = {}
        self.next_id = 1

    def ref(self, obj, out: List[bytes], visiting: set, done: Dict[int, int]):
        key = id(obj)
        if key in done:
            return done[key]
        if key in visiting:
            return None  # a reference loop (a process its own ancestor): cut it
        visiting.add(key)
        cls = next(c for c in _REF_TYPES if isinstance(obj, c))
        try:
            values = [self.value(getattr(obj, f.name), out, visiting, done)
                      for f in dataclasses.fields(cls)]
        finally:
            visiting.discard(key)
        seen = self.known.get(key)
        if seen is not None and seen[1] == values:
            sid = seen[2]
        else:
            sid = self.next_id
            self.next_id += 1
            self.known[key] = (obj, values, sid)
            out.append(_pack(["O", cls.__name__, sid, values]))
        done[key] = sid
        return sid

    def value(self, v, out, visiting, done):
        if type(v) in (str, bytes, bool, float) or v is None:
            return v
        if type(v) is int:
            return _plain(v)
        if isinstance(v, _REF_TYPES):
            sid = self.ref(v, out, visiting, done)
            return None if sid is None else msgpack.ExtType(EXT_REF, _pack(sid))
        if isinstance(v, list):
            return [self.value(x, out, visiting, done) for x in v]
        if isinstance(v, _INLINE_TYPES):
            # Subclasses (the tracker's lazily rendered params) are written as their base class.
            cls = next(c for c in _INLINE_TYPES if isinstance(v, c))
            values = [self.value(getattr(v, f.name), out, visiting, done) for f in dataclasses.fields(cls)]
            return msgpack.ExtType(EXT_INLINE, _pack([cls.__name__, values]))
        if isinstance(v, tuple):
            return tuple(self.value(x, out, visiting, done) for x in v)
        if isinstance(v, dict):
            return {self.value(k, out, visiting, done): self.value(x, out, visiting, done)
                    for k, x in v.items()}
        return v  # packing decides (int subclasses, bytearray) or refuses


class CaptureWriter:
    """Streams a capture: ``write_event``/``write_drop`` as things happen, ``close`` at the end.

    Records are buffered and compressed into a chunk when the buffer is large enough
    or old enough (``maybe_flush``), so a killed recorder loses at most that much.
    """

    def __init__(self, target: Union[str, BinaryIO], header: Optional[dict] = None, *,
                 chunk_bytes: int = 256 << 10, flush_seconds: float = 1.0, level: int = 6):
        self.path = target if isinstance(target, str) else getattr(target, "name", "<stream>")
        self._own = isinstance(target, str)
        self.out: BinaryIO = open(target, "wb") if isinstance(target, str) else target
        self.chunk_bytes = chunk_bytes
        self.flush_seconds = flush_seconds
        self.level = level
        self._buf: List[bytes] = []
        self._size = 0
        self._last_flush = time.monotonic()
        self._interner = _Interner()
        self.events = 0
        self.drops = 0
        self.closed = False
        self.out.write(_PREFIX.pack(MAGIC, FORMAT_VERSION))
        doc = dict(header or {})
        doc["schema"] = schema()
        doc.setdefault("created_ns", time.time_ns())
        self._add(_pack(["H", _plain(doc)]))
        self.flush()

    def _add(self, rec: bytes) -> None:
        self._buf.append(rec)
        self._size += len(rec)

    def write_event(self, ev: E.Event) -> None:
        out: List[bytes] = []
        done: Dict[int, int] = {}
        values = [self._interner.value(getattr(ev, n), out, set(), done) for n in _EVENT_FIELDS]
        try:
            rec = _pack(["E", values])
        except OverflowError:
            rec = _pack(["E", _plain(values)])
        for r in out:
            self._add(r)
        self._add(rec)
        self.events += 1
        self.maybe_flush()

    def write_drop(self, ts: int, count: int) -> None:
        self._add(_pack(["D", ts, count]))
        self.drops += count
        self.maybe_flush()

    def maybe_flush(self) -> None:
        if self._size >= self.chunk_bytes or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._buf:
            return
        raw = b"".join(self._buf)
        self._buf = []
        self._size = 0
        data = zlib.compress(raw, self.level)
        self.out.write(_CHUNK.pack(CHUNK_TAG, len(data), len(raw), zlib.crc32(data)) + data)
        self.out.flush()

    def close(self, summary: Optional[dict] = None) -> None:
        if self.closed:
            return
        doc = {"events": self.events, "drops": self.drops, "end_ns": time.time_ns()}
        doc.update(summary or {})
        self._add(_pack(["Z", _plain(doc)]))
        self.flush()
        self.closed = True
        if self._own:
            self.out.close()


# -- reading ------------------------------------------------------------------------------


@dataclasses.dataclass
class Drop:
    ts: int
    count: int


def _ext_hook(code: int, data: bytes):
    if code == EXT_TUPLE:
        return tuple(_unpack_one(data))
    if code == EXT_BIGINT:
        return int(data.decode())
    if code == EXT_REF:
        return _Ref(_unpack_one(data))
    if code == EXT_INLINE:
        return _Inline(*_unpack_one(data))
    if code == EXT_VALUE:
        name, args = _unpack_one(data)
        cls = VALUES.get(name)
        if cls is None:
            raise ValueError(f"unknown value class {name!r}")
        return cls(*args)
    return msgpack.ExtType(code, data)


class _Ref:
    __slots__ = ("id",)

    def __init__(self, sid: int) -> None:
        self.id = sid


class _Inline:
    __slots__ = ("cls", "values")

    def __init__(self, cls: str, values: list) -> None:
        self.cls = cls
        self.values = values


def _unpack_one(data: bytes):
    return msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=False,
                           ext_hook=_ext_hook, unicode_errors="surrogateescape")


class CaptureReader:
    """Reads a capture written by CaptureWriter.

    Opening checks the magic and the version (CaptureVersionError for a newer
    format). ``records()`` yields Events and Drops in recorded order; damage raises
    CaptureError with the offset, while a file cut short simply ends the iteration
    with ``truncated`` saying where (the recording was killed).
    """

    def __init__(self, path: str):
        self.path = path
        try:
            with open(path, "rb") as f:
                self.data = f.read()
        except OSError as exc:
            raise CaptureError(path, exc.strerror or str(exc)) from None
        if len(self.data) < _PREFIX.size:
            if MAGIC.startswith(self.data[:len(MAGIC)]):
                raise CaptureError(path, f"file too short to be a capture ({len(self.data)} bytes)", 0)
            raise CaptureError(path, "not a workload-agent capture (bad magic)", 0)
        magic, version = _PREFIX.unpack_from(self.data, 0)
        if magic != MAGIC:
            raise CaptureError(path, "not a workload-agent capture (bad magic)", 0)
        if version > FORMAT_VERSION:
            raise CaptureVersionError(
                path, f"capture format version {version} is newer than this workload-agent reads "
                      f"(format version {FORMAT_VERSION}): upgrade workload-agent to replay it")
        if version < 1:
            raise CaptureError(path, f"invalid capture format version {version}", len(MAGIC))
        self.version = version
        self.header: dict = {}
        self.summary: Optional[dict] = None
        self.truncated: Optional[str] = None
        self.events_read = 0
        self._objects: Dict[int, Any] = {}
        self._schema: Dict[str, List[str]] = {}
        self._iter = self._records()
        first = next(self._iter, None)
        if first is not None:
            self._pending: List[Any] = [first]
        else:
            self._pending = []
        if not self.header:
            if self.truncated:
                raise CaptureError(path, f"no complete header: {self.truncated}")
            raise CaptureError(path, "no header record", _PREFIX.size)

    @property
    def complete(self) -> bool:
        return self.summary is not None

    def records(self) -> Iterator[Union[E.Event, Drop]]:
        pending, self._pending = self._pending, []
        yield from pending
        yield from self._iter

    def _chunks(self) -> Iterator[Tuple[int, bytes]]:
        data, pos, n = self.data, _PREFIX.size, len(self.data)
        while pos < n:
            if n - pos < _CHUNK.size:
                self.truncated = f"the file ends at byte {n} inside a chunk header"
                return
            tag, clen, rlen, crc = _CHUNK.unpack_from(data, pos)
            if tag != CHUNK_TAG:
                raise CaptureError(self.path, "corrupted: no chunk starts here", pos)
            if clen > MAX_CHUNK or rlen > MAX_CHUNK:
                raise CaptureError(self.path, f"corrupted: impossible chunk length {max(clen, rlen)}", pos)
            body = pos + _CHUNK.size
            if body + clen > n:
                self.truncated = (f"the file ends at byte {n} inside the chunk at byte {pos} "
                                  f"({body + clen - n} bytes missing)")
                return
            blob = data[body:body + clen]
            if zlib.crc32(blob) != crc:
                raise CaptureError(self.path, "corrupted: chunk checksum mismatch", pos)
            try:
                raw = zlib.decompress(blob)
            except zlib.error as exc:
                raise CaptureError(self.path, f"corrupted: chunk does not decompress ({exc})", pos) from None
            if len(raw) != rlen:
                raise CaptureError(self.path, "corrupted: chunk length mismatch", pos)
            yield pos, raw
            pos = body + clen

    def _records(self) -> Iterator[Union[E.Event, Drop]]:
        for pos, raw in self._chunks():
            unpacker = msgpack.Unpacker(raw=False, use_list=True, strict_map_key=False,
                                        ext_hook=_ext_hook, unicode_errors="surrogateescape",
                                        max_buffer_size=max(len(raw), 1))
            unpacker.feed(raw)
            try:
                for rec in unpacker:
                    out = self._apply(rec, pos)
                    if out is not None:
                        yield out
            except CaptureError:
                raise
            except Exception as exc:  # noqa: BLE001 - any decoding failure is damage
                raise CaptureError(self.path, f"corrupted record in the chunk ({exc})", pos) from None
        if self.summary is None and self.truncated is None:
            self.truncated = f"the file ends at byte {len(self.data)} without the end record"

    def _apply(self, rec, pos):
        if not isinstance(rec, list) or not rec:
            raise CaptureError(self.path, "corrupted: record is not a tagged array", pos)
        tag = rec[0]
        if tag == "E":
            self.events_read += 1
            return self._build(E.Event, self._schema.get("Event", _EVENT_FIELDS), rec[1], pos)
        if tag == "O":
            _, cname, sid, values = rec
            cls = CLASSES.get(cname)
            if cls is None:
                raise CaptureError(self.path, f"corrupted: unknown object class {cname!r}", pos)
            self._objects[sid] = self._build(cls, self._schema.get(cname, ()), values, pos)
            return None
        if tag == "D":
            return Drop(rec[1], rec[2])
        if tag == "H":
            self.header = rec[1]
            self._schema = self.header.get("schema", {})
            return None
        if tag == "Z":
            self.summary = rec[1]
            return None
        raise CaptureError(self.path, f"corrupted: unknown record tag {tag!r}", pos)

    def _build(self, cls, names, values, pos):
        known = _field_names(cls)
        kw = {}
        for name, v in zip(names, values):
            if name in known:
                kw[name] = self._resolve(v, pos)
        return cls(**kw)

    def _resolve(self, v, pos):
        if isinstance(v, _Ref):
            try:
                return self._objects[v.id]
            except KeyError:
                raise CaptureError(self.path, f"corrupted: reference to unknown snapshot {v.id}", pos) from None
        if isinstance(v, list):
            return [self._resolve(x, pos) for x in v]
        if isinstance(v, _Inline):
            cls = INLINE.get(v.cls)
            if cls is None:
                raise CaptureError(self.path, f"corrupted: unknown inline class {v.cls!r}", pos)
            return self._build(cls, self._schema.get(v.cls, ()), v.values, pos)
        if isinstance(v, tuple):
            return tuple(self._resolve(x, pos) for x in v)
        if isinstance(v, dict):
            return {self._resolve(k, pos): self._resolve(x, pos) for k, x in v.items()}
        return v


_FIELD_NAMES: Dict[type, frozenset] = {}


def _field_names(cls) -> frozenset:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = frozenset(f.name for f in dataclasses.fields(cls) if f.init)
    return names
