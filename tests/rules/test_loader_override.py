"""append and override: what Falco accepts, what it refuses, and what the result is."""
from __future__ import annotations

import textwrap

import pytest

from workload_agent.rules.condition import parse_condition
from workload_agent.rules.loader import load_rules

BASE = """\
- list: shells
  items: [bash, sh]
- macro: spawned
  condition: evt.type = execve
- rule: r
  desc: base desc
  condition: spawned and proc.name in (shells)
  output: "shell %proc.name"
  priority: WARNING
  tags: [b, a]
"""


def load(*texts, **kw):
    files = {f"f{i}.yaml": textwrap.dedent(t) for i, t in enumerate(texts)}
    return load_rules(list(files), contents=files, **kw)


def rule(res, name="r"):
    assert res.ok, [m.as_text() for m in res.errors]
    return res.ruleset.by_name[name]


def same_condition(r, text):
    """The rule's compiled tree equals the tree of `text` (which has macros written out)."""
    return r.condition == parse_condition(text)


def only_error(res):
    assert len(res.errors) == 1, [e.as_text() for e in res.errors]
    return res.errors[0]


def test_list_append_with_override_and_with_deprecated_flag():
    res = load(BASE, "- list: shells\n  items: [zsh]\n  override:\n    items: append\n")
    assert same_condition(rule(res), "evt.type = execve and proc.name in (bash, sh, zsh)")
    res = load(BASE, "- list: shells\n  items: [zsh]\n  append: true\n")
    assert same_condition(rule(res), "evt.type = execve and proc.name in (bash, sh, zsh)")
    assert [w.code for w in res.warnings] == ["LOAD_DEPRECATED_ITEM"]


def test_list_replace_and_plain_redefinition():
    for extra in ("- list: shells\n  items: [ksh]\n  override:\n    items: replace\n",
                  "- list: shells\n  items: [ksh]\n"):
        assert same_condition(rule(load(BASE, extra)), "evt.type = execve and proc.name in (ksh)")


def test_macro_append_joins_with_a_space_without_parentheses():
    res = load(BASE, "- macro: spawned\n  condition: or evt.type = execveat\n  override:\n    condition: append\n")
    # "evt.type = execve or evt.type = execveat" substituted as one macro tree
    assert same_condition(rule(res), "(evt.type = execve or evt.type = execveat) and proc.name in (bash, sh)")


def test_rule_condition_append_follows_the_text_precedence():
    res = load(BASE, "- rule: r\n  condition: or proc.name = zsh\n  override:\n    condition: append\n")
    # Joined text: "spawned and proc.name in (shells) or proc.name = zsh": and binds tighter.
    assert same_condition(rule(res), "(evt.type = execve and proc.name in (bash, sh)) or proc.name = zsh")


def test_rule_append_output_desc_and_tags_union():
    res = load(BASE, """\
        - rule: r
          desc: more
          output: "user=%user.name"
          tags: [c, a]
          override:
            desc: append
            output: append
            tags: append
        """)
    r = rule(res)
    assert r.desc == "base desc more"
    assert r.output_text == "shell %proc.name user=%user.name"
    assert r.tags == ("a", "b", "c")


def test_rule_replace_keys_mixed_with_append():
    res = load(BASE, """\
        - rule: r
          priority: critical
          enabled: false
          condition: and proc.pname = sshd
          tags: [x]
          override:
            priority: replace
            enabled: replace
            condition: append
            tags: replace
        """)
    r = rule(res)
    assert r.priority_name.upper() == "CRITICAL" and r.enabled is False and r.tags == ("x",)
    assert same_condition(r, "evt.type = execve and proc.name in (bash, sh) and proc.pname = sshd")


def test_deprecated_rule_append_flag_appends_condition():
    res = load(BASE, "- rule: r\n  condition: and proc.pname = sshd\n  append: true\n")
    assert same_condition(rule(res), "evt.type = execve and proc.name in (bash, sh) and proc.pname = sshd")
    assert [w.code for w in res.warnings] == ["LOAD_DEPRECATED_ITEM"]


@pytest.mark.parametrize("extra, code, text", [
    ("- list: nolist\n  items: [a]\n  override:\n    items: append\n", "LOAD_ERR_VALIDATE",
     "List uses 'append' or 'override.items: append' but no list by that name already exists"),
    ("- macro: nomacro\n  condition: a\n  append: true\n", "LOAD_ERR_VALIDATE",
     "Macro uses 'append' or 'override.condition: append' but no macro by that name already exists"),
    ("- rule: norule\n  condition: a\n  override:\n    condition: append\n", "LOAD_ERR_VALIDATE",
     "Rule uses 'append' or 'override.<key>: append' but no rule by that name already exists"),
    ("- rule: norule\n  priority: INFO\n  override:\n    priority: replace\n", "LOAD_ERR_VALIDATE",
     "An 'override.<key>: replace' to a rule was requested but no rule by that name already exists"),
    ("- rule: r\n  priority: INFO\n  override:\n    priority: append\n", "LOAD_ERR_YAML_VALIDATE",
     "Key 'priority' cannot be appended to, use 'replace' instead"),
    ("- rule: r\n  source: x\n  override:\n    source: replace\n", "LOAD_ERR_YAML_VALIDATE",
     "Key 'source' cannot be replaced"),
    ("- rule: r\n  desc: x\n  override:\n    desc: merge\n", "LOAD_ERR_YAML_VALIDATE",
     "Invalid override operation for key 'desc': 'merge'. Allowed values are: append replace"),
    ("- rule: r\n  desc: x\n  override:\n    output: append\n", "LOAD_ERR_YAML_VALIDATE",
     "An append override for 'output' was specified but 'output' is not defined"),
    ("- rule: r\n  desc: x\n  output: y\n  override:\n    desc: append\n", "LOAD_ERR_YAML_VALIDATE",
     "Unexpected key 'output': no corresponding entry under 'override' is defined."),
    ("- rule: r\n  desc: x\n  append: true\n  override:\n    desc: append\n", "LOAD_ERR_YAML_VALIDATE",
     "Keys 'override' and 'append: true' cannot be used together"),
    ("- list: shells\n  items: [x]\n  append: true\n  override:\n    items: append\n", "LOAD_ERR_YAML_VALIDATE",
     "Keys 'override' and 'append: true' cannot be used together"),
])
def test_refused_appends_and_overrides(extra, code, text):
    err = only_error(load(BASE, extra))
    assert err.code == code
    assert err.text.startswith(text)
    assert err.where.file == "f1.yaml"


def test_error_position_of_unexpected_key_is_the_key_value():
    err = only_error(load(BASE, "- rule: r\n  desc: x\n  output: y\n  override:\n    desc: append\n"))
    assert (err.where.line, err.where.column) == (2, 10)  # 0-based: the value of `output`


def test_append_before_definition_in_the_same_file_is_an_error():
    err = only_error(load("- macro: m\n  condition: x\n  override:\n    condition: append\n"
                          "- macro: m\n  condition: evt.type = open\n"))
    assert err.code == "LOAD_ERR_VALIDATE"
