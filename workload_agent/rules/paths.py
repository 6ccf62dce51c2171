"""Which files a list of rules paths names, in load order."""
from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs milliseconds at every container start
if TYPE_CHECKING:
    from typing import Iterable


def expand_paths(paths: Iterable[str]) -> list:
    """Files in load order: a directory contributes its *.yaml/*.yml files alphabetically."""
    out = []
    for p in paths:
        if os.path.isdir(p):
            names = sorted(n for n in os.listdir(p) if n.endswith((".yaml", ".yml")))
            out.extend(os.path.join(p, n) for n in names if os.path.isfile(os.path.join(p, n)))
        else:
            out.append(p)
    return out
