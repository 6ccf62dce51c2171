"""The one error type that parsing or compiling a condition or output can raise."""
from __future__ import annotations

from typing import Optional

COMPILE_CONDITION = "LOAD_ERR_COMPILE_CONDITION"
COMPILE_OUTPUT = "LOAD_ERR_COMPILE_OUTPUT"
VALIDATE = "LOAD_ERR_VALIDATE"

# ConditionError.kind values.
KINDS = ("syntax", "unknown_field", "unknown_evttype", "undefined_macro", "undefined_list",
         "argument", "operator", "value")


class ConditionError(Exception):
    """A condition or output format that cannot be parsed or compiled.

    ``offset`` is the 0-based index into the text where the problem is (-1 if
    unknown); ``code`` is the Falco load-result code; ``kind`` says what went
    wrong (one of KINDS); ``field`` names the unknown field or event type when
    that is the problem, so the loader can honour ``skip-if-unknown-filter``.
    """

    def __init__(self, message: str, offset: int = -1, code: str = COMPILE_CONDITION,
                 field: Optional[str] = None, kind: str = "syntax") -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.code = code
        self.field = field
        self.kind = kind

    def __str__(self) -> str:
        if self.offset >= 0:
            return f"{self.message} (at offset {self.offset})"
        return self.message

    def __repr__(self) -> str:
        return (f"ConditionError({self.message!r}, offset={self.offset}, code={self.code!r}, "
                f"kind={self.kind!r})")
