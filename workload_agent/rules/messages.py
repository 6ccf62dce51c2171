"""Load messages (errors and warnings) with Falco's codes, and their text/JSON forms.

A message carries a chain of locations from the outermost (the file) to the
innermost (the key or the character in a condition), like Falco's load
context, so that a reader sees both *where* and *in which item* it happened.
Lines and columns are stored 0-based as in Falco's JSON; the text form adds 1
so that editors jump to the right place.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

ERROR = "error"
WARNING = "warning"

# code -> short description (Falco's "codedesc" slot).
ERROR_CODES = {
    "LOAD_ERR_FILE_READ": "File read error",
    "LOAD_ERR_YAML_PARSE": "YAML parse error",
    "LOAD_ERR_YAML_VALIDATE": "Error validating internal structure of YAML file",
    "LOAD_ERR_COMPILE_CONDITION": "Error compiling condition",
    "LOAD_ERR_COMPILE_OUTPUT": "Error compiling output",
    "LOAD_ERR_VALIDATE": "Error validating rule/macro/list/exception objects",
    "LOAD_ERR_EXTENSION": "Error in extension item",
}
WARNING_CODES = {
    "LOAD_UNKNOWN_SOURCE": "Unknown event source",
    "LOAD_UNSAFE_NA_CHECK": "Unsafe <NA> comparison in condition",
    "LOAD_NO_EVTTYPE": "Condition has no event-type restriction",
    "LOAD_UNKNOWN_FILTER": "Unknown field or event-type in condition or output",
    "LOAD_UNUSED_MACRO": "Unused macro",
    "LOAD_UNUSED_LIST": "Unused list",
    "LOAD_UNKNOWN_ITEM": "Unknown rules file item",
    "LOAD_DEPRECATED_ITEM": "Used deprecated item",
    "LOAD_WARNING_EXTENSION": "Warning in extension item",
    "LOAD_APPEND_NO_VALUES": "Overriding/appending with no values",
    "LOAD_EXCEPTION_NAME_NOT_UNIQUE": "Multiple exceptions defined with the same name",
    "LOAD_INVALID_MACRO_NAME": "Invalid macro name",
    "LOAD_INVALID_LIST_NAME": "Invalid list name",
    "LOAD_COMPILE_CONDITION": "Warning compiling condition",
    "LOAD_UNKNOWN_KEY": "Unknown key in item",
}

# Item types as Falco names them in a location chain.
RULES_CONTENT = "rules content"
RULES_CONTENT_ITEM = "rules content item"
REQUIRED_ENGINE_VERSION = "required_engine_version"
REQUIRED_PLUGIN_VERSIONS = "required plugin versions"
REQUIRED_PLUGIN_VERSIONS_ENTRY = "required plugin versions entry"
REQUIRED_PLUGIN_VERSIONS_ALTERNATIVE = "required plugin versions alternative"
LIST = "list"
LIST_ITEM = "list item"
MACRO = "macro"
MACRO_CONDITION = "macro condition"
RULE = "rule"
RULE_CONDITION = "rule condition"
CONDITION_EXPRESSION = "condition expression"
RULE_OUTPUT = "rule output"
RULE_OUTPUT_EXPRESSION = "rule output expression"
RULE_PRIORITY = "rule priority"
EXCEPTIONS = "exceptions"
EXCEPTION = "exception"
EXCEPTION_VALUES = "exception values"
EXCEPTION_VALUE = "exception value"
VALUE_FOR = "value for"
OVERRIDE = "overrides"


@dataclass(frozen=True)
class Location:
    item_type: str
    item_name: str
    file: str
    line: int = 0  # 0-based
    column: int = 0  # 0-based
    offset: int = 0  # character offset into the file

    def as_json(self) -> dict:
        return {
            "item_type": self.item_type,
            "item_name": self.item_name,
            "position": {
                "name": self.file,
                "line": self.line,
                "column": self.column,
                "offset": self.offset,
            },
        }


@dataclass
class Message:
    severity: str  # ERROR or WARNING
    code: str
    text: str
    locations: tuple = ()
    snippet: str = ""

    @property
    def codedesc(self) -> str:
        table = ERROR_CODES if self.severity == ERROR else WARNING_CODES
        return table.get(self.code, "")

    @property
    def where(self) -> Optional[Location]:
        """The innermost location: the most precise place the message is about."""
        return self.locations[-1] if self.locations else None

    @property
    def item(self) -> Optional[Location]:
        """The rule/macro/list/... the message belongs to (outermost named item)."""
        for loc in self.locations:
            if loc.item_name and loc.item_type not in (VALUE_FOR, OVERRIDE):
                return loc
        return None

    def position_text(self) -> str:
        loc = self.where
        if loc is None:
            return "<unknown>"
        return f"{loc.file}:{loc.line + 1}:{loc.column + 1}"

    def as_text(self) -> str:
        """One readable block: `file:line:col: error CODE: text`, the item chain, the snippet."""
        out = [f"{self.position_text()}: {self.severity} {self.code}: {self.text}"]
        for loc in self.locations:
            name = f" '{loc.item_name}'" if loc.item_name else ""
            out.append(f"    in {loc.item_type}{name} ({loc.file}:{loc.line + 1}:{loc.column + 1})")
        if self.snippet:
            out.extend("    | " + s for s in self.snippet.rstrip("\n").split("\n"))
        return "\n".join(out)

    def as_json(self) -> dict:
        return {
            "code": self.code,
            "codedesc": self.codedesc,
            "message": self.text,
            "context": {
                "locations": [loc.as_json() for loc in self.locations],
                "snippet": self.snippet,
            },
        }


@dataclass
class FileResult:
    """What loading one file produced: Falco keeps one result per file it loads."""

    name: str
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # informational lines (e.g. plugin requirements we satisfy)

    @property
    def successful(self) -> bool:
        return not self.errors

    def add(self, msg: Message) -> None:
        (self.errors if msg.severity == ERROR else self.warnings).append(msg)

    def summary(self) -> str:
        if self.errors:
            return "Invalid"
        return "Ok, with warnings" if self.warnings else "Ok"

    def as_text(self) -> str:
        lines = [f"{self.name}: {self.summary()}"]
        for note in self.notes:
            lines.append(f"  note: {note}")
        for kind, msgs in (("Errors", self.errors), ("Warnings", self.warnings)):
            if msgs:
                lines.append(f"{kind} ({len(msgs)}):")
                lines.extend(m.as_text() for m in msgs)
        return "\n".join(lines)

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "successful": self.successful,
            # We validate against no JSON schema; Falco reports "none" in that case.
            "schema_valid": "none",
            "errors": [m.as_json() for m in self.errors],
            "warnings": [m.as_json() for m in self.warnings],
        }


def snippet_at(content: str, offset: int, width: int = 160) -> str:
    """The source line holding `offset` plus a caret line under the character."""
    if not content:
        return ""
    pos = min(max(offset, 0), len(content) - 1)
    while pos > 0 and (pos >= len(content) or content[pos] == "\n"):
        pos -= 1
    start = content.rfind("\n", 0, pos) + 1
    end = content.find("\n", pos)
    if end < 0:
        end = len(content)
    half = width // 2
    lo = max(start, pos - half)
    hi = min(end, pos + half)
    line = content[lo:hi]
    if lo > start:
        line = "..." + line[3:]
    if hi < end:
        line = line[:-3] + "..."
    caret = " " * (pos - lo) + "^"
    return line + "\n" + caret + "\n"
