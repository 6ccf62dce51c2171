"""Rule priorities: names, severity order, long forms."""
from __future__ import annotations

from enum import IntEnum


class Priority(IntEnum):
    """Lower value = more severe (Falco's order)."""
    EMERGENCY = 0
    ALERT = 1
    CRITICAL = 2
    ERROR = 3
    WARNING = 4
    NOTICE = 5
    INFORMATIONAL = 6
    DEBUG = 7

    @property
    def long(self) -> str:
        """The form alerts print: Emergency, ..., Informational, Debug."""
        return self.name.capitalize()

    def at_least(self, minimum: "Priority") -> bool:
        """True when this priority is as severe as ``minimum`` or more."""
        return self <= minimum


_ALIASES = {"INFO": Priority.INFORMATIONAL}


def parse_priority(text: str) -> Priority:
    """Case-insensitive priority name ('info' means INFORMATIONAL); ValueError if unknown."""
    key = str(text).strip().upper()
    if key in _ALIASES:
        return _ALIASES[key]
    try:
        return Priority[key]
    except KeyError:
        names = ", ".join(p.name.lower() for p in Priority)
        raise ValueError(f"unknown priority '{text}': expected one of {names} (or info)") from None


PRIORITY_NAMES = tuple(p.name for p in Priority)
