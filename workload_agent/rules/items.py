"""Reading rules-file items (lists, macros, rules, version requirements) from YAML nodes.

This is the structural half of loading: it checks each item's keys and value
types, turns append/override into definition updates, and hands them to the
collector (loader.Collector) in file order. Messages follow Falco's reader:
structural problems are LOAD_ERR_YAML_VALIDATE, a missing earlier definition
is LOAD_ERR_VALIDATE, and the first error stops the file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from . import messages as m
from .condition_text import MODIFIERS, CondText, Origin
from .yaml_positions import (
    MappingNode, ScalarNode, SequenceNode, SourceFile, is_null, mapping_get, mapping_keys,
)

IDENTIFIER_RE = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*\Z")
BARESTR_RE = re.compile(r"""[^()"'\s=,]+\Z""")

# Keys each item kind understands; anything else is a LOAD_UNKNOWN_KEY warning.
LIST_KEYS = ("list", "items", "append", "override")
MACRO_KEYS = ("macro", "condition", "append", "override")
RULE_KEYS = (
    "rule", "condition", "output", "desc", "priority", "source", "enabled", "capture",
    "capture_duration", "warn_evttypes", "skip-if-unknown-filter", "tags", "exceptions",
    "override", "append",
)
RULE_APPENDABLE = ("condition", "output", "desc", "tags", "exceptions")
RULE_REPLACEABLE = RULE_APPENDABLE + (
    "priority", "capture", "capture_duration", "enabled", "warn_evttypes", "skip-if-unknown-filter",
)
# Rule keys that make an item a definition rather than the old enabled-only toggle.
RULE_DEFINING_KEYS = ("condition", "output", "desc", "priority")

EXCEPTION_KEYS = ("name", "fields", "comps", "values")

DEPRECATED_APPEND = (
    "The 'append' key is deprecated: put an entry for the key (e.g. 'condition: append') "
    "under 'override' instead."
)
DEPRECATED_ENABLED = (
    "Toggling a rule with only 'enabled' is deprecated: add 'override: {enabled: replace}'."
)
OVERRIDE_WITH_APPEND = (
    "Keys 'override' and 'append: true' cannot be used together: put an entry for the key "
    "(e.g. 'condition: append') under 'override' instead."
)

TRUE_WORDS = ("true", "yes", "on", "y")
FALSE_WORDS = ("false", "no", "off", "n")


class LoadError(Exception):
    """An error that stops reading the current file (or the current compile)."""

    def __init__(self, code: str, text: str, ctx: tuple):
        super().__init__(text)
        self.code = code
        self.text = text
        self.ctx = ctx


@dataclass
class Entry:
    """An exception's fields/comps/values entry: a scalar or a (possibly nested) list."""

    is_list: bool = False
    item: str = ""
    items: list = field(default_factory=list)


@dataclass
class ExceptionInfo:
    name: str
    ctx: tuple
    fields: Optional[Entry] = None
    comps: Optional[Entry] = None
    values: list = field(default_factory=list)


@dataclass
class ListDef:
    name: str
    items: list
    ctx: tuple
    append: bool = False


@dataclass
class MacroDef:
    name: str
    cond: CondText
    ctx: tuple
    cond_ctx: tuple
    append: bool = False


@dataclass
class RuleDef:
    """A complete new rule."""

    name: str
    ctx: tuple
    cond: CondText
    cond_ctx: tuple
    output: str
    output_ctx: tuple
    output_origin: Origin
    desc: str
    priority: int
    source: str = "syscall"
    enabled: bool = True
    warn_evttypes: bool = True
    skip_if_unknown_filter: bool = False
    capture: bool = False
    capture_duration: int = 0
    tags: tuple = ()
    exceptions: list = field(default_factory=list)


@dataclass
class RuleUpdate:
    """An append or a selective replace of some keys of an existing rule (None = untouched)."""

    name: str
    ctx: tuple
    mode: str  # "append" or "replace"
    cond: Optional[CondText] = None
    cond_ctx: Optional[tuple] = None
    output: Optional[str] = None
    output_ctx: Optional[tuple] = None
    output_origin: Optional[Origin] = None
    desc: Optional[str] = None
    tags: Optional[tuple] = None
    exceptions: Optional[list] = None
    priority: Optional[int] = None
    enabled: Optional[bool] = None
    warn_evttypes: Optional[bool] = None
    skip_if_unknown_filter: Optional[bool] = None
    capture: Optional[bool] = None
    capture_duration: Optional[int] = None

    def has_any_value(self) -> bool:
        return any(getattr(self, k) is not None for k in (
            "cond", "output", "desc", "tags", "exceptions", "priority", "enabled",
            "warn_evttypes", "skip_if_unknown_filter", "capture", "capture_duration"))


@dataclass
class RuleEnable:
    """The deprecated `- rule: X\n  enabled: false` toggle."""

    name: str
    ctx: tuple
    enabled: bool


@dataclass
class EngineVersionReq:
    version: tuple
    text: str
    ctx: tuple


@dataclass
class PluginReq:
    alternatives: list  # [(name, version text)]
    ctx: tuple


def parse_priority(text: str):
    """The Priority for a name (case-insensitive, `info` accepted), or None."""
    from .priority import parse_priority as parse

    try:
        return parse(text)
    except ValueError:
        return None


class Reader:
    """Reads one file's items, feeding the collector; warnings go straight to `result`."""

    def __init__(self, source: SourceFile, collector, result: m.FileResult):
        self.source = source
        self.collector = collector
        self.result = result

    # -- contexts ---------------------------------------------------------------------------

    def loc(self, node, item_type: str, name: str = "") -> m.Location:
        index = node.start_mark.index if node is not None else 0
        line, col = self.source.line_col(index)
        return m.Location(item_type, name, self.source.name, line, col, index)

    def child(self, parent: tuple, node, item_type: str, name: str = "") -> tuple:
        return parent + (self.loc(node, item_type, name),)

    def fail(self, text: str, ctx: tuple, code: str = "LOAD_ERR_YAML_VALIDATE"):
        raise LoadError(code, text, ctx)

    def warn(self, code: str, text: str, ctx: tuple) -> None:
        self.result.add(make_message(m.WARNING, code, text, ctx, self.source))

    # -- value decoding (Falco's decode_val / decode_seq) ------------------------------------

    def _value_node(self, item: MappingNode, key: str, ctx: tuple, optional: bool):
        val = mapping_get(item, key)
        if val is None:
            if optional:
                return None
            self.fail(f"Item has no mapping for key '{key}'", ctx)
        if is_null(val):
            self.fail(f"Mapping for key '{key}' is empty", ctx)
        vctx = self.child(ctx, val, m.VALUE_FOR, key)
        if not isinstance(val, ScalarNode):
            self.fail("Value is not a scalar value", vctx)
        if val.value == "":
            self.fail("Value must be non-empty", vctx)
        return val

    def get_str(self, item, key, ctx, optional=False) -> Optional[str]:
        val = self._value_node(item, key, ctx, optional)
        return None if val is None else val.value

    def get_bool(self, item, key, ctx, optional=False) -> Optional[bool]:
        val = self._value_node(item, key, ctx, optional)
        if val is None:
            return None
        word = val.value.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        self.fail(f"Can't decode YAML scalar value: '{val.value}' is not a boolean",
                  self.child(ctx, val, m.VALUE_FOR, key))

    def get_uint(self, item, key, ctx, optional=False) -> Optional[int]:
        val = self._value_node(item, key, ctx, optional)
        if val is None:
            return None
        text = val.value.strip()
        if not text.isdigit():
            self.fail(f"Can't decode YAML scalar value: '{val.value}' is not a non-negative integer",
                      self.child(ctx, val, m.VALUE_FOR, key))
        return int(text)

    def get_seq(self, item, key, ctx, optional=False) -> Optional[list]:
        val = mapping_get(item, key)
        if val is None:
            if optional:
                return None
            self.fail(f"Item has no mapping for key '{key}'", ctx)
        vctx = self.child(ctx, val, m.VALUE_FOR, key)
        if not isinstance(val, SequenceNode):
            self.fail("Value is not a sequence", vctx)
        out = []
        for v in val.value:
            if not isinstance(v, ScalarNode):
                self.fail("sequence value is not scalar", self.child(vctx, v, m.LIST_ITEM))
            out.append(v.value)
        return out

    def get_condition(self, item, key, ctx) -> tuple:
        val = self._value_node(item, key, ctx, False)
        return CondText.scalar(val.value, Origin(self.source, val, val.start_mark.index)), val

    # -- items --------------------------------------------------------------------------------

    def read_documents(self, docs: list, root_ctx: tuple) -> None:
        for doc in docs:
            if doc is None or is_null(doc):
                continue
            if not isinstance(doc, (MappingNode, SequenceNode)):
                self.fail("Rules content is not yaml", self.child(root_ctx, doc, m.RULES_CONTENT))
            if not isinstance(doc, SequenceNode):
                self.result.notes.append(
                    "hint: a rules file is a YAML list of rule, macro and list items; "
                    "a Falco configuration file (a mapping) is not a rules file")
                self.fail("Rules content is not yaml array of objects",
                          self.child(root_ctx, doc, m.RULES_CONTENT))
            for item in doc.value:
                if is_null(item):
                    continue
                self.read_item(item, root_ctx)

    def check_keys(self, item: MappingNode, known: tuple, ctx: tuple) -> None:
        for key, knode in mapping_keys(item):
            if key not in known:
                self.warn("LOAD_UNKNOWN_KEY", f"Unknown key '{key}'. The key will be ignored.",
                          self.child(ctx, knode, m.VALUE_FOR, key))

    def read_item(self, item, parent: tuple) -> None:
        if not isinstance(item, MappingNode):
            self.fail("Unexpected element type. Each element should be a yaml associative array.",
                      self.child(parent, item, m.RULES_CONTENT_ITEM))
        if mapping_get(item, "required_engine_version") is not None:
            self.read_engine_version(item, parent)
        elif mapping_get(item, "required_plugin_versions") is not None:
            self.read_plugin_versions(item, parent)
        elif mapping_get(item, "list") is not None:
            self.read_list(item, parent)
        elif mapping_get(item, "macro") is not None:
            self.read_macro(item, parent)
        elif mapping_get(item, "rule") is not None:
            self.read_rule(item, parent)
        else:
            self.warn("LOAD_UNKNOWN_ITEM", "Unknown top level item",
                      self.child(parent, item, m.RULES_CONTENT_ITEM))

    def read_engine_version(self, item, parent) -> None:
        ctx = self.child(parent, item, m.REQUIRED_ENGINE_VERSION)
        text = self.get_str(item, "required_engine_version", ctx)
        version = parse_engine_version(text)
        if version is None:
            self.fail(f"Unable to parse engine version '{text}' as a semver string. "
                      'Expected "x.y.z" semver format.', ctx)
        self.collector.require_engine(EngineVersionReq(version, text, ctx))

    def read_plugin_versions(self, item, parent) -> None:
        reqs = mapping_get(item, "required_plugin_versions")
        ctx = self.child(parent, reqs, m.REQUIRED_PLUGIN_VERSIONS)
        if not isinstance(reqs, SequenceNode):
            self.fail("Value of required_plugin_versions must be a sequence", ctx)
        for plugin in reqs.value:
            tmp = self.child(ctx, plugin, m.REQUIRED_PLUGIN_VERSIONS_ENTRY)
            if not isinstance(plugin, MappingNode):
                self.fail("Plugin version must be a mapping", tmp)
            name = self.get_str(plugin, "name", tmp)
            pctx = self.child(ctx, plugin, m.REQUIRED_PLUGIN_VERSIONS_ENTRY, name)
            alternatives = [(name, self.get_str(plugin, "version", pctx))]
            alts = mapping_get(plugin, "alternatives")
            if alts is not None:
                if not isinstance(alts, SequenceNode):
                    self.fail("Value of plugin version alternatives must be a sequence", pctx)
                for alt in alts.value:
                    actx = self.child(pctx, alt, m.REQUIRED_PLUGIN_VERSIONS_ALTERNATIVE)
                    if not isinstance(alt, MappingNode):
                        self.fail("Plugin version alternative must be a mapping", actx)
                    aname = self.get_str(alt, "name", actx)
                    actx = self.child(pctx, alt, m.REQUIRED_PLUGIN_VERSIONS_ALTERNATIVE, aname)
                    alternatives.append((aname, self.get_str(alt, "version", actx)))
            self.collector.require_plugin(PluginReq(alternatives, pctx))

    def read_overrides(self, item, appendable, replaceable, ctx) -> tuple:
        """(keys to append, keys to replace) from the item's `override` map."""
        node = mapping_get(item, "override")
        appends, replaces = [], []
        if node is None or is_null(node):  # an empty override names nothing, as in Falco
            return appends, replaces
        octx = self.child(ctx, node, m.OVERRIDE)
        if not isinstance(node, MappingNode):
            self.fail("Value of 'override' must be a mapping", octx)
        for knode, vnode in node.value:
            key = knode.value if isinstance(knode, ScalarNode) else ""
            kctx = self.child(octx, knode, m.OVERRIDE, key)
            op = vnode.value if isinstance(vnode, ScalarNode) else ""
            if op == "append":
                if key not in appendable:
                    self.fail(f"Key '{key}' cannot be appended to, use 'replace' instead", kctx)
                appends.append(key)
            elif op == "replace":
                if key not in replaceable:
                    self.fail(f"Key '{key}' cannot be replaced", kctx)
                replaces.append(key)
            else:
                allowed = " ".join(w for w, ok in (("append", key in appendable),
                                                   ("replace", key in replaceable)) if ok)
                self.fail(f"Invalid override operation for key '{key}': '{op}'. "
                          f"Allowed values are: {allowed}",
                          self.child(octx, vnode, m.VALUE_FOR, key))
        return appends, replaces

    def read_append_flag(self, item, ctx) -> bool:
        flag = bool(self.get_bool(item, "append", ctx, optional=True))
        if flag:
            self.warn("LOAD_DEPRECATED_ITEM", DEPRECATED_APPEND, ctx)
        return flag

    def read_list(self, item, parent) -> None:
        name = self.get_str(item, "list", self.child(parent, item, m.LIST))
        ctx = self.child(parent, item, m.LIST, name)
        self.check_keys(item, LIST_KEYS, ctx)
        if not BARESTR_RE.match(name):
            self.warn("LOAD_INVALID_LIST_NAME",
                      "List has an invalid name. List names should match a regular expression: "
                      + BARESTR_RE.pattern[:-2], ctx)
        items = self.get_seq(item, "items", ctx)
        append = self.read_append_flag(item, ctx)
        appends, replaces = self.read_overrides(item, ("items",), ("items",), ctx)
        if append and (appends or replaces):
            self.fail(OVERRIDE_WITH_APPEND, ctx)
        self.collector.add_list(ListDef(name, items, ctx, append or "items" in appends))

    def read_macro(self, item, parent) -> None:
        name = self.get_str(item, "macro", self.child(parent, item, m.MACRO))
        ctx = self.child(parent, item, m.MACRO, name)
        self.check_keys(item, MACRO_KEYS, ctx)
        if not IDENTIFIER_RE.match(name):
            self.warn("LOAD_INVALID_MACRO_NAME",
                      "Macro has an invalid name. Macro names should match a regular expression: "
                      + IDENTIFIER_RE.pattern[:-2], ctx)
        cond, cnode = self.get_condition(item, "condition", ctx)
        cond_ctx = self.child(ctx, cnode, m.MACRO_CONDITION)
        append = self.read_append_flag(item, ctx)
        appends, replaces = self.read_overrides(item, ("condition",), ("condition",), ctx)
        if append and (appends or replaces):
            self.fail(OVERRIDE_WITH_APPEND, ctx)
        self.collector.add_macro(MacroDef(name, cond, ctx, cond_ctx, append or "condition" in appends))

    def read_priority(self, item, ctx) -> int:
        text = self.get_str(item, "priority", ctx)
        prio = parse_priority(text)
        if prio is None:
            self.fail("Invalid priority", self.child(ctx, mapping_get(item, "priority"), m.RULE_PRIORITY))
        return prio

    def read_tags(self, item, ctx) -> Optional[tuple]:
        tags = self.get_seq(item, "tags", ctx, optional=True)
        return None if tags is None else tuple(sorted(set(tags)))

    def read_output(self, item, ctx) -> tuple:
        val = self._value_node(item, "output", ctx, False)
        return val.value.strip(), self.child(ctx, val, m.RULE_OUTPUT), Origin(self.source, val, val.start_mark.index)

    def read_rule(self, item, parent) -> None:
        name = self.get_str(item, "rule", self.child(parent, item, m.RULE))
        ctx = self.child(parent, item, m.RULE, name)
        self.check_keys(item, RULE_KEYS, ctx)
        append_flag = self.read_append_flag(item, ctx)
        appends, replaces = self.read_overrides(item, RULE_APPENDABLE, RULE_REPLACEABLE, ctx)
        if append_flag and (appends or replaces):
            self.fail(OVERRIDE_WITH_APPEND, ctx)
        if appends or replaces:
            self.read_rule_overrides(item, name, ctx, appends, replaces)
        elif append_flag:
            upd = RuleUpdate(name, ctx, "append")
            if mapping_get(item, "condition") is not None:
                upd.cond, _ = self.get_condition(item, "condition", ctx)
            if mapping_get(item, "exceptions") is not None:
                upd.exceptions = self.read_exceptions(item, ctx, append=True)
            self.collector.update_rule(upd)
        elif all(mapping_get(item, k) is None for k in RULE_DEFINING_KEYS):
            enabled = self.get_bool(item, "enabled", ctx)
            self.warn("LOAD_DEPRECATED_ITEM", DEPRECATED_ENABLED, ctx)
            self.collector.enable_rule(RuleEnable(name, ctx, enabled))
        else:
            cond, cnode = self.get_condition(item, "condition", ctx)
            output, output_ctx, output_origin = self.read_output(item, ctx)
            desc = self.get_str(item, "desc", ctx)
            rule = RuleDef(
                name=name, ctx=ctx, cond=cond, cond_ctx=self.child(ctx, cnode, m.RULE_CONDITION),
                output=output, output_ctx=output_ctx, output_origin=output_origin, desc=desc,
                priority=self.read_priority(item, ctx),
            )
            rule.source = self.get_str(item, "source", ctx, optional=True) or "syscall"
            for key, attr in (("enabled", "enabled"), ("warn_evttypes", "warn_evttypes"),
                              ("skip-if-unknown-filter", "skip_if_unknown_filter"),
                              ("capture", "capture")):
                val = self.get_bool(item, key, ctx, optional=True)
                if val is not None:
                    setattr(rule, attr, val)
            duration = self.get_uint(item, "capture_duration", ctx, optional=True)
            if duration is not None:
                rule.capture_duration = duration
            rule.tags = self.read_tags(item, ctx) or ()
            rule.exceptions = self.read_exceptions(item, ctx, append=False)
            self.collector.define_rule(rule)

    def read_rule_overrides(self, item, name, ctx, appends, replaces) -> None:
        expected = [k for k in RULE_REPLACEABLE if mapping_get(item, k) is not None]

        def take(key: str, mode: str) -> bool:
            if key not in (appends if mode == "append" else replaces):
                return False
            if key not in expected:
                self.fail(f"An {mode} override for '{key}' was specified but '{key}' is not defined", ctx)
            expected.remove(key)
            return True

        for mode in ("append", "replace"):
            if not (appends if mode == "append" else replaces):
                continue
            upd = RuleUpdate(name, ctx, mode)
            if take("condition", mode):
                upd.cond, cnode = self.get_condition(item, "condition", ctx)
                upd.cond_ctx = self.child(ctx, cnode, m.RULE_CONDITION)
            if take("exceptions", mode):
                upd.exceptions = self.read_exceptions(item, ctx, append=(mode == "append"))
            if take("output", mode):
                upd.output, upd.output_ctx, upd.output_origin = self.read_output(item, ctx)
            if take("desc", mode):
                upd.desc = self.get_str(item, "desc", ctx)
            if take("tags", mode):
                upd.tags = self.read_tags(item, ctx)
            if mode == "replace":
                if take("priority", mode):
                    upd.priority = self.read_priority(item, ctx)
                for key, attr in (("enabled", "enabled"), ("warn_evttypes", "warn_evttypes"),
                                  ("skip-if-unknown-filter", "skip_if_unknown_filter"),
                                  ("capture", "capture")):
                    if take(key, mode):
                        setattr(upd, attr, self.get_bool(item, key, ctx))
                if take("capture_duration", mode):
                    upd.capture_duration = self.get_uint(item, "capture_duration", ctx)
            self.collector.update_rule(upd)
        for key in expected:
            self.fail(f"Unexpected key '{key}': no corresponding entry under 'override' is defined.",
                      self.child(ctx, mapping_get(item, key), m.OVERRIDE, key))

    # -- exceptions ---------------------------------------------------------------------------

    def read_entry(self, node, key: str, ctx: tuple) -> Entry:
        vctx = self.child(ctx, node, m.VALUE_FOR, key)
        if isinstance(node, ScalarNode):
            if node.value == "" or is_null(node):
                self.fail("Value must be non-empty", vctx)
            return Entry(False, node.value)
        if isinstance(node, SequenceNode):
            return Entry(True, "", [self.read_entry(v, "", self.child(vctx, v, m.EXCEPTION))
                                    for v in node.value])
        self.fail("Value must be a string or a sequence", vctx)

    def read_exceptions(self, item, ctx, append: bool) -> list:
        exs = mapping_get(item, "exceptions")
        if exs is None or is_null(exs):
            return []
        exs_ctx = self.child(ctx, exs, m.EXCEPTIONS)
        if not isinstance(exs, SequenceNode):
            self.fail("Rule exceptions must be a sequence", exs_ctx)
        out = []
        for ex in exs.value:
            tmp = self.child(exs_ctx, ex, m.EXCEPTION)
            if not isinstance(ex, MappingNode):
                self.fail("Rule exception must be a mapping", tmp)
            name = self.get_str(ex, "name", tmp)
            ex_ctx = self.child(ctx, ex, m.EXCEPTION, name)
            self.check_keys(ex, EXCEPTION_KEYS, ex_ctx)
            if any(prev.name == name for prev in out):
                self.warn("LOAD_EXCEPTION_NAME_NOT_UNIQUE",
                          f"Multiple definitions of exception '{name}' in the same rule", ex_ctx)
            info = ExceptionInfo(name, ex_ctx)
            fnode = mapping_get(ex, "fields")
            if fnode is not None:
                info.fields = self.read_entry(fnode, "fields", ex_ctx)
            elif not append:
                self.fail("Item has no mapping for key 'fields'", ex_ctx)
            cnode = mapping_get(ex, "comps")
            if cnode is not None:
                info.comps = self.read_entry(cnode, "comps", ex_ctx)
            vnode = mapping_get(ex, "values")
            if vnode is not None:
                vals_ctx = self.child(ex_ctx, vnode, m.EXCEPTION_VALUES)
                if not isinstance(vnode, SequenceNode):
                    self.fail("Rule exception values must be a sequence", vals_ctx)
                for v in vnode.value:
                    info.values.append(self.read_entry(v, "", self.child(vals_ctx, v, m.EXCEPTION_VALUE)))
            elif append:
                self.warn("LOAD_APPEND_NO_VALUES", "Overriding/appending exception with no values", ex_ctx)
            out.append(info)
        return out


def check_exception_shape(ex: ExceptionInfo, is_field_defined=None) -> None:
    """Default comps and check fields/comps agree, as Falco does when an exception is defined.

    Raises LoadError(LOAD_ERR_VALIDATE) at the exception.
    """
    from .condition_text import is_list_operator

    def fail(text):
        raise LoadError("LOAD_ERR_VALIDATE", text, ex.ctx)

    if ex.fields.is_list:
        if ex.comps is None:
            ex.comps = Entry(True, "", [Entry(False, "=") for _ in ex.fields.items])
        if not ex.comps.is_list or len(ex.comps.items) != len(ex.fields.items):
            fail("Fields and comps lists must have equal length")
        for c in ex.comps.items:
            if c.is_list or not is_operator(c.item):
                fail(f"'{c.item}' is not a supported comparison operator")
        for f in ex.fields.items:
            if f.is_list or (is_field_defined is not None and not is_field_defined(f.item)):
                fail(f"'{f.item}' is not a supported filter field")
    else:
        if ex.comps is None:
            ex.comps = Entry(False, "in")
        if ex.comps.is_list:
            fail("Fields and comps must both be strings")
        if not is_list_operator(ex.comps.item):
            fail("When fields is a single value, comps must be one of (in, pmatch, intersects) "
                 "or an operator with a oneof/anyof/allof modifier")
        if is_field_defined is not None and not is_field_defined(ex.fields.item):
            fail(f"'{ex.fields.item}' is not a supported filter field")


OPERATORS = (
    "=", "==", "!=", "<", "<=", ">", ">=", "contains", "icontains", "bcontains", "startswith",
    "bstartswith", "endswith", "glob", "iglob", "regex", "pmatch", "in", "intersects", "exists",
)


def is_operator(op: str) -> bool:
    words = op.split()
    if len(words) == 2 and words[1] in MODIFIERS:
        return words[0] in OPERATORS
    return op in OPERATORS


ENGINE_VERSION = (0, 63, 0)  # the Falco engine whose rules language we implement


def parse_engine_version(text: str) -> Optional[tuple]:
    """An integer N means 0.N.0; otherwise a semver x.y.z."""
    text = text.strip()
    if text.isdigit():
        return (0, int(text), 0)
    return parse_semver(text)


def parse_semver(text: str) -> Optional[tuple]:
    """(x, y, z) from "x.y.z" (pre-release/build suffix ignored), or None."""
    core = re.split(r"[-+]", text.strip(), maxsplit=1)[0]
    parts = core.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def make_message(severity: str, code: str, text: str, ctx: tuple, source: Optional[SourceFile]) -> m.Message:
    snippet = ""
    if ctx and source is not None and ctx[-1].file == source.name:
        snippet = m.snippet_at(source.content, ctx[-1].offset)
    return m.Message(severity, code, text, tuple(ctx), snippet)
