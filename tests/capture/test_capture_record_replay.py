"""Record real traced workloads, replay them: the alerts are the live run's, line for line."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

import pytest

from tests.rules.upstream_files import rules_dir

AGENT = [sys.executable, "-m", "workload_agent"]

RULES_A = """
- list: sensitive_files
  items: [/etc/shadow, /etc/hostname]
- rule: Sensitive file read
  desc: a sensitive file opened for reading
  condition: evt.type in (open, openat, openat2) and evt.is_open_read = true and fd.name in (sensitive_files)
  output: "sensitive file read (file=%fd.name proc=%proc.name parent=%proc.pname cmd=%proc.cmdline user=%user.name)"
  priority: WARNING
  tags: [filesystem]
- rule: Write below etc
  desc: a file below the test root's etc opened for writing
  condition: evt.type in (open, openat, openat2, creat) and evt.is_open_write = true and fd.name startswith @ROOT@/etc/
  output: "write below etc (file=%fd.name dir=%fd.directory proc=%proc.name flags=%evt.arg.flags)"
  priority: ERROR
- rule: Shell spawned by shell
  desc: a shell whose parent is a shell
  condition: evt.type = execve and proc.name in (sh, bash, dash) and proc.pname in (sh, bash, dash)
  output: "nested shell (proc=%proc.name parent=%proc.pname gparent=%proc.aname[2] exe=%proc.exepath args=%proc.args)"
  priority: NOTICE
- rule: Connect to marker port
  desc: outbound connection to the test's port
  condition: evt.type = connect and fd.sport = @PORT@
  output: "connect (conn=%fd.name proto=%fd.l4proto proc=%proc.name)"
  priority: NOTICE
"""

# B changes A: one rule more, one output changed, one rule gone.
RULES_B = """
- rule: Sensitive file read
  desc: changed output
  condition: evt.type in (open, openat, openat2) and evt.is_open_read = true and fd.name in (/etc/shadow)
  output: "read of %fd.name by %proc.name (exe %proc.exepath, tty %proc.tty, loginuid %user.loginuid)"
  priority: CRITICAL
- rule: Any exec
  desc: rule B adds
  condition: evt.type = execve and proc.name != python3
  output: "exec %proc.cmdline under %proc.pname (cwd %proc.cwd)"
  priority: INFO
- rule: Files deleted or renamed
  desc: unlink and rename in the test root
  condition: evt.type in (unlink, unlinkat, rename, renameat, renameat2, mkdir, mkdirat) and evt.res = 0
  output: "fs change %evt.type (%evt.args) by %proc.name"
  priority: NOTICE
"""


@pytest.fixture
def env(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    a = tmp_path / "a.yaml"
    a.write_text(RULES_A.replace("@ROOT@", str(root)).replace("@PORT@", str(port)))
    b = tmp_path / "b.yaml"
    b.write_text(RULES_B)
    yield {"tmp": tmp_path, "root": root, "port": port, "a": str(a), "b": str(b)}
    listener.close()


def scenarios(e):
    root, port = e["root"], e["port"]
    return {
        "shadow": ["sh", "-c", "cat /etc/shadow >/dev/null 2>&1; head -c1 /etc/hostname >/dev/null"],
        "shell": ["sh", "-c", "sh -c 'bash -c \"sh -c true\"'; true"],
        "etc_write": ["sh", "-c", f"echo x > {root}/etc/passwd; mkdir {root}/etc/d; "
                                  f"mv {root}/etc/passwd {root}/etc/d/p; rm {root}/etc/d/p"],
        "connect": [sys.executable, "-c", f"import socket; socket.create_connection(('127.0.0.1', {port})).close(); "
                                          f"open('/etc/hostname').read()"],
    }


def agent(*args, check=True, **kw):
    p = subprocess.run(AGENT + list(args), capture_output=True, timeout=120, **kw)
    if check:
        assert p.returncode == 0, p.stderr.decode()
    return p


def record(e, name, cmd, rules, *extra):
    cap = str(e["tmp"] / f"{name}.wacap")
    live = e["tmp"] / f"{name}.live"
    agent("record", "-o", cap, "--alerts-to", str(live), "-r", rules, *extra, "--", *cmd)
    return cap, live.read_text()


@pytest.mark.parametrize("fmt", [[], ["--json"]], ids=["text", "json"])
@pytest.mark.parametrize("scenario", ["shadow", "shell", "etc_write", "connect"])
def test_replay_prints_what_the_live_run_printed(env, scenario, fmt, mode_args):
    cap, live = record(env, scenario, scenarios(env)[scenario], env["a"], "--rule-matching", "all",
                       *fmt, *mode_args)
    assert live, f"{scenario}: the live run raised nothing, the comparison would be empty"
    replayed = agent("replay", cap, "-r", env["a"], "--rule-matching", "all", *fmt)
    assert replayed.stdout.decode() == live
    assert replayed.stderr == b""


def test_upstream_falco_rules_replay_like_live(env):
    upstream = str(rules_dir() / "falco_rules.yaml")
    cmd = ["sh", "-c", "cat /etc/shadow >/dev/null 2>&1; sh -c 'ls /root >/dev/null 2>&1'; true"]
    cap, live = record(env, "upstream", cmd, upstream, "--json", "--rule-matching", "all")
    assert live
    assert agent("replay", cap, "-r", upstream, "--json", "--rule-matching", "all").stdout.decode() == live


def _normalized(text: str):
    """Two live runs differ in times and pids; everything else must be equal."""
    out = []
    for line in text.splitlines():
        d = json.loads(line)
        d.pop("time")
        d["output_fields"].pop("evt.time")
        out.append(d)
    return out


@pytest.mark.parametrize("scenario", ["shadow", "shell", "etc_write"])
def test_a_capture_recorded_with_rules_a_replays_rules_b_like_a_live_run_with_b(env, scenario):
    cmd = scenarios(env)[scenario]
    cap, live_a = record(env, scenario, cmd, env["a"], "--json")
    live_b = agent("run", "--json", "--alerts-to", str(env["tmp"] / "b.live"), "-r", env["b"], "--", *cmd)
    live_b = (env["tmp"] / "b.live").read_text()
    replay_b = agent("replay", cap, "-r", env["b"], "--json").stdout.decode()
    assert _normalized(replay_b) == _normalized(live_b)
    assert _normalized(replay_b) != _normalized(live_a)  # B really is another ruleset
    assert live_b


def test_a_cut_capture_replays_up_to_the_break_and_says_so(env):
    cmd = ["sh", "-c", "for i in 1 2 3 4 5 6; do cat /etc/shadow >/dev/null; sleep 0.3; done"]
    cap, live = record(env, "cut", cmd, env["a"])
    lines = live.splitlines()
    assert len(lines) == 6
    data = open(cap, "rb").read()
    cut = str(env["tmp"] / "cut-short.wacap")
    with open(cut, "wb") as f:
        f.write(data[:len(data) * 2 // 3])
    p = agent("replay", cut, "-r", env["a"])
    got = p.stdout.decode().splitlines()
    assert got == lines[:len(got)]
    assert len(got) < 6
    err = p.stderr.decode()
    assert "incomplete" in err and cut in err and f"byte {len(data) * 2 // 3}" in err


def test_recorder_killed_mid_run_leaves_a_replayable_capture(env):
    cap = str(env["tmp"] / "killed.wacap")
    p = subprocess.Popen(AGENT + ["record", "-o", cap, "--alerts-to", str(env["tmp"] / "k.live"), "-r", env["a"],
                                  "--", "sh", "-c", "cat /etc/shadow >/dev/null; sleep 30"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        import time

        deadline = time.time() + 20
        while time.time() < deadline and not (env["tmp"] / "k.live").read_text() if (env["tmp"] / "k.live").exists() else True:
            time.sleep(0.1)
        time.sleep(0.3)  # the recorder writes a chunk per batch it is handed
    finally:
        os.killpg(p.pid, 9)
        p.wait()
    r = agent("replay", cap, "-r", env["a"])
    assert "sensitive file read (file=/etc/shadow" in r.stdout.decode()
    assert "incomplete" in r.stderr.decode()


def test_capture_info_and_events(env):
    cap, _ = record(env, "info", scenarios(env)["shell"], env["a"])
    info = json.loads(agent("capture", "info", cap, "--json").stdout)
    assert info["complete"] and info["events"] == sum(info["event_types"].values())
    assert info["event_types"]["execve"] == 4 and info["processes"] >= 3  # bash execs its last command in place
    assert info["last_ts"] >= info["first_ts"] > 0
    text = agent("capture", "info", cap).stdout.decode()
    assert f"events:      {info['events']}" in text and "execve" in text
    lines = agent("capture", "events", cap, "--filter", "evt.type = execve and proc.name = bash").stdout.decode()
    assert len(lines.splitlines()) == 1 and " bash (" in lines and "execve" in lines
    js = [json.loads(x) for x in agent("capture", "events", cap, "--json", "-f", "evt.type=execve").stdout.splitlines()]
    assert [d["proc.name"] for d in js][:4] == ["sh", "sh", "bash", "sh"]
    bad = agent("capture", "events", cap, "--filter", "proc.nme = x", check=False)
    assert bad.returncode == 2 and b"proc.nme" in bad.stderr and b"Traceback" not in bad.stderr


def test_replay_warns_about_syscalls_the_capture_lacks(env):
    cap, _ = record(env, "narrow", ["true"], env["a"], "--syscalls", "execve,openat")
    p = agent("replay", cap, "-r", env["b"])
    assert "did not record (mkdir, mkdirat, open, openat2, rename, renameat, renameat2, unlink, unlinkat)" \
        in p.stderr.decode()
