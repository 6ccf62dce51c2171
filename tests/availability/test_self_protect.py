"""The agent defends itself: calls from the workload aimed at the agent, and attempts to
escape tracing, are refused (--self-protect deny, the default) or let through
(--self-protect alert), and alerted either way before they take effect. Real attacks
from a real traced workload, as root, in both tracing modes."""
import ctypes
import json
import os
import subprocess
import sys
import textwrap

import pytest

from workload_agent.tracer import guard
from workload_agent.tracer.core import _core, available

pytestmark = pytest.mark.skipif(not available()[0] and os.environ.get("CI") != "true",
                                reason="the C tracer extension is not built")

AGENT = [sys.executable, "-m", "workload_agent", "run", "--json"]
ATTACKED = "Workload agent attacked"
EVASION = "Tracing evasion attempt"

# Each attack prints "<name> <errno name or OK>"; the agent's pid is argv[1] (our parent's parent).
ATTACKS = textwrap.dedent(r"""
    import ctypes, errno, os, signal, struct, sys, threading
    agent = int(sys.argv[1])
    which = sys.argv[2].split(",")
    libc = ctypes.CDLL(None, use_errno=True)
    def report(name, ret):
        err = ctypes.get_errno() if ret == -1 else 0
        print(name, errno.errorcode.get(err, "OK") if ret == -1 else "OK", flush=True)
    def call(name, f):
        try:
            f()
            print(name, "OK", flush=True)
        except OSError as e:
            print(name, errno.errorcode[e.errno], flush=True)
    agent_tid = max(int(t) for t in os.listdir(f"/proc/{agent}/task"))  # a thread other than the main one
    for w in which:
        if w == "kill":
            call(w, lambda: os.kill(agent, signal.SIGKILL if sys.argv[3] == "deny" else 0))
        elif w == "tkill":
            report(w, libc.syscall(200 if os.uname().machine == "x86_64" else 130, agent_tid, 0))
        elif w == "tgkill":
            report(w, libc.syscall(234 if os.uname().machine == "x86_64" else 131, agent, agent_tid, 0))
        elif w == "pidfd_open":
            call(w, lambda: os.close(os.pidfd_open(agent)))
        elif w == "pidfd_send_signal":
            fd = os.open(f"/proc/{agent}", os.O_RDONLY | os.O_DIRECTORY)  # a /proc dir fd is a pidfd too
            call(w, lambda: signal.pidfd_send_signal(fd, 0))
        elif w == "process_vm_readv":
            buf = ctypes.create_string_buffer(8)
            local = (ctypes.c_void_p * 2)(ctypes.addressof(buf), 8)
            remote = (ctypes.c_void_p * 2)(0x10000, 8)
            report(w, libc.process_vm_readv(agent, local, 1, remote, 1, 0))
        elif w == "mem":
            call(w, lambda: open(f"/proc/{agent}/mem", "rb").close())
        elif w == "mem_relative":
            os.chdir(f"/proc/{agent}/task")
            call(w, lambda: open(f"../mem", "rb").close())
        elif w == "ptrace":
            report(w, libc.ptrace(0x4206 if sys.argv[3] == "deny" else 3, agent, 0, 0))  # SEIZE / PEEKUSER
        elif w == "own_mem":
            call(w, lambda: open("/proc/self/mem", "rb").close())
        elif w == "kill_child":
            pid = os.fork()
            if pid == 0:
                signal.pause()
                os._exit(0)
            call(w, lambda: os.kill(pid, signal.SIGKILL))
            os.waitpid(pid, 0)
        elif w == "clone_untraced":
            report(w, libc.syscall(56 if os.uname().machine == "x86_64" else 220, 0x00800000 | 17, 0, 0, 0, 0))
        elif w == "clone3_untraced":
            args = ctypes.create_string_buffer(struct.pack("8Q", 0x00800000, 0, 0, 0, 17, 0, 0, 0))
            report(w, libc.syscall(435, args, 64))
        elif w == "thread":
            t = threading.Thread(target=lambda: None)
            t.start()
            t.join()
            print(w, "OK", flush=True)
""")


def attack(which, *extra, protect="deny", mode_args=()):
    """Runs the attacks under the agent; (results by attack, alerts, stderr, exit status)."""
    # sh's parent is the agent: the attacker is its grandchild, as in a real workload
    script = f'exec {sys.executable} -c "$0" "$PPID" {",".join(which)} {protect}'
    p = subprocess.run(AGENT + ["--self-protect", protect, *mode_args, *extra, "--", "sh", "-c", script, ATTACKS],
                       capture_output=True, text=True, timeout=120)
    results = {}
    alerts = []
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            alerts.append(json.loads(line))
        elif line.strip():
            name, _, res = line.partition(" ")
            results[name] = res
    return results, alerts, p.stderr, p.returncode


AT_AGENT = ["kill", "tkill", "tgkill", "pidfd_open", "pidfd_send_signal", "process_vm_readv", "mem",
            "mem_relative", "ptrace"]
GUARD_OF = {"kill": "signal", "tkill": "signal", "tgkill": "signal", "pidfd_send_signal": "signal",
            "pidfd_open": "pidfd", "process_vm_readv": "memory", "mem": "memory", "mem_relative": "memory",
            "ptrace": "ptrace"}


@pytest.mark.skipif(os.geteuid() != 0, reason="the attacker is root in its container")
def test_attacks_on_the_agent_are_refused_and_alerted(mode_args):
    results, alerts, err, rc = attack(AT_AGENT, mode_args=mode_args)
    assert rc == 0, err
    # every attack failed with EPERM, and the agent is alive to say so (kill was SIGKILL)
    assert results == {name: "EPERM" for name in AT_AGENT}, (results, err)
    hits = [a for a in alerts if a["rule"] == ATTACKED]
    assert sorted(a["output_fields"]["agent.guard"] for a in hits) == sorted(GUARD_OF.values())
    assert all(a["priority"] == "Critical" and a["output_fields"]["agent.denied"] for a in hits)
    assert "mitre_defense_evasion" in hits[0]["tags"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the attacker is root in its container")
def test_alert_mode_lets_the_call_through_after_alerting(mode_args):
    # harmless forms only: kill with signal 0, PTRACE_PEEKUSER (fails: not attached), reads
    which = ["kill", "pidfd_open", "mem"]
    results, alerts, err, rc = attack(which, protect="alert", mode_args=mode_args)
    assert rc == 0, err
    assert results == {"kill": "OK", "pidfd_open": "OK", "mem": "OK"}, err
    hits = [a for a in alerts if a["rule"] == ATTACKED]
    assert len(hits) == 3 and not any(a["output_fields"]["agent.denied"] for a in hits)


def test_the_workload_still_signals_and_reads_itself(mode_args):
    """Nothing aimed elsewhere is touched: signals to its own children, its own memory, threads."""
    results, alerts, err, rc = attack(["kill_child", "own_mem", "thread"], mode_args=mode_args)
    assert rc == 0, err
    assert results == {"kill_child": "OK", "own_mem": "OK", "thread": "OK"}
    assert not [a for a in alerts if a["rule"] in (ATTACKED, EVASION)]


def test_untraced_children_are_refused_and_alerted(mode_args):
    results, alerts, err, rc = attack(["clone_untraced", "clone3_untraced", "thread"], mode_args=mode_args)
    assert rc == 0, err
    # clone3 is refused with ENOSYS (glibc falls back to clone: threads still work)
    assert results == {"clone_untraced": "EPERM", "clone3_untraced": "ENOSYS", "thread": "OK"}
    hits = [a for a in alerts if a["rule"] == EVASION]
    assert sorted(a["output_fields"]["evt.type"] for a in hits) == ["clone", "clone3"]


def test_signals_the_agent_forwards_keep_working(tmp_path, mode_args):
    """TERM sent to the agent still reaches the workload (the agent forwards it itself)."""
    import signal
    import time

    ready = tmp_path / "ready"
    got = tmp_path / "got"
    p = subprocess.Popen(AGENT + mode_args + ["--", sys.executable, "-c",
                         f"import signal, pathlib, time\n"
                         f"signal.signal(signal.SIGTERM, lambda *a: (pathlib.Path({str(got)!r}).write_text('TERM'), exit(7)))\n"
                         f"pathlib.Path({str(ready)!r}).write_text('')\n"
                         f"time.sleep(60)"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while not ready.exists():
        assert time.time() < deadline and p.poll() is None
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    assert p.wait(30) == 7
    assert got.read_text() == "TERM"


def test_guard_tables_match_the_core():
    ffi, lib = _core()
    assert (guard.G_ALWAYS, guard.G_ARG_EQ, guard.G_ARG_MASK, guard.G_MEM_MASK, guard.G_AGENT_TASK,
            guard.G_AGENT_PIDFD, guard.G_AGENT_PROCFILE) == (
        lib.WA_G_ALWAYS, lib.WA_G_ARG_EQ, lib.WA_G_ARG_MASK, lib.WA_G_MEM_MASK, lib.WA_G_AGENT_TASK,
        lib.WA_G_AGENT_PIDFD, lib.WA_G_AGENT_PROCFILE)
    assert (guard.GR_DENY, guard.GR_RECORD) == (lib.WA_GR_DENY, lib.WA_GR_RECORD)
    from workload_agent.events import records as R
    assert (R.F_GUARD, R.F_DENIED) == (lib.WA_F_GUARD, lib.WA_F_DENIED)
    rules = guard.guard_rules("x86_64", ["openat"])
    assert len(rules) <= lib.WA_GUARD_MAX_RULES
    assert guard.guard_rules("aarch64", ["openat"])  # every name resolves on aarch64 too


# i386 getpid through int 0x80, from executable memory: the 32-bit ABI of an x86_64 kernel.
INT80 = textwrap.dedent("""
    import ctypes, mmap
    m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    m.write(b"\\xb8\\x14\\x00\\x00\\x00\\xcd\\x80\\xc3")   # mov eax, 20; int 0x80; ret
    f = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))
    print(f(), f())
""")


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="int 0x80 is the x86_64 kernel's 32-bit entry")
@pytest.mark.parametrize("knob", ["decode", "deny"])
def test_foreign_arch_deny(mode_args, knob):
    p = subprocess.run(AGENT + ["--foreign-arch", knob, *mode_args, "--", sys.executable, "-c", INT80],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    # Alerts and the workload share stdout (other rules may fire too, in any order): the
    # workload's is the one line that is not an alert.
    lines = p.stdout.splitlines()
    (printed,) = [x for x in lines if not x.startswith("{")]
    first, second = map(int, printed.split())
    alerts = [json.loads(x) for x in lines if x.startswith("{") and "Foreign ABI" in x]
    if knob == "deny":
        assert first == second == -38  # ENOSYS
        assert len(alerts) == 1  # once per process and syscall
        assert alerts[0]["priority"] == "Critical" and alerts[0]["output_fields"]["evt.type"] == "getpid"
    else:
        assert first == second > 0 and not alerts
