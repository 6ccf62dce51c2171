"""The C core seizes a process it did not start, at Python's request: its first record is
the ATTACH record with its identity read at the attach stop, its children are followed in
full-ptrace mode, and a process that is gone by then is a counted miss, not an error."""
from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from workload_agent.events import capture_kinds as K, facts
from workload_agent.events import records as R
from workload_agent.events.display import syscall_name
from workload_agent.runner import default_capture
from workload_agent.tracer.core import Tracer, available

from .conftest import need

pytestmark = pytest.mark.skipif(not available()[0], reason="tracing unavailable here")


def _can_seize_strangers() -> bool:
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as fh:
            scope = int(fh.read())
    except OSError:
        scope = 0
    return os.geteuid() == 0 or scope == 0


class Run:
    """A traced workload (`sh -c 'read x'`: it waits for our newline) and its records."""

    def __init__(self):
        sh = shutil.which("sh")
        self.t = Tracer(["sh", "-c", "read x"], path=sh, syscalls=default_capture(None))
        self.r, w = os.pipe()
        # The workload's stdin is ours: give it a pipe for the duration.
        saved = os.dup(0)
        os.dup2(self.r, 0)
        try:
            self.pid = self.t.start()
        finally:
            os.dup2(saved, 0)
            os.close(saved)
        self.w = w
        self.records = []

    def pump(self, until, timeout=10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.t.wait(0.05)
            self.records += self.t.read()
            if until(self.records):
                return True
        return False

    def attach(self, pid: int) -> None:
        """Ask the tracer for pid and wait for its ATTACH record."""
        assert self.t.attach(pid)
        assert self.pump(lambda recs: any(r.kind == R.K_ATTACH and r.tgid == pid for r in recs))

    def finish(self):
        os.write(self.w, b"\n")
        while self.t.done() is None:
            self.t.wait(0.05)
            self.records += self.t.read()
        self.records += self.t.read()
        stats = self.t.attach_stats()
        self.t.close()
        os.close(self.w)
        os.close(self.r)
        return stats

    def of(self, tgid):
        return [r for r in self.records if r.tgid == tgid]


def _stranger(tmp_path, script: str):
    """A process that is not our child (its parent exits at once), blocked on a fifo
    until the test writes to it; returns (pid, fifo path)."""
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    out = subprocess.run(["sh", "-c", f"(exec sh -c 'read x < {fifo}; {script}') >/dev/null 2>&1 & echo $!"],
                         capture_output=True, text=True, check=True, start_new_session=True)
    return int(out.stdout.strip()), fifo


def test_first_record_is_the_attach_with_facts_read_at_the_stop_and_children_are_followed(tmp_path):
    need(_can_seize_strangers(), "needs root or yama ptrace_scope 0 to seize a process we did not start")
    marker = tmp_path / "child-ran"
    pid, fifo = _stranger(tmp_path, f"cat /etc/hostname > {marker}; exit 3")
    run = Run()
    try:
        run.attach(pid)
        with open(fifo, "w") as fh:
            fh.write("go\n")
        assert run.pump(lambda recs: any(r.kind == R.K_EXIT and r.tid == pid for r in recs))
    finally:
        stats = run.finish()
    mine = run.of(pid)
    first = mine[0]
    assert first.kind == R.K_ATTACH and first.ret == 0 and first.tid == pid
    assert first.args[0] and first.args[0] <= first.ts_enter     # when it was asked for
    pf = facts.proc_facts(first.blobs)
    assert pf is not None and pf.has_stat and pf.has_status
    assert pf.comm == "sh" and pf.uids[1] == os.geteuid() and pf.tty == 0   # new session: no tty
    exe = facts.link_text(first.blobs, K.SLOT_EXE)
    assert exe == os.path.realpath(shutil.which("sh"))
    argv = first.blobs[K.SLOT_CMDLINE].data.split(b"\0")
    assert argv[:2] == [b"sh", b"-c"]
    assert b"PATH=" in first.blobs[K.SLOT_ENVIRON].data
    # The child it forked is followed (no filter of ours: full-ptrace mode), and so is its exec.
    clones = [r for r in mine if r.kind == R.K_CLONE and not r.flags & R.F_THREAD]
    assert clones, mine
    child = clones[0].extra
    theirs = run.of(child)
    assert any(r.kind == R.K_EXEC for r in theirs)
    opens = [r for r in theirs if r.kind == R.K_SYSCALL and syscall_name(r.arch, r.nr) in ("open", "openat")
             and r.blobs.get(1) is not None and r.blobs[1].data.startswith(b"/etc/hostname")]
    assert opens, [(syscall_name(r.arch, r.nr) if r.kind == R.K_SYSCALL else r.kind) for r in theirs]
    exits = [r for r in mine if r.kind == R.K_EXIT and r.tid == pid]
    assert os.WEXITSTATUS(exits[0].extra & 0xFFFF) == 3   # its own exit status, untouched
    assert marker.read_text().strip()
    assert stats["attached"] == 1 and stats["gone"] == 0


def test_a_process_gone_before_the_attach_is_a_counted_miss():
    p = subprocess.Popen(["true"])
    p.wait()
    run = Run()
    try:
        run.attach(p.pid)
    finally:
        stats = run.finish()
    att = [r for r in run.records if r.kind == R.K_ATTACH]
    assert [(r.tgid, r.ret) for r in att] == [(p.pid, -3)]   # ESRCH
    assert stats["gone"] == 1 and stats["attached"] == 0


def test_asking_for_a_workload_process_changes_nothing():
    run = Run()
    try:
        assert run.t.attach(run.pid)
        assert run.pump(lambda recs: run.t.attach_stats()["known"] == 1, timeout=5)
    finally:
        stats = run.finish()
    assert not [r for r in run.records if r.kind == R.K_ATTACH]
    assert stats["known"] == 1 and stats["attached"] == 0


def test_the_attached_process_runs_on_when_tracing_ends(tmp_path):
    need(_can_seize_strangers(), "needs root or yama ptrace_scope 0 to seize a process we did not start")
    marker = tmp_path / "after"
    pid, fifo = _stranger(tmp_path, f"echo done > {marker}")
    run = Run()
    try:
        run.attach(pid)
    finally:
        run.finish()   # the tracer thread is gone: the process is detached, not killed
    with open(fifo, "w") as fh:
        fh.write("go\n")
    end = time.monotonic() + 10
    while time.monotonic() < end and not marker.exists():
        time.sleep(0.02)
    assert marker.read_text() == "done\n"


def test_alert_mode_notice_keeps_the_facts_of_the_moment_it_was_seen(tmp_path):
    """Alert mode reads a foreign process from /proc when the scanner notices it: the
    record keeps its identity after the process has exited and its executable is gone,
    however late the consumer gets to it."""
    from workload_agent.rules.event import Container
    from workload_agent.state import StateTracker

    exe = tmp_path / "short-lived-tool"
    shutil.copy("/bin/sleep", exe)
    stranger = subprocess.Popen([str(exe), "0.3"])
    run = Run()
    try:
        time.sleep(0.05)
        rec = run.t.notice(stranger.pid)
        assert rec is not None and rec.kind == R.K_ATTACH and rec.tgid == stranger.pid
        stranger.wait()
        exe.unlink()
        time.sleep(0.2)   # a late consumer: the process and its file are both gone
        tracker = StateTracker(Container(id="abcdef012345", name="app", image="app:1",
                                         repository="app", tag="1", privileged=False))
        ev = tracker.process(rec)
        assert ev is not None and ev.type == "execve"
        assert ev.proc.exepath == str(exe) and ev.proc.args == ["0.3"]
        assert ev.proc.exec_session is not None and ev.proc.exec_session.pid == stranger.pid
        assert run.t.notice(stranger.pid) is None   # gone: nothing to read now
    finally:
        stranger.kill()
        run.finish()
