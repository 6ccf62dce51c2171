"""Output formats: substitution, padding, transformers, <NA>, typed fields, errors."""
from __future__ import annotations

import pytest

from workload_agent.rules.errors import ConditionError
from workload_agent.rules.event import Container, Event, Fd, Param, Process, User
from workload_agent.rules.output import SUGGESTED_OUTPUT, compile_output
from tests.rules.upstream_files import outputs


def _event(**kw):
    parent = Process(pid=1, name="init", parent=None)
    mid = Process(pid=50, name="sshd", parent=parent)
    proc = Process(pid=77, name="bash", args=["-i"], parent=mid, user=User(0), tty=0,
                   container=Container(id="0123456789ab", name="web", repository="nginx", tag="1"),
                   cap_effective=1 | (1 << 21))
    base = dict(type="openat", ts=1_700_000_000_123_456_789, proc=proc,
                fd=Fd(3, type="file", typechar="f", name="/etc/shadow"),
                params=[Param("fd", "3", "<f>/etc/shadow", 3), Param("flags", "1", "O_RDONLY", 1)],
                buffer=b"ab\x00\xffc", res=3)
    base.update(kw)
    return Event(**base)


def test_substitution_padding_transformers_and_missing():
    fmt = compile_output("user=%user.name proc=%6proc.name| %toupper(proc.name) anc=%proc.aname "
                         "gp=%proc.aname[2] flags=%evt.arg.flags sip=%fd.sip tty=%proc.tty")
    assert fmt.render(_event()) == ("user=root proc=bash  | BASH anc=sshd init gp=init "
                                    "flags=O_RDONLY sip=<NA> tty=0")


def test_fields_are_typed_and_none_for_missing():
    fmt = compile_output("%proc.pid %proc.name %fd.sip %container.privileged %evt.buffer "
                         "%proc.aname %len(proc.name) %fd.num")
    assert fmt.fields(_event()) == {
        "proc.pid": 77, "proc.name": "bash", "fd.sip": None, "container.privileged": None,
        "evt.buffer": "ab..c", "proc.aname": "sshd init", "len(proc.name)": 4, "fd.num": 3}
    assert fmt.field_names == ["proc.pid", "proc.name", "fd.sip", "container.privileged",
                               "evt.buffer", "proc.aname", "len(proc.name)", "fd.num"]


def test_bytes_render_printable_only():
    assert compile_output("%evt.buffer").render(_event()) == "ab..c"


def test_literal_percent_and_container_info():
    fmt = compile_output("50% done %container.info by %proc.name%")
    assert fmt.render(_event()) == "50% done  by bash%"
    assert fmt.field_names == ["proc.name"]


def test_field_name_ends_at_non_field_characters():
    fmt = compile_output("(%proc.name), %fd.name. %proc.pid:%proc.name")
    assert fmt.render(_event()) == "(bash), /etc/shadow. 77:bash"


def test_no_thread_info_prints_na():
    fmt = compile_output("%proc.name %user.name %container.id %evt.type")
    assert fmt.render(_event(proc=None)) == "<NA> <NA> <NA> openat"


def test_suggested_output_fields():
    fmt = compile_output(SUGGESTED_OUTPUT)
    assert fmt.render(_event()) == ("container_id=0123456789ab container_name=web "
                                    "container_image_repository=nginx container_image_tag=1 "
                                    "k8s_pod_name=<NA> k8s_ns_name=<NA>")


@pytest.mark.parametrize("fmt,offset,fragment", [
    ("x %proc.nme y", 3, "nonexistent field proc.nme"),
    ("%fd.net", 1, "only be used in conditions"),
    ("a %toupper(fd.num)", 3, "needs a string"),
    ("a %toupper(proc.name", 20, "expected a ')'"),
    ("%proc.aname[x]", 1, "numeric index"),
    ("%evt.arg", 1, "requires an argument"),
])
def test_errors(fmt, offset, fragment):
    with pytest.raises(ConditionError) as info:
        compile_output(fmt)
    assert info.value.code == "LOAD_ERR_COMPILE_OUTPUT"
    assert fragment in info.value.message
    assert info.value.offset == offset


def test_every_upstream_output_renders():
    ev = _event()
    for _f, rule, out in outputs():
        text = compile_output(out).render(ev)
        assert "%" not in text.replace("%)", ""), rule


def test_ancestor_pid_without_index_prints_own_pid():
    assert compile_output("%proc.apid %proc.apid[1] %proc.aname").render(_event()) == "77 50 sshd init"


def test_container_start_from_pid_namespace():
    e = _event(ts=5_000)
    e.proc.pidns_init_start_ts = 1_000
    assert compile_output("%container.start_ts %container.duration").render(e) == "1000 4000"
    assert compile_output("%container.start_ts").render(_event()) == "<NA>"


def test_longest_known_field_then_literal_text():
    assert compile_output("%proc.name.log (%fd.name.)").render(_event()) == "bash.log (/etc/shadow.)"
    with pytest.raises(ConditionError):
        compile_output("%nope.field.x")
