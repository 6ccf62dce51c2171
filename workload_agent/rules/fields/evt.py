"""evt.* and syscall.* fields: the event itself."""
from __future__ import annotations

import errno
import posixpath
import time
from typing import List, Optional

from . import types as T
from .spec import ARG_INDEX, ARG_INDEX_OR_KEY, ARG_NONE, FieldSpec, derive_inline, inline, via

# PPM open-flag bits (driver encoding, falco-fields.md §2.2.1) the is_open_* fields test.
PPM_O_RDONLY = 1
PPM_O_WRONLY = 2
PPM_O_CREAT = 4
PPM_O_TMPFILE = 8192
PPM_O_F_CREATED = 16384
EXEC_MODE_BITS = 0o111

OPEN_EVENTS = frozenset(("open", "openat", "openat2", "open_by_handle_at"))
IO_READ_EVENTS = frozenset(("read", "readv", "pread", "preadv", "recv", "recvfrom", "recvmsg",
                            "recvmmsg"))
IO_WRITE_EVENTS = frozenset(("write", "writev", "pwrite", "pwritev", "send", "sendto", "sendmsg",
                             "sendmmsg"))
WAIT_EVENTS = frozenset(("nanosleep", "clock_nanosleep", "poll", "ppoll", "select", "pselect6",
                         "epoll_wait", "epoll_pwait", "epoll_pwait2", "futex", "pause", "wait4",
                         "waitid"))

# errno values libsinsp has no name for (so evt.res prints the number).
_UNNAMED_ERRNO = frozenset(range(126, 134)) | {41, 58}
_ERRNO_PREFERRED = {11: "EAGAIN", 35: "EDEADLK", 95: "EOPNOTSUPP"}
_KERNEL_ERRNO = {512: "ERESTARTSYS", 513: "ERESTARTNOINTR", 514: "ERESTARTNOHAND",
                 515: "ENOIOCTLCMD", 516: "ERESTART_RESTARTBLOCK", 521: "EBADHANDLE",
                 522: "ENOTSYNC", 523: "EBADCOOKIE", 524: "ENOTSUPP", 525: "ETOOSMALL",
                 526: "ESERVERFAULT", 527: "EBADTYPE", 528: "EJUKEBOX", 529: "EIOCBQUEUED",
                 530: "EIOCBRETRY"}


def errno_name(res: int) -> str:
    """evt.res text: SUCCESS, the errno name, or the negative number."""
    if res >= 0:
        return "SUCCESS"
    n = -res
    if n in _UNNAMED_ERRNO:
        return str(res)
    name = _ERRNO_PREFERRED.get(n) or _KERNEL_ERRNO.get(n) or errno.errorcode.get(n)
    return name if name else str(res)


# -- time rendering --------------------------------------------------------
def _split(ts: int):
    return divmod(int(ts), 1_000_000_000)


def iso8601_utc(ts: int, zulu: bool = True) -> str:
    """YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ (or +0000) for epoch ns."""
    s, ns = _split(ts)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s))
    return f"{base}.{ns:09d}{'Z' if zulu else '+0000'}"


def _local(ts: int, fmt: str, with_ns: bool) -> str:
    s, ns = _split(ts)
    text = time.strftime(fmt, time.localtime(s))
    return f"{text}.{ns:09d}" if with_ns else text


# -- params ----------------------------------------------------------------
def _param_text(p) -> Optional[str]:
    if p is None:
        return None
    text = p.text()
    return "<NA>" if text is None else text


def _args_text(e) -> str:
    parts: List[str] = []
    for p in e.params:
        plain = "<NA>" if p.plain is None else p.plain
        parts.append(f"{p.name}={plain}({p.resolved})" if p.resolved else f"{p.name}={plain}")
    return " ".join(parts)


def _arg(arg):
    if arg is None:
        raise ValueError("evt.arg needs [N] or .NAME")
    if isinstance(arg, int):
        def get(e, i=arg):
            ps = e.params
            return _param_text(ps[i]) if i < len(ps) else None
        return get

    def get(e, name=arg):
        return _param_text(e.param(name))
    return inline(get, f"e.argtext({arg!r})")


def _rawarg(arg):
    if arg is None or isinstance(arg, int):
        raise ValueError("evt.rawarg needs .NAME")

    def get(e, name=arg):
        p = e.param(name)
        return None if p is None else p.raw
    return inline(get, f"e.rawarg({arg!r})")


def _type_is(arg):
    if arg is None:
        raise ValueError("evt.type.is needs .NAME")
    return lambda e, t=str(arg): 1 if e.type == t else 0


def _res(e):
    r = e.res
    return None if r is None else errno_name(r)


# A group tests success without a call (errno_name's own first case).
inline(_res, "None if (_r := e.res) is None else 'SUCCESS' if _r >= 0 else _w_errno_name(_r)",
       _w_errno_name=errno_name)


def _failed(e):
    r = e.res
    return None if r is None else r < 0


def _open_flags(e):
    if e.type not in OPEN_EVENTS:
        return None
    p = e.param("flags")
    return p.raw if p is not None and isinstance(p.raw, int) else None


inline(_open_flags, f"(_r if e.type in {tuple(sorted(OPEN_EVENTS))!r} "
                   f"and isinstance(_r := e.rawarg('flags'), int) else None)")


def _readable(e, f):
    return f is not None and bool(f & PPM_O_RDONLY)


def _writable(e, f):
    return f is not None and bool(f & PPM_O_WRONLY)


def _is_open_read(e):
    return _readable(e, _open_flags(e))


def _is_open_write(e):
    return _writable(e, _open_flags(e))


derive_inline(_readable, f"(_f := {{v}}) is not None and bool(_f & {PPM_O_RDONLY})")
derive_inline(_writable, f"(_f := {{v}}) is not None and bool(_f & {PPM_O_WRONLY})")
via(_is_open_read, "open flags", _open_flags, _readable)
via(_is_open_write, "open flags", _open_flags, _writable)


def _mode(e) -> int:
    p = e.param("mode")
    return p.raw if p is not None and isinstance(p.raw, int) else 0


def _is_open_exec(e):
    if e.type == "creat":
        return bool(_mode(e) & EXEC_MODE_BITS)
    f = _open_flags(e)
    if f is None or e.type == "open_by_handle_at":
        return False
    return bool(f & (PPM_O_CREAT | PPM_O_TMPFILE)) and bool(_mode(e) & EXEC_MODE_BITS)


def _created(e, f):
    if f is None:
        return False
    return bool(f & PPM_O_F_CREATED) or (bool(f & PPM_O_TMPFILE) and (e.res or 0) >= 0)


def _is_open_create(e):
    return _created(e, _open_flags(e))


via(_is_open_create, "open flags", _open_flags, _created)


def _buflen(e):
    if e.type in IO_READ_EVENTS or e.type in IO_WRITE_EVENTS:
        if e.fd is not None and e.res is not None and e.res >= 0:
            return e.res
    return None


def _io_dir(e):
    if e.type in IO_READ_EVENTS:
        return "read"
    if e.type in IO_WRITE_EVENTS:
        return "write"
    return None


_ABSPATH_PARAMS = {
    None: ("name", "path", "filename", "linkpath"),
    "src": ("oldpath",),
    "dst": ("newpath", "linkpath"),
}


def _abspath(arg):
    if arg not in _ABSPATH_PARAMS:
        raise ValueError("evt.abspath takes .src or .dst")
    names = _ABSPATH_PARAMS[arg]

    def get(e):
        for n in names:
            p = e.param(n)
            if p is not None:
                text = p.text()
                if not text:
                    return None
                return posixpath.normpath(text) if text.startswith("/") else "<UNKNOWN>/" + text
        return None
    return get


def _fs_path(kind: str, raw: bool):
    """fs.path.*: the path a successful filesystem event operated on."""
    single = {"mkdir": "path", "mkdirat": "path", "rmdir": "path", "unlink": "path",
              "unlinkat": "name", "open": "name", "openat": "name", "openat2": "name",
              "chmod": "filename", "fchmodat": "filename", "chown": "path", "lchown": "path",
              "fchownat": "pathname", "umount": "name", "umount2": "name"}
    pairs = {"rename": ("oldpath", "newpath"), "renameat": ("oldpath", "newpath"),
             "renameat2": ("oldpath", "newpath"), "link": ("newpath", "oldpath"),
             "linkat": ("newpath", "oldpath"), "symlink": ("linkpath", "target"),
             "symlinkat": ("linkpath", "target"), "mount": ("dev", "dir")}

    def get(e):
        if e.res is None or e.res < 0:
            return None
        if kind == "name":
            n = single.get(e.type)
        else:
            pair = pairs.get(e.type)
            n = None if pair is None else pair[0 if kind == "source" else 1]
        p = None if n is None else e.param(n)
        if p is None:
            return None
        if raw:
            return p.plain
        text = p.text()
        return posixpath.normpath(text) if text and text.startswith("/") else text
    return get


_FILE_FD_TYPES = frozenset(("file", "directory"))
_NET_FD_TYPES = frozenset(("ipv4", "ipv6", "unix"))


def _buflen_variant(direction: Optional[str], kind: Optional[str]):
    """evt.buflen.{in,out,file,file.in,...}: evt.buflen restricted by direction/fd kind."""
    kinds = {None: None, "file": _FILE_FD_TYPES, "net": _NET_FD_TYPES}[kind]

    def get(e):
        n = _buflen(e)
        if n is None:
            return None
        if direction == "in" and e.type not in IO_READ_EVENTS:
            return None
        if direction == "out" and e.type not in IO_WRITE_EVENTS:
            return None
        if kinds is not None and e.fd.type not in kinds:
            return None
        return n
    return get


def _count_error(category: Optional[str]):
    known = ("file", "net", "memory")

    def get(e):
        if e.res is None:
            return None
        if category is not None:
            cat = e.category
            matches = cat not in known if category == "other" else cat == category
            if not matches:
                return None
        return int(e.res < 0)
    return get


class _Around:
    """evt.around[TS] = DELTA_MS: true when the event is within DELTA ms of TS."""
    __slots__ = ("ts", "center")

    def __init__(self, ts: int, center: int) -> None:
        self.ts = ts
        self.center = center

    def __eq__(self, delta_ms) -> bool:
        return isinstance(delta_ms, int) and abs(self.ts - self.center) <= delta_ms * 1_000_000

    def __ne__(self, delta_ms) -> bool:
        return not self.__eq__(delta_ms)

    def __hash__(self) -> int:
        return hash(self.center)

    # Only "=" has a meaning; the other comparisons are simply false.
    def __lt__(self, other) -> bool:
        return False

    __le__ = __gt__ = __ge__ = __lt__


def _around(center):
    if not isinstance(center, int):
        raise ValueError("evt.around needs [TIMESTAMP_NS]")
    return lambda e, c=center: _Around(e.ts, c)


def _fdlist(kind: str):
    def get(e):
        if e.type not in ("poll", "ppoll"):
            return None
        p = e.param("fds")
        if p is None or not isinstance(p.raw, (list, tuple)):
            return None
        nums = [x[0] if isinstance(x, (list, tuple)) else x for x in p.raw]
        if kind == "nums":
            return ",".join(str(n) for n in nums)
        fds = {} if e.proc is None else e.proc.fds
        out = []
        for n in nums:
            fd = fds.get(n)
            v = None if fd is None else getattr(fd, kind)
            if v is not None:
                out.append(str(v))
        return ",".join(out)
    return get


def _f(name, type_, desc, get, **kw):
    return FieldSpec(name, type_, desc, get, **kw)


FIELDS = [
    _f("evt.num", T.UINT64, "Event sequence number (first event is 1).", lambda e: e.num),
    _f("evt.type", T.CHARBUF, "Event name: the syscall name, procexit, ...", lambda e: e.type),
    _f("evt.type.is", T.UINT32, "1 if the event is of type NAME (evt.type.is.NAME), else 0.",
       _type_is, arg=ARG_NONE, dotted=True, arg_required=True),
    _f("syscall.type", T.CHARBUF, "Like evt.type, only for syscall events.",
       lambda e: e.type if e.source == "syscall" and e.type != "procexit" and not e.is_async else None),
    _f("evt.category", T.CHARBUF, "Event category (file, net, process, ...).", lambda e: e.category),
    _f("evt.dir", T.CHARBUF, "Deprecated direction: always '<' (exit events only).", lambda e: e.dir),
    _f("evt.cpu", T.INT16, "CPU number.", lambda e: e.cpu),
    _f("evt.args", T.CHARBUF, "All params as name=value(resolved).", _args_text),
    _f("evt.info", T.CHARBUF, "Same as evt.args.", _args_text),
    _f("evt.arg", T.CHARBUF, "One param by .NAME or [N], resolved form when there is one.",
       _arg, arg=ARG_INDEX_OR_KEY, dotted=True, arg_required=True),
    _f("evt.rawarg", T.DYN, "One param's raw value by .NAME.", _rawarg, dotted=True,
       arg_required=True),
    _f("evt.res", T.CHARBUF, "SUCCESS, or the errno name of a failed call.", _res),
    _f("evt.rawres", T.INT64, "Return value as a signed integer.", lambda e: e.res),
    _f("evt.failed", T.BOOL, "true if the return value is negative.", _failed),
    _f("evt.buffer", T.BYTEBUF, "Captured I/O data (the data param).", lambda e: e.buffer,
       event_types=IO_READ_EVENTS | IO_WRITE_EVENTS),
    _f("evt.buflen", T.UINT64, "Bytes transferred by an I/O event.", _buflen,
       event_types=IO_READ_EVENTS | IO_WRITE_EVENTS),
    _f("evt.buflen.in", T.UINT64, "Bytes read.", _buflen_variant("in", None)),
    _f("evt.buflen.out", T.UINT64, "Bytes written.", _buflen_variant("out", None)),
    _f("evt.buflen.file", T.UINT64, "Bytes transferred on files.", _buflen_variant(None, "file")),
    _f("evt.buflen.file.in", T.UINT64, "Bytes read from files.", _buflen_variant("in", "file")),
    _f("evt.buflen.file.out", T.UINT64, "Bytes written to files.", _buflen_variant("out", "file")),
    _f("evt.buflen.net", T.UINT64, "Bytes transferred on sockets.", _buflen_variant(None, "net")),
    _f("evt.buflen.net.in", T.UINT64, "Bytes received on sockets.", _buflen_variant("in", "net")),
    _f("evt.buflen.net.out", T.UINT64, "Bytes sent on sockets.", _buflen_variant("out", "net")),
    _f("evt.is_io", T.BOOL, "true for fd read/write events.",
       lambda e: e.type in IO_READ_EVENTS or e.type in IO_WRITE_EVENTS),
    _f("evt.is_io_read", T.BOOL, "true for fd read events.", lambda e: e.type in IO_READ_EVENTS),
    _f("evt.is_io_write", T.BOOL, "true for fd write events.", lambda e: e.type in IO_WRITE_EVENTS),
    _f("evt.io_dir", T.CHARBUF, "read or write for I/O events.", _io_dir),
    _f("evt.is_wait", T.BOOL, "true for events that block waiting.", lambda e: e.type in WAIT_EVENTS),
    _f("evt.is_syslog", T.BOOL, "true for writes to the syslog socket.",
       lambda e: e.type in IO_WRITE_EVENTS and e.fd is not None and e.fd.name is not None
       and e.fd.name.endswith("/dev/log")),
    _f("evt.count", T.UINT32, "Always 1.", lambda e: 1),
    _f("evt.count.error", T.UINT32, "1 if the event failed, else 0.",
       lambda e: None if e.res is None else int(e.res < 0)),
    _f("evt.count.error.file", T.UINT32, "1 if a file event failed.", _count_error("file")),
    _f("evt.count.error.net", T.UINT32, "1 if a network event failed.", _count_error("net")),
    _f("evt.count.error.memory", T.UINT32, "1 if a memory event failed.", _count_error("memory")),
    _f("evt.count.error.other", T.UINT32, "1 if another kind of event failed.",
       _count_error("other")),
    _f("evt.count.exit", T.UINT32, "1 for exit events.", lambda e: 1 if e.dir == "<" else None),
    _f("evt.abspath", T.CHARBUF, "Absolute path from a dirfd+path param pair (.src/.dst for "
       "two-path calls).", _abspath, dotted=True),
    _f("evt.is_open_read", T.BOOL, "open family: requested flags include read access.",
       _is_open_read, event_types=OPEN_EVENTS),
    _f("evt.is_open_write", T.BOOL, "open family: requested flags include write access.",
       _is_open_write, event_types=OPEN_EVENTS),
    _f("evt.is_open_exec", T.BOOL, "open/creat creating a file with an execute bit.",
       _is_open_exec, event_types=OPEN_EVENTS | {"creat"}),
    _f("evt.is_open_create", T.BOOL, "open family: the file was created.", _is_open_create,
       event_types=OPEN_EVENTS),
    _f("evt.time", T.CHARBUF, "Local time HH:MM:SS.nnnnnnnnn.",
       lambda e: _local(e.ts, "%H:%M:%S", True)),
    _f("evt.time.s", T.CHARBUF, "Local time HH:MM:SS.", lambda e: _local(e.ts, "%H:%M:%S", False)),
    _f("evt.time.iso8601", T.CHARBUF, "UTC time YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+0000.",
       lambda e: iso8601_utc(e.ts, zulu=False)),
    _f("evt.datetime", T.CHARBUF, "Local YYYY-MM-DD HH:MM:SS.nnnnnnnnn.",
       lambda e: _local(e.ts, "%Y-%m-%d %H:%M:%S", True)),
    _f("evt.datetime.s", T.CHARBUF, "Local YYYY-MM-DD HH:MM:SS.",
       lambda e: _local(e.ts, "%Y-%m-%d %H:%M:%S", False)),
    _f("evt.rawtime", T.ABSTIME, "Epoch ns.", lambda e: e.ts),
    _f("evt.rawtime.s", T.ABSTIME, "Epoch seconds.", lambda e: e.ts // 1_000_000_000),
    _f("evt.rawtime.ns", T.ABSTIME, "Nanoseconds part of the time.", lambda e: e.ts % 1_000_000_000),
    _f("evt.reltime", T.RELTIME, "ns since capture start.", lambda e: e.ts - e.start_ts),
    _f("evt.reltime.s", T.RELTIME, "Seconds since capture start.",
       lambda e: (e.ts - e.start_ts) // 1_000_000_000),
    _f("evt.reltime.ns", T.RELTIME, "Nanoseconds part of evt.reltime.",
       lambda e: (e.ts - e.start_ts) % 1_000_000_000),
    _f("evt.deltatime", T.RELTIME, "ns since the previous event.",
       lambda e: None if e.prev_ts is None else e.ts - e.prev_ts),
    _f("evt.deltatime.s", T.RELTIME, "Seconds part of evt.deltatime.",
       lambda e: None if e.prev_ts is None else (e.ts - e.prev_ts) // 1_000_000_000),
    _f("evt.deltatime.ns", T.RELTIME, "Nanoseconds part of evt.deltatime.",
       lambda e: None if e.prev_ts is None else (e.ts - e.prev_ts) % 1_000_000_000),
    _f("evt.latency", T.RELTIME, "Deprecated: always 0 (no enter events).", lambda e: 0),
    _f("evt.latency.s", T.RELTIME, "Deprecated: always 0.", lambda e: 0),
    _f("evt.latency.ns", T.RELTIME, "Deprecated: always 0.", lambda e: 0),
    _f("evt.latency.quantized", T.UINT64, "Deprecated: always 0.", lambda e: 0),
    _f("evt.latency.human", T.CHARBUF, "Deprecated: always 0ns.", lambda e: "0ns"),
    _f("evt.wait_latency", T.RELTIME, "Deprecated: always 0.", lambda e: 0),
    _f("evt.outputtime", T.CHARBUF, "Event time as outputs print it (evt.time).",
       lambda e: _local(e.ts, "%H:%M:%S", True)),
    _f("evt.around", T.UINT64, "evt.around[TS_NS] = DELTA_MS: the event is within DELTA ms of TS.",
       _around, arg=ARG_INDEX, arg_required=True, filter_only=True),
    _f("fdlist.nums", T.CHARBUF, "poll/ppoll: polled fd numbers, comma separated.",
       _fdlist("nums"), event_types=frozenset(("poll", "ppoll"))),
    _f("fdlist.names", T.CHARBUF, "poll/ppoll: names of the polled fds.", _fdlist("name"),
       event_types=frozenset(("poll", "ppoll"))),
    _f("fdlist.cips", T.CHARBUF, "poll/ppoll: client IPs of the polled fds.", _fdlist("cip"),
       event_types=frozenset(("poll", "ppoll"))),
    _f("fdlist.sips", T.CHARBUF, "poll/ppoll: server IPs of the polled fds.", _fdlist("sip"),
       event_types=frozenset(("poll", "ppoll"))),
    _f("fdlist.cports", T.CHARBUF, "poll/ppoll: client ports of the polled fds.", _fdlist("cport"),
       event_types=frozenset(("poll", "ppoll"))),
    _f("fdlist.sports", T.CHARBUF, "poll/ppoll: server ports of the polled fds.", _fdlist("sport"),
       event_types=frozenset(("poll", "ppoll"))),
    _f("evt.hostname", T.CHARBUF, "Host name.", lambda e: e.hostname),
    _f("evt.source", T.CHARBUF, "Event source (syscall).", lambda e: e.source),
    _f("evt.is_async", T.BOOL, "true for asynchronous (injected) events.", lambda e: e.is_async),
    _f("evt.asynctype", T.CHARBUF, "Name of an asynchronous event.",
       lambda e: e.type if e.is_async else None),
    _f("evt.pluginname", T.CHARBUF, "Plugin of a plugin event (none for syscalls).", lambda e: None,
       live=False),
    _f("evt.plugininfo", T.CHARBUF, "Summary of a plugin event (none for syscalls).", lambda e: None,
       live=False),
    _f("fs.path.name", T.CHARBUF, "Absolute path a successful filesystem event operated on.",
       _fs_path("name", False)),
    _f("fs.path.nameraw", T.CHARBUF, "Path as passed.", _fs_path("name", True)),
    _f("fs.path.source", T.CHARBUF, "Source path of a two-path event.", _fs_path("source", False)),
    _f("fs.path.sourceraw", T.CHARBUF, "Source path as passed.", _fs_path("source", True)),
    _f("fs.path.target", T.CHARBUF, "Target path of a two-path event.", _fs_path("target", False)),
    _f("fs.path.targetraw", T.CHARBUF, "Target path as passed.", _fs_path("target", True)),
]
