"""A traced workload under an orchestrator: its alerts arrive there, and a rules change
pushed by the orchestrator reaches the running agent, which then fires the new rule."""
import json
import os
import socket
import subprocess
import sys
import time

from workload_agent.orchestrator.bundle import make_bundle

AGENT = [sys.executable, "-m", "workload_agent"]
KEY = "test-key-0123456789"

FIRST = """
- rule: Hostname read
  desc: fires before the push
  condition: evt.type in (open, openat) and fd.name = /etc/hostname
  output: "hostname read by %proc.name"
  priority: WARNING
"""
SECOND = FIRST + """
- rule: Passwd read
  desc: only in the pushed bundle
  condition: evt.type in (open, openat) and fd.name = /etc/passwd
  output: "passwd read by %proc.name"
  priority: WARNING
"""

WORKLOAD = """
import os, sys, time
open("/etc/hostname").read()
go = sys.argv[1]
deadline = time.time() + 40
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.05)
open("/etc/passwd").read()
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout=30, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def alerts(path):
    try:
        return [json.loads(x) for x in open(path).read().splitlines() if x.strip()]
    except FileNotFoundError:
        return []


def test_alerts_reach_the_orchestrator_and_pushed_rules_fire(tmp_path):
    rules_dir = tmp_path / "bundle"
    rules_dir.mkdir()
    (rules_dir / "rules.yaml").write_text(FIRST)
    out = tmp_path / "alerts.jsonl"
    port = free_port()
    env = dict(os.environ, WORKLOAD_AGENT_ACCESS_KEY=KEY)
    orch = subprocess.Popen(AGENT + ["orchestrator", "--listen", f"127.0.0.1:{port}", "--plaintext",
                                     "--rules-dir", str(rules_dir), "--output", f"file:{out}",
                                     "--metrics-listen", "off"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    agent = None
    try:
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, what="orchestrator")
        local = tmp_path / "local.yaml"
        local.write_text(FIRST)
        go = tmp_path / "go"
        agent_err = tmp_path / "agent.err"
        agent = subprocess.Popen(AGENT + ["run", "-r", str(local), "--orchestrator", f"127.0.0.1:{port}",
                                          "--no-tls", "--no-stdout", "--", sys.executable, "-c", WORKLOAD,
                                          str(go)],
                                 env=env, stdout=subprocess.PIPE, stderr=open(agent_err, "wb"))
        wait_for(lambda: any(a["rule"] == "Hostname read" for a in alerts(out)), what="first alert")
        (rules_dir / "rules.yaml").write_text(SECOND)
        # The agent says when it took the pushed bundle (by its hash): then the workload goes on.
        pushed = f"rules bundle {make_bundle({'rules.yaml': SECOND}).hash}"
        wait_for(lambda: agent.poll() is None and pushed in agent_err.read_text(), what="the pushed bundle")
        go.write_text("go")
        assert agent.wait(60) == 0
        wait_for(lambda: any(a["rule"] == "Passwd read" for a in alerts(out)), what="pushed rule's alert")
        got = alerts(out)
        assert [a["rule"] for a in got].count("Hostname read") == 1  # once: no duplicate downstream
        assert agent.stdout.read() == b""  # --no-stdout: alerts went only to the orchestrator
    finally:
        if agent and agent.poll() is None:
            agent.kill()
        orch.terminate()
        orch.wait(10)
