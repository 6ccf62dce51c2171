"""Control characters made visible in text outputs.

A file name, argument or environment value chosen by the workload ends up in alert and
event lines. Written raw, a newline in it starts what reads as another alert line and a
carriage return or an escape sequence rewrites what a terminal shows. Text outputs pass
every line through escape_controls (JSON outputs escape these themselves).
"""
from __future__ import annotations

import re

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0 controls, DEL, the C1 controls (U+0080-U+009F: some terminals act on them) and the
# Unicode line/paragraph separators that some log viewers break lines on.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _one(m: re.Match) -> str:
    c = m.group()
    named = _NAMED.get(c)
    if named is not None:
        return named
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """text with every control character written as a visible escape (\\n, \\x1b, ...).
    Backslashes stay as they are: only a control character can forge a line or a field."""
    return _CONTROL.sub(_one, text)
