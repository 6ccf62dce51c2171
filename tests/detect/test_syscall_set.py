"""The traced syscall set follows the enabled rules."""
import subprocess
import sys

import pytest

from workload_agent import detect
from workload_agent.events.arch import native_arch
from workload_agent.rules.loader import load_rules

RULES = """
- rule: Shadow read
  desc: d
  condition: evt.type in (open, openat, openat2) and fd.name = /etc/shadow
  output: "shadow read by %proc.name"
  priority: WARNING
- rule: Outbound
  desc: d
  condition: evt.type = connect and fd.sport = 4444
  output: "connect %fd.name"
  priority: NOTICE
- rule: Module
  desc: d
  condition: evt.type in (init_module, finit_module)
  output: "module"
  priority: CRITICAL
  enabled: false
"""


def ruleset(text=RULES, **kw):
    res = load_rules(["t.yaml"], contents={"t.yaml": text}, **kw)
    assert res.ok, [m.as_text() for m in res.errors]
    return res.ruleset


def test_union_of_enabled_rules_plus_state():
    names, note = detect.traced_syscalls(ruleset(), "x86_64")
    assert {"open", "openat", "openat2", "connect"} <= set(names)
    assert "init_module" not in names and "finit_module" not in names  # disabled rule
    assert detect.IDENTITY_SYSCALLS <= set(names)
    assert "accept" not in names and "unlinkat" not in names
    assert note == ""


def test_min_priority_removes_less_severe_rules():
    names, _ = detect.traced_syscalls(ruleset(min_priority="warning"), "x86_64")
    assert "connect" not in names and "openat" in names


def test_arch_specific_names_are_dropped_on_aarch64():
    names, _ = detect.traced_syscalls(ruleset(), "aarch64")
    assert "open" not in names and "openat" in names


def test_a_rule_without_event_types_falls_back_to_the_default_set():
    text = RULES + """
- rule: Anything by nc
  desc: d
  condition: proc.name = nc
  output: "nc"
  priority: WARNING
"""
    names, note = detect.traced_syscalls(ruleset(text), "x86_64")
    assert "every event type" in note
    assert {"connect", "execve", "unlinkat"} <= set(names)


def test_print_syscalls_cli(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text(RULES)
    p = subprocess.run([sys.executable, "-m", "workload_agent", "run", "-r", str(f), "--print-syscalls"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert set(p.stdout.split()) == set(detect.traced_syscalls(ruleset(), native_arch())[0])  # the machine's own


def test_broken_rules_file_is_a_clear_error(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("- rule: x\n  desc: d\n  condition: evt.type = open and (\n  output: o\n  priority: INFO\n")
    p = subprocess.run([sys.executable, "-m", "workload_agent", "run", "--priority", "security", "-r", str(f),
                        "--", "true"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 125  # under the default priority (availability) the workload runs: tests/availability
    assert "bad.yaml:3" in p.stderr and "Traceback" not in p.stderr


def test_rules_on_fd_lookups_need_no_fd_lifecycle_stops(tmp_path):
    """The dup2 event carries its socket's origin, read at the stop: neither socket nor
    close (the costliest stop on a server) is traced, and the rule still sees the tuple."""
    text = """
- rule: Stdio to socket
  desc: d
  condition: evt.type in (dup2, dup3) and fd.type in (ipv4, ipv6) and evt.rawarg.newfd < 3
  output: "dup %fd.name"
  priority: WARNING
"""
    names, _ = detect.traced_syscalls(ruleset(text), "x86_64")
    assert not {"close", "socket", "accept4", "pipe2"} & set(names)
    rules = tmp_path / "r.yaml"
    rules.write_text(text)
    prog = (
        "import os, socket\n"
        "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)\n"
        "c = socket.create_connection(srv.getsockname())\n"
        "os.dup2(c.fileno(), 0)\n"
        "print(srv.getsockname()[1], flush=True)\n")
    p = subprocess.run([sys.executable, "-m", "workload_agent", "run", "-r", str(rules),
                        "--alerts-to", str(tmp_path / "alerts"), "--", sys.executable, "-c", prog],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    port = int(p.stdout.split()[0])
    alerts = (tmp_path / "alerts").read_text()
    assert "dup 127.0.0.1:" in alerts and f"->127.0.0.1:{port}" in alerts, alerts


def test_a_closed_pipe_is_no_traceback():
    p = subprocess.run(f"{sys.executable} -m workload_agent rules fields | head -1", shell=True,
                       capture_output=True, text=True, timeout=60)
    assert p.stdout.count("\n") == 1
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr
