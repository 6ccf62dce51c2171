"""Captures of every format version replay; a reader's memory does not grow with the capture."""
from __future__ import annotations

import os
import subprocess
import sys

from workload_agent.capture.format import FORMAT_VERSION, CaptureReader, Drop

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
AGENT = [sys.executable, "-m", "workload_agent"]


def agent(*args):
    p = subprocess.run(AGENT + list(args), capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr.decode()
    return p


def test_a_version_2_capture_replays_the_alerts_its_live_run_printed():
    """v2.wacap was recorded (format version 2) together with the alerts of that live run,
    v2.alerts: every later reader must replay it to exactly those lines."""
    cap = os.path.join(DATA, "v2.wacap")
    reader = CaptureReader(cap)
    assert reader.version == 2 < FORMAT_VERSION or FORMAT_VERSION == 2
    events = [x for x in reader.records() if not isinstance(x, Drop)]
    assert reader.complete and len(events) == reader.summary["events"]
    with open(os.path.join(DATA, "v2.alerts")) as f:
        live = f.read()
    assert live.count("\n") >= 10
    got = agent("replay", cap, "-r", os.path.join(DATA, "v2-rules.yaml"), "--json", "--rule-matching", "all")
    assert got.stdout.decode() == live


RULES = """
- rule: Read of a marker file
  desc: the workload reads a file below its own directory
  condition: evt.type in (open, openat) and evt.is_open_read = true and fd.name startswith @DIR@/m
  output: "marker read (file=%fd.name proc=%proc.name parent=%proc.pname fds=%proc.fdopencount args=%evt.args)"
  priority: WARNING
- rule: Exec of cat
  desc: each round's cat
  condition: evt.type = execve and proc.name = cat
  output: "cat (cmd=%proc.cmdline parent=%proc.pname)"
  priority: NOTICE
"""


def test_replay_of_a_long_capture_keeps_few_snapshots_and_alerts_as_live(tmp_path):
    """What grows with a capture's length must be let go: an fd closed, replaced, dup2'd
    over or closed by exec, a process that exited. The replay still prints exactly what
    the live run printed."""
    rules = tmp_path / "r.yaml"
    rules.write_text(RULES.replace("@DIR@", str(tmp_path)))
    for i in range(3):
        (tmp_path / f"m{i}").write_text("x")
    rounds = 40
    script = (f"cd {tmp_path}; i=0; while [ $i -lt {rounds} ]; do i=$((i+1)); "
              f"cat m0 m1 m2 >/dev/null; exec 5<m1; exec 5<&-; ls >/dev/null 2>&1; "
              f"(cat m0 >/dev/null); done")
    cap = str(tmp_path / "long.wacap")
    live = tmp_path / "live"
    agent("record", "-o", cap, "--alerts-to", str(live), "-r", str(rules), "--rule-matching", "all",
          "--", "sh", "-c", script)
    reader = CaptureReader(cap)
    most = 0
    opens = 0
    for item in reader.records():
        if isinstance(item, Drop):
            continue
        opens += item.type == "openat"
        most = max(most, reader.snapshots)
    assert opens > 20 * rounds
    # One round's processes and fds at most, not every round's.
    assert most < 60, most
    assert reader.snapshots < 20
    want = live.read_text()
    assert want.count("marker read") == 5 * rounds
    replayed = agent("replay", cap, "-r", str(rules), "--rule-matching", "all")
    assert replayed.stdout.decode() == want


def test_record_writes_the_format_asked_for_and_both_replay_as_live(tmp_path):
    rules = tmp_path / "r.yaml"
    rules.write_text(RULES.replace("@DIR@", str(tmp_path)))
    (tmp_path / "m0").write_text("x")
    script = f"cd {tmp_path}; cat m0 >/dev/null; exec 3<m0; sh -c 'cat m0 >/dev/null'"
    for fmt in (2, 3):
        cap = str(tmp_path / f"v{fmt}.wacap")
        live = tmp_path / f"live{fmt}"
        agent("record", "-o", cap, "--capture-format", str(fmt), "--alerts-to", str(live), "-r", str(rules),
              "--json", "--", "sh", "-c", script)
        assert CaptureReader(cap).version == fmt
        want = live.read_text()
        assert want.count("marker read") == 3
        assert agent("replay", cap, "-r", str(rules), "--json").stdout.decode() == want
    p = subprocess.run(AGENT + ["record", "-o", str(tmp_path / "x.wacap"), "--capture-format", "1", "--", "true"],
                       capture_output=True, timeout=60)
    assert p.returncode == 2 and b"--capture-format 1" in p.stderr and b"Traceback" not in p.stderr
