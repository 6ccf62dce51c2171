"""The agent <-> orchestrator wire protocol (docs/protocol.md is the prose version).

A connection carries frames: a 4-byte big-endian unsigned payload length, then that
many bytes of one msgpack map. Every map has a "type" key; FRAME_FIELDS lists, per
type, the fields and their msgpack types. Anything else (a length of 0 or above the
maximum, bytes that are not one msgpack map, an unknown type, a missing or mistyped
field, extension types) is a ProtocolError, and the receiver closes that connection.

Shared by the asyncio server and the thread-based agent client, so it does no I/O.
"""
from __future__ import annotations

import hashlib
import struct
from typing import Any, Iterable, Iterator

import msgpack

PROTOCOL_VERSION = 1
DEFAULT_MAX_FRAME = 4 * 1024 * 1024
HEADER = struct.Struct(">I")

# Error codes an orchestrator sends before closing (frame type "error").
ERR_AUTH = "auth"                # wrong or missing access key
ERR_PROTOCOL = "protocol"        # malformed or unexpected frame
ERR_VERSION = "version"          # protocol version not supported
ERR_TOO_LARGE = "too_large"      # frame above the maximum size
ERR_SHUTDOWN = "shutdown"        # orchestrator going away; reconnect later

_INT = (int,)
_STR = (str,)
_MAP = (dict,)
_LIST = (list,)
_BOOL = (bool,)

# type -> {field: (allowed python types, required)}. bool is a subclass of int, so
# integer fields reject bools explicitly in _check_field.
FRAME_FIELDS: dict[str, dict[str, tuple[tuple, bool]]] = {
    # agent -> orchestrator, first frame on every connection
    "hello": {
        "protocol": (_INT, True),
        "agent_id": (_STR, True),
        "instance": (_STR, True),       # new on every agent start: seq numbering restarts
        "version": (_STR, True),
        "access_key": (_STR, True),
        "metadata": (_MAP, False),      # container / task metadata, free-form strings
        "acked": (_INT, False),         # highest seq the agent has seen acknowledged
        "bundle_hash": (_STR, False),   # rules bundle the agent runs now
    },
    # orchestrator -> agent, reply to an accepted hello
    "welcome": {
        "protocol": (_INT, True),
        "version": (_STR, True),
        "acked": (_INT, True),          # highest seq of this (agent_id, instance) already taken
        "max_frame": (_INT, True),
    },
    # agent -> orchestrator: consecutive seq numbers first_seq, first_seq+1, ...
    "alerts": {
        "first_seq": (_INT, True),
        "alerts": (_LIST, True),        # Falco-format alert maps
    },
    # orchestrator -> agent: every seq <= "seq" has been handed to the outputs
    "ack": {
        "seq": (_INT, True),
    },
    # agent -> orchestrator, periodically
    "heartbeat": {
        "counters": (_MAP, True),       # events, drops, alerts, buffered, resent, ... -> int
        "bundle_hash": (_STR, False),
        "bundle_error": (_STR, False),  # why the last pushed bundle was not applied
    },
    # orchestrator -> agent: the whole rules bundle
    "rules": {
        "hash": (_STR, True),           # bundle_hash(files)
        "files": (_LIST, True),         # [{"name": str, "content": str}, ...]
    },
    # either direction, then the sender closes
    "error": {
        "code": (_STR, True),
        "message": (_STR, True),
    },
}

COUNTER_NAMES = ("events", "drops", "alerts", "buffered", "resent", "buffer_dropped", "undelivered")
MAX_SEQ = 2 ** 63 - 1
MAX_ID_LENGTH = 256  # agent_id / instance: they become metric labels and dict keys


class ProtocolError(Exception):
    """A frame that breaks the protocol; `code` is the error code to send back."""

    def __init__(self, message: str, code: str = ERR_PROTOCOL):
        super().__init__(message)
        self.code = code


def _no_ext(code: int, data: bytes) -> Any:
    raise ProtocolError(f"msgpack extension type {code} is not allowed")


def _check_field(ftype: str, name: str, value: Any, allowed: tuple) -> None:
    if allowed is _INT:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, allowed)
    if not ok:
        want = "/".join(t.__name__ for t in allowed)
        raise ProtocolError(f"{ftype} frame: field {name!r} must be {want}, got {type(value).__name__}")


def validate(frame: Any) -> dict:
    """Check a decoded payload against FRAME_FIELDS and the per-type rules; return it."""
    if not isinstance(frame, dict):
        raise ProtocolError(f"frame must be a msgpack map, got {type(frame).__name__}")
    ftype = frame.get("type")
    if not isinstance(ftype, str) or ftype not in FRAME_FIELDS:
        raise ProtocolError(f"unknown frame type {ftype!r}")
    fields = FRAME_FIELDS[ftype]
    for name, (allowed, required) in fields.items():
        if name not in frame:
            if required:
                raise ProtocolError(f"{ftype} frame: missing field {name!r}")
            continue
        _check_field(ftype, name, frame[name], allowed)
    if ftype == "alerts":
        if frame["first_seq"] < 1 or frame["first_seq"] + len(frame["alerts"]) - 1 > MAX_SEQ:
            raise ProtocolError("alerts frame: first_seq out of range")
        if not frame["alerts"]:
            raise ProtocolError("alerts frame: empty batch")
        for i, alert in enumerate(frame["alerts"]):
            if not isinstance(alert, dict):
                raise ProtocolError(f"alerts frame: alert {i} must be a map")
    elif ftype in ("ack", "welcome"):
        key = "seq" if ftype == "ack" else "acked"
        if not 0 <= frame[key] <= MAX_SEQ:
            raise ProtocolError(f"{ftype} frame: {key} out of range")
    elif ftype == "heartbeat":
        for key, value in frame["counters"].items():
            if not isinstance(key, str) or not isinstance(value, int) or isinstance(value, bool):
                raise ProtocolError("heartbeat frame: counters must map names to integers")
    elif ftype == "rules":
        for i, item in enumerate(frame["files"]):
            if not (isinstance(item, dict) and isinstance(item.get("name"), str)
                    and isinstance(item.get("content"), str)):
                raise ProtocolError(f"rules frame: file {i} must be a map with string name and content")
    elif ftype == "hello":
        for key in ("agent_id", "instance"):
            if not 0 < len(frame[key]) <= MAX_ID_LENGTH:
                raise ProtocolError(f"hello frame: {key} must be 1-{MAX_ID_LENGTH} characters")
        meta = frame.get("metadata", {})
        if not all(isinstance(k, str) for k in meta):
            raise ProtocolError("hello frame: metadata keys must be strings")
        if frame.get("acked", 0) < 0:
            raise ProtocolError("hello frame: acked out of range")
    return frame


def decode_payload(payload: bytes) -> dict:
    """One frame's payload (without the length header) -> validated frame dict."""
    try:
        frame = msgpack.unpackb(payload, raw=False, ext_hook=_no_ext, strict_map_key=False,
                                use_list=True)
    except ProtocolError:
        raise
    except (msgpack.ExtraData, ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        # UnicodeDecodeError, StackError, FormatError, OutOfData all land here.
        raise ProtocolError(f"payload is not one msgpack map: {type(exc).__name__}: {exc}") from None
    return validate(frame)


def check_length(length: int, max_frame: int) -> None:
    if length == 0:
        raise ProtocolError("zero-length frame")
    if length > max_frame:
        raise ProtocolError(f"frame of {length} bytes exceeds the maximum of {max_frame}",
                            ERR_TOO_LARGE)


def encode(frame: dict, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """Validate and serialise one frame, header included."""
    validate(frame)
    payload = msgpack.packb(frame, use_bin_type=True)
    check_length(len(payload), max_frame)
    return HEADER.pack(len(payload)) + payload


class FrameDecoder:
    """Incremental decoder for a byte stream: feed() bytes, get complete frames.

    After a ProtocolError the stream is unusable (frame boundaries are lost).
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME):
        self.max_frame = max_frame
        self._buf = bytearray()
        self._need: int | None = None

    def feed(self, data: bytes) -> Iterator[dict]:
        self._buf += data
        while True:
            if self._need is None:
                if len(self._buf) < HEADER.size:
                    return
                (length,) = HEADER.unpack_from(self._buf)
                check_length(length, self.max_frame)
                del self._buf[:HEADER.size]
                self._need = length
            if len(self._buf) < self._need:
                return
            payload = bytes(self._buf[:self._need])
            del self._buf[:self._need]
            self._need = None
            yield decode_payload(payload)

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a complete frame (truncation check at EOF)."""
        return len(self._buf) + (HEADER.size if self._need is not None else 0)


# --- frame constructors: one place that spells each frame ------------------------------

def hello(agent_id: str, instance: str, version: str, access_key: str,
          metadata: dict | None = None, acked: int = 0, bundle_hash: str | None = None) -> dict:
    frame = {"type": "hello", "protocol": PROTOCOL_VERSION, "agent_id": agent_id,
             "instance": instance, "version": version, "access_key": access_key,
             "metadata": dict(metadata or {}), "acked": acked}
    if bundle_hash:
        frame["bundle_hash"] = bundle_hash
    return frame


def welcome(version: str, acked: int, max_frame: int) -> dict:
    return {"type": "welcome", "protocol": PROTOCOL_VERSION, "version": version,
            "acked": acked, "max_frame": max_frame}


def alerts(first_seq: int, batch: list) -> dict:
    return {"type": "alerts", "first_seq": first_seq, "alerts": list(batch)}


def ack(seq: int) -> dict:
    return {"type": "ack", "seq": seq}


def heartbeat(counters: dict, bundle_hash: str | None = None,
              bundle_error: str | None = None) -> dict:
    frame: dict = {"type": "heartbeat", "counters": dict(counters)}
    if bundle_hash:
        frame["bundle_hash"] = bundle_hash
    if bundle_error:
        frame["bundle_error"] = bundle_error
    return frame


def bundle_hash(files: Iterable[tuple[str, str]]) -> str:
    """Content hash of a rules bundle: sha256 over sorted (name, content) pairs."""
    digest = hashlib.sha256()
    for name, content in sorted(files):
        for part in (name, content):
            data = part.encode("utf-8")
            digest.update(HEADER.pack(len(data)))
            digest.update(data)
    return "sha256:" + digest.hexdigest()


def rules(files: dict[str, str]) -> dict:
    items = sorted(files.items())
    return {"type": "rules", "hash": bundle_hash(items),
            "files": [{"name": n, "content": c} for n, c in items]}


def error(code: str, message: str) -> dict:
    return {"type": "error", "code": code, "message": message}


def frame_files(frame: dict) -> dict[str, str]:
    """The files of a rules frame, with its hash checked."""
    files = {item["name"]: item["content"] for item in frame["files"]}
    if bundle_hash(files.items()) != frame["hash"]:
        raise ProtocolError("rules frame: hash does not match the files")
    return files
