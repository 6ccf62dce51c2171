"""Process, fd, user and container state that turns tracer records into Falco events."""
from __future__ import annotations

from .container import detect_container
from .tracker import StateTracker
from .users import UserDb

__all__ = ["StateTracker", "detect_container", "UserDb"]
