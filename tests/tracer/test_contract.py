"""The workload's contract: it behaves as if the agent were not there."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

AGENT = [sys.executable, "-m", "workload_agent", "run"]


@pytest.fixture(autouse=True)
def _alerts_to_a_file(tmp_path, monkeypatch):
    """The contract is about the workload's own stdio, and alerts go to stdout by default:
    they go to a file here, so that a rule that fires (a checkout under /tmp makes its
    interpreter "executed from a temporary directory") is not read as the workload's
    output. A test that passes its own environment leaves this out."""
    monkeypatch.setenv("WORKLOAD_AGENT_ALERTS_TO", str(tmp_path / "alerts"))


def run_agent(args, mode_args=(), **kw):
    return subprocess.run(AGENT + list(mode_args) + ["--"] + list(args), capture_output=True,
                          timeout=60, **kw)


@pytest.mark.parametrize("code", [0, 7])
def test_exit_status(code, mode_args):
    assert run_agent(["sh", "-c", f"exit {code}"], mode_args).returncode == code


def test_signal_death_is_128_plus_n(mode_args):
    assert run_agent(["sh", "-c", "kill -9 $$"], mode_args).returncode == 137
    assert run_agent(["sh", "-c", "kill -TERM $$"], mode_args).returncode == 128 + signal.SIGTERM


def test_stdio_passes_through(mode_args):
    p = run_agent(["sh", "-c", "cat; echo to-stderr >&2"], mode_args, input=b"piped input\n")
    assert p.stdout == b"piped input\n"
    assert p.stderr == b"to-stderr\n"


def test_environment_unchanged(mode_args):
    env = {"PATH": os.environ["PATH"], "ODD VAR": "a=b\tc", "EMPTY": "", "HOME": "/nowhere"}
    native = subprocess.run(["env", "-0"], capture_output=True, env=env).stdout
    traced = run_agent(["env", "-0"], mode_args, env=dict(env, PYTHONPATH=os.getcwd())).stdout
    strip = lambda b: sorted(x for x in b.split(b"\0") if x and not x.startswith(b"PYTHONPATH="))
    assert strip(traced) == strip(native)


def test_command_not_found_and_not_executable(tmp_path):
    p = run_agent(["definitely-not-a-command-xyz"])
    assert p.returncode == 127
    assert b"command not found" in p.stderr
    f = tmp_path / "script"
    f.write_text("#!/bin/sh\necho hi\n")
    f.chmod(0o644)
    p = run_agent([str(f)])
    assert p.returncode == 126
    assert b"Permission denied" in p.stderr


HANDLER = textwrap.dedent("""
    import signal, sys, time
    got = []
    for s in (signal.SIGUSR1, signal.SIGTERM, signal.SIGHUP, signal.SIGWINCH):
        signal.signal(s, lambda n, f: got.append(n))
    print("ready", flush=True)
    deadline = time.time() + 20
    while len(got) < 4 and time.time() < deadline:
        time.sleep(0.01)
    print(" ".join(signal.Signals(n).name for n in got), flush=True)
    sys.exit(3)
""")


def test_signals_sent_to_agent_reach_the_workload(mode_args):
    extra = mode_args
    p = subprocess.Popen(AGENT + extra + ["--", sys.executable, "-c", HANDLER], stdout=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"ready\n"
        for s in (signal.SIGUSR1, signal.SIGTERM, signal.SIGHUP, signal.SIGWINCH):
            p.send_signal(s)
            time.sleep(0.1)
        out = p.stdout.readline().decode().split()
        # Each arrives once; their order is not part of the contract: standard signals
        # pending together are delivered lowest number first (seen on a slow arm64 guest).
        assert sorted(out) == sorted(["SIGUSR1", "SIGTERM", "SIGHUP", "SIGWINCH"])
        assert p.wait(20) == 3
    finally:
        p.kill()


def _children(pid):
    # The workload is a child of the agent's tracer thread, not of its main thread.
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def _state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_sigstop_sigcont_of_the_workload(mode_args):
    extra = mode_args
    script = "import time\nfor i in range(30):\n    print(i, flush=True)\n    time.sleep(0.05)\n"
    p = subprocess.Popen(AGENT + extra + ["--", sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"0\n"
        (child,) = _children(p.pid)
        os.kill(child, signal.SIGSTOP)
        deadline = time.time() + 5
        while _state(child) not in ("T", "t") and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)
        # Still stopped: the group-stop was kept (PTRACE_LISTEN shows as a tracing stop).
        assert _state(child) in ("T", "t")
        os.kill(child, signal.SIGCONT)
        rest = p.stdout.read().split()
        assert rest[-1] == b"29"
        assert p.wait(20) == 0
    finally:
        p.kill()


def test_orphans_are_reaped_as_pid1():
    if os.geteuid() != 0 or not os.path.exists("/usr/bin/unshare"):
        pytest.skip("needs root and unshare to give the agent PID 1")
    # The grandchild is orphaned, reparented to the agent (PID 1), exits; the agent must reap it.
    script = ("sh -c 'sleep 0.2 & exit 0'; sleep 1; "
              "for s in /proc/[0-9]*/stat; do cat $s 2>/dev/null; echo; done")
    p = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc"] + AGENT + ["--", "sh", "-c", script],
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    states = [line.rsplit(b")", 1)[1].split()[0] for line in p.stdout.splitlines() if b")" in line]
    assert states, p.stdout
    assert b"Z" not in states


def test_pid1_exits_when_main_process_exits():
    if os.geteuid() != 0 or not os.path.exists("/usr/bin/unshare"):
        pytest.skip("needs root and unshare to give the agent PID 1")
    t0 = time.time()
    p = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc"] + AGENT +
                       ["--", "sh", "-c", "sleep 30 & exit 4"], capture_output=True, timeout=60)
    assert p.returncode == 4
    assert time.time() - t0 < 15


def test_instrument_is_run_configured_from_the_environment(tmp_path):
    import shutil

    exe = shutil.which("instrument")
    if exe is None:
        pytest.skip("the `instrument` console script is not installed (pip install .)")
    p = subprocess.run([exe, "sh", "-c", "echo out; exit 3"], capture_output=True, timeout=60)
    assert (p.returncode, p.stdout) == (3, b"out\n")
    bad = subprocess.run([exe, "sh", "-c", "exit 0"], capture_output=True, timeout=60,
                         env=dict(os.environ, SYSDIG_PRIORITY="sometimes"))
    assert bad.returncode == 0 and b"SYSDIG_PRIORITY" in bad.stderr  # bad config: warned, still runs
    assert subprocess.run([exe], capture_output=True).returncode == 2
