"""`workload-agent rules test`: cases that pass, cases that fail for the right reason."""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from workload_agent.capture.ruletest import SpecFileError, load_test_file, run_files

AGENT = [sys.executable, "-m", "workload_agent"]

RULES = """
- list: sensitive_files
  items: [/etc/shadow, /etc/sudoers]
- rule: Sensitive file read
  desc: a sensitive file opened for reading
  condition: evt.type in (open, openat, openat2) and evt.is_open_read = true and fd.name in (sensitive_files)
  output: "sensitive file read (file=%fd.name proc=%proc.name parent=%proc.pname user=%user.name)"
  priority: WARNING
- rule: Shell in container
  desc: a shell started in a container
  condition: evt.type = execve and proc.name in (sh, bash) and container.id != host
  output: "shell in container (proc=%proc.name parent=%proc.pname container=%container.id)"
  priority: NOTICE
"""

PASSING = """
rules: [rules.yaml]
tests:
  - name: cat reading /etc/shadow alerts
    events:
      - {evt.type: openat, evt.is_open_read: true, fd.name: /etc/shadow, proc.name: cat, proc.pname: bash}
    expect:
      - rule: Sensitive file read
        priority: warning
        output_fields: {fd.name: /etc/shadow, proc.pname: bash, user.name: root}
    not_fire: [Shell in container]
  - name: a write of /etc/shadow is not a read
    events:
      - {evt.type: openat, evt.arg.flags: O_WRONLY|O_CREAT, fd.name: /etc/shadow, proc.name: cat}
    not_fire: [Sensitive file read]
    no_other_alerts: true
  - name: shell in a container, counted
    events:
      - {evt.type: execve, proc.exepath: /bin/sh, container.id: abcdef123456}
      - {evt.type: execve, proc.exepath: /bin/bash, proc.pname: sh, container.id: abcdef123456}
      - {evt.type: execve, proc.exepath: /bin/bash}
    expect:
      - {rule: Shell in container, count: 2}
      - rule: Shell in container
        output_fields: {proc.name: bash, proc.pname: sh}
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "rules.yaml").write_text(RULES)

    def write(name, text):
        p = tmp_path / name
        p.write_text(text)
        return str(p)
    return write


def test_passing_cases(files):
    results = run_files([files("t.yaml", PASSING)])
    assert [(r.name, r.passed) for r in results] == [
        ("cat reading /etc/shadow alerts", True), ("a write of /etc/shadow is not a read", True),
        ("shell in a container, counted", True)], [r.failures + [r.error] for r in results]


@pytest.mark.parametrize("case, why", [
    ("""events: [{evt.type: openat, evt.is_open_read: true, fd.name: /etc/hosts, proc.name: cat}]
    expect: [Sensitive file read]""", "expected 'Sensitive file read': the rule did not fire; no alert at all"),
    ("""events: [{evt.type: openat, evt.is_open_read: true, fd.name: /etc/shadow, proc.name: cat}]
    not_fire: [Sensitive file read]""", "rule 'Sensitive file read' must not fire, but raised 1 alert(s), first: "
                                        "Warning sensitive file read (file=/etc/shadow proc=cat"),
    ("""events: [{evt.type: openat, evt.is_open_read: true, fd.name: /etc/shadow, proc.name: cat}]
    expect: [{rule: Sensitive file read, priority: critical}]""",
     "expected 'Sensitive file read' (priority Critical): it fired 1 time(s) but: priority Warning, expected Critical"),
    ("""events: [{evt.type: openat, evt.is_open_read: true, fd.name: /etc/shadow, proc.name: cat}]
    expect: [{rule: Sensitive file read, output_fields: {proc.name: less}}]""",
     "proc.name=cat, expected less"),
    ("""events: [{evt.type: openat, evt.is_open_read: true, fd.name: /etc/shadow, proc.name: cat}]
    expect: [{rule: Sensitive file read, output_fields: {proc.pid: 1}}]""",
     "proc.pid is not an output field of the rule"),
    ("""events: [{evt.type: openat, evt.is_open_read: true, fd.name: /etc/shadow, proc.name: cat}]
    expect: [{rule: Sensitive file read, count: 2}]""", "matched 1 time(s)"),
    ("""events: [{evt.type: openat, evt.is_open_read: true, fd.name: /etc/shadow, proc.name: cat}]
    not_fire: [Sensitive file raed]""", "rule 'Sensitive file raed' is not defined in"),
    ("""events: [{evt.type: execve, proc.exepath: /bin/sh, container.id: abc},
             {evt.type: openat, evt.is_open_read: true, fd.name: /etc/shadow}]
    expect: [Sensitive file read]
    no_other_alerts: true""", "unexpected alerts (1): Shell in container: shell in container (proc=sh"),
])
def test_failing_cases_fail_for_the_right_reason(files, case, why):
    path = files("t.yaml", f"rules: [rules.yaml]\ntests:\n  - name: x\n    {case}\n")
    (r,) = run_files([path])
    assert not r.passed and r.error is None
    assert any(why in f for f in r.failures), r.failures


@pytest.mark.parametrize("text, where, why", [
    ("tests: [{name: a, events: [{evt.type: openat}]}]", 1, "no rules files"),
    ("rules: [rules.yaml]\ntests:\n  - name: a\n    evnts: []\n", 3, "unknown key(s) evnts"),
    ("rules: [rules.yaml]\ntests:\n  - name: a\n    events: [{evt.type: openat}]\n    capture: x\n", 3,
     "exactly one input"),
    ("rules: [rules.yaml]\ntests:\n  - name: a\n    events: [{evt.type: openat}]\n    expect:\n      - {rul: x}\n",
     6, "mapping with `rule:`"),
    ("rules: [rules.yaml]\ntests: [\n", 3, "invalid YAML"),
    ("rules: [rules.yaml]\ntests: []\n", 1, "no tests"),
])
def test_bad_test_files_name_file_and_line(files, text, where, why):
    path = files("bad.yaml", text)
    with pytest.raises(SpecFileError) as err:
        load_test_file(path)
    assert err.value.line == where and why in str(err.value) and str(err.value).startswith(f"{path}:{where}:")


@pytest.mark.parametrize("event, why", [
    ("{evt.type: openat, proc.nam: cat}", "field proc.nam cannot be set"),
    ("{evt.type: opnat}", "unknown event type 'opnat'"),
    ("{evt.type: openat, evt.arg.flags: O_READ}", "'O_READ' is not a list of file_flags names"),
    ("{evt.type: openat, proc.pid: abc}", "field proc.pid: expected an integer"),
    ("{evt.type: openat, proc.pcmdline: \"'\"}", "field proc.pcmdline: the quote ' at character 1"),
    ("{evt.type: openat, proc.cmdline: 'sh -c \"ls'}", "field proc.cmdline: the quote \" at character 7"),
])
def test_bad_inline_events_are_errors_naming_the_field(files, event, why):
    (r,) = run_files([files("t.yaml", f"rules: [rules.yaml]\ntests:\n  - events: [{event}]\n")])
    assert r.error and "event #1" in r.error and why in r.error


def test_broken_rules_are_an_error_with_their_position(files, tmp_path):
    (tmp_path / "broken.yaml").write_text("- rule: x\n  desc: d\n  condition: evt.type = = openat\n"
                                          "  output: o\n  priority: INFO\n")
    (r,) = run_files([files("t.yaml", "rules: [broken.yaml]\ntests:\n  - events: [{evt.type: openat}]\n")])
    assert r.error and "broken.yaml" in r.error and "3:" in r.error


def test_capture_input(files, tmp_path):
    from workload_agent.capture.format import CaptureWriter
    from workload_agent.capture.inline import build_event

    cap = tmp_path / "c.wacap"
    w = CaptureWriter(str(cap), {})
    w.write_event(build_event({"evt.type": "openat", "evt.is_open_read": True, "fd.name": "/etc/sudoers",
                               "proc.name": "vi"}))
    w.close()
    (r,) = run_files([files("t.yaml", "rules: [rules.yaml]\ntests:\n  - capture: c.wacap\n    expect:\n"
                                      "      - {rule: Sensitive file read, output_fields: {proc.name: vi}}\n")])
    assert r.passed, r.failures


def test_command_input_runs_under_the_agent(files):
    path = files("t.yaml", "rules: [rules.yaml]\ntests:\n"
                           "  - name: real cat\n    command: sh -c 'cat /etc/shadow >/dev/null 2>&1; true'\n"
                           "    expect: [{rule: Sensitive file read,\n"
                           "              output_fields: {proc.name: cat, proc.pname: sh}}]\n"
                           "  - name: real, quiet\n    command: [cat, /etc/hostname]\n"
                           "    not_fire: [Sensitive file read]\n    no_other_alerts: true\n")
    results = run_files([path])
    assert [r.passed for r in results] == [True, True], [(r.failures, r.error) for r in results]


def test_cli_report_exit_status_and_junit(files, tmp_path):
    good = files("good.yaml", PASSING)
    bad = files("bad.yaml", "rules: [rules.yaml]\ntests:\n  - name: wrong\n    events: [{evt.type: openat, "
                            "evt.is_open_read: true, fd.name: /etc/shadow}]\n    not_fire: [Sensitive file read]\n")
    junit = tmp_path / "junit.xml"
    p = subprocess.run(AGENT + ["rules", "test", good, bad, "--junit-xml", str(junit)], capture_output=True,
                       timeout=60)
    out = p.stdout.decode()
    assert p.returncode == 1, p.stderr
    assert "PASS  cat reading /etc/shadow alerts" in out and "FAIL  wrong" in out
    assert "4 test(s): 3 passed, 1 failed, 0 error(s)" in out
    assert "Warning [Sensitive file read] sensitive file read (file=/etc/shadow" in out
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "1", "0")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [good, bad]
    failed = suites[1].find("testcase")
    assert failed.get("name") == "wrong" and "must not fire" in failed.find("failure").get("message")
    assert subprocess.run(AGENT + ["rules", "test", good], capture_output=True, timeout=60).returncode == 0


def test_min_priority_and_rule_matching_options(files):
    path = files("t.yaml", "rules: [rules.yaml]\ntests:\n"
                           "  - name: quiet below error\n    min_priority: error\n"
                           "    events: [{evt.type: openat, evt.is_open_read: true, fd.name: /etc/shadow}]\n"
                           "    not_fire: [Sensitive file read]\n"
                           "  - name: bad priority\n    min_priority: loud\n    events: [{evt.type: openat}]\n")
    with pytest.raises(SpecFileError, match="min_priority"):
        load_test_file(path)
    path = files("t.yaml", "rules: [rules.yaml]\ntests:\n"
                           "  - name: quiet below error\n    min_priority: error\n"
                           "    events: [{evt.type: openat, evt.is_open_read: true, fd.name: /etc/shadow}]\n"
                           "    not_fire: [Sensitive file read]\n")
    (r,) = run_files([path])
    assert r.passed, r.failures
