"""Parser conformance: accepted forms, trees, rejected forms with error positions."""
from __future__ import annotations

import pytest

from workload_agent.rules.condition import (
    And, Check, Field, ListLit, ListRef, Literal, MacroRef, Not, Or, Transform, list_refs, macro_refs,
    fields_used, parse_condition, print_condition, substitute_macros, unsafe_na_checks)
from workload_agent.rules.errors import ConditionError


def F(name, arg=None):
    return Field(name, arg)


def C(lhs, op, rhs=None, modifier=None):
    if isinstance(lhs, str):
        lhs = F(lhs)
    if isinstance(rhs, str):
        rhs = Literal(rhs)
    return Check(lhs, op, rhs, modifier)


M = MacroRef

ACCEPT = [
    ("a", M("a")),
    ("proc.name=bash", C("proc.name", "=", "bash")),
    ("proc.name == bash", C("proc.name", "==", "bash")),
    ("  proc.name\n!=\tbash  ", C("proc.name", "!=", "bash")),
    ("a or b and c", Or((M("a"), And((M("b"), M("c")))))),
    ("a and b or c", Or((And((M("a"), M("b"))), M("c")))),
    ("a and b and c", And((M("a"), M("b"), M("c")))),
    ("not a and b", And((Not(M("a")), M("b")))),
    ("not (a or b)", Not(Or((M("a"), M("b"))))),
    ("not(a)", Not(M("a"))),
    ("not not a", M("a")),
    ("not not not a", Not(M("a"))),
    ("not (not a)", Not(Not(M("a")))),
    ("(a and b) and c", And((And((M("a"), M("b"))), M("c")))),
    ("((a))", M("a")),
    ("a or(b)", Or((M("a"), M("b")))),
    ("a and(b or c)", And((M("a"), Or((M("b"), M("c")))))),
    ("notes", M("notes")),
    ("fd.num>=0and a", And((C("fd.num", ">=", "0"), M("a")))),
    ("fd.num >= -1", C("fd.num", ">=", "-1")),
    ("fd.num < +1.5e+3", C("fd.num", "<", "+1.5e+3")),
    ("fd.num <= 0x1F", C("fd.num", "<=", "0x1F")),
    ("fd.num > 3", C("fd.num", ">", "3")),
    ("proc.name exists", C("proc.name", "exists")),
    ("proc.name glob '/a/*'", C("proc.name", "glob", "/a/*")),
    ("proc.name iglob A*", C("proc.name", "iglob", "A*")),
    ("proc.name contains x", C("proc.name", "contains", "x")),
    ("proc.name icontains X", C("proc.name", "icontains", "X")),
    ("evt.buffer bcontains cafebabe", C("evt.buffer", "bcontains", "cafebabe")),
    ("proc.name startswith /x", C("proc.name", "startswith", "/x")),
    ("evt.buffer bstartswith 7f45", C("evt.buffer", "bstartswith", "7f45")),
    ("proc.name endswith sh", C("proc.name", "endswith", "sh")),
    ("proc.name regex 'b.*h'", C("proc.name", "regex", "b.*h")),
    ("proc.name in (a, 'b c', \"d\")", C("proc.name", "in", ListLit(("a", "b c", "d")))),
    ("proc.name in(a,b)", C("proc.name", "in", ListLit(("a", "b")))),
    ("proc.name in ()", C("proc.name", "in", ListLit(()))),
    ("proc.name intersects (a)", C("proc.name", "intersects", ListLit(("a",)))),
    ("fd.name pmatch (/etc, /usr/bin)", C("fd.name", "pmatch", ListLit(("/etc", "/usr/bin")))),
    ("proc.name in shell_binaries", C("proc.name", "in", ListRef("shell_binaries"))),
    ("proc.aname[2]=sshd", C(F("proc.aname", "2"), "=", "sshd")),
    ("proc.env[PATH] contains /usr", C(F("proc.env", "PATH"), "contains", "/usr")),
    ("proc.env['A B'] exists", C(F("proc.env", "A B"), "exists")),
    ("container.mount.dest[/var/run/docker.sock] exists",
     C(F("container.mount.dest", "/var/run/docker.sock"), "exists")),
    ("evt.arg.flags contains O_TRUNC", C("evt.arg.flags", "contains", "O_TRUNC")),
    ("evt.arg[0] = x", C(F("evt.arg", "0"), "=", "x")),
    ("tolower(proc.name) = bash", C(Transform("tolower", (F("proc.name"),)), "=", "bash")),
    ("toupper( tolower(proc.name) ) = B",
     C(Transform("toupper", (Transform("tolower", (F("proc.name"),)),)), "=", "B")),
    ("b64(proc.args) contains x", C(Transform("b64", (F("proc.args"),)), "contains", "x")),
    ("basename(proc.exe) = sh", C(Transform("basename", (F("proc.exe"),)), "=", "sh")),
    ("len(proc.args) > 3", C(Transform("len", (F("proc.args"),)), ">", "3")),
    ("join(',', fd.types) = a", C(Transform("join", (Literal(","), F("fd.types"))), "=", "a")),
    ("concat(proc.name, '-', proc.pname) = a-b",
     C(Transform("concat", (F("proc.name"), Literal("-"), F("proc.pname"))), "=", "a-b")),
    ("getopt(proc.args, -c) = ls", C(Transform("getopt", (F("proc.args"), Literal("-c"))), "=", "ls")),
    ("proc.name = val(proc.pname)", C("proc.name", "=", Transform("val", (F("proc.pname"),)))),
    ("fd.num > len(proc.args)", C("fd.num", ">", Transform("len", (F("proc.args"),)))),
    ("proc.name = tolower(proc.pname)", C("proc.name", "=", Transform("tolower", (F("proc.pname"),)))),
    ("proc.name in val(proc.pname)", C("proc.name", "in", Transform("val", (F("proc.pname"),)))),
    ("proc.name startswith oneof (a, b)",
     C("proc.name", "startswith", ListLit(("a", "b")), "oneof")),
    ("proc.cmdline contains allof (x,y)",
     C("proc.cmdline", "contains", ListLit(("x", "y")), "allof")),
    ("proc.name = anyof(x)", C("proc.name", "=", ListLit(("x",)), "anyof")),
    ("proc.name = oneof", C("proc.name", "=", "oneof")),
    ("proc.name = oneof and a", And((C("proc.name", "=", "oneof"), M("a")))),
]


@pytest.mark.parametrize("text,tree", ACCEPT, ids=[a for a, _ in ACCEPT])
def test_accept(text, tree):
    got = parse_condition(text)
    assert got == tree
    assert parse_condition(print_condition(got)) == got


ESCAPES = [
    (r'"a\"b"', 'a"b'),
    (r"'a\'b'", "a'b"),
    (r'"\b\f\n\r\t"', "\b\f\n\r\t"),
    (r'"\\\/"', "\\/"),
    (r'"\x41\x7e"', "A~"),
    (r'"\ "', "\\"),  # Falco reads backslash-space as one backslash (upstream sandbox rule)
    ('"it\'s"', "it's"),
    ("'say \"hi\"'", 'say "hi"'),
    ('""', ""),
]


@pytest.mark.parametrize("quoted,value", ESCAPES)
def test_escapes(quoted, value):
    tree = parse_condition(f"proc.name = {quoted}")
    assert tree.rhs == Literal(value)
    assert parse_condition(print_condition(tree)) == tree


REJECT = [
    ("", 0, "empty"),
    ("   ", 0, "empty"),
    ("proc.name", 9, "expected a valid check operator"),
    ("proc.name ~ x", 10, "expected a valid check operator"),
    ("proc.name =", 11, "expected a string value"),
    ("(a", 2, "expected a ')'"),
    ("a)", 1, "unexpected token after 'a'"),
    ("a b", 2, "unexpected token after 'a'"),
    ("a andb", 5, "expected blank or '(' after 'and'"),
    ("a orb", 4, "expected blank or '(' after 'or'"),
    ("a or", 4, "expected blank or '(' after 'or'"),
    ("a or ", 5, "unexpected end"),
    ("not", 0, "keyword"),
    ("and", 0, "keyword"),
    ("()", 1, "expected an expression"),
    ("proc.name in (a,)", 16, "expected a string value in list"),
    ("proc.name in (a b)", 16, "expected ',' or ')'"),
    ("proc.name in (a", 15, "expected ',' or ')'"),
    ("proc.name in 80", 13, "expected a list"),
    ("proc.name = 'abc", 12, "unterminated quoted string"),
    ('proc.name = "\\q"', 13, "unsupported string escape"),
    ("proc.name = 'a\\\"b'", 14, "invalid \\\" escape"),
    ('proc.name = "a\\\'b"', 14, "invalid \\' escape"),
    ('proc.name = "\\x4"', 13, "invalid \\x escape"),
    ("fd.num > abc", 9, "expected a number"),
    ("proc.aname[ ]=x", 11, "expected a valid field argument"),
    ("proc.aname[2=x", 14, "expected a ']'"),
    ("proc.aname[2 ]=x", 12, "expected a ']'"),
    ("tolower(proc.name, proc.pname) = x", 0, "takes 1 argument"),
    ("tolower(x) = y", 8, "expected a field or a nested transformer"),
    ("tolower(proc.name = y", 18, "expected a ')' token closing"),
    ("proc.name = val(tolower(proc.name))", 16, "expected a field within 'val'"),
    ("concat(proc.name) = x", 0, "at least two"),
    ("join(proc.name, x) = y", 16, "expected a field or a nested transformer"),
    ("join(, fd.types) = y", 5, "expected a string argument"),
    ("proc.name glob", 10, "expected a valid check operator"),
    ("proc.name containsx", 10, "expected a valid check operator"),
]


@pytest.mark.parametrize("text,offset,message", REJECT, ids=[r[0] or "<empty>" for r in REJECT])
def test_reject(text, offset, message):
    with pytest.raises(ConditionError) as info:
        parse_condition(text)
    err = info.value
    assert message in err.message
    assert err.offset == offset
    assert err.code == "LOAD_ERR_COMPILE_CONDITION"


def test_deep_nesting_is_an_error_not_a_crash():
    with pytest.raises(ConditionError) as info:
        parse_condition("(" * 5000 + "a" + ")" * 5000)
    assert "nesting" in info.value.message
    assert parse_condition("(" * 100 + "a" + ")" * 100) == M("a")


def test_offsets_point_at_nodes():
    text = "evt.type = open and not  proc.name in (a, b) or my_macro"
    tree = parse_condition(text)
    assert isinstance(tree, Or)
    and_node, macro = tree.children
    assert macro.offset == text.index("my_macro")
    check_not = and_node.children[1]
    assert check_not.offset == text.index("not")
    inner = check_not.child
    assert inner.offset == text.index("proc.name")
    assert inner.rhs.offset == text.index("(a")
    assert inner.rhs.item_offsets == (text.index("a,"), text.index("b)"))


def test_macro_refs_list_refs_fields_used_and_substitution():
    text = "m1 and (proc.name in lst or not m2) and proc.aname[2] = x and evt.arg.flags contains y " \
           "and proc.name = val(proc.pname) and m1"
    tree = parse_condition(text)
    assert macro_refs(tree) == [("m1", 0), ("m2", text.index("m2")), ("m1", text.rindex("m1"))]
    assert list_refs(tree) == [("lst", text.index("lst"))]
    assert fields_used(tree) == ["proc.name", "proc.aname[2]", "evt.arg.flags", "proc.pname"]
    sub = substitute_macros(tree, {"m1": parse_condition("fd.num > 0"),
                                   "m2": parse_condition("a or b")})
    assert macro_refs(sub) == [("a", 0), ("b", 5)]
    assert print_condition(sub) == ("fd.num > 0 and (proc.name in lst or not (a or b)) and "
                                    "proc.aname[2] = x and evt.arg.flags contains y and "
                                    "proc.name = val(proc.pname) and fd.num > 0")


def test_printer_canonical_forms():
    assert print_condition(parse_condition("a and (b or c)")) == "a and (b or c)"
    assert print_condition(parse_condition("not(a and b)")) == "not (a and b)"
    assert print_condition(parse_condition("proc.name in (a,'b c')")) == 'proc.name in (a, "b c")'
    assert print_condition(parse_condition("proc.env['A B']=''")) == 'proc.env["A B"] = ""'


def test_unsafe_na_checks():
    text = 'proc.name = x and not proc.pname in ("<NA>", "N/A") or user.name = "<NA>"'
    assert unsafe_na_checks(parse_condition(text)) == [
        ("proc.pname", text.index("proc.pname")), ("user.name", text.index("user.name"))]
    assert unsafe_na_checks(parse_condition("proc.name = NA")) == []
