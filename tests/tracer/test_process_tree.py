"""Following the whole process tree: threads, fork, vfork, exec from a thread, storms."""
import os
import subprocess
import sys
import textwrap

import pytest

from workload_agent.events import records as R


def test_exec_from_non_leader_thread(trace, mode, tmp_path):
    script = textwrap.dedent("""
        import os, threading, time
        def go():
            os.execv("/bin/sh", ["sh", "-c", "exit 5"])
        threading.Thread(target=go).start()
        time.sleep(30)
    """)
    code, c = trace([sys.executable, "-c", script], use_seccomp=(mode == "seccomp"))
    assert code == 5
    execs = c.of_kind(R.K_EXEC)
    # The python exec, then sh exec'd by a non-leader thread: its tid became the tgid.
    thread_exec = [e for e in execs if e.extra != e.tid]
    assert len(thread_exec) == 1
    e = thread_exec[0]
    assert e.tid == e.tgid
    clones = [r for r in c.of_kind(R.K_CLONE) if r.flags & R.F_THREAD]
    assert e.extra in [r.extra for r in clones]  # the former tid was a thread we saw being born
    sh = [r for r in c.syscalls("execve") if r.blobs.get(0) and r.blobs[0].data == b"/bin/sh"]
    assert sh and sh[0].ret == 0 and sh[0].has_exit


def test_vfork_and_posix_spawn(trace, mode):
    script = textwrap.dedent("""
        import os
        pid = os.posix_spawn("/bin/sh", ["sh", "-c", "exit 9"], os.environ)
        _, st = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(st) == 9
        r = os.system("exit 4")
        raise SystemExit(11)
    """)
    code, c = trace([sys.executable, "-c", script], use_seccomp=(mode == "seccomp"))
    assert code == 11
    exits = {r.tid: r.extra for r in c.of_kind(R.K_EXIT)}
    shells = [r for r in c.syscalls("execve") if r.blobs.get(1) and r.blobs[1].data.startswith(b"sh\0-c\0")]
    assert len(shells) == 2
    codes = sorted(os.WEXITSTATUS(exits[r.tid]) for r in shells)
    assert codes == [4, 9]


def test_fork_storm_of_500(trace):
    code, c = trace(["sh", "-c", "i=0; while [ $i -lt 500 ]; do /bin/true & i=$((i+1)); done; wait"])
    assert code == 0
    trues = {r.tid for r in c.syscalls("execve") if r.blobs.get(0) and r.blobs[0].data == b"/bin/true"}
    assert len(trues) == 500
    exited = {r.tid for r in c.of_kind(R.K_EXIT) if os.WIFEXITED(r.extra) and os.WEXITSTATUS(r.extra) == 0}
    assert trues <= exited
    born = {r.extra for r in c.of_kind(R.K_CLONE)}
    assert trues <= born
    assert c.stats["drops"] == 0


def test_threads_are_marked_and_share_tgid(trace):
    script = "import threading\nts=[threading.Thread(target=open, args=('/etc/hostname',)) for _ in range(4)]\n" \
             "[t.start() for t in ts]\n[t.join() for t in ts]\n"
    code, c = trace([sys.executable, "-c", script])
    assert code == 0
    threads = [r for r in c.of_kind(R.K_CLONE) if r.flags & R.F_THREAD]
    assert len(threads) >= 4
    opens = [r for r in c.syscalls("openat") if r.blobs[1].data == b"/etc/hostname"]
    assert len(opens) == 4
    main = {r.tgid for r in opens}
    assert len(main) == 1 and {r.tid for r in opens} <= {t.extra for t in threads}


def test_untraced_syscalls_leave_no_record(trace):
    code, c = trace(["sh", "-c", "cat /etc/hostname >/dev/null"], syscalls=["execve"])
    assert code == 0
    names = {r.nr for r in c.syscalls()}
    assert len(c.syscalls("execve")) == 2 and len(names) == 1
