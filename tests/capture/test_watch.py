"""--watch: a change of a watched file runs the replay or the tests again."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time

from workload_agent.capture.format import CaptureWriter
from workload_agent.capture.inline import build_event
from workload_agent.capture.watch import watch

AGENT = [sys.executable, "-m", "workload_agent"]
RULE = """- rule: Shadow read
  desc: d
  condition: evt.type = openat and fd.name = /etc/shadow
  output: "%s (file=%%fd.name)"
  priority: WARNING
"""


def _bump(path, text):
    """Write and make sure the mtime moves even on a coarse-grained filesystem clock."""
    before = os.stat(path).st_mtime_ns
    with open(path, "w") as f:
        f.write(text)
    st = os.stat(path)
    if st.st_mtime_ns == before:
        os.utime(path, ns=(st.st_atime_ns, before + 1_000_000))


def test_watch_runs_again_after_a_change(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("a")
    runs = []

    def run_once():
        runs.append(f.read_text())
        if len(runs) == 1:
            threading.Timer(0.2, _bump, (str(f), "bb")).start()
        return len(runs)

    err = io.StringIO()
    rc = watch(lambda: [str(tmp_path)], run_once, interval=0.05, max_runs=2, err=err)
    assert runs == ["a", "bb"] and rc == 2
    assert f"changed: {f}" in err.getvalue()


def test_watch_notices_a_new_file_in_a_directory(tmp_path):
    runs = []

    def run_once():
        runs.append(sorted(os.listdir(tmp_path)))
        if len(runs) == 1:
            threading.Timer(0.2, (tmp_path / "new.yaml").write_text, ("x",)).start()
        return 0

    watch(lambda: [str(tmp_path)], run_once, interval=0.05, max_runs=2, err=io.StringIO())
    assert runs == [[], ["new.yaml"]]


def _read_until(proc, needle: str, timeout=30.0) -> str:
    seen = ""
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen += line
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} not seen; output so far:\n{seen}")


def _start(args):
    return subprocess.Popen(AGENT + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)


def test_replay_watch_replays_with_the_edited_rules(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE % "first version")
    cap = tmp_path / "c.wacap"
    w = CaptureWriter(str(cap), {"hostname": "h"})
    w.write_event(build_event({"evt.type": "openat", "fd.name": "/etc/shadow", "proc.name": "cat"}))
    w.close()
    p = _start(["replay", str(cap), "-r", str(rules), "--watch"])
    try:
        _read_until(p, "first version (file=/etc/shadow)")
        _bump(str(rules), RULE % "second version")
        out = _read_until(p, "second version (file=/etc/shadow)")
        assert "running again" in out
    finally:
        p.terminate()
        p.wait(10)


def test_rules_test_watch_reruns_when_the_rules_change(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE % "x")
    tests = tmp_path / "t.yaml"
    tests.write_text("rules: [rules.yaml]\ntests:\n  - name: shadow\n    events: [{evt.type: openat, fd.name: /etc/shadow}]\n"
                     "    expect: [{rule: Shadow read, priority: error}]\n")
    p = _start(["rules", "test", str(tests), "--watch"])
    try:
        _read_until(p, "0 passed, 1 failed")
        _bump(str(rules), (RULE % "x").replace("WARNING", "ERROR"))
        _read_until(p, "1 passed, 0 failed")
    finally:
        p.terminate()
        p.wait(10)
