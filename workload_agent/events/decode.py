"""Raw syscall (registers, return value, memory blobs) -> Falco exit-event params.

``decode_params`` follows the per-syscall rows of params.SPECS: each param's
source says where its value comes from. Values are plain Python objects:
int (PPM encoding for flags, as ``evt.rawarg`` exposes it), str, bytes,
SockAddr, SockTuple, FsPath, or None when the value is unavailable (Falco's
NULL / ``<NA>``). Decoding never raises on tracee data: an unreadable pointer
or a malformed buffer gives None for that param only.

``render_params`` gives the ``evt.args`` line (§1.9), ``arg_text`` the
``evt.arg.X`` string a rule compares against.
"""
from __future__ import annotations

import os
import struct
import time
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

from . import capture_kinds as K
from . import flags as F
from .flags import errno_name
from .params import SPECS, ParamSpec, param_types
# The record decoder's Blob (kind, data, truncated, unreadable) is the one blob type.
from .records import Blob
from .sockaddr import (AF_INET, AF_INET6, AF_UNIX, SockAddr, decode_text, format_sockaddr, format_tuple,
                       make_tuple, parse_sockaddr)

__all__ = ["Blob", "FsPath", "decode_params", "render_params", "arg_text", "errno_name",
           "render_param"]

_MASK64 = (1 << 64) - 1
_MASK32 = (1 << 32) - 1
_SIGN64 = 1 << 63
_EINPROGRESS = 115
#: Falco keeps the first snaplen bytes of an I/O buffer.
SNAPLEN = 80
#: struct open_how { __u64 flags; __u64 mode; __u64 resolve; } (size 24 in v1)
_OPEN_HOW_FIELDS = ("flags", "mode", "resolve")
_INT_PAIR = struct.Struct("=ii")


class FsPath(str):
    """A path param: its str value is what ``evt.arg.X`` gives (resolved when the
    argument was relative), ``raw`` is the argument as passed, ``resolved`` the
    resolved form ("" when the argument was absolute or could not be resolved)."""

    raw: str
    resolved: str

    def __new__(cls, raw: str, resolved: str = "") -> "FsPath":
        self = super().__new__(cls, resolved or raw)
        self.raw = raw
        self.resolved = resolved
        return self

    def __repr__(self) -> str:
        return "FsPath(%r, %r)" % (self.raw, self.resolved)

    def __reduce__(self):
        return (FsPath, (self.raw, self.resolved))


# --- integer views of registers ----------------------------------------------------

def _s32(v: int) -> int:
    v &= _MASK32
    return v - (1 << 32) if v >> 31 else v


def _u32(v: int) -> int:
    return v & _MASK32


def _u64(v: int) -> int:
    return v & _MASK64


def _s64(v: int) -> int:
    v &= _MASK64
    return v - (1 << 64) if v >> 63 else v


# --- paths -------------------------------------------------------------------------------

def normalize_path(path: str) -> str:
    """Collapse ``.``, ``..`` and repeated ``/`` of an absolute path (``..`` stops at ``/``)."""
    if "//" not in path and "/." not in path and path[-1:] != "/" and path[:1] == "/":
        return path  # already in that form (most paths are)
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def resolve_relative(base: Optional[str], path: str) -> str:
    """Falco's resolved form of a path param: "" when absolute or base unknown."""
    if path.startswith("/") or base is None:
        return ""
    return normalize_path(base.rstrip("/") + "/" + path)


# --- decoding ------------------------------------------------------------------------------

class _Event:
    """Everything one decode needs, so source handlers take a single argument."""
    __slots__ = ("name", "args", "ret", "blobs", "ctx", "tid", "out")

    def __init__(self, name, args, ret, blobs, ctx, tid):
        self.name = name
        self.args = args if len(args) == 6 else tuple(args) + (0,) * (6 - len(args))
        self.ret = None if ret is None else ((ret & _MASK64) ^ _SIGN64) - _SIGN64   # _s64
        self.blobs = blobs or {}
        self.ctx = ctx
        self.tid = tid
        self.out: Dict[str, object] = {}

    def blob(self, i: int) -> Optional[bytes]:
        b = self.blobs.get(i)
        if b is None or b.unreadable or b.data is None:
            return None
        return bytes(b.data)

    def ctx_call(self, method: str, *a):
        fn = getattr(self.ctx, method, None) if self.ctx is not None else None
        if fn is None:
            return None
        return fn(*a)

    def cwd(self) -> Optional[str]:
        return self.ctx_call("cwd", self.tid)

    def succeeded(self) -> bool:
        return self.ret is not None and self.ret >= 0


def _cstr(data: bytes) -> str:
    return decode_text(data.split(b"\0", 1)[0])


def _src_str(ev: _Event, i: int) -> Optional[str]:
    data = ev.blob(i)
    return None if data is None else _cstr(data)


def _argv_all(data: bytes) -> bytes:
    """Each NUL-terminated: the vector as the kernel holds it (a truncated last item gets
    its NUL back), without splitting it into items and joining them again."""
    return data if not data or data.endswith(b"\0") else data + b"\0"


def _src_argv0(ev: _Event, i: int):
    data = ev.blob(i)
    if data is None:
        return None
    return decode_text(data.split(b"\0", 1)[0]) if data else ""


def _src_argv_rest(ev: _Event, i: int):
    data = ev.blob(i)
    if data is None:
        return None
    cut = data.find(b"\0")
    return _argv_all(data[cut + 1:]) if cut >= 0 else b""


def _src_argv_all(ev: _Event, i: int):
    data = ev.blob(i)
    return None if data is None else _argv_all(data)


def _src_exec_comm(ev: _Event, i: int):
    path = _src_str(ev, i)
    if not path or not ev.succeeded():
        return None
    return os.path.basename(path.rstrip("/"))[:15] or None


def _base_blob(ev: _Event, i: int) -> Optional[str]:
    """The directory the tracer resolved relative path argument i against, at the stop."""
    b = ev.blobs.get(K.SLOT_BASE + i)
    if b is None or b.unreadable:
        return None
    return b.data.decode("utf-8", "surrogateescape")


# Absolute path params by their captured bytes: a workload opens the same files over and
# over, and an FsPath is immutable, so one object serves every event naming that path.
_ABS_PATHS: Dict[bytes, "FsPath"] = {}


def _src_path(ev: _Event, i: int):
    data = ev.blob(i)
    if data is None:
        return None
    known = _ABS_PATHS.get(data)
    if known is not None:
        return known
    raw = _cstr(data)
    if raw.startswith("/"):
        known = FsPath(raw)
        if len(data) <= 256:   # bounded: at most 1 MiB of keys
            if len(_ABS_PATHS) >= 4096:
                _ABS_PATHS.clear()
            _ABS_PATHS[data] = known
        return known
    if raw:
        base = _base_blob(ev, i)
        if base is not None:
            return FsPath(raw, resolve_relative(base, raw))
    # Otherwise resolution against dirfd/cwd happens per param type in _finish_path.
    return raw


def _src_path_finished(ev: _Event, i: int, p: ParamSpec):
    """``_finish_path(ev, p, _src_path(ev, i))``, in one call for an absolute path seen
    before (most opens)."""
    b = ev.blobs.get(i)
    if b is not None and not b.unreadable and type(b.data) is bytes:
        known = _ABS_PATHS.get(b.data)
        if known is not None:
            return known
    return _finish_path(ev, p, _src_path(ev, i))


def _dirfd_base(ev: _Event, dirfd: Optional[int]) -> Optional[str]:
    if dirfd is None:
        return None
    if dirfd == F.AT_FDCWD:
        return ev.cwd()
    base = ev.ctx_call("fd_path", ev.tid, dirfd)
    if base is None and ev.tid is not None and dirfd >= 0:
        # libsinsp's fallback for a dirfd missing from its table.
        base = "/proc/%d/fd/%d" % (ev.tid, dirfd)
    return base


def _src_atpath(ev: _Event, i: int, d: int):
    raw = _src_str(ev, i)
    if raw is None:
        return None
    if raw.startswith("/"):
        return FsPath(raw)
    base = _base_blob(ev, i)
    if base is None:
        base = _dirfd_base(ev, _s32(ev.args[d]))
    return FsPath(raw, resolve_relative(base, raw) if base is not None else "")


def _src_sockaddr(ev: _Event, i: int):
    data = ev.blob(i)
    if data is None:
        return None
    addr = parse_sockaddr(data)
    if addr is not None and addr.family in (AF_INET, AF_INET6) and addr.ip is None:
        return None  # shorter than its family's struct: the kernel refused it (EINVAL)
    return addr


_FD_END_SLOT = {"sock_local": K.SLOT_FD_LOCAL, "sock_peer": K.SLOT_FD_PEER}


def _ctx_sockaddr(ev: _Event, method: str, fd: int) -> Optional[SockAddr]:
    for i in range(6):
        if K.SLOT_FD + i in ev.blobs and _s32(ev.args[i]) == fd:   # read at the stop
            b = ev.blobs.get(_FD_END_SLOT[method] + i)
            return None if b is None or b.unreadable or not b.data else parse_sockaddr(bytes(b.data))
    got = ev.ctx_call(method, ev.tid, fd)
    if isinstance(got, (bytes, bytearray)):
        return parse_sockaddr(bytes(got))
    return got if isinstance(got, SockAddr) else None


def _blob_sockname(ev: _Event, kind: int) -> Optional[SockAddr]:
    """The socket's own address as the tracer read it at the syscall's exit, if it did."""
    for b in (ev.blobs or {}).values():
        if b.kind == kind and not b.unreadable and b.data:
            addr = parse_sockaddr(bytes(b.data))
            if addr is not None and (addr.is_ip or addr.family == AF_UNIX):
                return addr
    return None


def _src_tuple(ev: _Event, role: str, fd_i: int, addr_i: int):
    if ev.ret is not None and ev.ret < 0 and not (role == "connect" and ev.ret == -_EINPROGRESS):
        return None  # Falco leaves the tuple empty for failed calls
    fd = _s32(ev.args[fd_i])
    given = _src_sockaddr(ev, addr_i)
    if given is not None and not (given.is_ip or given.family == AF_UNIX):
        given = None
    if role == "connect":
        return make_tuple(_blob_sockname(ev, K.SOCKNAME_OUT) or _ctx_sockaddr(ev, "sock_local", fd), given)
    if role == "send":
        dst = given or _ctx_sockaddr(ev, "sock_peer", fd)
        return make_tuple(_ctx_sockaddr(ev, "sock_local", fd), dst)
    if role == "accept":
        newfd = ev.ret if ev.ret is not None else -1
        peer = given or (_ctx_sockaddr(ev, "sock_peer", newfd) if newfd >= 0 else None)
        local = _blob_sockname(ev, K.SOCKNAME_RET) or _ctx_sockaddr(ev, "sock_local", fd)
        return make_tuple(peer, local)
    # recv: the datagram's source -> this socket
    src = given or _ctx_sockaddr(ev, "sock_peer", fd)
    return make_tuple(src, _ctx_sockaddr(ev, "sock_local", fd))



def _src_pair(ev: _Event, i: int, k: int):
    if not ev.succeeded():
        return None
    data = ev.blob(i)
    if data is None or len(data) < _INT_PAIR.size:
        return None
    return _INT_PAIR.unpack_from(data)[k]


def _open_how(ev: _Event) -> Optional[Dict[str, int]]:
    data = ev.blob(2)
    if data is None or len(data) < 8 * len(_OPEN_HOW_FIELDS):
        return None
    return dict(zip(_OPEN_HOW_FIELDS, struct.unpack_from("=3Q", data)))


def _src_how(ev: _Event, field: str):
    how = _open_how(ev)
    if how is None:
        return None
    if field == "flags":
        return F.open_flags_to_ppm(how["flags"])
    if field == "resolve":
        return F.resolve_flags_to_ppm(how["resolve"])
    return how[field]


def _src_how_mode(ev: _Event):
    how = _open_how(ev)
    return None if how is None else F.open_mode(how["flags"], how["mode"])


def _src_prctl_str(ev: _Event):
    if _s32(ev.args[0]) != F.PR_SET_NAME:
        return None
    return _src_str(ev, 1)


def _src_prctl_int(ev: _Event):
    if _s32(ev.args[0]) in (F.PR_SET_NAME, F.PR_GET_NAME):
        return None
    return _s64(ev.args[1])


_SOURCES: Dict[str, Callable] = {
    "ret": lambda ev: ev.ret,
    "int": lambda ev, i: _s32(ev.args[i]),
    "uint": lambda ev, i: _u32(ev.args[i]),
    # mkdir/chmod take a umode_t: the kernel never sees the upper bits of the register.
    "umode": lambda ev, i: ev.args[i] & 0xFFFF,
    "s64": lambda ev, i: _s64(ev.args[i]),
    "u64": lambda ev, i: _u64(ev.args[i]),
    "path": _src_path,
    "atpath": _src_atpath,
    "str": _src_str,
    "buf": lambda ev, i: None if ev.blob(i) is None else ev.blob(i)[:SNAPLEN],
    "sockaddr": _src_sockaddr,
    "tuple": _src_tuple,
    "argv0": _src_argv0,
    "argv_rest": _src_argv_rest,
    "argv_all": _src_argv_all,
    "exec_comm": _src_exec_comm,
    "pair": _src_pair,
    "open_flags": lambda ev, i: F.open_flags_to_ppm(_u32(ev.args[i])),
    "open_mode": lambda ev, fi, mi: F.open_mode(_u32(ev.args[fi]), _u32(ev.args[mi])),
    "creat_mode": lambda ev, i: _u32(ev.args[i]) & 0o7777,
    "how": _src_how,
    "how_mode": _src_how_mode,
    "sock_flags": lambda ev, i: F.sock_type_flags_to_ppm(_u32(ev.args[i])),
    "fd_flags": lambda ev, i: F.open_flags_to_ppm(_u32(ev.args[i]), access_mode=False),
    "family": lambda ev, i: F.socket_family_to_ppm(_u32(ev.args[i])),
    "clone_flags": lambda ev, i: F.clone_flags_to_ppm(_u64(ev.args[i])),
    "ptrace_req": lambda ev, i: F.ptrace_request_to_ppm(_s64(ev.args[i])),
    "mount_flags": lambda ev, i: F.mount_flags_to_ppm(_u64(ev.args[i])),
    "prctl_str": _src_prctl_str,
    "prctl_int": _src_prctl_int,
    "const": lambda ev, v: v,
    "ctx": lambda ev: None,
    "none": lambda ev: None,
}


def _finish_path(ev: _Event, p: ParamSpec, value):
    if value is None or isinstance(value, FsPath):
        return value
    if value.startswith("/"):
        return FsPath(value)
    if p.type == "FSRELPATH":
        dirfd = ev.out.get(p.rel) if p.rel else None
        base = _dirfd_base(ev, dirfd if isinstance(dirfd, int) else None)
    else:
        base = ev.cwd()
    return FsPath(value, resolve_relative(base, value))


_PATH_TYPES = frozenset({"FSPATH", "FSRELPATH"})

# Sources that are an expression on the registers (a = ev.args): written into the
# generated decoder instead of called.
_INLINE: Dict[str, Callable[..., str]] = {
    "ret": lambda: "ev.ret",
    "int": lambda i: f"(((a[{i}] & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000)",
    "uint": lambda i: f"(a[{i}] & 0xFFFFFFFF)",
    "umode": lambda i: f"(a[{i}] & 0xFFFF)",
    "s64": lambda i: f"(((a[{i}] & {_MASK64}) ^ {1 << 63}) - {1 << 63})",
    "u64": lambda i: f"(a[{i}] & {_MASK64})",
    "none": lambda: "None",
    "ctx": lambda: "None",
    "open_flags": lambda i: f"_open_ppm(a[{i}] & 0xFFFFFFFF)",
    # flags.open_mode, written out: the mode's permission bits when a file may be created
    "open_mode": lambda fi, mi: (f"((a[{mi}] & 0o7777) if a[{fi}] & {os.O_CREAT} "
                                 f"or (a[{fi}] & {os.O_TMPFILE}) == {os.O_TMPFILE} else 0)"),
}
# flags register -> Falco's encoding, remembered: a workload uses a handful of them.
_OPEN_PPM: Dict[int, int] = {}


def _open_ppm(flags: int) -> int:
    ppm = _OPEN_PPM.get(flags)
    if ppm is None:
        if len(_OPEN_PPM) >= 4096:
            _OPEN_PPM.clear()
        ppm = _OPEN_PPM[flags] = F.open_flags_to_ppm(flags)
    return ppm

_NEVER_RAISE = frozenset({"none", "ctx", "const", "ret"})


def _compile(layout: Sequence[ParamSpec]) -> Callable:
    """One generated function per layout, ``decode(ev, strict) -> ev.out``: each param
    is assigned in order (an FSRELPATH reads the dirfd assigned before it), the register
    views written inline, the other sources called with their arguments bound. Each
    param is guarded on its own, so one bad value leaves the others decoded."""
    ns: Dict[str, object] = {"_finish_path": _finish_path, "_open_ppm": _open_ppm,
                             "_src_path_finished": _src_path_finished}
    lines = ["def decode(ev, strict):", "    a = ev.args", "    out = ev.out"]
    # Params no source fills here (process state fills them later) are set all at once,
    # which also puts every key in Falco's order before the others are assigned.
    empty = [p.name for p in layout if p.src[0] in ("none", "ctx")]
    if len({p.name for p in layout}) < len(layout):
        empty = []   # a name twice: each assignment in turn, the last one wins
    if len(empty) > 2:
        ns["_empty"] = dict.fromkeys(p.name for p in layout)
        lines.append("    out.update(_empty)")
    for j, p in enumerate(layout):
        if len(empty) > 2 and p.name in empty:
            continue
        kind, extra = p.src[0], p.src[1:]
        if kind in _INLINE:
            expr = _INLINE[kind](*extra)
        elif kind == "const":
            ns[f"c{j}"] = extra[0]
            expr = f"c{j}"
        else:
            ns[f"f{j}"] = _SOURCES[kind]
            for k, x in enumerate(extra):
                ns[f"x{j}_{k}"] = x
            expr = f"f{j}(ev" + "".join(f", x{j}_{k}" for k in range(len(extra))) + ")"
        if p.type in _PATH_TYPES and kind == "path":
            ns[f"p{j}"] = p
            expr = f"_src_path_finished(ev, {extra[0]}, p{j})"
        elif p.type in _PATH_TYPES and kind not in ("none", "ctx"):
            ns[f"p{j}"] = p
            expr = f"_finish_path(ev, p{j}, {expr})"
        key = repr(p.name)
        if kind in _NEVER_RAISE and (p.type not in _PATH_TYPES or kind in ("none", "ctx")):
            lines.append(f"    out[{key}] = {expr}")
            continue
        lines += ["    try:", f"        out[{key}] = {expr}", "    except Exception:",
                  # Tracee data is hostile input: one bad param must not lose the event.
                  "        if strict:", "            raise", f"        out[{key}] = None"]
    lines.append("    return out")
    exec(compile("\n".join(lines) + "\n", "<decoder>", "exec"), ns)  # noqa: S102 - our own code
    return ns["decode"]


# name -> (decoder, decoder on success or None), generated on first use: a run decodes
# the few syscalls its rules trace, and start-up pays for none.
_COMPILED: Dict[str, Tuple[Callable, Optional[Callable]]] = {}


def _decoders(name: str):
    found = _COMPILED.get(name)
    if found is None:
        spec = SPECS.get(name)
        if spec is None:
            return None
        found = _COMPILED[name] = (_compile(spec.params), _compile(spec.success_params)
                                   if spec.success_params is not None else None)
    return found


def params_decoder(name: str) -> Callable:
    """``decode(args, ret, blobs, ctx, tid)``: decode_params(name, args, ret, blobs, ctx,
    tid=tid, state_params=False) as one function, for a caller that decodes many records
    of one syscall (the state tracker keeps one per syscall number)."""
    compiled = _decoders(name)
    if compiled is None:
        def decode(args, ret, blobs, ctx, tid):
            return {"res": None if ret is None else _s64(ret)}
        return decode
    plain, on_success = compiled
    if on_success is None:
        def decode(args, ret, blobs, ctx, tid):
            return plain(_Event(name, args, ret, blobs, ctx, tid), False)
        return decode

    def decode(args, ret, blobs, ctx, tid):
        ev = _Event(name, args, ret, blobs, ctx, tid)
        return (on_success if ev.ret == 0 else plain)(ev, False)
    return decode


def decode_params(name: str, args: Sequence[int], ret: Optional[int],
                  blobs: Optional[Mapping[int, Blob]], ctx=None, *,
                  tid: Optional[int] = None, strict: bool = False,
                  state_params: bool = True) -> Dict[str, object]:
    """Falco's exit-event params for one syscall, in Falco's order.

    ``ctx`` (optional) supplies state: ``cwd(tid)``, ``fd_path(tid, fd)`` and,
    when it has them, ``sock_local(tid, fd)`` / ``sock_peer(tid, fd)`` (raw
    sockaddr bytes or SockAddr) and ``proc_params(tid, name, ret)`` (a dict
    filling params that only process state knows, e.g. execve's pid/comm/caps).
    ``tid`` defaults to ``ctx.tid``. ``ret`` is None when no exit stop was taken.
    ``strict`` re-raises decoding errors (tests); otherwise a param whose
    decoding fails is None. ``state_params=False``: leave ``proc_params`` to the
    caller (the state tracker fills them after applying the event).
    """
    if tid is None:
        tid = getattr(ctx, "tid", None)
    ev = _Event(name, args, ret, blobs, ctx, tid)
    compiled = _COMPILED.get(name) or _decoders(name)
    if compiled is None:
        return {"res": ev.ret}
    decode, on_success = compiled
    out = (on_success if on_success is not None and ev.ret == 0 else decode)(ev, strict)
    if ctx is not None and state_params:
        extra_params = ev.ctx_call("proc_params", tid, name, ev.ret)
        if extra_params:
            for key, value in extra_params.items():
                if key in out and out[key] is None:
                    out[key] = value
    return out


# --- rendering ---------------------------------------------------------------------------------

#: Types whose missing value prints NULL rather than <NA>.
_NULL_TYPES = frozenset({"BYTEBUF", "SOCKTUPLE", "DYN"})


def _c_octal(v: int) -> str:
    return "0%o" % v if v else "0"


def _printable(data: bytes) -> str:
    return "".join(chr(b) if 32 <= b < 127 else "." for b in data)


def _abstime(ns: int) -> str:
    secs, frac = divmod(int(ns), 1_000_000_000)
    t = time.localtime(secs)
    return "%s.%09d %s" % (time.strftime("%Y-%m-%d %H:%M:%S", t), frac,
                           time.strftime("%z", t))


def _number(v: int, fmt: str) -> str:
    if fmt == "oct":
        return _c_octal(v)
    if fmt == "hex":
        return "%X" % (v & _MASK64 if v < 0 else v)
    return str(v)


def render_param(p: ParamSpec, value, resolver=None) -> Tuple[str, str]:
    """(plain, resolved) text of one param value; resolved is "" when there is none.

    ``resolver`` (optional) may provide ``fd_name(fd)`` (e.g. ``<f>/etc/passwd``),
    ``comm(pid)``, ``user_name(uid)`` and ``group_name(gid)``.
    """
    try:
        return _render(p, value, resolver)
    except (TypeError, ValueError, KeyError):
        # A value of an unexpected type (e.g. from a state provider) is shown as is.
        return str(value), ""


# (table name, value) -> flag names: the same few flag words recur on every open.
_FLAGS_TEXT: Dict[Tuple[Optional[str], int], str] = {}


def _render(p: ParamSpec, value, resolver) -> Tuple[str, str]:
    t = p.type
    if value is None:
        return ("NULL" if t in _NULL_TYPES else "<NA>"), ""
    if t == "ERRNO":
        return str(value), errno_name(value)
    if t == "FD":
        if value == F.AT_FDCWD:
            return str(value), "AT_FDCWD"
        if value < 0:
            # A failed call's returned fd is an errno; a negative fd argument is a number.
            return str(value), errno_name(value) if p.src[0] == "ret" else ""
        return str(value), _resolve(resolver, "fd_name", value)
    if t == "PID":
        return str(value), _resolve(resolver, "comm", value) if value > 0 else ""
    if t in ("UID", "GID"):
        if value in (-1, _MASK32):
            return "-1", "<NONE>"
        return str(value), _resolve(resolver, "user_name" if t == "UID" else "group_name", value)
    if t.startswith("FLAGS"):
        key = (p.table, value)
        text = _FLAGS_TEXT.get(key)
        if text is None:
            if len(_FLAGS_TEXT) >= 4096:
                _FLAGS_TEXT.clear()
            text = _FLAGS_TEXT[key] = F.render_flags(value, F.TABLES[p.table])
        return str(value), text
    if t.startswith("ENUMFLAGS"):
        return str(value), F.render_enum(value, F.TABLES[p.table])
    if t == "MODE":
        return _c_octal(value), F.render_mode(value)
    if t in ("FSPATH", "FSRELPATH"):
        if isinstance(value, FsPath):
            return value.raw, value.resolved
        return str(value), ""
    if t == "CHARBUF":
        return str(value), ""
    if t == "BYTEBUF":
        return _printable(value), ""
    if t == "SOCKADDR":
        return format_sockaddr(value), ""
    if t == "SOCKTUPLE":
        return format_tuple(value), ""
    if t == "SIGTYPE":
        return str(value), F.signal_name(value)
    if t == "ABSTIME":
        return _abstime(value), ""
    if t == "DYN":
        return _number(value, "hex"), ""
    return _number(value, p.fmt), ""


def _resolve(resolver, method: str, value) -> str:
    fn = getattr(resolver, method, None) if resolver is not None else None
    if fn is None:
        return ""
    got = fn(value)
    return got or ""


def _param(name: str, pname: str, value) -> ParamSpec:
    p = param_types(name).get(pname)
    if p is not None:
        return p
    # A param this table does not describe: show it by its Python type.
    if isinstance(value, bytes):
        return ParamSpec(pname, "BYTEBUF", ("none",))
    if isinstance(value, int):
        return ParamSpec(pname, "INT64", ("none",))
    return ParamSpec(pname, "CHARBUF", ("none",))


def arg_text(name: str, pname: str, value, resolver=None) -> str:
    """``evt.arg.<pname>``: the resolved form when non-empty, else the plain form."""
    plain, resolved = render_param(_param(name, pname, value), value, resolver)
    return resolved or plain


def render_params(name: str, params: Mapping[str, object], resolver=None) -> str:
    """Falco's ``evt.args``: ``name=plain`` or ``name=plain(resolved)``, space-separated."""
    parts = []
    for pname, value in params.items():
        plain, resolved = render_param(_param(name, pname, value), value, resolver)
        parts.append("%s=%s(%s)" % (pname, plain, resolved) if resolved
                     else "%s=%s" % (pname, plain))
    return _printable_text(" ".join(parts))


def _printable_text(text: str) -> str:
    """Tracee bytes that are not UTF-8 (kept as surrogate escapes) shown as ``\\xNN``,
    so the line can be written to any UTF-8 stream."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
