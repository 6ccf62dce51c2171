"""The capture file format: enriched events plus the state their fields read.

Layout::

    MAGIC (8 bytes) | format version (u16 LE) | chunk | chunk | ...
    chunk = CHUNK_TAG (4) | compressed length (u32) | raw length (u32) | crc32 of the
            compressed bytes (u32) | crc32 of the 16 bytes before (u32) | zlib data

The chunk header has its own checksum so that a damaged length is told from a file
that was cut short.

Each chunk is compressed on its own, so a file cut anywhere replays every whole
chunk before the cut. A chunk holds a stream of msgpack arrays, tagged by their
first element:

    ["H", header]                   first record of the file (schema, host, command)
    ["O", class, id, [values]]      a snapshot of a Process/Fd/User/Group/Container/Mount
    ["U", id, base id, {i: value}]  (version 2) a new snapshot of the object snapshotted as
                                    `base id`: its values with those at the given
                                    schema indexes changed; `base id` is never used again
    ["T", id, base id, num, fd id]  (version 3) a new snapshot of the process snapshotted
                                    as `base id` whose fd table differs in one entry: fd
                                    `num` is the snapshot `fd id` (0: no fd `num` any more)
    ["F"]                           (version 2) every snapshot id before this one is
                                    dead (the writer forgot the objects it had seen)
    ["X", [ids]]                    (version 2) these snapshots are dead (a closed fd, an
                                    exited process): a later use is a new snapshot
    ["K", kind id, [values], [names]]
                                    (version 3) an event kind: the values of the Event
                                    fields the schema's "EventKind" names (the ones that
                                    repeat: type, hostname, ...) and its params' names; a
                                    later "K" with the same id replaces it
    ["e", kind id, *row, proc id, fd id, [param blobs], [dead ids]?]
                                    (version 3) an Event: its kind, the fields the schema's
                                    "EventRow" names, its process and fd as snapshot ids
                                    (0: none), one msgpack blob per param ([plain, resolved,
                                    raw], "ParamBlob"; decoded when a rule reads that param),
                                    and, when the event retired some, the snapshot ids dead
                                    once it is read (as an "X" after it)
    ["E", [values]]                 an Event; object values are references to snapshots;
                                    (version 2) its params are [values] rows of Param
                                    fields, in place (version 1: EXT_INLINE values);
                                    version 3 writes it only for an event "e" cannot hold
                                    (a param holding a state object, params not Params)
    ["D", ts, count]                the tracer dropped `count` events
    ["Z", summary]                  clean end of the recording

A snapshot is written the first time an object is seen and again only when its
encoded value changed, so a process referenced by a thousand events is stored once;
a changed object is written as the fields that changed ("U", or "T" for an open or a
close), and since the snapshot it replaces is then dead, a reader keeps one snapshot per
live object. The writer also says when an object is dead: a closed fd, an fd that left
its process's table in any other way (replaced, dup2'd over, closed on exec), an exited
process. So a reader's memory does not grow with the length of the capture.
Object fields are written in the order the header's schema names them, which lets a
reader of the same format version rebuild objects by name.

Format 3 is format 2 made cheaper to read (replay reads about twice as fast): an event
was a nested array of every field and param, with its param names and repeated strings
each time, and references as msgpack extensions; a process's whole fd table was written
again at every open and close. Both versions are written (`version=`, `record
--capture-format`) and every version is read.
"""
from __future__ import annotations

import dataclasses
import operator
import os
import struct
import time
import zlib
from typing import Any, BinaryIO, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import msgpack

from ..events.decode import FsPath
from ..events.sockaddr import SockAddr, SockTuple
from ..rules import event as E

MAGIC = b"WACAPT\r\n"  # the \r\n catches a text-mode transfer mangling the file
FORMAT_VERSION = 3  # 2: "U" and "F" records; 3: "K", "e" and "T" records
WRITABLE_VERSIONS = (2, 3)   # 2: for older workload-agents
_PREFIX = struct.Struct("<8sH")
CHUNK_TAG = b"WAck"
_CHUNK = struct.Struct("<4sIIII")
_CHUNK_CHECKED = 16  # the header bytes its own crc covers
MAX_CHUNK = 64 << 20  # larger lengths can only come from damage
# The writer remembers every state object it has seen (exited processes, closed fds
# included); past this many it forgets them all, which only costs re-writing the
# snapshots still in use.
MAX_REMEMBERED = 200_000

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
# An "e" record: the event's fields that repeat from event to event are its kind ("K",
# written once); the others are its row; then the proc and fd snapshot ids and the params.
KIND_FIELDS = ("type", "dir", "hostname", "source", "category", "is_async", "start_ts")
ROW_FIELDS = ("ts", "num", "tid", "cpu", "res", "buffer", "prev_ts")
PARAM_FIELDS = ("plain", "resolved", "raw")   # a param blob; its name is in the kind
MAX_KINDS = 4096
_REF_TYPES = tuple(CLASSES.values())
_INLINE_TYPES = tuple(INLINE.values())
_EVENT_FIELDS = [f.name for f in dataclasses.fields(E.Event) if not f.name.startswith("_")]


def schema() -> Dict[str, List[str]]:
    """Field names per class, in the order their values are written."""
    out = {name: [f.name for f in dataclasses.fields(cls)] for name, cls in {**CLASSES, **INLINE}.items()}
    out["Event"] = list(_EVENT_FIELDS)
    out["EventKind"] = list(KIND_FIELDS)
    out["EventRow"] = list(ROW_FIELDS)
    out["ParamBlob"] = list(PARAM_FIELDS)
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
    if type(v) is tuple:
        return tuple(_plain(x) for x in v)
    if isinstance(v, dict):
        return {_plain(k): _plain(x) for k, x in v.items()}
    return v


def _pack_wide(obj) -> bytes:
    """_pack, with ints beyond 64 bits (rare: a corrupt or exotic value) as EXT_BIGINT."""
    try:
        return _pack(obj)
    except OverflowError:
        return _pack(_plain(obj))


def _mentions_state(annotation) -> bool:
    text = str(annotation)
    return any(name in text for name in CLASSES)


# How a field that can hold state objects holds them.
_ONE, _MANY, _OTHER = 0, 1, 2


class _Shape:
    """How to snapshot one state class fast: all fields in one C-level attrgetter call;
    mutable containers of plain values copied (the tracker mutates them in place);
    only the fields that can hold other state objects walked in Python."""
    __slots__ = ("name", "get", "deep", "copy", "table")

    def __init__(self, cls) -> None:
        fields = dataclasses.fields(cls)
        self.name = cls.__name__
        # A process's fd table: an Fd that leaves it is dead to the writer (see _Interner.left).
        self.table = next((i for i, f in enumerate(fields) if cls is E.Process and f.name == "fds"), None)
        self.get = operator.attrgetter(*(f.name for f in fields))
        self.deep = []
        self.copy = []
        for i, f in enumerate(fields):
            text = str(f.type)
            if _mentions_state(text):
                many = any(k in text for k in ("List", "Dict", "list", "dict"))
                self.deep.append((i, _MANY if many else _ONE))
            elif any(k in text for k in ("List", "Dict", "list", "dict")):
                self.copy.append(i)


_VISITING = object()


def _one_fd_change(old, new) -> Optional[Tuple[int, int]]:
    """(fd number, snapshot id or 0: removed) when two written fd tables differ in one
    entry only (an open, a close), else None."""
    if type(old) is not dict or type(new) is not dict:
        return None
    diff = [k for k in old.keys() | new.keys() if old.get(k, _VISITING) != new.get(k, _VISITING)]
    if len(diff) != 1 or type(diff[0]) is not int:
        return None
    num = diff[0]
    if num not in new:
        return num, 0
    ref = new[num]
    if type(ref) is not msgpack.ExtType or ref.code != EXT_REF:
        return None
    return num, _small_uint(ref.data)


class _Interner:
    """Assigns snapshot ids to state objects and says which snapshots are new.

    Every event re-reads each state object it reaches (the tracker changes them in
    place, there is no version to ask), but an unchanged object costs one attrgetter
    call and one list comparison.
    """

    def __init__(self, fd_records: bool = True) -> None:
        self.fd_records = fd_records   # "T" records (format 3) for one fd table change
        # id(obj) -> (obj, encoded values, reference, snapshot id, a process's Fds); the
        # obj is kept so its id cannot be reused by a different object while we remember it.
        self.known: Dict[int, Tuple[Any, list, Any, int, Optional[list]]] = {}
        self.shapes: Dict[type, _Shape] = {}
        self.next_id = 1
        # Fds that left a process's table while this event was written: nothing
        # refers to them any more (a close, an fd replaced by another, dup2 over it, exec's
        # cloexec), so the writer forgets them and the reader may let them go.
        self.left: List[Any] = []

    def _shape(self, obj) -> _Shape:
        shape = self.shapes.get(type(obj))
        if shape is None:
            base = next(c for c in _REF_TYPES if isinstance(obj, c))
            shape = self.shapes[type(obj)] = _Shape(base)
        return shape

    def ref(self, obj, out: List[bytes], done: Dict[int, Any]):
        """The reference to obj's current snapshot (None inside a reference loop)."""
        key = id(obj)
        ref = done.get(key)
        if ref is not None:
            return None if ref is _VISITING else ref
        shape = self.shapes.get(type(obj)) or self._shape(obj)
        values = list(shape.get(obj))
        table = values[shape.table] if shape.table is not None else None
        for i in shape.copy:
            v = values[i]
            if type(v) is list:
                values[i] = v[:]
            elif type(v) is dict:
                values[i] = v.copy()
        if shape.deep:
            done[key] = _VISITING  # a reference loop (a process its own ancestor) is cut
            for i, kind in shape.deep:
                v = values[i]
                if v is None:
                    continue
                if kind == _ONE and isinstance(v, _REF_TYPES):
                    values[i] = self.ref(v, out, done)
                else:
                    values[i] = self.value(v, out, done)
        seen = self.known.get(key)
        if seen is not None and seen[1] == values:
            ref = seen[2]
        else:
            sid = self.next_id
            self.next_id += 1
            ref = msgpack.ExtType(EXT_REF, _pack(sid))
            if type(table) is dict:
                table = list(table.values())   # the Fds as they are now (the dict changes in place)
            else:
                table = None
            self.known[key] = (obj, values, ref, sid, table)
            if seen is not None and len(seen[1]) == len(values):
                changed = {i: v for i, (old, v) in enumerate(zip(seen[1], values)) if old != v}
                at = shape.table
                if table is not None and at in changed and seen[4] is not None:
                    kept = {id(x) for x in table}
                    self.left.extend(x for x in seen[4] if id(x) not in kept)
                one = (_one_fd_change(seen[1][at], values[at])
                       if len(changed) == 1 and at in changed and self.fd_records else None)
                if one is not None:
                    out.append(_pack(["T", sid, seen[3], *one]))
                else:
                    out.append(_pack_wide(["U", sid, seen[3], changed]))
            else:
                out.append(_pack_wide(["O", shape.name, sid, values]))
        done[key] = ref
        return ref

    def value(self, v, out, done):
        if type(v) in _SCALARS or v is None:
            return v
        if isinstance(v, _REF_TYPES):
            return self.ref(v, out, done)
        if isinstance(v, list):
            return [self.value(x, out, done) for x in v]
        if isinstance(v, _INLINE_TYPES):
            # Subclasses (the tracker's lazily rendered params) are written as their base class.
            cls = next(c for c in _INLINE_TYPES if isinstance(v, c))
            values = [self.value(getattr(v, f.name), out, done) for f in dataclasses.fields(cls)]
            return msgpack.ExtType(EXT_INLINE, _pack_wide([cls.__name__, values]))
        if isinstance(v, tuple):
            return tuple(self.value(x, out, done) for x in v)
        if isinstance(v, dict):
            return {self.value(k, out, done): self.value(x, out, done) for k, x in v.items()}
        return v  # packing decides (int subclasses, bytearray) or refuses


_SCALARS = frozenset((str, bytes, bool, float, int))
_kind_values = operator.attrgetter(*KIND_FIELDS)
_row_values = operator.attrgetter(*ROW_FIELDS)
_VALUE_TYPES = frozenset(VALUES.values())


def _stateless(v) -> bool:
    """Whether a param value holds no state object (so it can be read later, on its own)."""
    t = type(v)
    if v is None or t in _SCALARS or t in _VALUE_TYPES:
        return True
    if t is list or t is tuple:
        return all(_stateless(x) for x in v)
    if t is dict:
        return all(_stateless(k) and _stateless(x) for k, x in v.items())
    return not isinstance(v, (_REF_TYPES, _INLINE_TYPES, list, tuple, dict))


_event_values = operator.attrgetter(*_EVENT_FIELDS)
_PARAMS_AT = _EVENT_FIELDS.index("params")
_param_values = operator.attrgetter(*(f.name for f in dataclasses.fields(E.Param)))


class CaptureWriter:
    """Streams a capture: ``write_event``/``write_drop`` as things happen, ``close`` at the end.

    Records are buffered and compressed into a chunk when the buffer is large enough
    or old enough (``maybe_flush``), so a killed recorder loses at most that much.
    """

    def __init__(self, target: Union[str, BinaryIO], header: Optional[dict] = None, *,
                 chunk_bytes: int = 256 << 10, flush_seconds: float = 1.0, level: int = 6,
                 version: int = FORMAT_VERSION):
        if version not in WRITABLE_VERSIONS:
            raise ValueError(f"cannot write capture format version {version} "
                             f"(writable: {', '.join(map(str, WRITABLE_VERSIONS))})")
        self.version = version
        self.path = target if isinstance(target, str) else getattr(target, "name", "<stream>")
        self._own = isinstance(target, str)
        self.out: BinaryIO = open(target, "wb") if isinstance(target, str) else target
        self.chunk_bytes = chunk_bytes
        self.flush_seconds = flush_seconds
        self.level = level
        self._buf: List[bytes] = []
        self._size = 0
        self._last_flush = time.monotonic()
        self._interner = _Interner(fd_records=version >= 3)
        self._kinds: Dict[tuple, int] = {}
        self.events = 0
        self.drops = 0
        self.closed = False
        self.out.write(_PREFIX.pack(MAGIC, version))
        doc = dict(header or {})
        doc["schema"] = schema()
        doc.setdefault("created_ns", time.time_ns())
        self._add(_pack_wide(["H", doc]))
        self.flush()

    def _add(self, rec: bytes) -> None:
        self._buf.append(rec)
        self._size += len(rec)

    def write_event(self, ev: E.Event) -> None:
        out: List[bytes] = []
        done: Dict[int, Any] = {}
        interner = self._interner
        if len(interner.known) > MAX_REMEMBERED:
            interner.known.clear()
            self._add(_pack(["F"]))
        rec = self._compact(ev, out, done) if self.version >= 3 else None
        if rec is None:   # something the compact record cannot hold: the general one
            value = interner.value
            values = [value(v, out, done) for v in _event_values(ev)]
            params = ev.params
            if isinstance(params, list) and all(isinstance(p, E.Param) for p in params):
                values[_PARAMS_AT] = [[value(x, out, done) for x in _param_values(p)] for p in params]
            rec = ["E", values]
        # What the event retired will not be referenced again (and if it is, it is
        # written anew): the reader can let it go, so its memory stays flat.
        dead = []
        if interner.left:
            left, interner.left = interner.left, []
            dead = self._dead(left)
        fd, proc = ev.fd, ev.proc
        if ev.type == "procexit" and proc is not None:
            dead += self._dead([proc] + list(proc.fds.values()))
        elif fd is not None and (ev.type == "close" or proc is None or proc.fds.get(fd.num) is not fd):
            dead += self._dead([fd])  # closed, or never in a table (a failed open)
        if dead and rec[0] == "e":
            rec.append(dead)   # dead once the event is read
            dead = []
        for r in out:
            self._add(r)
        self._add(_pack_wide(rec))
        if dead:
            self._add(_pack(["X", dead]))
        self.events += 1
        self.maybe_flush()

    def _compact(self, ev, out: List[bytes], done: Dict[int, Any]) -> Optional[list]:
        """The event as an "e" record (see the module's doc), or None when it holds
        something only the general "E" record can (an odd type, state inside a param)."""
        kind = _kind_values(ev)
        row = _row_values(ev)
        for v in kind + row:
            if not (v is None or type(v) in _SCALARS):
                return None
        proc, fd = ev.proc, ev.fd
        if proc is not None and not isinstance(proc, E.Process) or fd is not None and not isinstance(fd, E.Fd):
            return None
        params = ev.params
        if not isinstance(params, list):
            return None
        names = []
        blobs = []
        for p in params:
            if not isinstance(p, E.Param):
                return None
            name, plain, resolved, raw = _param_values(p)
            if type(name) is not str or not _stateless(raw):
                return None
            names.append(name)
            blobs.append(_pack_wide([plain, resolved, raw]))
        key = (kind, tuple(names), tuple(map(type, kind)))   # True and 1 are one dict key
        kinds = self._kinds
        kid = kinds.get(key)
        if kid is None:
            if len(kinds) >= MAX_KINDS:
                kinds.clear()   # ids are reused: a "K" record replaces the reader's old one
            kid = kinds[key] = len(kinds) + 1
            out.append(_pack_wide(["K", kid, list(kind), names]))
        interner = self._interner
        psid = fsid = 0
        if proc is not None:
            interner.ref(proc, out, done)
            psid = interner.known[id(proc)][3]
        if fd is not None:
            interner.ref(fd, out, done)
            fsid = interner.known[id(fd)][3]
        return ["e", kid, *row, psid, fsid, blobs]

    def _dead(self, objs) -> List[int]:
        """Forgets objs; their snapshot ids, for the reader to let go."""
        known = self._interner.known
        sids = []
        for obj in objs:
            seen = known.pop(id(obj), None)
            if seen is not None:
                sids.append(seen[3])
        return sids

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
        head = _CHUNK.pack(CHUNK_TAG, len(data), len(raw), zlib.crc32(data), 0)[:_CHUNK_CHECKED]
        self.out.write(head + struct.pack("<I", zlib.crc32(head)) + data)
        self.out.flush()

    def close(self, summary: Optional[dict] = None) -> None:
        if self.closed:
            return
        doc = {"events": self.events, "drops": self.drops, "end_ns": time.time_ns()}
        doc.update(summary or {})
        self._add(_pack_wide(["Z", doc]))
        self.flush()
        self.closed = True
        if self._own:
            self.out.close()


# -- reading ------------------------------------------------------------------------------


@dataclasses.dataclass
class Drop:
    ts: int
    count: int


def _small_uint(data: bytes) -> int:
    """A msgpack-packed unsigned int (a snapshot id), without a general unpack."""
    b = data[0]
    if b < 0x80 and len(data) == 1:
        return b
    if (b, len(data)) in ((0xcc, 2), (0xcd, 3), (0xce, 5), (0xcf, 9)):
        return int.from_bytes(data[1:], "big")
    raise ValueError("bad snapshot reference")


class _ParamRows(E.LazyList):
    """An event's params as written (rows of Param fields), made Params on first use:
    an event no rule reads the params of never pays for them, and one read by name
    (Event.param) builds only that one."""
    __slots__ = ("_src", "_one")

    def __init__(self, rows: list, decoder: "_Decoder") -> None:
        super().__init__()
        self._src = (rows, decoder)
        self._one = None   # name -> (row index, its Param or None), filled by lookup

    def lookup(self, name: str):
        one = self._one
        if one is not None:
            hit = one.get(name)
            if hit is not None:
                return hit[1]
        src = self._src
        if src is None:   # the last of a name, as Event.param's own index has it
            for p in reversed(list(list.__iter__(self))):
                if p.name == name:
                    return p
            return None
        if one is None:
            one = self._one = {}
        rows, decoder = src
        at = decoder.param_name_at()
        for i in range(len(rows) - 1, -1, -1):
            r = rows[i]
            if type(r) is not list:
                if r.name == name:
                    one[name] = (i, r)
                    return r
            elif at is None:        # a schema without the name field: build them all
                self._fill()
                return self.lookup(name)
            elif len(r) > at and r[at] == name:
                p = decoder.build(E.Param, "Param", r)
                one[name] = (i, p)
                return p
        one[name] = (-1, None)
        return None

    def _fill(self) -> None:
        src = self._src
        if src is not None:
            self._src = None
            rows, decoder = src
            build = decoder.build
            params = [build(E.Param, "Param", r) if type(r) is list else r for r in rows]
            for i, p in (self._one or {}).values():   # the Params lookup gave out stay the ones
                if i >= 0:
                    params[i] = p
            list.extend(self, params)


class _Kind:
    """What an "e" record's kind ("K") says: the event fields every event of it shares,
    and its params' names."""
    __slots__ = ("type", "base", "names", "index")

    def __init__(self, base: dict, names: list) -> None:
        self.base = base
        self.type = base.get("type")
        self.names = names
        self.index = {n: i for i, n in enumerate(names)}   # the last of a name, as Event.param


class _ParamBlobs(E.LazyList):
    """An event's params as written in an "e" record (one msgpack blob each, the names in
    its kind), decoded on first use; one read by name decodes only that one."""
    __slots__ = ("_src", "_built")

    def __init__(self, blobs: list, kind: _Kind, decoder: "_Decoder", pos: int) -> None:
        # (list.__new__ made it empty: no list.__init__ call, this runs for every event)
        self._src = (blobs, kind, decoder, pos)
        self._built: Optional[dict] = None

    def lookup(self, name: str):
        built = self._built   # name -> its Param (None: no such param), as read so far
        if built is not None and name in built:
            return built[name]
        src = self._src
        if src is None:
            for p in reversed(list(list.__iter__(self))):
                if p.name == name:
                    return p
            return None
        i = src[1].index.get(name)
        p = None if i is None else src[2].param(name, src[0][i], src[3])
        if built is None:
            built = self._built = {}
        built[name] = p
        return p

    def _fill(self) -> None:
        src = self._src
        if src is not None:
            self._src = None
            blobs, kind, decoder, pos = src
            built = self._built or {}
            params = []
            for i, blob in enumerate(blobs):
                name = kind.names[i]
                p = built.get(name) if kind.index[name] == i else None   # lookup's are kept
                params.append(p if p is not None else decoder.param(name, blob, pos))
            list.extend(self, params)


class _Decoder:
    """Unpacks a capture's msgpack: references become the objects they name as they are
    read (a record only refers to snapshots written before it), inline values become
    their objects, so a record needs no second pass."""

    def __init__(self, reader: "CaptureReader") -> None:
        self.reader = reader
        self.objects: Dict[int, Any] = {}
        self.plans: Dict[tuple, tuple] = {}
        self.pos = 0

    def hook(self, code: int, data: bytes):
        if code == EXT_REF:
            n = len(data)
            if n == 3 and data[0] == 0xcd:
                sid = (data[1] << 8) | data[2]
            elif n == 1 and data[0] < 0x80:
                sid = data[0]
            elif n == 5 and data[0] == 0xce:
                sid = int.from_bytes(data[1:], "big")
            else:
                sid = _small_uint(data)
            obj = self.objects.get(sid)
            if obj is None:
                raise CaptureError(self.reader.path, f"corrupted: reference to unknown snapshot {sid}",
                                   self.pos)
            return obj
        if code == EXT_INLINE:
            name, values = self.unpack(data)
            cls = INLINE.get(name)
            if cls is None:
                raise CaptureError(self.reader.path, f"corrupted: unknown inline class {name!r}", self.pos)
            return self.build(cls, name, values)
        if code == EXT_TUPLE:
            return tuple(self.unpack(data))
        if code == EXT_BIGINT:
            return int(data.decode())
        if code == EXT_VALUE:
            name, args = self.unpack(data)
            cls = VALUES.get(name)
            if cls is None:
                raise ValueError(f"unknown value class {name!r}")
            return cls(*args)
        return msgpack.ExtType(code, data)

    def param_name_at(self) -> Optional[int]:
        """Where a written Param row holds the param's name (None: nowhere); kept with the
        plans, which a header's schema clears."""
        at = self.plans.get("Param.name", -1)
        if at == -1:
            names = self.plan(E.Param, "Param")[0]
            at = self.plans["Param.name"] = names.index("name") if "name" in names else None
        return at

    def unpack(self, data: bytes):
        return msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=False,
                               ext_hook=self.hook, unicode_errors="surrogateescape")

    def param(self, name: str, blob, pos: int) -> E.Param:
        """A param of an "e" record, from its blob (read when a rule first asks for it;
        pos: where its chunk starts)."""
        try:
            plain, resolved, raw = self.unpack(blob)
        except Exception as exc:  # noqa: BLE001 - any decoding failure is damage
            raise CaptureError(self.reader.path, f"corrupted: param {name!r} of an event in the chunk does "
                                                 f"not decode ({exc})", pos) from None
        return E.Param(name, plain, resolved, raw)

    def kind(self, values: list, names: list) -> _Kind:
        """A "K" record's kind: its base holds every Event field but the row's, proc, fd
        and params (defaults for those the file does not write)."""
        base = {}
        for f in dataclasses.fields(E.Event):
            if f.default is not dataclasses.MISSING:
                base[f.name] = f.default
        known = _field_names(E.Event)
        layout = self.reader._schema.get("EventKind") or KIND_FIELDS
        for name, v in zip(layout, values):
            if name in known:
                base[name] = v
        if not isinstance(names, list) or not all(type(n) is str for n in names):
            raise ValueError("param names are not a list of strings")
        return _Kind(base, names)

    def plan(self, cls, cname: str) -> tuple:
        """(field name per written value, None for a field this version lacks;
        defaults of the fields the file does not write; whether values map onto
        fields one to one)."""
        plan = self.plans.get(cname)
        if plan is None:
            schema = self.reader._schema.get(cname)
            if schema is None and cls is E.Event:
                schema = _EVENT_FIELDS
            known = _field_names(cls)
            names = [n if n in known else None for n in schema or ()]
            written = set(names)
            defaults, factories = {}, []
            for f in dataclasses.fields(cls):
                if f.name in written or not f.init:
                    continue
                if f.default is not dataclasses.MISSING:
                    defaults[f.name] = f.default
                elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                    factories.append((f.name, f.default_factory))  # type: ignore[misc]
                else:
                    raise ValueError(f"{cname} record without its field {f.name!r}")
            init = [f.name for f in dataclasses.fields(cls) if f.init]
            # The file writes this version's fields in order and what it leaves out has
            # defaults: the class's own constructor does the work.
            positional = names == init[:len(names)] and not any(
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
                for f in dataclasses.fields(cls)[len(names):] if f.init)
            plan = self.plans[cname] = (names, defaults, tuple(factories), positional)
        return plan

    def build(self, cls, cname: str, values):
        plan = self.plans.get(cname) or self.plan(cls, cname)
        if plan[3] and len(values) == len(plan[0]):
            return cls(*values)
        names, defaults, factories, _ = plan
        obj = object.__new__(cls)
        state = dict(defaults)
        for name, make in factories:
            state[name] = make()
        for name, v in zip(names, values):
            if name is not None:
                state[name] = v
        obj.__dict__.update(state)
        return obj


class CaptureReader:
    """Reads a capture written by CaptureWriter.

    Opening checks the magic and the version (CaptureVersionError for a newer
    format). ``records()`` yields Events and Drops in recorded order; damage raises
    CaptureError with the offset, while a file cut short simply ends the iteration
    with ``truncated`` saying where (the recording was killed).
    """

    def __init__(self, path: str):
        self.path = path
        # Read chunk by chunk: memory does not grow with the file.
        try:
            self._file = open(path, "rb")
            self.size = os.fstat(self._file.fileno()).st_size
            head = self._file.read(_PREFIX.size)
        except OSError as exc:
            raise CaptureError(path, exc.strerror or str(exc)) from None
        if len(head) < _PREFIX.size:
            self.close()
            if MAGIC.startswith(head[:len(MAGIC)]):
                raise CaptureError(path, f"file too short to be a capture ({len(head)} bytes)", 0)
            raise CaptureError(path, "not a workload-agent capture (bad magic)", 0)
        magic, version = _PREFIX.unpack_from(head, 0)
        if magic != MAGIC:
            self.close()
            raise CaptureError(path, "not a workload-agent capture (bad magic)", 0)
        if version > FORMAT_VERSION:
            self.close()
            raise CaptureVersionError(
                path, f"capture format version {version} is newer than this workload-agent reads "
                      f"(format version {FORMAT_VERSION}): upgrade workload-agent to replay it")
        if version < 1:
            self.close()
            raise CaptureError(path, f"invalid capture format version {version}", len(MAGIC))
        self.version = version
        self.header: dict = {}
        self.summary: Optional[dict] = None
        self.truncated: Optional[str] = None
        self.events_read = 0
        self._decoder = _Decoder(self)
        self._objects = self._decoder.objects
        self._kinds: Dict[int, _Kind] = {}
        self._fast_rows = True   # the file's event rows are laid out as ROW_FIELDS
        self._row_n = len(ROW_FIELDS)
        self._schema: Dict[str, List[str]] = {}
        self._wanted: Optional[frozenset] = None   # event types to build; None: all
        self._type_at = 0   # where an event record holds its type (None: not written)
        self._iter = self._records()
        first = next(self._iter, None)
        if first is not None:
            self._pending: List[Any] = [first]
        else:
            self._pending = []
        if not self.header:
            self.close()
            if self.truncated:
                raise CaptureError(path, f"no complete header: {self.truncated}", _PREFIX.size)
            raise CaptureError(path, "no header record", _PREFIX.size)

    @property
    def complete(self) -> bool:
        return self.summary is not None

    @property
    def snapshots(self) -> int:
        """How many state snapshots the reader holds now (it must not grow with the capture)."""
        return len(self._objects)

    def records(self, types: Optional[Iterable[str]] = None) -> Iterator[Union[E.Event, Drop]]:
        """Events and drops in recorded order. types: only events of these types; the
        others are skipped before they are decoded (they still count in events_read)."""
        self._wanted = None if types is None else frozenset(types)
        pending, self._pending = self._pending, []
        for item in pending:
            if types is None or type(item) is Drop or item.type in types:
                yield item
        yield from self._iter

    def close(self) -> None:
        f, self._file = getattr(self, "_file", None), None
        if f is not None:
            f.close()

    def __del__(self) -> None:
        self.close()

    def _read_at(self, pos: int, n: int) -> bytes:
        f = self._file
        if f is None:
            return b""
        try:
            f.seek(pos)
            return f.read(n)
        except OSError as exc:
            raise CaptureError(self.path, exc.strerror or str(exc), pos) from None

    def _chunks(self) -> Iterator[Tuple[int, bytes]]:
        pos, n = _PREFIX.size, self.size
        while pos < n:
            if n - pos < _CHUNK.size:
                self.truncated = f"the file ends at byte {n} inside a chunk header"
                return
            head = self._read_at(pos, _CHUNK.size)
            if len(head) < _CHUNK.size:
                self.truncated = f"the file ends at byte {pos + len(head)} inside a chunk header"
                return
            tag, clen, rlen, crc, head_crc = _CHUNK.unpack(head)
            if tag != CHUNK_TAG:
                raise CaptureError(self.path, "corrupted: no chunk starts here", pos)
            if zlib.crc32(head[:_CHUNK_CHECKED]) != head_crc:
                raise CaptureError(self.path, "corrupted: chunk header checksum mismatch", pos)
            if clen > MAX_CHUNK or rlen > MAX_CHUNK:
                raise CaptureError(self.path, f"corrupted: impossible chunk length {max(clen, rlen)}", pos)
            body = pos + _CHUNK.size
            if body + clen > n:
                self.truncated = (f"the file ends at byte {n} inside the chunk at byte {pos} "
                                  f"({body + clen - n} bytes missing)")
                return
            blob = self._read_at(body, clen)
            if len(blob) < clen:
                self.truncated = (f"the file ends at byte {body + len(blob)} inside the chunk at byte {pos} "
                                  f"({clen - len(blob)} bytes missing)")
                return
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
            self._decoder.pos = pos
            unpacker = msgpack.Unpacker(raw=False, use_list=True, strict_map_key=False,
                                        ext_hook=self._decoder.hook, unicode_errors="surrogateescape",
                                        max_buffer_size=max(len(raw), 1))
            unpacker.feed(raw)
            try:
                yield from self._chunk_records(unpacker, pos)
            except CaptureError:
                raise
            except Exception as exc:  # noqa: BLE001 - any decoding failure is damage
                raise CaptureError(self.path, f"corrupted record in the chunk ({exc})", pos) from None
        if self.summary is None and self.truncated is None:
            self.truncated = f"the file ends at byte {self.size} without the end record"
        self.close()

    def _chunk_records(self, unpacker, pos) -> Iterator[Union[E.Event, Drop]]:
        """One chunk's records applied, its events and drops yielded. The two records of
        nearly every event, "e" and "T", are handled here, with everything they use in
        locals: this loop is most of the time a replay spends reading."""
        objects = self._objects
        kinds = self._kinds
        decoder = self._decoder
        build = decoder.build
        apply = self._apply
        n = self._row_n
        fast = self._fast_rows
        for rec in unpacker:
            tag = rec[0] if type(rec) is list and rec else None
            if tag == "e":
                # ["e", kind id, *row, proc id, fd id, [param blobs], [dead ids]?]
                self.events_read += 1
                kind = kinds.get(rec[1])
                if kind is None:
                    raise CaptureError(self.path, f"corrupted: event of unknown kind {rec[1]!r}", pos)
                wanted = self._wanted   # set by records(), after the first event was read
                if wanted is None or kind.type in wanted:
                    sid = rec[n + 2]
                    proc = objects[sid] if sid else None
                    sid = rec[n + 3]
                    fd = objects[sid] if sid else None
                    params = rec[n + 4]
                    if kind.names:
                        if type(params) is not list or len(params) != len(kind.names):
                            raise CaptureError(self.path, "corrupted: an event's params do not match its kind",
                                               pos)
                        params = _ParamBlobs(params, kind, decoder, pos)
                    elif type(params) is not list or params:
                        raise CaptureError(self.path, "corrupted: an event's params do not match its kind", pos)
                    ev = _new(_Event)
                    if fast:
                        ev.__dict__ = {**kind.base, "ts": rec[2], "num": rec[3], "tid": rec[4], "cpu": rec[5],
                                       "res": rec[6], "buffer": rec[7], "prev_ts": rec[8],
                                       "proc": proc, "fd": fd, "params": params}
                    else:
                        ev.__dict__ = self._event_state(kind, rec[2:n + 2], proc, fd, params)
                else:
                    ev = None
                if len(rec) > n + 5:
                    for sid in rec[n + 5]:
                        objects.pop(sid, None)
                if ev is not None:
                    yield ev
            elif tag == "T":
                # ["T", new id, base id, fd number, fd snapshot id or 0: closed]
                _, sid, base, num, fsid = rec
                old = objects.pop(base, None)
                if old is None:
                    raise CaptureError(self.path, f"corrupted: update of unknown snapshot {base}", pos)
                state = old.__dict__.copy()   # unchanged values are shared: snapshots are read-only
                fds = state["fds"] = dict(state["fds"])
                if fsid:
                    fds[num] = objects[fsid]
                else:
                    fds.pop(num, None)
                new = _new(type(old))
                new.__dict__ = state
                objects[sid] = new
            elif tag == "O" and len(rec) == 4:
                # ["O", class name, id, [values]]: a snapshot
                cls = CLASSES.get(rec[1])
                if cls is None:
                    raise CaptureError(self.path, f"corrupted: unknown object class {rec[1]!r}", pos)
                objects[rec[2]] = build(cls, rec[1], rec[3])
            else:
                out = apply(rec, pos)
                if out is not None:
                    yield out
                if tag == "H":
                    n, fast = self._row_n, self._fast_rows

    def _event_state(self, kind: _Kind, row: list, proc, fd, params) -> dict:
        """An "e" record's event fields when the file lays its rows out otherwise than ROW_FIELDS."""
        state = dict(kind.base)
        known = _field_names(E.Event)
        for name, v in zip(self._schema["EventRow"], row):
            if name in known:
                state[name] = v
        state.update(proc=proc, fd=fd, params=params)
        return state

    def _apply(self, rec, pos):
        if not isinstance(rec, list) or not rec:
            raise CaptureError(self.path, "corrupted: record is not a tagged array", pos)
        tag = rec[0]
        if tag == "E":
            self.events_read += 1
            wanted = self._wanted
            if wanted is not None and self._type_at is not None:
                try:
                    if rec[1][self._type_at] not in wanted:
                        return None   # no Event built, no params wrapped
                except (IndexError, TypeError, KeyError):
                    pass   # a damaged record: building it says what is wrong
            ev = self._decoder.build(E.Event, "Event", rec[1])
            params = ev.params
            if self.version >= 2 and type(params) is list and params and type(params[0]) is list:
                ev.params = _ParamRows(params, self._decoder)
            return ev
        if tag == "U":
            _, sid, base, changed = rec
            old = self._objects.pop(base, None)
            if old is None:
                raise CaptureError(self.path, f"corrupted: update of unknown snapshot {base}", pos)
            cls = type(old)
            names = self._decoder.plan(cls, cls.__name__)[0]
            new = object.__new__(cls)
            state = new.__dict__
            state.update(old.__dict__)  # unchanged values are shared: snapshots are read-only
            for i, v in changed.items():
                if 0 <= i < len(names) and names[i] is not None:
                    state[names[i]] = v
            self._objects[sid] = new
            return None
        if tag == "O":
            _, cname, sid, values = rec
            cls = CLASSES.get(cname)
            if cls is None:
                raise CaptureError(self.path, f"corrupted: unknown object class {cname!r}", pos)
            self._objects[sid] = self._decoder.build(cls, cname, values)
            return None
        if tag == "K":
            _, kid, values, names = rec
            self._kinds[kid] = self._decoder.kind(values, names)
            return None
        if tag == "F":
            self._objects.clear()
            return None
        if tag == "X":
            for sid in rec[1]:
                self._objects.pop(sid, None)
            return None
        if tag == "D":
            return Drop(rec[1], rec[2])
        if tag == "H":
            self.header = rec[1]
            self._schema = self.header.get("schema", {})
            self._decoder.plans.clear()
            names = self._schema.get("Event") or _EVENT_FIELDS
            self._type_at = names.index("type") if "type" in names else None
            rows = tuple(self._schema.get("EventRow") or ROW_FIELDS)
            self._fast_rows, self._row_n = rows == ROW_FIELDS, len(rows)
            self._kinds.clear()
            return None
        if tag == "Z":
            self.summary = rec[1]
            return None
        raise CaptureError(self.path, f"corrupted: unknown record tag {tag!r}", pos)


_FIELD_NAMES: Dict[type, frozenset] = {}
_new = object.__new__
_Event = E.Event


def _field_names(cls) -> frozenset:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = frozenset(f.name for f in dataclasses.fields(cls) if f.init)
    return names
