"""The registry knows every field the upstream rules files use."""
from __future__ import annotations

import re

from workload_agent.rules.condition import fields_used, parse_condition
from workload_agent.rules.fields import REGISTRY
from workload_agent.rules.output import compile_output
from tests.rules.upstream_files import conditions, outputs

_OUTPUT_FIELD = re.compile(r"%([a-zA-Z]+[a-zA-Z0-9_]*(?:\.[a-zA-Z]+[a-zA-Z0-9_]*)+)(\[[^\]]*\])?")


def _all_condition_fields():
    found = set()
    for _f, _k, _n, cond in conditions():
        found.update(fields_used(parse_condition(cond)))
    return found


def _all_output_fields():
    found = set()
    for _f, _r, out in outputs():
        for m in _OUTPUT_FIELD.finditer(out):
            found.add(m.group(1) + (m.group(2) or ""))
    return found


def test_registry_knows_every_upstream_condition_field():
    fields = _all_condition_fields()
    assert len(fields) >= 71  # falco-fields.md §4: 71 distinct fields in conditions
    for text in fields:
        name = text.split("[", 1)[0]
        REGISTRY.lookup(name)  # KeyError names the missing field
        arg = text[len(name) + 1:-1] if "[" in text else None
        REGISTRY.bind(name, arg)


def test_registry_knows_every_upstream_output_field():
    fields = _all_output_fields()
    assert len(fields) >= 56
    for text in fields:
        name = text.split("[", 1)[0]
        arg = text[len(name) + 1:-1] if "[" in text else None
        REGISTRY.bind(name, arg)


def test_every_upstream_output_compiles():
    count = 0
    for fname, rule, out in outputs():
        fmt = compile_output(out)
        assert fmt.field_names, (fname, rule)
        count += 1
    assert count == 93


def test_reference_field_list_is_covered():
    # The union of distinct upstream fields listed in falco-fields.md §4.
    listed = """container.id container.image.repository container.mount.dest container.mounts
    container.privileged container.start_ts evt.arg.cmd evt.arg.domain evt.arg.fd evt.arg.filename
    evt.arg.flags evt.arg.linkpath evt.arg.mode evt.arg.name evt.arg.newpath evt.arg.oldpath
    evt.arg.path evt.arg.request evt.arg.target evt.arg.uid evt.args evt.buffer evt.is_open_exec
    evt.is_open_read evt.is_open_write evt.num evt.rawres evt.res evt.type fd.cip fd.cip.name fd.cnet
    fd.connected fd.directory fd.filename fd.ip fd.l4proto fd.lip.name fd.lport fd.name
    fd.name_changed fd.nameraw fd.net fd.num fd.port fd.rip fd.rip.name fd.rnet fd.rport fd.sip
    fd.sip.name fd.snet fd.sockfamily fd.sport fd.type fd.typechar group.gid group.name k8s.ns.name
    k8s.pod.name proc.aexe proc.aexepath proc.aname proc.args proc.cmdline proc.cwd proc.duration
    proc.env proc.exe proc.exe_ino.ctime proc.exe_ino.ctime_duration_proc_start proc.exe_ino.mtime
    proc.exepath proc.is_exe_from_memfd proc.is_exe_upper_layer proc.is_vpgid_leader proc.name
    proc.pcmdline proc.pexe proc.pexepath proc.pname proc.sname proc.tty proc.vpid
    thread.cap_effective thread.cap_permitted user.loginname user.loginuid user.name user.uid""".split()
    assert len(listed) == 90
    for name in listed:
        assert name in REGISTRY, name


def test_unknown_field_is_rejected():
    assert "proc.nonexistent" not in REGISTRY
    assert "evt" not in REGISTRY
