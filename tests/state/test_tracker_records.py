"""StateTracker on hand-built records: state first, then the event (libsinsp's order)."""
from __future__ import annotations

import os
import shutil
import time

import pytest

from workload_agent.events import capture_kinds as K
from workload_agent.rules.compiler import compile_condition
from workload_agent.rules.condition import parse_condition
from workload_agent.rules.event import Container
from workload_agent.rules.output import compile_output
from workload_agent.state import StateTracker, UserDb

from .records import FAKE, clone, exec_, execve, exit_, openat, path, sockaddr_in, syscall

ME = os.getpid()


def field(ev, name):
    return compile_output("%" + name).fields(ev)[name]


def check(ev, cond):
    return compile_condition(parse_condition(cond))(ev)


@pytest.fixture
def users(tmp_path):
    (tmp_path / "passwd").write_text(
        "toor:x:0:0:root:/root:/bin/bash\n"
        "alice:x:1000:1000:Alice:/home/alice:/bin/zsh\n"
        "broken line\n"
        + ("runner:x:%d:0::/tmp:/bin/sh\n" % os.geteuid() if os.geteuid() not in (0, 1000) else ""))
    (tmp_path / "group").write_text("wheel:x:0:\nstaff:x:1000:alice\n")
    return UserDb(str(tmp_path / "passwd"), str(tmp_path / "group"))


@pytest.fixture
def tracker(users):
    return StateTracker(Container(id="abcdef012345", name="web"), agent_pid=ME, users=users,
                        start_ns=time.time_ns())


def spawn(tracker, pid=FAKE, parent=ME, image=("/bin/sh", ["sh", "-c", "x"])):
    """A child of ``parent`` that has exec'd ``image``; returns the execve event."""
    assert tracker.process(clone(parent, pid)).proc.pid == pid
    assert tracker.process(exec_(pid)) is None
    return tracker.process(execve(pid, image[0], image[1]))


def test_execve_success_describes_the_new_image(tracker):
    ev = spawn(tracker, image=("/bin/sh", ["sh", "-c", "cat /etc/shadow"]))
    assert ev.type == "execve" and ev.res == 0
    assert field(ev, "proc.name") == "sh"
    assert field(ev, "proc.exe") == "sh"
    assert field(ev, "proc.args") == "-c cat /etc/shadow"
    assert field(ev, "proc.cmdline") == "sh -c cat /etc/shadow"
    assert field(ev, "proc.exepath") == os.path.realpath("/bin/sh")
    assert field(ev, "proc.pid") == FAKE and field(ev, "proc.ppid") == ME
    me = open(f"/proc/{ME}/comm").read().strip()
    assert field(ev, "proc.pname") == me
    assert field(ev, "proc.env") == "PATH=/bin"
    assert field(ev, "container.id") == "abcdef012345"
    assert field(ev, "evt.arg.exe") == "sh"
    assert check(ev, "evt.type = execve and proc.pname = %s and proc.aname[1] = %s" % (me, me))


def test_failed_execve_keeps_the_old_identity(tracker):
    spawn(tracker)
    ev = tracker.process(execve(FAKE, "/nonexistent/tool", ["tool", "-x"], ret=-2))
    assert ev.type == "execve" and ev.res == -2
    assert field(ev, "proc.name") == "sh" and field(ev, "proc.args") == "-c x"
    assert field(ev, "evt.res") == "ENOENT"


def test_chained_execs_build_ancestry(tracker):
    spawn(tracker, FAKE, image=("/bin/bash", ["bash"]))
    spawn(tracker, FAKE + 1, FAKE, image=("/bin/sh", ["sh", "-c", "id"]))
    ev = spawn(tracker, FAKE + 2, FAKE + 1, image=("/usr/bin/id", ["id"]))
    assert field(ev, "proc.pname") == "sh"
    assert field(ev, "proc.aname[2]") == "bash"
    assert field(ev, "proc.pcmdline") == "sh -c id"
    assert check(ev, "proc.aname = bash")
    assert not check(ev, "proc.aname = id")  # ancestors only, never the process itself


def test_open_puts_the_fd_in_the_table_and_the_event(tracker):
    spawn(tracker)
    ev = tracker.process(openat(FAKE, "/etc//shadow", 3, os.O_RDONLY))
    assert (field(ev, "fd.num"), field(ev, "fd.name"), field(ev, "fd.typechar")) == \
        (3, "/etc/shadow", "f")
    assert field(ev, "fd.directory") == "/etc" and field(ev, "fd.filename") == "shadow"
    assert field(ev, "fd.type") == "file"
    assert field(ev, "evt.arg.fd") == "<f>/etc/shadow"
    assert ev.proc.fds[3].name == "/etc/shadow"


def test_relative_open_after_chdir_and_failed_open(tracker):
    spawn(tracker)
    ev = tracker.process(syscall("chdir", FAKE, 0, (1,), {0: path("/var/log/../lib")}))
    assert ev.type == "chdir" and ev.fd is None
    assert field(ev, "proc.cwd") == "/var/lib/"
    ev = tracker.process(openat(FAKE, "dpkg/status", -13))
    assert field(ev, "fd.num") == -1
    assert field(ev, "fd.name") == "/var/lib/dpkg/status"
    assert field(ev, "fd.directory") == "/var/lib/dpkg"
    assert field(ev, "fd.type") is None and field(ev, "fd.filename") is None
    assert field(ev, "fd.typechar") == "f"
    assert field(ev, "evt.arg.name") == "/var/lib/dpkg/status"


def test_directory_open_and_at_fdcwd_dirfd_events(tracker):
    spawn(tracker)
    flags = os.O_RDONLY | os.O_DIRECTORY
    ev = tracker.process(openat(FAKE, "/tmp", 4, flags))
    assert field(ev, "fd.type") == "directory" and field(ev, "fd.directory") == "/tmp"
    ev = tracker.process(syscall("unlinkat", FAKE, 0, (4, 1, 0), {1: path("x")}))
    assert field(ev, "fd.num") == 4 and field(ev, "fd.name") == "/tmp"
    assert field(ev, "evt.arg.name") == "/tmp/x"
    ev = tracker.process(syscall("unlinkat", FAKE, 0, (-100, 1, 0), {1: path("y")}))
    assert field(ev, "fd.num") == -100 and field(ev, "fd.name") == ""
    ev = tracker.process(syscall("unlink", FAKE, 0, (1,), {0: path("/tmp/z")}))
    assert ev.fd is None and field(ev, "fd.name") is None


def test_close_keeps_the_fd_until_the_next_record(tracker):
    spawn(tracker)
    tracker.process(openat(FAKE, "/etc/passwd", 3))
    ev = tracker.process(syscall("close", FAKE, None, (3,), no_exit=True))
    assert field(ev, "fd.name") == "/etc/passwd"
    assert field(ev, "proc.fdopencount") == len(ev.proc.fds) and 3 in ev.proc.fds
    ev = tracker.process(syscall("fchmod", FAKE, -9, (3, 0o644)))
    assert 3 not in ev.proc.fds
    assert field(ev, "fd.num") == 3 and field(ev, "fd.type") is None


def test_dup2_copies_and_failure_points_at_oldfd(tracker):
    spawn(tracker)
    tracker.process(openat(FAKE, "/tmp/log", 3))
    ev = tracker.process(syscall("dup2", FAKE, 1, (3, 1)))
    assert (field(ev, "fd.num"), field(ev, "fd.name")) == (1, "/tmp/log")
    assert ev.proc.fds[1].name == "/tmp/log" and ev.proc.fds[1] is not ev.proc.fds[3]
    ev = tracker.process(syscall("dup2", FAKE, -9, (3, 7)))
    assert field(ev, "fd.num") == 3
    assert 7 not in ev.proc.fds


def test_cloexec_fds_are_dropped_at_exec(tracker):
    spawn(tracker)
    tracker.process(openat(FAKE, "/etc/a", 3, os.O_RDONLY | os.O_CLOEXEC))
    tracker.process(openat(FAKE, "/etc/b", 4, os.O_RDONLY))
    tracker.process(exec_(FAKE))
    ev = tracker.process(execve(FAKE, "/bin/true", ["true"]))
    assert 3 not in ev.proc.fds and ev.proc.fds[4].name == "/etc/b"


def test_fork_copies_the_table_and_cwd(tracker):
    spawn(tracker)
    tracker.process(syscall("chdir", FAKE, 0, (1,), {0: path("/srv")}))
    tracker.process(openat(FAKE, "/etc/a", 3))
    child = tracker.process(clone(FAKE, FAKE + 1)).proc
    assert child.cwd == "/srv/" and child.fds[3].name == "/etc/a"
    tracker.process(syscall("close", FAKE + 1, None, (3,), no_exit=True))
    tracker.process(syscall("chdir", FAKE + 1, 0, (1,), {0: path("/")}))
    assert 3 not in child.fds and 3 in tracker.procs[FAKE].fds
    assert tracker.procs[FAKE].cwd == "/srv/"


def test_threads_share_the_process(tracker):
    spawn(tracker)
    assert tracker.process(clone(FAKE, FAKE + 5, thread=True)) is None
    ev = tracker.process(openat(FAKE + 5, "/etc/x", 3, tgid=None) if False else
                         syscall("openat", FAKE + 5, 3, (-100, 1, 0, 0), {1: path("/etc/x")},
                                 tgid=FAKE))
    assert ev.tid == FAKE + 5 and ev.proc.pid == FAKE
    assert field(ev, "thread.ismain") is False and field(ev, "proc.nthreads") == 2
    assert tracker.procs[FAKE].fds[3].name == "/etc/x"


def test_exec_from_a_thread_takes_the_leaders_tid(tracker):
    spawn(tracker, image=("/usr/bin/python3", ["python3", "t.py"]))
    tracker.process(clone(FAKE, FAKE + 5, thread=True))
    assert tracker.process(exec_(FAKE, former=FAKE + 5)) is None
    rec = execve(FAKE + 5, "/bin/true", ["true", "from-thread"])
    rec.tgid = FAKE
    ev = tracker.process(rec)
    assert ev.tid == FAKE and field(ev, "proc.name") == "true"
    assert field(ev, "proc.nthreads") == 1 and FAKE + 5 not in tracker.threads


def test_setuid_changes_the_user_and_names_come_from_the_passwd_file(tracker):
    ev = spawn(tracker)
    # the agent's euid, named from the test's passwd
    assert field(ev, "user.name") == {0: "toor", 1000: "alice"}.get(os.geteuid(), "runner")
    ev = tracker.process(syscall("setuid", FAKE, 0, (1000,)))
    assert (field(ev, "user.uid"), field(ev, "user.name")) == (1000, "alice")
    assert field(ev, "user.shell") == "/bin/zsh" and field(ev, "evt.arg.uid") == "alice"
    ev = tracker.process(syscall("setresgid", FAKE, 0, (-1, 1000, -1)))
    assert field(ev, "group.name") == "staff"
    ev = tracker.process(syscall("setuid", FAKE, -1, (4242,)))
    assert field(ev, "user.uid") == 1000          # failed: unchanged
    ev = tracker.process(syscall("setreuid", FAKE, 0, (-1, 4242)))
    assert field(ev, "user.name") == "<NA>"


def test_procexit_removes_the_thread_after_and_orphans_go_to_the_reaper(tracker):
    spawn(tracker)
    spawn(tracker, FAKE + 1, FAKE, image=("/bin/sleep", ["sleep", "9"]))
    ev = tracker.process(exit_(FAKE, status=3 << 8))
    assert ev.type == "procexit" and ev.res is None
    assert field(ev, "proc.name") == "sh" and field(ev, "evt.arg.ret") == "3"
    assert FAKE in tracker.procs
    ev = tracker.process(syscall("getpid", FAKE + 1, FAKE + 1) if False else
                         openat(FAKE + 1, "/x", 3))
    assert FAKE not in tracker.procs
    parent = ev.proc.parent
    assert parent is not None and parent.pid != FAKE


@pytest.mark.parametrize("procexit_wanted", [True, False])
def test_orphans_get_the_same_reaper_whether_or_not_procexit_is_built(tracker, procexit_wanted):
    """Without a procexit event to fill, the reaper is looked for only when the exiting
    process has children, as it leaves the table: the same process it would have been."""
    spawn(tracker)
    spawn(tracker, FAKE + 1, FAKE, image=("/bin/sleep", ["sleep", "9"]))
    spawn(tracker, FAKE + 2, FAKE + 1, image=("/bin/sleep", ["sleep", "9"]))
    expected = tracker._reaper(tracker.procs[FAKE])
    assert expected is not None
    tracker.wanted = frozenset({"openat", "execve"} | ({"procexit"} if procexit_wanted else set()))
    ev = tracker.process(exit_(FAKE))
    assert (ev is not None) == procexit_wanted
    tracker.process(exit_(FAKE + 2))        # a childless exit: nothing to adopt
    ev = tracker.process(openat(FAKE + 1, "/x", 3))
    assert FAKE not in tracker.procs and FAKE + 2 not in tracker.procs
    assert ev.proc.parent is expected


def test_socket_connect_gives_the_tuple(tracker):
    spawn(tracker)
    ev = tracker.process(syscall("socket", FAKE, 3, (2, 1, 0)))
    assert (field(ev, "fd.type"), field(ev, "fd.l4proto"), field(ev, "fd.name")) == \
        ("ipv4", "<NA>", "")
    ev = tracker.process(syscall("connect", FAKE, 0, (3, 1, 16),
                                 {1: sockaddr_in("10.1.2.3", 443)}))
    # The fake pid has no socket to read the local end from: the zero address.
    assert field(ev, "fd.name") == "0.0.0.0:0->10.1.2.3:443"
    assert (field(ev, "fd.sip"), field(ev, "fd.sport"), field(ev, "fd.l4proto")) == \
        ("10.1.2.3", 443, "tcp")
    assert field(ev, "fd.typechar") == "4" and field(ev, "fd.connected") is True
    assert check(ev, "fd.net = 10.0.0.0/8 and fd.sport = 443 and fd.name_changed = true")
    assert field(ev, "evt.arg.fd") == "<4t>0.0.0.0:0->10.1.2.3:443"
    ev = tracker.process(syscall("sendto", FAKE, 5, (3, 0, 5, 0, 0, 0)))
    assert field(ev, "fd.name_changed") is False and field(ev, "fd.rport") == 443


def test_bind_and_accept_are_server_side(tracker):
    spawn(tracker)
    tracker.process(syscall("socket", FAKE, 3, (2, 1, 0)))
    ev = tracker.process(syscall("bind", FAKE, 0, (3, 1, 16), {1: sockaddr_in("127.0.0.1", 8080)}))
    assert field(ev, "fd.name") == "127.0.0.1:8080" and field(ev, "fd.is_server") is True
    kind, data = sockaddr_in("127.0.0.1", 50000)
    ev = tracker.process(syscall("accept4", FAKE, 4, (3, 1, 2, 0), {1: (K.SOCKADDR_OUT, data)}))
    assert field(ev, "fd.num") == 4
    assert field(ev, "fd.cport") == 50000 and field(ev, "fd.cip") == "127.0.0.1"
    assert field(ev, "fd.lport") == 50000   # the client (127.0.0.1) is local


def test_pipe_memfd_and_anon_fds(tracker):
    spawn(tracker)
    kind = K.INT_PAIR_OUT
    ev = tracker.process(syscall("pipe2", FAKE, 0, (1, 0), {0: (kind, (5).to_bytes(4, "little")
                                                                 + (6).to_bytes(4, "little"))}))
    assert field(ev, "fd.type") == "pipe" and field(ev, "fd.num") == 5 and 6 in ev.proc.fds
    ev = tracker.process(syscall("memfd_create", FAKE, 7, (1, 1), {0: (K.STR, b"payload\0")}))
    assert (field(ev, "fd.type"), field(ev, "fd.typechar"), field(ev, "fd.name")) == \
        ("memfd", "m", "payload")
    ev = tracker.process(syscall("epoll_create1", FAKE, 8, (0,)))
    assert field(ev, "fd.typechar") == "l"


def test_memfd_exec_via_execveat(tracker):
    spawn(tracker)
    tracker.process(syscall("memfd_create", FAKE, 7, (1, 0), {0: (K.STR, b"x\0")}))
    tracker.process(exec_(FAKE))
    rec = syscall("execveat", FAKE, 0, (7, 1, 2, 3, 0x1000),
                  {1: path(""), 2: (K.ARGV, b"x\0"), 3: (K.ARGV, b"")})
    ev = tracker.process(rec)
    assert ev.type == "execve"
    assert field(ev, "proc.is_exe_from_memfd") is True
    assert field(ev, "proc.exepath") == "memfd:x"
    assert field(ev, "proc.is_exe_upper_layer") is False
    assert field(ev, "proc.name") == "7"
    assert "EXE_FROM_MEMFD" in field(ev, "evt.arg.flags")


def test_drift_of_a_file_written_after_start(tracker, tmp_path):
    dropped = tmp_path / "dropped"
    shutil.copy("/bin/true", dropped)
    ev = spawn(tracker, image=(str(dropped), ["dropped"]))
    assert field(ev, "proc.is_exe_upper_layer") is True
    assert field(ev, "proc.exe_ino") == os.stat(dropped).st_ino
    assert "EXE_UPPER_LAYER" in field(ev, "evt.arg.flags")
    ev = spawn(tracker, FAKE + 1, image=("/bin/true", ["true"]))
    assert field(ev, "proc.is_exe_upper_layer") is False
    assert field(ev, "proc.is_exe_lower_layer") is True     # the tracker's container is not host
    assert "EXE_LOWER_LAYER" in field(ev, "evt.arg.flags")
    assert field(ev, "proc.is_exe_from_memfd") is False


def test_a_process_never_seen_and_already_gone_descends_from_the_agent(tracker):
    ev = tracker.process(openat(FAKE + 99, "/etc/passwd", 3))
    assert field(ev, "thread.tid") == FAKE + 99 and field(ev, "proc.pid") == FAKE + 99
    # Taken as a fork of the agent (as the workload's main process is).
    me = open(f"/proc/{ME}/comm").read().strip()
    assert field(ev, "proc.name") == me and field(ev, "user.uid") == os.geteuid()
    assert field(ev, "proc.ppid") == ME
    assert field(ev, "fd.name") == "/etc/passwd"
    ev = tracker.process(execve(FAKE + 99, "/bin/ls", ["ls"]))
    assert field(ev, "proc.name") == "ls"


def test_drop_and_signal_records_are_not_events(tracker):
    from workload_agent.events import records as R
    rec = exit_(ME)
    rec.kind = R.K_DROP
    assert tracker.process(rec) is None
    rec.kind = R.K_SIGNAL
    assert tracker.process(rec) is None


def test_clone_child_side_event(tracker):
    spawn(tracker)
    ev = tracker.process(clone(FAKE, FAKE + 1, flags=0x11))
    assert ev.type == "clone" and ev.res == 0 and ev.tid == FAKE + 1
    assert field(ev, "proc.pid") == FAKE + 1 and field(ev, "proc.pname") == "sh"
    assert field(ev, "evt.arg.ptid") == "sh"


def test_event_numbers_and_times(tracker):
    a = spawn(tracker)
    b = tracker.process(openat(FAKE, "/x", 3))
    assert b.num == a.num + 1 and b.ts > a.ts and b.prev_ts == a.ts
    assert field(b, "proc.duration") > 0


def test_pidns_init_start_ts(users):
    c = Container(id="abcdef012345", start_ts=1_700_000_000_000_000_000)
    t = StateTracker(c, agent_pid=ME, users=users, start_ns=time.time_ns())
    ev = spawn(t)
    assert field(ev, "proc.pidns_init_start_ts") == 1_700_000_000_000_000_000


def test_wanted_event_types_still_keep_state(tracker):
    spawn(tracker)
    tracker.wanted = frozenset({"execve", "openat"})
    assert tracker.process(syscall("chdir", FAKE, 0, (1,), {0: path("/srv")})) is None
    assert tracker.process(clone(FAKE, FAKE + 1)) is None
    assert tracker.process(syscall("close", FAKE, None, (3,), no_exit=True)) is None
    ev = tracker.process(openat(FAKE + 1, "x", 3))
    assert field(ev, "fd.name") == "/srv/x" and field(ev, "proc.pname") == "sh"
    assert tracker.process(exit_(FAKE + 1)) is None
    assert tracker.process(openat(FAKE, "y", 4)).num == ev.num + 1
    assert FAKE + 1 not in tracker.procs


def test_a_drop_forgets_processes_whose_exit_was_lost(tracker):
    from workload_agent.events import records as R
    spawn(tracker)
    assert FAKE in tracker.procs
    rec = exit_(ME)
    rec.kind = R.K_DROP
    tracker.process(rec)
    assert FAKE not in tracker.procs and FAKE not in tracker.threads
    assert ME in tracker.procs       # alive: kept
