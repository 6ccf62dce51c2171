"""Small conversions every parser shares: register values and NUL-separated lists."""
from __future__ import annotations

from typing import List



def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def _split(data: bytes) -> List[str]:
    items = data.split(b"\0")
    if items and items[-1] == b"":
        items.pop()
    return [i.decode("utf-8", "surrogateescape") for i in items]



def _ok(ret) -> bool:
    return ret is not None and ret >= 0


