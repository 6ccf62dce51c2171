"""`workload-agent run` with rules: real workloads, real alerts."""
import json
import os
import subprocess
import sys

import pytest

AGENT = [sys.executable, "-m", "workload_agent", "run"]

RULES = """
- list: watched_files
  items: [/etc/hostname]
- macro: opened_for_read
  condition: evt.type in (open, openat, openat2) and evt.is_open_read = true
- rule: Watched file read
  desc: a test rule
  condition: opened_for_read and fd.name in (watched_files) and proc.name = cat
  output: "watched file read (file=%fd.name proc=%proc.name parent=%proc.pname cmdline=%proc.cmdline)"
  priority: WARNING
  tags: [test]
- rule: Marker connect
  desc: a test rule on the network
  condition: evt.type = connect and fd.sport = MARKER_PORT
  output: "connect to marker port (conn=%fd.name proc=%proc.name)"
  priority: NOTICE
  tags: [test, network]
"""


@pytest.fixture
def rules(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    f = tmp_path / "rules.yaml"
    f.write_text(RULES.replace("MARKER_PORT", str(port)))
    yield str(f), port, s
    s.close()


def run(rules_file, cmd, *extra, **kw):
    return subprocess.run(AGENT + ["-r", rules_file] + list(extra) + ["--"] + cmd, capture_output=True,
                          timeout=60, **kw)


def test_json_alert_from_a_real_workload(rules, tmp_path, mode_args):
    rules_file, port, _ = rules
    alerts = tmp_path / "alerts.jsonl"
    p = run(rules_file, ["sh", "-c", "cat /etc/hostname; exit 5"], "--json", "--alerts-to", str(alerts),
            "--container-id", "abcdef012345", "--container-image", "repo/app:1.2", *mode_args)
    assert p.returncode == 5
    assert p.stdout == open("/etc/hostname", "rb").read()  # the workload's stdout is untouched
    lines = [json.loads(x) for x in alerts.read_text().splitlines()]
    assert [a["rule"] for a in lines] == ["Watched file read"]
    a = lines[0]
    assert a["priority"] == "Warning" and a["source"] == "syscall" and a["tags"] == ["test"]
    f = a["output_fields"]
    assert f["fd.name"] == "/etc/hostname" and f["proc.name"] == "cat" and f["proc.pname"] == "sh"
    assert f["container.id"] == "abcdef012345"
    assert "container_id=abcdef012345" in a["output"]
    assert a["time"].endswith("Z") and isinstance(f["evt.time"], int)


def test_text_alerts_go_where_asked(rules):
    rules_file, port, _ = rules
    p = run(rules_file, ["sh", "-c", f"cat /etc/hostname >/dev/null; python3 -c \"import socket; "
                                     f"socket.create_connection(('127.0.0.1', {port}))\""],
            "--rule-matching", "all", "--alerts-to", "stderr")
    assert p.returncode == 0
    err = p.stderr.decode()
    assert ": Warning watched file read (file=/etc/hostname proc=cat parent=sh" in err
    assert f"->127.0.0.1:{port} proc=python3" in err
    assert p.stdout == b""


def test_min_priority_silences_less_severe_rules(rules):
    rules_file, port, _ = rules
    p = run(rules_file, ["cat", "/etc/hostname"], "--min-priority", "error", "--alerts-to", "stderr")
    assert p.returncode == 0 and b"watched file read" not in p.stderr


def test_default_rules_load_and_alert_on_shadow_read(tmp_path):
    alerts = tmp_path / "a.jsonl"
    p = subprocess.run(AGENT + ["--json", "--alerts-to", str(alerts), "--", "sh", "-c",
                                "cat /etc/shadow >/dev/null 2>&1; exit 0"], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    rules = [json.loads(x)["rule"] for x in alerts.read_text().splitlines()]
    assert rules, "the shipped ruleset raised nothing on a read of /etc/shadow"
