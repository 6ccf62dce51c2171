"""Exceptions compiled into the rule condition the way Falco does it.

For each case the expected condition is the text Falco's algorithm builds,
written out by hand: `(COND)` then ` and not <exception>` for each exception
with values. Lists named in values expand like any list reference.
"""
from __future__ import annotations

import textwrap

import pytest

from workload_agent.rules.condition import parse_condition
from workload_agent.rules.loader import load_rules

HEAD = """\
- list: editors
  items: [vi, "my editor"]
- rule: r
  desc: d
  condition: evt.type = open or evt.type = openat
  output: o
  priority: INFO
"""


def load(*texts):
    files = {f"f{i}.yaml": textwrap.dedent(t) for i, t in enumerate(texts)}
    return load_rules(list(files), contents=files)


def cond(res, name="r"):
    assert res.ok, [e.as_text() for e in res.errors]
    return res.ruleset.by_name[name].condition


def only_error(res):
    assert len(res.errors) == 1, [e.as_text() for e in res.errors]
    return res.errors[0]


def test_list_fields_exception():
    res = load(HEAD + """\
  exceptions:
    - name: known
      fields: [proc.name, fd.name]
      values:
        - [cat, /etc/passwd]
        - [less, /etc/my file]
""")
    assert cond(res) == parse_condition(
        '(evt.type = open or evt.type = openat) and not '
        '(( proc.name = cat and  fd.name = /etc/passwd) or ( proc.name = less and  fd.name = "/etc/my file"))')
    assert res.ruleset.by_name["r"].exception_fields == ("proc.name", "fd.name")


def test_scalar_field_exception_with_list_name_value():
    res = load(HEAD + """\
  exceptions:
    - name: ed
      fields: proc.name
      values: [editors, nano]
""")
    # Values are a flat list; "editors" is substituted textually like any list name.
    assert cond(res) == parse_condition(
        '(evt.type = open or evt.type = openat) and not (proc.name in (vi, "my editor", nano))')
    assert "editors" in res.ruleset.by_name["r"].lists


def test_comps_and_nested_list_values():
    res = load(HEAD + """\
  exceptions:
    - name: e1
      fields: [proc.name, fd.directory]
      comps: [in, pmatch]
      values:
        - [[cat, tac], /etc]
        - [editors, [/tmp, /var/tmp]]
    - name: e2
      fields: [proc.pname]
      comps: [startswith]
      values: [[sshd]]
""")
    assert cond(res) == parse_condition(
        "(evt.type = open or evt.type = openat)"
        " and not (( proc.name in (cat, tac) and  fd.directory pmatch (/etc)) or"
        " ( proc.name in (editors) and  fd.directory pmatch (/tmp, /var/tmp)))"
        " and not (( proc.pname startswith sshd))".replace("(editors)", '(vi, "my editor")'))


def test_exception_without_values_leaves_condition_alone_apart_from_parentheses():
    res = load(HEAD + "  exceptions:\n    - name: empty\n      fields: [proc.name]\n      values: []\n")
    assert cond(res) == parse_condition("(evt.type = open or evt.type = openat)")


def test_append_values_to_existing_exception_and_add_a_new_one():
    res = load(HEAD + "  exceptions:\n    - name: e\n      fields: proc.name\n      values: [cat]\n",
               """\
- rule: r
  exceptions:
    - name: e
      values: [tac]
    - name: new
      fields: [fd.name]
      values: [[/x]]
  override:
    exceptions: append
""")
    assert cond(res) == parse_condition(
        "(evt.type = open or evt.type = openat) and not (proc.name in (cat, tac))"
        " and not (( fd.name = /x))")


@pytest.mark.parametrize("extra, text", [
    ("    - name: e\n      fields: [fd.name]\n      values: [[/y]]\n",
     "Can not append exception fields to existing exception, only values"),
    ("    - name: e\n      comps: in\n      values: [x]\n",
     "Can not append exception comps to existing exception, only values"),
    ("    - name: other\n      values: [[x]]\n",
     "Rule exception must have fields property with a list of fields"),
    ("    - name: other\n      fields: [fd.name]\n",
     "Rule exception must have values property with a list of values"),
])
def test_refused_exception_appends(extra, text):
    res = load(HEAD + "  exceptions:\n    - name: e\n      fields: proc.name\n      values: [cat]\n",
               "- rule: r\n  exceptions:\n" + extra + "  override:\n    exceptions: append\n")
    err = only_error(res)
    assert (err.code, err.text) == ("LOAD_ERR_VALIDATE", text)
    assert err.where.file == "f1.yaml" and err.where.item_type == "exception"


def test_appending_exception_without_values_warns():
    res = load(HEAD + "  exceptions:\n    - name: e\n      fields: proc.name\n      values: [cat]\n",
               "- rule: r\n  exceptions:\n    - name: e\n  override:\n    exceptions: append\n")
    assert "LOAD_APPEND_NO_VALUES" in [w.code for w in res.warnings]


def test_duplicate_exception_names_warn():
    res = load(HEAD + "  exceptions:\n    - name: e\n      fields: proc.name\n      values: [a]\n"
               "    - name: e\n      fields: proc.name\n      values: [b]\n")
    assert [w.code for w in res.warnings if w.code != "LOAD_UNUSED_LIST"] == ["LOAD_EXCEPTION_NAME_NOT_UNIQUE"]


@pytest.mark.parametrize("body, text", [
    ("      fields: [proc.name, fd.name]\n      values: [[a]]\n", "Fields and values lists must have equal length"),
    ("      fields: [proc.name, fd.name]\n      comps: [=]\n      values: [[a, b]]\n",
     "Fields and comps lists must have equal length"),
    ("      fields: proc.name\n      comps: [in]\n      values: [a]\n", "Fields and comps must both be strings"),
    ("      fields: proc.name\n      comps: '='\n      values: [a]\n", "When fields is a single value, comps must be one of"),
    ("      fields: [proc.name]\n      comps: [like]\n      values: [[a]]\n", "'like' is not a supported comparison operator"),
    ("      fields: proc.name\n      values: [[a, b]]\n", "Expected values array to contain a list of strings"),
    ("      fields: [proc.nosuch]\n      values: [[a]]\n", "'proc.nosuch' is not a supported filter field"),
])
def test_bad_exceptions(body, text):
    res = load(HEAD + "  exceptions:\n    - name: bad\n" + body)
    err = only_error(res)
    assert err.code == "LOAD_ERR_VALIDATE"
    assert err.text.startswith(text)
    assert err.where.item_type == "exception" and err.where.item_name == "bad"
    assert (err.where.line + 1, err.where.column + 1) == (9, 7)


def test_exceptions_must_be_a_sequence_of_maps():
    err = only_error(load(HEAD + "  exceptions: nope\n"))
    assert (err.code, err.text) == ("LOAD_ERR_YAML_VALIDATE", "Rule exceptions must be a sequence")
    err = only_error(load(HEAD + "  exceptions: [x]\n"))
    assert err.text == "Rule exception must be a mapping"
    err = only_error(load(HEAD + "  exceptions:\n    - fields: [a]\n"))
    assert err.text == "Item has no mapping for key 'name'"
