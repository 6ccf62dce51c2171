"""Compile-time errors: unknown fields, bad arguments, unconvertible values,
operators not allowed for a type; each with kind and offset."""
from __future__ import annotations

import pytest

from workload_agent.rules.compiler import compile_condition, validate_condition
from workload_agent.rules.condition import parse_condition
from workload_agent.rules.errors import ConditionError

CASES = [
    # text, kind, offset (None: index of the marker substring), marker, message fragment
    ("proc.nme = x", "unknown_field", "proc.nme", "nonexistent field proc.nme"),
    ("proc.name = x and fd.nam = y", "unknown_field", "fd.nam", "nonexistent field fd.nam"),
    ("proc.name = x or nosuch.field exists", "unknown_field", "nosuch.field", "nosuch.field"),
    ("fd.num = abc", "value", "abc", "not a valid integer"),
    ("fd.num in (1, x2)", "value", "x2", "not a valid integer"),
    ("fd.sport = 99999", "value", "99999", "out of range"),
    ("fd.sport = nosuchservice", "value", "nosuchservice", "port"),
    ("fd.snet in (10.0.0.0/8, 10.0.0.0/33)", "value", "10.0.0.0/33", "CIDR"),
    ("fd.sip = 1.2.3", "value", "1.2.3", "IP address"),
    ("container.privileged = yes", "value", "yes", "boolean"),
    ("proc.pid contains 1", "operator", "proc.pid", "not supported for field proc.pid"),
    ("container.privileged > 0", "operator", "container.privileged", "not supported"),
    ("fd.sip startswith 1", "operator", "fd.sip", "not supported"),
    ("evt.buffer glob x", "operator", "evt.buffer", "not supported"),
    ("evt.type = opne", "unknown_evttype", "opne", "unknown event type 'opne'"),
    ("evt.type in (open, nosuch)", "unknown_evttype", "nosuch", "unknown event type"),
    ("proc.name in shell_binaries", "undefined_list", "shell_binaries", "undefined list"),
    ("proc.name = x and my_macro", "undefined_macro", "my_macro", "Undefined macro 'my_macro'"),
    ("proc.aname = val(proc.name)", "argument", "proc.aname", "cannot be compared"),
    ("tolower(proc.aname) = x", "argument", "proc.aname", "transformers"),
    ("proc.name = val(proc.aname)", "argument", "val(", "comparison value"),
    ("proc.name = val(proc.pid)", "operator", "val(", "cannot compare"),
    ("proc.name pmatch val(proc.pname)", "operator", "val(", "cannot compare with a field"),
    ("proc.name regex '('", "value", "'('", "invalid regular expression"),
    ("evt.buffer bcontains zz", "value", "zz", "hex"),
    ("evt.buffer bcontains abc", "value", "abc", "hex"),
    ("proc.args[x] = 1", "argument", "proc.args", "numeric index"),
    ("evt.arg = x", "argument", "evt.arg", "requires an argument"),
    ("proc.name[1] = x", "argument", "proc.name", "does not take an argument"),
    ("evt.arg.flags[1] = x", "argument", "evt.arg", "not both"),
    ("thread.cgroup = x", "argument", "thread.cgroup", "requires an argument"),
    ("container.mount.dest['['] exists", "argument", "container", "bad pattern"),
    ("len(fd.num) = 1", "argument", "len(", "needs a string or list"),
    ("toupper(fd.num) = 1", "argument", "toupper(", "needs a string"),
    ("tolower(fd.ip) = 1", "argument", "fd.ip", "filter-only"),
]


@pytest.mark.parametrize("text,kind,marker,message", CASES, ids=[c[0] for c in CASES])
def test_compile_error(text, kind, marker, message):
    tree = parse_condition(text)
    with pytest.raises(ConditionError) as info:
        compile_condition(tree)
    err = info.value
    assert err.kind == kind
    assert message in err.message
    assert err.offset == text.index(marker)
    expected_code = "LOAD_ERR_VALIDATE" if kind == "undefined_macro" else "LOAD_ERR_COMPILE_CONDITION"
    assert err.code == expected_code


def test_unknown_field_error_names_the_field():
    with pytest.raises(ConditionError) as info:
        compile_condition(parse_condition("a.b = 1"))
    assert info.value.field == "a.b"
    with pytest.raises(ConditionError) as info:
        compile_condition(parse_condition("evt.type = foo"))
    assert info.value.field == "foo"


def test_validate_ignores_macro_refs_but_reports_check_errors_in_place():
    validate_condition(parse_condition("my_macro and proc.name = x"))
    text = "my_macro or (fd.num = 1 and proc.pid = bash)"
    with pytest.raises(ConditionError) as info:
        validate_condition(parse_condition(text))
    assert info.value.kind == "value"
    assert info.value.offset == text.index("bash")


def test_non_nodes_and_huge_trees_raise_condition_error():
    from workload_agent.rules.condition import Not
    from workload_agent.rules.compiler import event_types

    for bad in (None, "proc.name = x", 42):
        with pytest.raises(ConditionError):
            compile_condition(bad)
    tree = parse_condition("proc.name = x")
    for _ in range(20000):
        tree = Not(tree)
    with pytest.raises(ConditionError):
        compile_condition(tree)
    assert event_types(tree) is None
