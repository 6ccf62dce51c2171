"""Load Falco rules files: collect definitions file by file, compile them, build the ruleset.

Loading mirrors the Falco engine so that messages line up with what `falco -V`
says: each file is read into one shared collector (definitions accumulate and
later files may append to or override earlier ones), and after each file that
read cleanly everything collected so far is compiled, the compile's messages
belonging to that file's result. The ruleset comes from the last compile.

Compilation order is Falco's: lists (one level of list-in-list expansion),
then every macro (lists substituted textually, parsed, then macro references
resolved in definition order, each macro seeing only what was defined before
it), then every rule (exceptions appended, lists substituted, macros resolved,
compiled). The first compile error stops the compile.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from . import messages as m
from .condition_text import CondText, Origin, exception_condition, substitute_lists
from .items import (
    ENGINE_VERSION, LoadError, Reader, RuleDef, RuleUpdate, check_exception_shape, make_message,
    parse_semver,
)
from .paths import expand_paths  # noqa: F401 - part of this module's interface
from .yaml_positions import SourceFile, compose_documents, scalar_char_index

KNOWN_SOURCES = ("syscall",)
# Plugins whose fields we provide natively, with the plugin version whose fields we match.
NATIVE_PLUGINS = {"container": (0, 4, 0)}
NATIVE_PLUGIN_NOTE = (
    "required plugin '{name}' (>= {version}) is satisfied natively: workload-agent provides "
    "its container.* and k8s.* fields itself"
)
# Falco warns when a rule matches more than 100 event codes; it counts the enter and the
# exit event of each syscall, we count names, hence two codes per name.
NO_EVTTYPE_LIMIT = 100
CODES_PER_EVENT_TYPE = 2
CONTAINER_INFO = "%container.info"


# -- collected definitions ------------------------------------------------------------------


@dataclass
class ListInfo:
    name: str
    items: list
    ctx: tuple
    index: int
    visibility: int


@dataclass
class MacroInfo:
    name: str
    cond: CondText
    ctx: tuple
    cond_ctx: tuple
    index: int
    visibility: int


@dataclass
class RuleInfo:
    d: RuleDef  # the definition, updated in place by appends/overrides
    index: int
    visibility: int
    unknown_source: bool = False


class Collector:
    """Definitions accumulated over all files, in Falco's define/append/replace semantics."""

    def __init__(self, is_field_defined=None):
        self.counter = 0
        self.lists: dict = {}
        self.macros: dict = {}
        self.rules: dict = {}
        self.engine_req = None
        self.plugin_reqs: list = []
        self.sources: dict = {}  # file name -> SourceFile
        self.is_field_defined = is_field_defined
        self.result: Optional[m.FileResult] = None  # the file being read, for warnings

    def _next(self) -> int:
        self.counter += 1
        return self.counter - 1

    def _source_of(self, ctx: tuple):
        return self.sources.get(ctx[-1].file) if ctx else None

    def _warn(self, code, text, ctx):
        self.result.add(make_message(m.WARNING, code, text, ctx, self._source_of(ctx)))

    @staticmethod
    def _fail(text, ctx):
        raise LoadError("LOAD_ERR_VALIDATE", text, ctx)

    def require_engine(self, req) -> None:
        if req.version[0] != ENGINE_VERSION[0] or req.version > ENGINE_VERSION:
            self._fail(f"Rules require engine version {req.text}, but engine version is "
                       + ".".join(map(str, ENGINE_VERSION)), req.ctx)
        if self.engine_req is None or self.engine_req.version < req.version:
            self.engine_req = req

    def require_plugin(self, req) -> None:
        seen = set()
        for name, version in req.alternatives:
            if parse_semver(version) is None:
                self._fail(f"Invalid required version '{version}' for plugin '{name}'", req.ctx)
            if name in seen:
                self._fail(f"Defined multiple alternative version requirements for plugin '{name}'", req.ctx)
            seen.add(name)
        for name, version in req.alternatives:
            ours = NATIVE_PLUGINS.get(name)
            if ours is not None and ours[0] == parse_semver(version)[0] and ours >= parse_semver(version):
                self.result.notes.append(NATIVE_PLUGIN_NOTE.format(name=name, version=version))
                self.plugin_reqs.append(req)
                return
        wanted = " or ".join(f"'{n}' >= {v}" for n, v in req.alternatives)
        have = ", ".join(f"'{n}' {'.'.join(map(str, v))}" for n, v in NATIVE_PLUGINS.items())
        # Falco checks plugin requirements after reading, so the rest of the file is still read
        # (and its other errors reported); the file then counts as failed and is not compiled.
        self.result.add(make_message(
            m.ERROR, "LOAD_ERR_VALIDATE",
            f"Rules require plugin {wanted}, which is not available "
            f"(only these plugins' fields are provided natively: {have})", req.ctx, self._source_of(req.ctx)))

    def add_list(self, d) -> None:
        prev = self.lists.get(d.name)
        if d.append:
            if prev is None:
                self._fail("List uses 'append' or 'override.items: append' but no list by that "
                           "name already exists", d.ctx)
            prev.items = prev.items + list(d.items)
            prev.visibility = self._next()
            return
        i = self._next()
        if prev is not None:
            self.lists[d.name] = ListInfo(d.name, list(d.items), d.ctx, prev.index, i)
        else:
            self.lists[d.name] = ListInfo(d.name, list(d.items), d.ctx, i, i)

    def add_macro(self, d) -> None:
        prev = self.macros.get(d.name)
        if d.append:
            if prev is None:
                self._fail("Macro uses 'append' or 'override.condition: append' but no macro by "
                           "that name already exists", d.ctx)
            prev.cond = prev.cond + CondText.synthetic(" ", d.cond.pieces[0][1]) + d.cond
            prev.visibility = self._next()
            return
        i = self._next()
        index = prev.index if prev is not None else i
        self.macros[d.name] = MacroInfo(d.name, d.cond, d.ctx, d.cond_ctx, index, i)

    def define_rule(self, d: RuleDef) -> None:
        prev = self.rules.get(d.name)
        if prev is not None and prev.d.source != d.source:
            self._fail("Rule has been re-defined with a different source", d.ctx)
        unknown = d.source not in KNOWN_SOURCES
        if unknown:
            self._warn("LOAD_UNKNOWN_SOURCE", f"Unknown source {d.source}, skipping", d.ctx)
        for ex in d.exceptions:
            if ex.fields is None:
                self._fail("Rule exception item must have fields property with a list of fields", ex.ctx)
            check_exception_shape(ex, None if unknown else self.is_field_defined)
        i = self._next()
        index = prev.index if prev is not None else i
        self.rules[d.name] = RuleInfo(d, index, i, unknown)

    def update_rule(self, u: RuleUpdate) -> None:
        prev = self.rules.get(u.name)
        if prev is None:
            if u.mode == "append":
                self._fail("Rule uses 'append' or 'override.<key>: append' but no rule by that "
                           "name already exists", u.ctx)
            self._fail("An 'override.<key>: replace' to a rule was requested but no rule by that "
                       "name already exists", u.ctx)
        if not u.has_any_value():
            self._fail("Appended rule must have exceptions or condition property" if u.mode == "append"
                       else "The rule must have at least one field that can be replaced", u.ctx)
        d = prev.d
        check_fields = None if prev.unknown_source else self.is_field_defined
        if u.mode == "append":
            if u.cond is not None and u.cond.text:
                d.cond = d.cond + CondText.synthetic(" ", u.cond.pieces[0][1]) + u.cond
            if u.output:
                d.output = d.output + " " + u.output
            if u.desc:
                d.desc = d.desc + " " + u.desc
            if u.tags is not None:
                d.tags = tuple(sorted(set(d.tags) | set(u.tags)))
            for ex in u.exceptions or ():
                old = next((e for e in d.exceptions if e.name == ex.name), None)
                if old is None:
                    if ex.fields is None:
                        self._fail("Rule exception must have fields property with a list of fields", ex.ctx)
                    if not ex.values:
                        self._fail("Rule exception must have values property with a list of values", ex.ctx)
                    check_exception_shape(ex, check_fields)
                    d.exceptions.append(ex)
                else:
                    if ex.fields is not None:
                        self._fail("Can not append exception fields to existing exception, only values", ex.ctx)
                    if ex.comps is not None:
                        self._fail("Can not append exception comps to existing exception, only values", ex.ctx)
                    old.values.extend(ex.values)
        else:
            for attr in ("cond", "output", "desc", "tags", "priority", "enabled", "warn_evttypes",
                         "skip_if_unknown_filter", "capture", "capture_duration"):
                val = getattr(u, attr)
                if val is not None:
                    setattr(d, attr, val)
            if u.cond is not None:
                d.cond_ctx = u.cond_ctx
            if u.output is not None:
                d.output_ctx, d.output_origin = u.output_ctx, u.output_origin
            if u.exceptions is not None:
                for ex in u.exceptions:
                    if ex.fields is None:
                        self._fail("Rule exception item must have fields property with a list of fields", ex.ctx)
                    check_exception_shape(ex, check_fields)
                d.exceptions = list(u.exceptions)
        prev.visibility = self._next()

    def enable_rule(self, e) -> None:
        prev = self.rules.get(e.name)
        if prev is None:
            self._fail("Rule has 'enabled' key but no rule by that name already exists", e.ctx)
        prev.d.enabled = e.enabled


# -- the load entry point -------------------------------------------------------------------


@dataclass
class LoadResult:
    files: list  # [messages.FileResult], one per file loaded, in order
    # ruleset.Ruleset from the last successful compile (empty when none succeeded): with
    # errors (`ok` False) it may be missing rules, so callers should not run with it.
    ruleset: object

    @property
    def ok(self) -> bool:
        return all(f.successful for f in self.files)

    @property
    def messages(self) -> list:
        return [msg for f in self.files for msg in f.errors + f.warnings]

    @property
    def errors(self) -> list:
        return [msg for f in self.files for msg in f.errors]

    @property
    def warnings(self) -> list:
        return [msg for f in self.files for msg in f.warnings]


def load_rules(paths, *, min_priority=None, enable=(), disable=(), rules_config=(),
               contents: Optional[dict] = None, compile_each: bool = True) -> LoadResult:
    """Load rules files (and directories) in order and build the ruleset.

    min_priority: a priority name or number; rules less severe are loaded but not enabled.
    enable/disable: selectors applied after loading, disables first: a string is a rule
    name pattern (`*` wildcards), or a dict {"rule": pattern} / {"tag": name}.
    rules_config: Falco's `rules:` config block, e.g. [{"disable": {"tag": "network"}}],
    applied in order after enable/disable.
    contents: name -> text, to load in-memory content instead of reading files.
    compile_each: recompile after every file, as `falco -V` does, so each file's result
    shows the errors it leads to; False compiles once at the end (an agent starting up
    needs only the final ruleset, and any error stops it anyway).
    """
    from .ruleset import build_ruleset

    collector = Collector(is_field_defined=_field_checker())
    compiler = Compiler(collector)
    files = []
    compiled = None
    last_read = None
    names = list(paths) if contents is not None else expand_paths(paths)
    for name in names:
        result = m.FileResult(name)
        files.append(result)
        collector.result = result
        text = contents[name] if contents is not None else _read(name, result)
        if text is None:
            continue
        if read_file(collector, name, text, result):
            last_read = result
            if compile_each:
                out = compiler.compile(result)
                if out is not None:
                    compiled = out
    if not compile_each and last_read is not None:
        compiled = compiler.compile(last_read)
    ruleset = build_ruleset(compiled or [], min_priority=min_priority, enable=enable,
                            disable=disable, rules_config=rules_config)
    return LoadResult(files, ruleset)


def _read(path: str, result: m.FileResult) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        result.add(m.Message(m.ERROR, "LOAD_ERR_FILE_READ", f"Could not read file: {reason}",
                             (m.Location(m.RULES_CONTENT, "", path),)))
        return None


def read_file(collector: Collector, name: str, text: str, result: m.FileResult) -> bool:
    """Read one file's items into the collector; False if it had an error (reading stopped)."""
    source = SourceFile(name, text)
    collector.sources[name] = source
    root = (m.Location(m.RULES_CONTENT, "", name),)
    try:
        docs = compose_documents(text)
    except Exception as exc:  # yaml.YAMLError, or a reader error on odd input
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        index = mark.index if mark is not None else 0
        if mark is not None and getattr(mark, "buffer", None) is None and index > len(text):
            index = len(text)
        line, col = source.line_col(index)
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{context}: {problem}" if context else problem
        loc = m.Location(m.RULES_CONTENT, "", name, line, col, index)
        result.add(make_message(m.ERROR, "LOAD_ERR_YAML_PARSE", f"Invalid YAML: {detail}", (loc,), source))
        return False
    reader = Reader(source, collector, result)
    try:
        reader.read_documents(docs, root)
    except LoadError as err:
        result.add(make_message(m.ERROR, err.code, err.text, err.ctx, collector._source_of(err.ctx)))
        return False
    except RecursionError:
        result.add(m.Message(m.ERROR, "LOAD_ERR_YAML_VALIDATE", "Rules content is nested too deeply", root))
        return False
    return not result.errors


def _is_unknown_filter(err) -> bool:
    """Errors that skip-if-unknown-filter downgrades: an unknown field or event type."""
    return getattr(err, "kind", None) in ("unknown_field", "unknown_evttype")


def _field_checker():
    """The field registry's 'is this a field?' test, for exception fields."""
    from .fields import REGISTRY

    def is_field_defined(text: str) -> bool:
        # Exceptions name fields as written in conditions: proc.aname[2], evt.arg.flags.
        return text.split("[", 1)[0] in REGISTRY

    return is_field_defined


# -- compilation ----------------------------------------------------------------------------


@dataclass
class CompiledMacro:
    name: str
    node: object
    info: MacroInfo
    sub: object = None  # its condition after list substitution (maps offsets back)
    lists: tuple = ()  # lists substituted into this macro's text
    macros: tuple = ()  # macros it references, transitively
    resolved: bool = False
    used: bool = False


@dataclass
class CompiledRule:
    """Everything the ruleset needs about one rule (unknown-source rules are left out)."""

    info: RuleDef
    index: int
    node: object
    evaluate: object
    output: object
    output_text: str
    event_types: object
    fields: tuple
    macros: tuple
    lists: tuple
    exception_fields: tuple = field(default=())


class Compiler:
    def __init__(self, collector: Collector):
        self.c = collector
        # Falco recompiles everything after each file; these caches make the repeats cheap.
        # Trees are immutable, so a result is reused when its inputs are the same objects.
        self._parse_cache: dict = {}  # substituted text -> tree
        self._subst_cache: dict = {}  # (text, lists fingerprint) -> (Substituted, used)
        self._resolve_cache: dict = {}  # (id tree, ids of macro trees) -> (inputs, result)
        self._compile_cache: dict = {}  # id(resolved tree) -> (tree, evaluate, types, fields)
        self._output_cache: dict = {}  # output text -> OutputFormat
        self._lists_fp = None

    # position helpers -------------------------------------------------------------------------

    def _cond_location(self, cond: CondText, sub, offset: int) -> m.Location:
        """Map an offset into the list-substituted condition to a file location."""
        if offset is None or offset < 0:
            offset = 0
        orig = sub.original_offset(offset) if sub is not None else offset
        origin, in_scalar = cond.locate(orig)
        if origin is None:
            return m.Location(m.CONDITION_EXPRESSION, "", "<unknown>")
        src = origin.source
        if origin.scalar is not None:
            index = scalar_char_index(origin.scalar, src.content, in_scalar)
        else:
            index = origin.index
        line, col = src.line_col(index)
        return m.Location(m.CONDITION_EXPRESSION, "", src.name, line, col, index)

    def _error(self, code, text, ctx):
        return LoadError(code, text, ctx)

    def _add(self, result, severity, code, text, ctx):
        result.add(make_message(severity, code, text, ctx, self.c._source_of(ctx)))

    # phases -------------------------------------------------------------------------------------

    def compile(self, result: m.FileResult) -> Optional[list]:
        """Compile everything collected; messages go to `result`. None on error."""
        try:
            lists, list_used = self.compile_lists()
            macros = self.compile_macros(lists, list_used)
            rules = self.compile_rules(lists, list_used, macros, result)
        except LoadError as err:
            self._add(result, m.ERROR, err.code, err.text, err.ctx)
            return None
        for mac in macros.values():
            if not mac.used:
                self._add(result, m.WARNING, "LOAD_UNUSED_MACRO",
                          "Macro not referred to by any other rule/macro", mac.info.ctx)
        for name, info in self.c.lists.items():
            if not list_used[name]:
                self._add(result, m.WARNING, "LOAD_UNUSED_LIST",
                          "List not referred to by any other rule/macro", info.ctx)
        return rules

    def compile_lists(self) -> tuple:
        """name -> expanded items (one level of lists in lists), and the 'used' flags."""
        lists = {}
        used = {name: False for name in self.c.lists}
        for info in self.c.lists.values():
            items = []
            for item in info.items:
                ref = self.c.lists.get(item)
                if ref is not None and ref.index < info.visibility:
                    used[ref.name] = True
                    items.extend(ref.items)
                else:
                    items.append(item)
            lists[info.name] = items
        self._lists_fp = hash(tuple((name, tuple(items)) for name, items in lists.items()))
        return lists, used

    def parse(self, cond: CondText, lists: dict, list_used: dict, ctx: tuple) -> tuple:
        """Substitute lists and parse; (tree, Substituted, lists used)."""
        from .condition import parse_condition
        from .errors import ConditionError

        key = (cond.text, self._lists_fp)
        hit = self._subst_cache.get(key)
        if hit is None:
            hit = self._subst_cache[key] = substitute_lists(cond.text, lists.items())
        sub, used = hit
        for name in used:
            list_used[name] = True
        node = self._parse_cache.get(sub.text)
        if node is None:
            try:
                node = parse_condition(sub.text)
            except ConditionError as err:
                loc = self._cond_location(cond, sub, err.offset)
                raise self._error("LOAD_ERR_COMPILE_CONDITION", err.message, ctx + (loc,))
            except RecursionError:
                loc = self._cond_location(cond, sub, 0)
                raise self._error("LOAD_ERR_COMPILE_CONDITION", "Condition is nested too deeply", ctx + (loc,))
            self._parse_cache[sub.text] = node
        return node, sub, tuple(used)

    def resolve(self, node, cond, sub, ctx, visible, macros: dict, stack: tuple, seen_macros: list,
                seen_lists: list):
        """Replace macro references in `node` by their (resolved) trees."""
        from .condition import macro_refs, substitute_macros

        mapping = {}
        for name, offset in macro_refs(node):
            if name in mapping:
                continue
            mac = macros.get(name)
            if mac is None or not visible(mac.info):
                raise self._error("LOAD_ERR_VALIDATE", f"Undefined macro '{name}' used in filter.",
                                  ctx + (self._cond_location(cond, sub, offset),))
            if name in stack:
                raise self._error("LOAD_ERR_VALIDATE", f"reference loop in macro '{name}'",
                                  ctx + (self._cond_location(cond, sub, offset),))
            if mac.resolved:
                tree = mac.node
            else:
                # A macro defined later but visible (through a redefinition): resolve it here.
                tree = self.resolve(mac.node, mac.info.cond, mac.sub, mac.info.ctx + (mac.info.cond_ctx[-1],),
                                    visible, macros, stack + (name,), seen_macros, seen_lists)
            mapping[name] = tree
            mac.used = True
            if name not in seen_macros:
                seen_macros.append(name)
            for n in mac.macros:
                if n not in seen_macros:
                    seen_macros.append(n)
            for n in mac.lists:
                if n not in seen_lists:
                    seen_lists.append(n)
        if not mapping:
            return node
        key = (id(node), tuple((n, id(t)) for n, t in mapping.items()))
        hit = self._resolve_cache.get(key)
        if hit is None:
            hit = self._resolve_cache[key] = ((node, mapping), substitute_macros(node, mapping))
        return hit[1]

    def compile_macros(self, lists: dict, list_used: dict) -> dict:
        macros = {}
        for info in self.c.macros.values():
            node, sub, used = self.parse(info.cond, lists, list_used, info.ctx + (info.cond_ctx[-1],))
            macros[info.name] = CompiledMacro(info.name, node, info, sub=sub, lists=used)
        for mac in macros.values():
            info = mac.info
            seen_macros, seen_lists = [], list(mac.lists)
            mac.node = self.resolve(mac.node, info.cond, mac.sub, info.ctx, lambda other, v=info.visibility: other.index < v,
                                    macros, (info.name,), seen_macros, seen_lists)
            mac.macros = tuple(seen_macros)
            mac.lists = tuple(seen_lists)
            mac.resolved = True
        return macros

    def rule_condition(self, r: RuleInfo) -> CondText:
        d = r.d
        if not d.exceptions:
            return d.cond
        first = d.cond.pieces[0][1] if d.cond.pieces else None
        cond = CondText.synthetic("(", first) + d.cond + CondText.synthetic(")", first)
        for ex in d.exceptions:
            loc = ex.ctx[-1]
            origin = Origin(self.c.sources.get(loc.file), None, loc.offset)
            try:
                text = exception_condition(ex)
            except ValueError as err:
                raise self._error("LOAD_ERR_VALIDATE", str(err), ex.ctx)
            if text:
                cond = cond + CondText.synthetic(" and not " + text, origin)
        return cond

    def compile_rules(self, lists, list_used, macros, result) -> list:
        from .compiler import compile_condition, event_types
        from .condition import fields_used
        from .errors import ConditionError
        from .output import compile_output

        out = []
        for r in self.c.rules.values():
            if r.unknown_source:
                continue
            d = r.d
            cond = self.rule_condition(r)
            output_text = d.output
            if CONTAINER_INFO in output_text:
                self._add(result, m.WARNING, "LOAD_DEPRECATED_ITEM",
                          "%container.info is deprecated: the container fields are appended to "
                          "every output anyway; it is dropped from this output", d.ctx)
                output_text = output_text.replace(CONTAINER_INFO, "")
            try:
                output = self._output_cache.get(output_text)
                if output is None:
                    output = self._output_cache[output_text] = compile_output(output_text)
            except ConditionError as err:
                if d.skip_if_unknown_filter and _is_unknown_filter(err):
                    self._add(result, m.WARNING, "LOAD_UNKNOWN_FILTER", err.message, d.output_ctx)
                    continue
                raise self._error("LOAD_ERR_COMPILE_OUTPUT", err.message,
                                  self._output_location(d, output_text, err.offset))
            ctx = d.ctx
            node, sub, used = self.parse(cond, lists, list_used, ctx + (d.cond_ctx[-1],))
            seen_macros, seen_lists = [], list(used)
            node = self.resolve(node, cond, sub, ctx + (d.cond_ctx[-1],), lambda other: True, macros, (),
                                seen_macros, seen_lists)
            try:
                hit = self._compile_cache.get(id(node))
                if hit is None:
                    hit = self._compile_cache[id(node)] = (
                        node, compile_condition(node), event_types(node), tuple(fields_used(node)))
                _, evaluate, types, fields = hit
            except ConditionError as err:
                where = self._compile_error_location(err, cond, sub, node, seen_macros, macros, ctx + (d.cond_ctx[-1],))
                if d.skip_if_unknown_filter and _is_unknown_filter(err):
                    self._add(result, m.WARNING, "LOAD_UNKNOWN_FILTER", err.message, where)
                    continue
                raise self._error(err.code or "LOAD_ERR_COMPILE_CONDITION", err.message, where)
            except RecursionError:
                raise self._error("LOAD_ERR_COMPILE_CONDITION", "Condition is nested too deeply",
                                  ctx + (d.cond_ctx[-1],))
            if d.source == "syscall" and d.warn_evttypes and (types is None or len(types) * CODES_PER_EVENT_TYPE > NO_EVTTYPE_LIMIT):
                self._add(result, m.WARNING, "LOAD_NO_EVTTYPE",
                          "Rule matches too many evt.type values. This has a significant "
                          "performance penalty.", d.ctx)
            ex_fields = []
            for ex in d.exceptions:
                fs = [f.item for f in ex.fields.items] if ex.fields.is_list else [ex.fields.item]
                ex_fields.extend(f for f in fs if f not in ex_fields)
            out.append(CompiledRule(
                info=d, index=r.index, node=node, evaluate=evaluate, output=output,
                output_text=output_text, event_types=types, fields=fields,
                macros=tuple(seen_macros), lists=tuple(seen_lists), exception_fields=tuple(ex_fields),
            ))
        out.sort(key=lambda cr: self.c.rules[cr.info.name].index)
        return out

    def _output_location(self, d: RuleDef, output_text: str, offset: int) -> tuple:
        """Output errors point into the output scalar when the offset lies in its own text."""
        scalar = d.output_origin.scalar
        own = scalar.value.strip()
        if offset is None or offset < 0 or not output_text.startswith(own) or offset >= len(own):
            return d.output_ctx
        lead = len(scalar.value) - len(scalar.value.lstrip())
        src = d.output_origin.source
        index = scalar_char_index(scalar, src.content, lead + offset)
        line, col = src.line_col(index)
        return d.output_ctx + (m.Location(m.RULE_OUTPUT_EXPRESSION, "", src.name, line, col, index),)

    def _compile_error_location(self, err, cond, sub, node, used_macros, macros, ctx) -> tuple:
        """Where a compile error is: in the rule's own text, or inside a macro it uses.

        Offsets in a resolved tree are relative to whichever text each part was
        parsed from, so when a macro alone fails to compile the same way, the
        error is reported at the macro.
        """
        from .compiler import compile_condition
        from .errors import ConditionError

        failing = {}
        for name in used_macros:
            mac = macros[name]
            try:
                compile_condition(mac.node)
            except ConditionError as merr:
                if merr.message == err.message:
                    failing[name] = merr
            except Exception:  # noqa: BLE001 - only a hint for the position; the rule's error stands
                continue
        # The innermost one: a failing macro none of whose own macros fail the same way.
        for name, merr in failing.items():
            mac = macros[name]
            if not any(n in failing for n in mac.macros):
                info = mac.info
                return ctx + info.ctx[-1:] + (self._cond_location(info.cond, mac.sub, merr.offset),)
        return ctx + (self._cond_location(cond, sub, err.offset),)
