"""Macro ordering, reference loops, undefined macros, list expansion, unused warnings, positions."""
from __future__ import annotations

import textwrap

from workload_agent.rules.condition import parse_condition
from workload_agent.rules.loader import load_rules


def load(*texts, **kw):
    files = {f"f{i}.yaml": textwrap.dedent(t) for i, t in enumerate(texts)}
    return load_rules(list(files), contents=files, **kw)


def rule_text(cond, name="r"):
    return f"""\
- rule: {name}
  desc: d
  condition: {cond}
  output: o
  priority: INFO
"""


def only_error(res):
    assert len(res.errors) == 1, [e.as_text() for e in res.errors]
    return res.errors[0]


def pos(msg):
    return msg.where.file, msg.where.line + 1, msg.where.column + 1


def test_macro_sees_earlier_macros():
    res = load("- macro: a\n  condition: evt.type = open\n- macro: b\n  condition: a and fd.num > 2\n"
               + rule_text("b"))
    assert res.ok and not res.warnings
    assert res.ruleset.by_name["r"].condition == parse_condition("evt.type = open and fd.num > 2")
    assert res.ruleset.by_name["r"].macros == ("b", "a")


def test_macro_does_not_see_later_macros():
    res = load("- macro: b\n  condition: a and fd.num > 2\n- macro: a\n  condition: evt.type = open\n"
               + rule_text("b"))
    err = only_error(res)
    assert err.code == "LOAD_ERR_VALIDATE"
    assert err.text == "Undefined macro 'a' used in filter."
    assert pos(err) == ("f0.yaml", 2, 14)
    assert err.item.item_type == "macro" and err.item.item_name == "b"


def test_rules_see_all_macros_even_later_ones():
    res = load(rule_text("a"), "- macro: a\n  condition: evt.type = open\n")
    assert res.files[0].successful is False  # compiled after file 0 alone: 'a' undefined then
    assert res.files[1].successful and res.ruleset.by_name["r"].event_types == frozenset({"open"})


def test_undefined_macro_in_rule_position():
    res = load(rule_text("evt.type = open and\n    not nosuchmacro"))
    err = only_error(res)
    assert err.text == "Undefined macro 'nosuchmacro' used in filter."
    assert pos(err) == ("f0.yaml", 4, 9)
    assert err.item.item_type == "rule" and err.item.item_name == "r"


def test_redefinition_lets_a_macro_see_later_ones_and_loops_are_found():
    # a is redefined after b, so a sees b; b (defined before a's redefinition, after a's
    # first definition) sees a: a -> b -> a.
    res = load("- macro: a\n  condition: evt.type = open\n"
               "- macro: b\n  condition: a\n"
               "- macro: a\n  condition: b\n" + rule_text("a"))
    err = only_error(res)
    assert err.code == "LOAD_ERR_VALIDATE"
    assert "reference loop in macro" in err.text


def test_self_reference_through_append_is_a_loop():
    res = load("- macro: a\n  condition: evt.type = open\n"
               "- macro: a\n  condition: or a\n  override:\n    condition: append\n" + rule_text("a"))
    err = only_error(res)
    assert err.text == "reference loop in macro 'a'"
    assert pos(err) == ("f0.yaml", 4, 17)  # the `a` in the appended text


def test_redefined_macro_keeps_position_and_sees_new_macros():
    res = load("- macro: a\n  condition: evt.type = open\n"
               "- macro: c\n  condition: a\n"
               "- macro: b\n  condition: fd.num = 1\n"
               "- macro: a\n  condition: b\n" + rule_text("c"))
    assert res.ok
    assert res.ruleset.by_name["r"].condition == parse_condition("fd.num = 1")


def test_parse_error_position_in_block_scalar():
    res = load(textwrap.dedent("""\
        - macro: m
          condition: >
            evt.type = open and
            (proc.name = bash
        """) + rule_text("m"))
    err = only_error(res)
    assert err.code == "LOAD_ERR_COMPILE_CONDITION"
    assert err.where.item_type == "condition expression"
    assert err.item.item_name == "m"
    # End of input is reached right after "bash" on line 4.
    assert pos(err)[:2] == ("f0.yaml", 4)
    assert err.snippet


def test_parse_error_after_list_substitution_maps_to_the_source():
    res = load("- list: l\n  items: [aaaaaaaaaaaa, bbbbbbbbbbbbbbbb]\n"
               + rule_text("proc.name in (l) and = bad"))
    err = only_error(res)
    assert err.code == "LOAD_ERR_COMPILE_CONDITION"
    # "= bad" sits at column 32 of line 5 in the file, whatever the substituted length.
    line = "  condition: proc.name in (l) and = bad"
    assert pos(err) == ("f0.yaml", 5, line.index("= bad") + 1)


def test_error_in_quoted_condition_position():
    res = load('- rule: r\n  desc: d\n  condition: "evt.type = open and \\"x\\" = y"\n'
               "  output: o\n  priority: INFO\n")
    err = only_error(res)
    assert err.code == "LOAD_ERR_COMPILE_CONDITION"
    assert pos(err)[1] == 3


def test_list_in_list_expands_one_level_only():
    res = load("- list: a\n  items: [x]\n- list: b\n  items: [a, y]\n- list: c\n  items: [b, z]\n"
               + rule_text("proc.name in (c)"))
    assert res.ok
    # c holds b's items as written ("a", "y"): one level only. Lists are then substituted in
    # definition order and a comes before c, so the "a" that c's text brings in stays a string.
    r = res.ruleset.by_name["r"]
    assert r.condition == parse_condition("proc.name in (a, y, z)")
    assert set(r.lists) >= {"c"}
    # a and b count as used: lists that include them were expanded.
    assert [w.code for w in res.warnings] == ["LOAD_NO_EVTTYPE"]


def test_list_defined_after_the_list_that_names_it_is_not_expanded_there():
    res = load("- list: c\n  items: [b, z]\n- list: b\n  items: [y]\n" + rule_text("proc.name in (c)"))
    # "b" stays an item of c, then b is substituted in the text since it comes later.
    assert res.ruleset.by_name["r"].condition == parse_condition("proc.name in (y, z)")


def test_unused_macros_and_lists_are_warned():
    res = load("- list: lonely\n  items: [a]\n- macro: unused\n  condition: evt.type = open\n"
               "- macro: used\n  condition: evt.type = close\n" + rule_text("used"))
    assert res.ok
    got = sorted((w.code, w.item.item_name) for w in res.warnings)
    assert got == [("LOAD_UNUSED_LIST", "lonely"), ("LOAD_UNUSED_MACRO", "unused")]


def test_macro_used_only_by_an_unused_macro_counts_as_used():
    res = load("- macro: inner\n  condition: evt.type = open\n- macro: outer\n  condition: inner\n"
               + rule_text("evt.type = close"))
    assert [(w.code, w.item.item_name) for w in res.warnings] == [("LOAD_UNUSED_MACRO", "outer")]


def test_disabled_rules_are_compiled_and_report_errors():
    res = load(rule_text("evt.type = open and nosuch") + "  enabled: false\n")
    assert only_error(res).text == "Undefined macro 'nosuch' used in filter."


def test_rules_below_min_priority_are_compiled_but_disabled():
    res = load(rule_text("evt.type = open").replace("INFO", "DEBUG"), min_priority="warning")
    assert res.ok and res.ruleset.by_name["r"].enabled is False
    res = load(rule_text("evt.type = open and nosuch").replace("INFO", "DEBUG"), min_priority="warning")
    assert not res.ok


def test_unknown_field_is_a_compile_error_at_the_field():
    res = load(rule_text("evt.type = open and proc.nosuchfield = 1"))
    err = only_error(res)
    assert err.code == "LOAD_ERR_COMPILE_CONDITION"
    assert pos(err) == ("f0.yaml", 3, len("  condition: evt.type = open and ") + 1)


def test_unknown_field_inside_a_macro_is_reported_at_the_macro():
    res = load("- macro: m\n  condition: proc.nosuchfield = 1\n" + rule_text("evt.type = open and m"))
    err = only_error(res)
    assert err.code == "LOAD_ERR_COMPILE_CONDITION"
    assert pos(err) == ("f0.yaml", 2, 14)


def test_skip_if_unknown_filter_turns_the_error_into_a_warning():
    res = load(rule_text("evt.type = open and proc.nosuchfield = 1") + "  skip-if-unknown-filter: true\n"
               + rule_text("evt.type = open", name="ok"))
    assert res.ok
    assert [w.code for w in res.warnings] == ["LOAD_UNKNOWN_FILTER"]
    assert [r.name for r in res.ruleset.rules] == ["ok"]


def test_rule_without_event_type_warns_unless_told_not_to():
    res = load(rule_text("proc.name = bash"))
    assert [w.code for w in res.warnings] == ["LOAD_NO_EVTTYPE"]
    assert res.ruleset.by_name["r"].event_types is None
    res = load(rule_text("proc.name = bash") + "  warn_evttypes: false\n")
    assert not res.warnings


def test_unknown_field_in_output_points_into_the_output():
    res = load(rule_text("evt.type = open").replace("output: o", 'output: "file=%fd.name who=%proc.nosuch"'))
    err = only_error(res)
    assert err.code == "LOAD_ERR_COMPILE_OUTPUT"
    assert err.item.item_name == "r"
    line = '  output: "file=%fd.name who=%proc.nosuch"'
    assert pos(err) == ("f0.yaml", 4, line.index("proc.nosuch") + 1)


def test_replaced_output_is_located_in_the_override():
    res = load(rule_text("evt.type = open"),
               "- rule: r\n  output: bad %proc.nosuch\n  override:\n    output: replace\n")
    err = only_error(res)
    assert err.code == "LOAD_ERR_COMPILE_OUTPUT"
    assert pos(err) == ("f1.yaml", 2, 16)


def test_bad_regex_is_a_compile_error_with_position():
    res = load(rule_text("evt.type = open and proc.name regex '(unclosed'"))
    err = only_error(res)
    assert err.code == "LOAD_ERR_COMPILE_CONDITION"
    assert pos(err)[:2] == ("f0.yaml", 3)


def test_innermost_macro_gets_the_blame():
    res = load("- macro: inner\n  condition: proc.nosuch = 1\n- macro: outer\n  condition: evt.type = open and inner\n"
               + rule_text("outer"))
    err = only_error(res)
    assert pos(err) == ("f0.yaml", 2, 14)
    assert [l.item_name for l in err.locations if l.item_type == "macro"] == ["inner"]


def test_too_many_event_types_warns():
    from workload_agent.rules.fields import EVENT_TYPES

    many = sorted(EVENT_TYPES)[:51]  # 51 syscalls = 102 enter/exit event codes in Falco's count
    res = load(rule_text(f"evt.type in ({', '.join(many)})"))
    assert [w.code for w in res.warnings] == ["LOAD_NO_EVTTYPE"]
    res = load(rule_text(f"evt.type in ({', '.join(many[:50])})"))
    assert not res.warnings
    res = load(rule_text("evt.type != open"))
    assert [w.code for w in res.warnings] == ["LOAD_NO_EVTTYPE"]
