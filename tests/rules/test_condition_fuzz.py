"""Property tests: printed trees parse back equal; no input raises anything but ConditionError."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workload_agent.rules.compiler import compile_condition, event_types
from workload_agent.rules.condition import (
    And, Check, Field, ListLit, ListRef, Literal, MacroRef, Not, Or, Transform, parse_condition,
    print_condition)
from workload_agent.rules.condition import lexer as lx
from workload_agent.rules.errors import ConditionError
from workload_agent.rules.output import compile_output

KEYWORDS = set(lx.KEYWORDS)
idents = st.from_regex(r"\A[a-zA-Z][a-zA-Z0-9_]{0,6}\Z").filter(lambda s: s not in KEYWORDS)
field_names = st.from_regex(r"\A[a-zA-Z][a-zA-Z0-9_]{0,4}(\.[a-zA-Z][a-zA-Z0-9_]{0,4}){1,3}\Z")
numbers = st.from_regex(r"\A([+-]?[0-9]{1,5}(\.[0-9]{0,3})?([eE][+-][0-9]{1,2})?|0[xX][0-9a-fA-F]{1,6})\Z")
texts = st.text(max_size=10)

fields = st.builds(Field, field_names, st.none() | st.text(min_size=0, max_size=8))


def _transformers(inner):
    lit = st.builds(Literal, texts)
    return st.one_of(
        st.builds(lambda n, a: Transform(n, (a,)),
                  st.sampled_from(["tolower", "toupper", "b64", "basename", "len"]), inner),
        st.builds(lambda s, a: Transform("join", (s, a)), lit, inner),
        st.builds(lambda a, s: Transform("getopt", (a, s)), inner, lit),
        st.builds(lambda xs: Transform("concat", tuple(xs)),
                  st.lists(st.one_of(inner, lit), min_size=2, max_size=3)),
    )


operands = st.recursive(fields, _transformers, max_leaves=4)
rhs_operands = st.one_of(st.builds(lambda f: Transform("val", (f,)), fields), _transformers(operands))
lists = st.one_of(st.builds(lambda vs: ListLit(tuple(vs)), st.lists(texts, max_size=4)),
                  st.builds(ListRef, idents))

checks = st.one_of(
    st.builds(lambda o: Check(o, "exists"), operands),
    st.builds(Check, operands, st.sampled_from(lx.NUM_OPS),
              st.one_of(st.builds(Literal, numbers), rhs_operands)),
    st.builds(Check, operands, st.sampled_from(lx.STR_OPS),
              st.one_of(st.builds(Literal, texts), rhs_operands)),
    st.builds(Check, operands, st.sampled_from(lx.STR_OPS), lists, st.sampled_from(lx.MODIFIERS)),
    st.builds(Check, operands, st.sampled_from(lx.LIST_OPS), st.one_of(lists, rhs_operands)),
)

exprs = st.recursive(
    st.one_of(checks, st.builds(MacroRef, idents)),
    lambda inner: st.one_of(
        st.builds(lambda cs: And(tuple(cs)), st.lists(inner, min_size=2, max_size=3)),
        st.builds(lambda cs: Or(tuple(cs)), st.lists(inner, min_size=2, max_size=3)),
        st.builds(Not, inner),
    ),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exprs)
def test_print_parse_round_trip(tree):
    text = print_condition(tree)
    again = parse_condition(text)
    assert again == tree, text
    assert print_condition(again) == text


def _only_condition_errors(text):
    try:
        tree = parse_condition(text)
    except ConditionError as exc:
        assert isinstance(exc.offset, int) and -1 <= exc.offset <= len(text)
        return
    assert parse_condition(print_condition(tree)) == tree
    event_types(tree)
    try:
        pred = compile_condition(tree)
    except ConditionError:
        return
    for event in _EVENTS:
        assert pred(event) in (True, False)


@settings(max_examples=600, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_only_raises_condition_error(text):
    _only_condition_errors(text)


def _events():
    from tests.rules.test_compile_semantics import make_event
    from workload_agent.rules.event import Event, Fd, Process

    bare = Process(pid=5)  # thread known, nothing else
    return [make_event(), make_event(proc=None, fd=None), Event("open"),
            Event("connect", proc=bare, fd=Fd(3)), make_event(type="poll", buffer=None, res=-2)]


_EVENTS = _events()

TOKENS = ["proc.name", "fd.num", "evt.type", "proc.aname[2]", "proc.aname", "evt.arg.flags",
          "evt.around[1000]", "evt.rawarg.flags", "fd.ip", "fd.port", "proc.args", "user.name",
          "container.mount.dest[/proc]", "proc.env", "thread.cap_effective", "fd.sip", "fd.snet",
          "evt.res", "evt.rawres", "proc.pid", "evt.is_open_read", "fdlist.nums", "b64(",
          "fd.sport", "fd.net", "evt.buffer", "container.privileged", "fd.types", "proc.env[PATH]",
          "and", "or", "not", "(", ")", "not(", ",", "=", "==", "!=", "<", ">=", "in", "intersects",
          "pmatch", "exists", "contains", "icontains", "bcontains", "glob", "iglob", "regex",
          "startswith", "endswith", "oneof", "allof", "tolower(", "len(", "val(", "concat(",
          "join(", "getopt(", "'x y'", '"a\\"b"', "'", '"', "\\", "open", "execve", "0", "-1",
          "1.5e+3", "0x1f", "true", "foo", "10.0.0.0/8", "1.2.3.4", "443", "https", "(a,b)",
          "cafebabe", "[", "]", "[2]", "*", "/etc"]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=12), st.sampled_from([" ", "", "\n"]))
def test_token_soup_only_raises_condition_error(tokens, sep):
    _only_condition_errors(sep.join(tokens))


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(["%", "%proc.name", "%10fd.name", "%toupper(",
                                           "%evt.arg.", "%proc.aname[", "]", ")", "%fd.net",
                                           "%nope.x", " "]), st.text(max_size=4)), max_size=10))
def test_output_compile_only_raises_condition_error(parts):
    fmt = "".join(parts)
    try:
        out = compile_output(fmt)
    except ConditionError as exc:
        assert exc.code == "LOAD_ERR_COMPILE_OUTPUT"
        assert -1 <= exc.offset <= len(fmt)
        return
    from workload_agent.rules.event import Event
    assert isinstance(out.render(Event("open")), str)


def _real_fields():
    from workload_agent.rules.fields import REGISTRY
    out = []
    for spec in REGISTRY:
        if spec.arg_required:
            continue
        out.append(spec.name)
    out += ["proc.aname[1]", "proc.args[0]", "proc.env[PATH]", "evt.arg.flags", "evt.arg[1]",
            "evt.rawarg.fd", "container.mount.dest[/proc]", "fd.types[3]", "evt.around[3000000000]",
            "thread.cgroup.cpu", "k8s.pod.label.app", "evt.type.is.open", "evt.abspath.src"]
    return sorted(out)


REAL_FIELDS = _real_fields()
VALUES = ["bash", "0", "-1", "443", "https", "true", "false", "10.0.0.5", "10.0.0.0/8", "::1",
          "cafebabe", "/etc", "*", "b.*", "", "<NA>", "1e+3", "0x10", "open"]
real_operands = st.recursive(
    st.builds(lambda t: parse_condition(f"{t} exists").lhs, st.sampled_from(REAL_FIELDS)),
    _transformers, max_leaves=2)
real_checks = st.one_of(
    st.builds(lambda o: Check(o, "exists"), real_operands),
    st.builds(Check, real_operands, st.sampled_from(lx.NUM_OPS),
              st.sampled_from(["0", "-1", "443", "1e+3", "0x10"]).map(Literal)),
    st.builds(Check, real_operands, st.sampled_from(lx.STR_OPS),
              st.one_of(st.sampled_from(VALUES).map(Literal),
                        st.builds(lambda f: Transform("val", (f,)), real_operands.filter(
                            lambda o: isinstance(o, Field))))),
    st.builds(Check, real_operands, st.sampled_from(lx.LIST_OPS),
              st.lists(st.sampled_from(VALUES), max_size=3).map(lambda vs: ListLit(tuple(vs)))),
    st.builds(Check, real_operands, st.sampled_from(lx.STR_OPS),
              st.lists(st.sampled_from(VALUES), max_size=3).map(lambda vs: ListLit(tuple(vs))),
              st.sampled_from(lx.MODIFIERS)),
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(real_checks, min_size=1, max_size=3), st.booleans())
def test_real_fields_compile_or_fail_cleanly_and_evaluate_to_bool(cs, negate):
    tree = cs[0] if len(cs) == 1 else Or(tuple(cs))
    if negate:
        tree = Not(tree)
    text = print_condition(tree)
    assert parse_condition(text) == tree
    try:
        pred = compile_condition(tree)
    except ConditionError as exc:
        assert exc.kind in ("argument", "operator", "value", "unknown_evttype"), exc
        return
    for event in _EVENTS:
        assert pred(event) in (True, False), text
