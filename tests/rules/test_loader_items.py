"""Item structure: every kind and key, with Falco's codes and exact positions."""
from __future__ import annotations

import textwrap

import pytest

from workload_agent.rules.loader import load_rules

RULE = """\
- rule: r1
  desc: d
  condition: evt.type = open
  output: "opened %fd.name"
  priority: WARNING
"""


def load(text, *more, **kw):
    files = {"a.yaml": textwrap.dedent(text)}
    for i, t in enumerate(more):
        files[f"f{i}.yaml"] = textwrap.dedent(t)
    return load_rules(list(files), contents=files, **kw)


def only_error(res):
    assert len(res.errors) == 1, [e.as_text() for e in res.errors]
    return res.errors[0]


def pos(msg):
    """1-based (line, column) of the innermost location, as people read it."""
    loc = msg.where
    return loc.line + 1, loc.column + 1


def codes(msgs):
    return sorted(m.code for m in msgs)


def test_valid_rule_loads():
    res = load(RULE)
    assert res.ok and not res.warnings
    r = res.ruleset.by_name["r1"]
    assert (r.desc, r.output_text, r.source, r.enabled, r.tags) == ("d", "opened %fd.name", "syscall", True, ())


@pytest.mark.parametrize("text, message", [
    ("a: b\n", "Rules content is not yaml array of objects"),
    ("- 3\n", "Unexpected element type. Each element should be a yaml associative array."),
    ("plain words\n", "Rules content is not yaml"),
])
def test_top_level_shape(text, message):
    res = load(text)
    err = only_error(res)
    assert (err.code, err.text) == ("LOAD_ERR_YAML_VALIDATE", message)
    assert any("hint" in n for n in res.files[0].notes) == text.startswith("a:")


def test_yaml_syntax_error_has_position():
    err = only_error(load("- rule: x\n  desc: [unclosed\n- list: y\n"))
    assert err.code == "LOAD_ERR_YAML_PARSE"
    assert err.where.file == "a.yaml" and err.where.line >= 1


def test_missing_file_is_a_read_error(tmp_path):
    res = load_rules([str(tmp_path / "nope.yaml")])
    err = only_error(res)
    assert err.code == "LOAD_ERR_FILE_READ" and "nope.yaml" in err.where.file


@pytest.mark.parametrize("missing", ["condition", "output", "desc", "priority"])
def test_new_rule_requires_its_keys(missing):
    text = "\n".join(line for line in RULE.splitlines() if not line.strip().startswith(missing + ":"))
    err = only_error(load(text))
    assert err.code == "LOAD_ERR_YAML_VALIDATE"
    assert err.text == f"Item has no mapping for key '{missing}'"
    assert err.item.item_type == "rule" and err.item.item_name == "r1"
    assert pos(err) == (1, 3)  # the rule item's first key


def test_empty_value_and_non_scalar_value():
    err = only_error(load(RULE.replace("desc: d", "desc:")))
    assert err.text == "Mapping for key 'desc' is empty"
    err = only_error(load(RULE.replace("desc: d", "desc: [a, b]")))
    assert err.text == "Value is not a scalar value"
    assert pos(err) == (2, 9)
    assert err.where.item_type == "value for" and err.where.item_name == "desc"


def test_bad_priority_points_at_the_value():
    err = only_error(load(RULE.replace("priority: WARNING", "priority: loud")))
    assert (err.code, err.text, pos(err)) == ("LOAD_ERR_YAML_VALIDATE", "Invalid priority", (5, 13))


@pytest.mark.parametrize("word, level", [("info", "INFORMATIONAL"), ("Critical", "CRITICAL"),
                                         ("debug", "DEBUG"), ("EMERGENCY", "EMERGENCY")])
def test_priority_is_case_insensitive(word, level):
    res = load(RULE.replace("WARNING", word))
    assert res.ok
    assert res.ruleset.by_name["r1"].priority_name.upper() == level


def test_bad_boolean():
    err = only_error(load(RULE + "  enabled: maybe\n"))
    assert err.code == "LOAD_ERR_YAML_VALIDATE" and "boolean" in err.text and pos(err) == (6, 12)


def test_tags_must_be_a_sequence_of_scalars():
    err = only_error(load(RULE + "  tags: notalist\n"))
    assert err.text == "Value is not a sequence"
    err = only_error(load(RULE + "  tags: [a, [b]]\n"))
    assert err.text == "sequence value is not scalar" and pos(err) == (6, 13)


def test_unknown_key_and_unknown_item_are_warnings():
    res = load(RULE + "  colour: blue\n- something: else\n")
    assert res.ok
    assert codes(res.warnings) == ["LOAD_UNKNOWN_ITEM", "LOAD_UNKNOWN_KEY"]
    key = next(w for w in res.warnings if w.code == "LOAD_UNKNOWN_KEY")
    assert "colour" in key.text and pos(key) == (6, 3) and key.item.item_name == "r1"
    item = next(w for w in res.warnings if w.code == "LOAD_UNKNOWN_ITEM")
    assert pos(item) == (7, 3)


def test_invalid_macro_and_list_names_are_warnings():
    res = load("""\
        - list: "bad list"
          items: [a]
        - macro: 9lives
          condition: evt.type = open
        - rule: r
          desc: d
          condition: 9lives and proc.name in ("bad list")
          output: o
          priority: INFO
        """)
    assert "LOAD_INVALID_MACRO_NAME" in codes(res.warnings)
    assert "LOAD_INVALID_LIST_NAME" in codes(res.warnings)


def test_enabled_only_toggle_is_deprecated_and_needs_an_existing_rule():
    res = load(RULE + "- rule: r1\n  enabled: false\n")
    assert res.ok and codes(res.warnings) == ["LOAD_DEPRECATED_ITEM"]
    assert res.ruleset.by_name["r1"].enabled is False
    err = only_error(load("- rule: ghost\n  enabled: false\n"))
    assert err.code == "LOAD_ERR_VALIDATE" and "no rule by that name already exists" in err.text


def test_redefining_a_rule_replaces_it_in_place():
    res = load(RULE + "- rule: r2\n  desc: d2\n  condition: evt.type = close\n  output: o\n  priority: INFO\n"
               + RULE.replace("desc: d", "desc: new"))
    assert res.ok
    assert [r.name for r in res.ruleset.rules] == ["r1", "r2"]
    assert res.ruleset.by_name["r1"].desc == "new"


def test_redefining_with_another_source_is_an_error():
    res = load(RULE, RULE + "  source: k8s_audit\n")
    err = only_error(res)
    assert err.code == "LOAD_ERR_VALIDATE" and err.text == "Rule has been re-defined with a different source"
    assert err.where.file == "f0.yaml"


def test_unknown_source_is_a_warning_and_the_rule_is_skipped():
    res = load(RULE.replace("r1", "audit") + "  source: k8s_audit\n" + RULE)
    assert res.ok and codes(res.warnings) == ["LOAD_UNKNOWN_SOURCE"]
    assert [r.name for r in res.ruleset.rules] == ["r1"]


def test_first_error_stops_the_file_but_not_the_next_file():
    res = load("- list: l\n  items: nope\n" + RULE, RULE.replace("r1", "r9"))
    assert not res.files[0].successful and res.files[1].successful
    assert [r.name for r in res.ruleset.rules] == ["r9"]


def test_several_documents():
    res = load("- list: l\n  items: [a]\n---\n" + RULE.replace("evt.type = open", "proc.name in (l) and evt.type = open")
               + "---\n")
    assert res.ok and not res.warnings


def test_required_engine_version_forms():
    assert load("- required_engine_version: 8\n").ok  # 0.8.0
    assert load("- required_engine_version: 0.57.0\n").ok
    err = only_error(load("- required_engine_version: 0.99.0\n"))
    assert err.code == "LOAD_ERR_VALIDATE" and "Rules require engine version 0.99.0" in err.text
    err = only_error(load("- required_engine_version: 1.0.0\n"))
    assert err.code == "LOAD_ERR_VALIDATE"
    err = only_error(load("- required_engine_version: banana\n"))
    assert err.code == "LOAD_ERR_YAML_VALIDATE" and "semver" in err.text


def test_container_plugin_requirement_is_satisfied_natively():
    res = load("- required_plugin_versions:\n  - name: container\n    version: 0.4.0\n")
    assert res.ok and not res.warnings
    assert any("container" in n and "natively" in n for n in res.files[0].notes)


def test_alternative_container_plugin_also_satisfies():
    res = load("- required_plugin_versions:\n  - name: k8smeta\n    version: 0.1.0\n"
               "    alternatives:\n    - name: container\n      version: 0.1.0\n")
    assert res.ok


def test_unavailable_plugin_is_an_error_and_the_file_is_still_read():
    res = load("- required_plugin_versions:\n  - name: cloudtrail\n    version: 0.1.0\n"
               "- list: x\n  items: nope\n")
    assert [e.code for e in res.errors] == ["LOAD_ERR_VALIDATE", "LOAD_ERR_YAML_VALIDATE"]


def test_unavailable_plugin_is_an_error():
    err = only_error(load("- required_plugin_versions:\n  - name: cloudtrail\n    version: 0.1.0\n"))
    assert err.code == "LOAD_ERR_VALIDATE" and "cloudtrail" in err.text
    assert err.item.item_name == "cloudtrail" and pos(err) == (2, 5)
    err = only_error(load("- required_plugin_versions:\n  - name: container\n    version: 9.0.0\n"))
    assert err.code == "LOAD_ERR_VALIDATE"
    err = only_error(load("- required_plugin_versions:\n  - name: container\n    version: x\n"))
    assert "Invalid required version 'x'" in err.text


def test_items_of_a_list_may_be_numbers_kept_as_written():
    res = load("- list: ports\n  items: [022, 80, 443]\n"
               + RULE.replace("evt.type = open", "fd.sport in (ports)"))
    assert res.ok
    assert "(022, 80, 443)" in res.ruleset.by_name["r1"].condition_text
