"""Field value types: which operators each allows, how rule values convert to
them, and how extracted values render in text and JSON output."""
from __future__ import annotations

import ipaddress
import socket
from typing import Any

CHARBUF = "CHARBUF"
BYTEBUF = "BYTEBUF"
INT16 = "INT16"
INT32 = "INT32"
INT64 = "INT64"
UINT32 = "UINT32"
UINT64 = "UINT64"
BOOL = "BOOL"
IPADDR = "IPADDR"
IPNET = "IPNET"
PORT = "PORT"
RELTIME = "RELTIME"
ABSTIME = "ABSTIME"
DOUBLE = "DOUBLE"
DYN = "DYN"

INTEGER_TYPES = frozenset((INT16, INT32, INT64, UINT32, UINT64, RELTIME, ABSTIME, PORT))
NUMERIC_TYPES = INTEGER_TYPES | {DOUBLE}
ALL_TYPES = frozenset((CHARBUF, BYTEBUF, BOOL, IPADDR, IPNET, DYN)) | NUMERIC_TYPES

_EQ = frozenset(("=", "==", "!=", "in", "intersects", "exists"))
_ORDER = frozenset(("<", "<=", ">", ">="))
_STRING = frozenset(("contains", "icontains", "bcontains", "startswith", "bstartswith",
                     "endswith", "glob", "iglob", "regex", "pmatch"))

ALLOWED_OPS = {
    CHARBUF: _EQ | _ORDER | _STRING,
    BYTEBUF: _EQ | frozenset(("contains", "icontains", "bcontains", "startswith", "bstartswith",
                              "endswith")),
    BOOL: _EQ,
    IPADDR: _EQ,
    IPNET: _EQ,
    DYN: _EQ | _ORDER,
}
for _t in NUMERIC_TYPES:
    ALLOWED_OPS[_t] = _EQ | _ORDER

_INT_RANGES = {
    INT16: (-(1 << 15), (1 << 15) - 1),
    INT32: (-(1 << 31), (1 << 31) - 1),
    INT64: (-(1 << 63), (1 << 63) - 1),
    UINT32: (0, (1 << 32) - 1),
    UINT64: (0, (1 << 64) - 1),
    RELTIME: (0, (1 << 64) - 1),
    ABSTIME: (0, (1 << 64) - 1),
    PORT: (0, 65535),
}


class ValueError_(ValueError):
    """A rule value that does not convert to the field's type."""


def _parse_int(text: str) -> int:
    t = text.strip()
    try:
        if t[:2].lower() == "0x" or t[:3].lower() in ("+0x", "-0x"):
            return int(t, 16)
        return int(t, 10)
    except ValueError:
        raise ValueError_(f"'{text}' is not a valid integer") from None


def convert(ftype: str, text: str) -> Any:
    """Convert a rule value to the Python value extractors produce for ``ftype``."""
    if ftype == CHARBUF:
        return text
    if ftype == BYTEBUF:
        return text.encode("utf-8", "surrogateescape")
    if ftype == BOOL:
        if text == "true":
            return True
        if text == "false":
            return False
        raise ValueError_(f"'{text}' is not a valid boolean (true or false)")
    if ftype == PORT:
        try:
            value = _parse_int(text)
        except ValueError_:
            try:
                return socket.getservbyname(text)
            except (OSError, UnicodeError):
                raise ValueError_(f"'{text}' is not a valid port number or service name") from None
    elif ftype in INTEGER_TYPES:
        value = _parse_int(text)
    elif ftype == DOUBLE:
        try:
            return float(text)
        except ValueError:
            raise ValueError_(f"'{text}' is not a valid number") from None
    elif ftype == IPADDR:
        try:
            return ipaddress.ip_address(text)
        except ValueError:
            raise ValueError_(f"'{text}' is not a valid IP address") from None
    elif ftype == IPNET:
        try:
            return ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError_(f"'{text}' is not a valid network (CIDR)") from None
    elif ftype == DYN:
        try:
            return _parse_int(text)
        except ValueError_:
            return text
    else:
        raise ValueError_(f"unknown field type {ftype}")
    lo, hi = _INT_RANGES[ftype]
    if not lo <= value <= hi:
        raise ValueError_(f"{value} is out of range for {ftype}")
    return value


def parse_hex(text: str) -> bytes:
    """The right side of bcontains/bstartswith: hexadecimal bytes."""
    try:
        if len(text) % 2:
            raise ValueError
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError_(f"'{text}' is not a valid hex string (even number of hex digits)") from None


def to_text(value: Any) -> str:
    """Output text of one extracted value (None is handled by the caller)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return "".join(chr(b) if 32 <= b < 127 else "." for b in value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return " ".join(to_text(v) for v in value)
    return str(value)


def to_json(value: Any) -> Any:
    """JSON value of one extracted value: numbers and booleans stay typed."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return to_text(value)
