"""The edit-save-see loop: run again whenever a watched file changes (mtime polling)."""
from __future__ import annotations

import os
import sys
import time
from typing import Callable, Dict, Iterable, Optional, Tuple


def expand(paths: Iterable[str]) -> list:
    """Files behind the given paths: a directory stands for its *.yaml/*.yml files,
    re-listed on every poll so that a new file is noticed too."""
    out = []
    for p in paths:
        if os.path.isdir(p):
            try:
                names = sorted(os.listdir(p))
            except OSError:
                names = []
            out += [os.path.join(p, n) for n in names if n.endswith((".yaml", ".yml"))]
        out.append(p)
    return out


def stamps(paths: Iterable[str]) -> Dict[str, Optional[Tuple[int, int]]]:
    out: Dict[str, Optional[Tuple[int, int]]] = {}
    for p in paths:
        try:
            st = os.stat(p)
            out[p] = (st.st_mtime_ns, st.st_size)
        except OSError:
            out[p] = None
    return out


def watch(files: Callable[[], Iterable[str]], run_once: Callable[[], int], *, interval: float = 0.5,
          max_runs: Optional[int] = None, err=None) -> int:
    """run_once() now, then again after each change of files(); until Ctrl-C (or max_runs).
    Returns the last run's exit status."""
    err = err or sys.stderr
    last = stamps(expand(files()))
    rc = run_once()
    runs = 1
    err.write(f"workload-agent: watching {len(last)} file(s) for changes (Ctrl-C to stop)\n")
    err.flush()
    try:
        while max_runs is None or runs < max_runs:
            time.sleep(interval)
            now = stamps(expand(files()))
            if now == last:
                continue
            changed = sorted(p for p in set(now) | set(last) if now.get(p) != last.get(p))
            last = now
            err.write(f"workload-agent: changed: {', '.join(changed)}: running again\n")
            err.flush()
            rc = run_once()
            runs += 1
    except KeyboardInterrupt:
        pass
    return rc
