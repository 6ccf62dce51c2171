"""Small conversions every parser shares: register values and NUL-separated lists."""
from __future__ import annotations

from typing import List



def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def _split(data: bytes) -> List[str]:
    # Decoded once, then split: no UTF-8 sequence holds a NUL byte, so this gives what
    # decoding each item would (an exec's environment is dozens of items).
    items = data.decode("utf-8", "surrogateescape").split("\0")
    if items[-1] == "":
        items.pop()
    return items



def _ok(ret) -> bool:
    return ret is not None and ret >= 0


