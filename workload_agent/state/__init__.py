"""Process, fd, user and container state that turns tracer records into Falco events."""
from __future__ import annotations

__all__ = ["StateTracker", "detect_container", "UserDb"]

# Exported lazily: `instrument` detects the container before the workload's exec but
# builds the tracker (and imports its parsers) only after it.
_WHERE = {"StateTracker": ".tracker", "detect_container": ".container", "UserDb": ".users"}


def __getattr__(name: str):
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(where, __name__), name)
    globals()[name] = value
    return value
