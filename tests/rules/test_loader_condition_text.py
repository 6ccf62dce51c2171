"""List substitution and exception text, compared with what Falco's algorithm produces.

Expected strings are worked out by hand from Falco's rule compiler: a list name
bounded by delimiters is replaced, with the blanks around it, by
" item, item " (items with a space quoted); exceptions become
`(COND) and not (...)` with Falco's own spacing.
"""
from __future__ import annotations

import pytest

from workload_agent.rules.condition_text import (
    CondText, Origin, exception_condition, quote_item, substitute_lists,
)
from workload_agent.rules.items import Entry, ExceptionInfo, check_exception_shape


def sub(text, lists):
    s, used = substitute_lists(text, lists)
    return s.text, used


def test_list_in_parentheses_is_replaced_with_spaces_around():
    assert sub("proc.name in (shell_binaries)", [("shell_binaries", ["bash", "sh"])]) == (
        "proc.name in ( bash, sh )", ["shell_binaries"])


def test_blanks_around_the_name_are_consumed():
    assert sub("a in (  l  ) and b", [("l", ["x"])])[0] == "a in ( x ) and b"


def test_items_with_spaces_are_quoted_unless_already_quoted():
    assert sub("a in (l)", [("l", ["two words", '"quoted already"', "one"])])[0] == (
        'a in ( "two words", "quoted already", one )')
    assert quote_item("'x y'") == "'x y'"


def test_name_must_be_bounded_by_delimiters():
    text = "my_list_2 in (my_list) and fd.my_list = my_listx"
    out, used = sub(text, [("my_list", ["a"])])
    assert out == "my_list_2 in ( a ) and fd.my_list = my_listx"
    assert used == ["my_list"]


def test_equals_sign_is_a_delimiter():
    assert sub("fd.name=l", [("l", ["x"])])[0] == "fd.name= x "


def test_name_at_start_of_text():
    assert sub("l", [("l", ["x", "y"])])[0] == "x, y "


def test_empty_list_removes_one_neighbouring_comma():
    assert sub("a in (l1, l2)", [("l1", []), ("l2", ["x"])])[0] == "a in ( x )"
    assert sub("a in (x, l)", [("l", [])])[0] == "a in (x  )"


def test_lists_substitute_in_definition_order_and_can_chain():
    # l1's items name l2, which is substituted afterwards because it comes later.
    assert sub("a in (l1)", [("l1", ["l2"]), ("l2", ["z"])])[0] == "a in ( z )"
    # ...but not when l2 comes first.
    assert sub("a in (l1)", [("l2", ["z"]), ("l1", ["l2"])])[0] == "a in ( l2 )"


def test_unused_lists_are_not_reported():
    assert sub("a = b", [("l", ["x"])]) == ("a = b", [])


def test_offsets_map_back_to_the_list_name():
    s, _ = substitute_lists("x in (lst) and y = 1", [("lst", ["aaaa", "bbbb"])])
    assert s.text == "x in ( aaaa, bbbb ) and y = 1"
    assert s.original_offset(s.text.index("bbbb")) == 6  # inside the items -> the name
    assert s.original_offset(s.text.index("y =")) == len("x in (lst) and ")
    assert s.original_offset(0) == 0


def ex(fields, values, comps=None):
    e = ExceptionInfo("e", ())
    e.fields = fields
    e.values = values
    e.comps = comps
    check_exception_shape(e)
    return e


def S(x):
    return Entry(False, x)


def L(*xs):
    return Entry(True, "", [x if isinstance(x, Entry) else S(x) for x in xs])


def test_scalar_field_exception_defaults_to_in():
    e = ex(S("proc.name"), [S("bash"), S("my shell")])
    assert exception_condition(e) == '(proc.name in (bash, "my shell"))'


def test_scalar_field_exception_with_pmatch():
    e = ex(S("fd.name"), [S("/tmp")], S("pmatch"))
    assert exception_condition(e) == "(fd.name pmatch (/tmp))"


def test_scalar_field_exception_rejects_non_list_operator():
    with pytest.raises(Exception, match="comps must be one of"):
        ex(S("proc.name"), [S("x")], S("="))


def test_list_fields_exception_defaults_to_equals_with_falco_spacing():
    e = ex(L("proc.name", "fd.name"), [L("cat", "/etc/shadow"), L("vi", "/etc/my file")])
    assert exception_condition(e) == (
        '(( proc.name = cat and  fd.name = /etc/shadow) or '
        '( proc.name = vi and  fd.name = "/etc/my file"))')


def test_list_fields_exception_with_list_operators_and_nested_values():
    e = ex(L("proc.name", "fd.directory"),
           [L(L("cat", "less more"), "etc_dirs")],
           L("in", "in"))
    # A nested YAML list becomes "(a, b)"; a scalar for a list operator is parenthesised,
    # so a list name there is expanded later like any list reference.
    assert exception_condition(e) == '(( proc.name in (cat, "less more") and  fd.directory in (etc_dirs)))'


def test_list_fields_exception_with_modifier_operator():
    e = ex(L("proc.name"), [L("a")], L("startswith anyof"))
    assert exception_condition(e) == "(( proc.name startswith anyof (a)))"


def test_exception_without_values_adds_nothing():
    assert exception_condition(ex(L("proc.name"), [])) == ""
    assert exception_condition(ex(S("proc.name"), [])) == ""


def test_mismatched_lengths_are_errors():
    with pytest.raises(ValueError, match="equal length"):
        exception_condition(ex(L("a.b", "c.d"), [L("x")]))
    with pytest.raises(Exception, match="Fields and comps lists must have equal length"):
        ex(L("a.b", "c.d"), [L("x", "y")], L("="))
    with pytest.raises(ValueError, match="list of strings"):
        exception_condition(ex(S("a.b"), [L("x")]))


def test_unknown_operator_in_comps():
    with pytest.raises(Exception, match="'like' is not a supported comparison operator"):
        ex(L("a.b"), [L("x")], L("like"))


def test_condtext_locates_pieces():
    o1, o2 = Origin("s1", None, 10), Origin("s2", None, 20)
    c = CondText.scalar("abc", o1) + CondText.synthetic(" ", o2) + CondText.scalar("de", o2)
    assert c.text == "abc de"
    assert c.locate(1) == (o1, 1)
    assert c.locate(5) == (o2, 1)
    assert c.locate(99)[0] == o2  # past the end: the last piece


from hypothesis import given, settings, strategies as st  # noqa: E402

TOKENS = ["l1", "l2", "lx", "a", " ", "(", ")", ",", "=", "\n", "l1_b", "x.l1"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=25).map("".join),
       st.lists(st.sampled_from(["p", "q r", "", "l2"]), max_size=3),
       st.lists(st.sampled_from(["s", "t"]), max_size=2))
def test_offsets_outside_substitutions_map_to_the_same_character(text, items1, items2):
    s, used = substitute_lists(text, [("l1", items1), ("l2", items2)])

    def inside_a_substitution(k):
        for new_start, new_end, old_start, old_end, _ in reversed(s.edits):
            if new_start <= k < new_end:
                return True
            if k >= new_end:
                k += (old_end - old_start) - (new_end - new_start)
        return False

    for k, c in enumerate(s.text):
        if not inside_a_substitution(k):
            assert text[s.original_offset(k)] == c
    for k in range(len(s.text)):
        assert 0 <= s.original_offset(k) <= len(text)
    assert set(used) <= {"l1", "l2"}
