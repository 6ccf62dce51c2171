"""docker exec, simulated: the agent runs as PID 1 of its own PID namespace (unshare), and
a shell enters that namespace from outside with nsenter, as runc exec does. The agent
notices it, attaches, and the rules judge what the session does."""
from __future__ import annotations

import json
import os
import pty
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from workload_agent.tracer.core import available

from .conftest import need

pytestmark = pytest.mark.skipif(not available()[0], reason="tracing unavailable here")

REPO = Path(__file__).resolve().parents[2]
CONTAINER_ID = "abcdef123456"


def _upstream() -> Path:
    from tests.rules.upstream_files import rules_dir

    return rules_dir() / "falco_rules.yaml"


def _requirements():
    need(os.geteuid() == 0, "needs root: unshare --pid and nsenter")
    for tool in ("unshare", "nsenter"):
        need(shutil.which(tool) is not None, f"needs {tool} (util-linux)")


TEST_RULES = """
- rule: t session file read
  desc: test
  condition: evt.type in (open, openat, openat2) and fd.name in (/etc/shadow, /etc/hostname)
  output: read %fd.name pid=%proc.pid name=%proc.name sess=%proc.is_exec_session root=%proc.exec_session.pid
  priority: INFO
- rule: t session connect
  desc: test
  condition: evt.type = connect and fd.sport = {port}
  output: connect pid=%proc.pid name=%proc.name sess=%proc.is_exec_session root=%proc.exec_session.pid
  priority: INFO
- rule: t session shm exec
  desc: test
  condition: evt.type = execve and proc.exepath startswith /dev/shm/
  output: shm pid=%proc.pid exe=%proc.exepath sess=%proc.is_exec_session root=%proc.exec_session.pid
  priority: INFO
"""


class NsAgent:
    """`workload-agent run` as PID 1 of a new PID namespace, its workload waiting on stdin."""

    def __init__(self, tmp_path: Path, port: int = 0, extra=()):
        self.alerts_path = tmp_path / "alerts.jsonl"
        rules = tmp_path / "test-rules.yaml"
        rules.write_text(TEST_RULES.format(port=port))
        agent = shutil.which("workload-agent")
        cmd = ([agent] if agent else [sys.executable, "-m", "workload_agent"]) + [
            "run", "--json", "--alerts-to", str(self.alerts_path), "--rule-matching", "all",
            "--container-id", CONTAINER_ID, "-r", str(REPO / "rules"), "-r", str(_upstream()),
            "-r", str(rules), *extra, "--", "sh", "-c", "read x; echo workload-done"]
        self.p = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc"] + cmd,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, cwd=str(tmp_path))
        self.scans = "never" not in extra   # --attach-foreign never: no scanner to wait for
        self.pid = self._agent_pid()

    def _agent_pid(self) -> int:
        """The agent's host pid (unshare's child), once its workload runs."""
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                kids = Path(f"/proc/{self.p.pid}/task/{self.p.pid}/children").read_text().split()
                if kids:
                    agent = int(kids[0])
                    # The workload is the tracer thread's child, not the main thread's,
                    # and the scanner runs once its watcher thread does.
                    tasks = list(Path(f"/proc/{agent}/task").iterdir())
                    if any(t.joinpath("children").read_text().split() for t in tasks) and \
                            (not self.scans or
                             any(t.joinpath("comm").read_text().strip() == "wa-watch" for t in tasks)):
                        time.sleep(0.2)   # the scanner's first full look
                        return agent
            except OSError:
                pass
            if self.p.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"the agent did not start: {self.p.communicate(timeout=10)}")

    def enter(self, argv, **kw):
        return subprocess.run(["nsenter", "-t", str(self.pid), "-p", "-m", "--", *argv], **kw)

    def stop(self):
        out, err = self.p.communicate(b"\n", timeout=60)
        return self.p.returncode, out.decode(), err.decode()

    def alerts(self):
        if not self.alerts_path.exists():
            return []
        return [json.loads(line) for line in self.alerts_path.read_text().splitlines() if line.strip()]


def _by_rule(alerts, name):
    return [a for a in alerts if a["rule"] == name]


def _pty_session(agent_pid: int, script: str, timeout: float = 30.0) -> str:
    """An interactive shell in the namespace, on a terminal of its own, fed `script`."""
    pid, fd = pty.fork()
    if pid == 0:   # the child: becomes nsenter with the pty as its controlling terminal
        try:
            os.execvp("nsenter", ["nsenter", "-t", str(agent_pid), "-p", "-m", "--", "sh", "-i"])
        finally:
            os._exit(127)
    out = b""
    os.write(fd, script.encode())
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    os.close(fd)
    return out.decode(errors="replace")


def test_interactive_exec_session_is_attached_marked_and_judged(tmp_path):
    _requirements()
    need(shutil.which("curl") is not None, "needs curl")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]

    def serve():
        try:
            conn, _ = listener.accept()
            conn.close()
        except OSError:
            pass
    threading.Thread(target=serve, daemon=True).start()
    agent = NsAgent(tmp_path, port=port)
    try:
        # Give the shell time to be attached before it runs anything (docker exec -it: a
        # person types); then each command of a session as a person would run it.
        script = ("sleep 0.5\n"
                  "echo ROOT=$$\n"
                  "cat /etc/shadow > /dev/null\n"
                  f"curl -s -m 2 http://127.0.0.1:{port}/ ; echo curl-done\n"
                  "cp /bin/true /dev/shm/wa-attach-$$ && /dev/shm/wa-attach-$$; rm -f /dev/shm/wa-attach-$$\n"
                  "exit\n")
        out = _pty_session(agent.pid, script)
    finally:
        code, stdout, stderr = agent.stop()
        listener.close()
    assert code == 0 and "workload-done" in stdout, stderr
    assert "Traceback" not in stderr
    root = int(out.split("ROOT=", 2)[2].split()[0])   # the echo, after the typed line
    alerts = agent.alerts()
    started = _by_rule(alerts, "Exec session started in container")
    assert len(started) == 1, alerts
    f = started[0]["output_fields"]
    assert f["proc.exec_session.pid"] == root and f["proc.cmdline"] == "sh -i"
    assert f["proc.tty"] not in (0, None) and f["user.name"] == "root"
    assert f["proc.exec_session.kind"] == "exec" and f["proc.pname"] is None
    shell = _by_rule(alerts, "Terminal shell in container")   # upstream, unmodified
    assert [a["output_fields"]["proc.name"] for a in shell] == ["sh"]
    reads = [a["output_fields"] for a in _by_rule(alerts, "t session file read")]
    assert [(r["proc.name"], r["proc.is_exec_session"], r["proc.exec_session.pid"]) for r in reads] == \
        [("cat", True, root)]
    conns = [a["output_fields"] for a in _by_rule(alerts, "t session connect")]
    assert conns and conns[0]["proc.name"] == "curl" and conns[0]["proc.exec_session.pid"] == root
    shm = [a["output_fields"] for a in _by_rule(alerts, "t session shm exec")]
    assert shm and shm[0]["proc.is_exec_session"] is True and shm[0]["proc.exec_session.pid"] == root
    assert _by_rule(alerts, "Execution from /dev/shm")   # upstream's rule on the same exec
    # The shell, and the children it started before it was attached (they join its session).
    assert int(stderr.split("foreign processes: ")[1].split()[0]) >= 1


def test_many_short_exec_sessions_in_a_row(tmp_path):
    _requirements()
    agent = NsAgent(tmp_path)
    n = 15
    try:
        # Each session waits until it is attached (its TracerPid set), then reads: what
        # it starts from then on is traced, however long the attach took.
        script = ('until grep -q "^TracerPid:[[:space:]]*[1-9]" /proc/$$/status; do sleep 0.01; done; '
                  'cat /etc/hostname > /dev/null')
        for _ in range(n):
            p = agent.enter(["sh", "-c", script], capture_output=True, timeout=30)
            assert p.returncode == 0, p.stderr
    finally:
        code, _stdout, stderr = agent.stop()
    assert code == 0 and "Traceback" not in stderr, stderr
    alerts = agent.alerts()
    roots = [a["output_fields"]["proc.exec_session.pid"]
             for a in _by_rule(alerts, "Exec session started in container")]
    assert len(roots) == n and len(set(roots)) == n, alerts
    reads = [a["output_fields"] for a in _by_rule(alerts, "t session file read")]
    assert sorted(r["proc.exec_session.pid"] for r in reads) == sorted(roots)
    attached = int(stderr.split("foreign processes: ")[1].split()[0])
    assert attached >= n   # and the children a session forked before it was attached


def test_sessions_that_end_before_the_agent_looks_cost_nothing(tmp_path):
    _requirements()
    agent = NsAgent(tmp_path)
    try:
        for _ in range(20):
            agent.enter(["true"], check=True, timeout=30)
    finally:
        code, stdout, stderr = agent.stop()
    # No error, no stray output; each one either was attached in time (a session start),
    # gone when the tracer tried (a counted miss), or gone before the scan saw it.
    assert code == 0 and "Traceback" not in stderr and "error" not in stderr.lower(), stderr
    started = len(_by_rule(agent.alerts(), "Exec session started in container"))
    assert started <= 20
    if "foreign processes:" in stderr:
        line = [ln for ln in stderr.splitlines() if "foreign processes:" in ln][0]
        assert f"{started} attached" in line and "not permitted" not in line


def _until_reported(agent) -> str:
    """Shell code that waits (20 s at most) until the agent reported the session: in alert
    mode nothing else tells the session that it was seen."""
    return (f'for i in $(seq 400); do grep -q "Exec session started" {agent.alerts_path} && break; '
            'sleep 0.05; done')


def test_alert_mode_reports_without_tracing(tmp_path):
    _requirements()
    agent = NsAgent(tmp_path, extra=["--attach-foreign", "alert"])
    try:
        p = agent.enter(["sh", "-c", f"{_until_reported(agent)}; cat /etc/hostname > /dev/null"],
                        timeout=30)
        assert p.returncode == 0
    finally:
        code, _stdout, stderr = agent.stop()
    assert code == 0 and "Traceback" not in stderr, stderr
    alerts = agent.alerts()
    assert len(_by_rule(alerts, "Exec session started in container")) == 1, alerts
    assert _by_rule(alerts, "t session file read") == []   # not traced: its syscalls unseen
    assert "reported (not traced)" in stderr


def test_alert_mode_session_seen_before_the_runtime_helper_execs(tmp_path):
    """nsenter and runc exec fork a helper that execs the session's program; the session
    starts at that exec, which alert mode never sees. A helper seen before it (a loaded
    machine) used to leave a session that never started: no alert at all."""
    _requirements()
    agent = NsAgent(tmp_path, extra=["--attach-foreign", "alert"])
    # A script called nsenter is a process whose name is nsenter (its comm) until it execs:
    # a helper slow enough that the scanner surely sees it as one.
    helper = tmp_path / "nsenter"
    helper.write_text(f"#!/bin/sh\nsleep 1.5\nexec sh -c '{_until_reported(agent)}'\n")
    helper.chmod(0o755)
    try:
        p = agent.enter([str(helper)], timeout=30)
        assert p.returncode == 0
    finally:
        code, _stdout, stderr = agent.stop()
    assert code == 0 and "Traceback" not in stderr, stderr
    started = _by_rule(agent.alerts(), "Exec session started in container")
    assert len(started) == 1, agent.alerts()
    f = started[0]["output_fields"]
    assert f["proc.cmdline"].startswith("sh -c for i in") and f["proc.exec_session.kind"] == "exec"


def test_never_mode_leaves_them_alone(tmp_path):
    _requirements()
    agent = NsAgent(tmp_path, extra=["--attach-foreign", "never"])
    try:
        agent.enter(["sh", "-c", "sleep 0.3; cat /etc/hostname > /dev/null"], timeout=30)
    finally:
        code, _stdout, stderr = agent.stop()
    assert code == 0, stderr
    assert agent.alerts() == []
    assert "foreign processes" not in stderr
