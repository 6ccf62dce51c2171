"""Real workloads under the tracer, their records fed to the StateTracker, and fields
checked through the rules engine's own registry (compiled conditions and outputs),
evaluated as the pipeline does: each event right after its record was processed."""
from __future__ import annotations

import os
import shutil
import socket
import sys
import textwrap
import time

import pytest

from tests.conftest import needs_tracing

from workload_agent import runner
from workload_agent.events.params import DEFAULT_SYSCALLS, STATEFUL_SYSCALLS
from workload_agent.rules.compiler import compile_condition
from workload_agent.rules.condition import parse_condition
from workload_agent.rules.event import Container
from workload_agent.rules.output import compile_output
from workload_agent.state import StateTracker, UserDb

needs_tracing()

SYSCALLS = sorted(STATEFUL_SYSCALLS | DEFAULT_SYSCALLS)
OUT = ("proc.name proc.pname proc.aname[2] proc.cmdline proc.exe proc.exepath proc.cwd "
       "proc.pid proc.ppid thread.tid fd.num fd.name fd.type fd.typechar fd.directory "
       "fd.filename fd.sip fd.sport fd.cip fd.cport fd.l4proto fd.connected user.name user.uid "
       "proc.is_exe_upper_layer proc.is_exe_from_memfd evt.type evt.res container.id "
       "proc.duration").split()


class Watcher:
    """The sink: records -> tracker -> the conditions a test watches."""

    def __init__(self, tracker, conditions):
        self.tracker = tracker
        self.checks = [(c, compile_condition(parse_condition(c))) for c in conditions]
        self.output = compile_output(" ".join("%" + f for f in OUT))
        self.hits = {c: [] for c in conditions}
        self.events = 0
        self.stats = None

    def handle(self, batch):
        for record in batch:
            ev = self.tracker.process(record)
            if ev is None:
                continue
            self.events += 1
            for cond, pred in self.checks:
                if pred(ev):
                    self.hits[cond].append(self.output.fields(ev))

    def close(self, stats):
        self.stats = stats


@pytest.fixture
def run_watch():
    def _run(argv, conditions, users=None, start_ns=None):
        tracker = StateTracker(Container(id="feedfacecafe"), users=users, start_ns=start_ns)
        w = Watcher(tracker, conditions)
        code = runner.run(list(argv), sink=w, syscalls=SYSCALLS)
        assert w.stats is not None and w.stats["drops"] == 0
        return code, w.hits
    return _run


def _agent_comm():
    with open(f"/proc/{os.getpid()}/comm") as f:
        return f.read().strip()


def test_exec_chain_ancestry_and_cwd(run_watch):
    cond = "evt.type in (open, openat) and proc.pname = sh and fd.name = /etc/hostname"
    code, hits = run_watch(["sh", "-c", "cd /tmp && sh -c 'cat /etc/hostname >/dev/null; :'"],
                           [cond, "evt.type = execve and proc.name = cat"])
    assert code == 0
    (hit,) = hits[cond]
    assert hit["proc.name"] == "cat" and hit["proc.cmdline"] == "cat /etc/hostname"
    assert hit["proc.aname[2]"] == "sh"
    assert hit["proc.cwd"] == "/tmp/"
    assert hit["fd.directory"] == "/etc" and hit["fd.filename"] == "hostname"
    assert hit["fd.typechar"] == "f" and hit["container.id"] == "feedfacecafe"
    assert hit["proc.exepath"] == os.path.realpath(shutil.which("cat"))
    (ex,) = hits["evt.type = execve and proc.name = cat"]
    assert ex["proc.pname"] == "sh" and ex["evt.res"] == "SUCCESS"
    assert ex["proc.duration"] is not None and 0 <= ex["proc.duration"] < 10_000_000_000


def test_workload_main_process_parent_is_the_agent(run_watch):
    cond = "evt.type = execve and proc.name = true"
    code, hits = run_watch(["true"], [cond])
    (hit,) = hits[cond]
    assert hit["proc.ppid"] == os.getpid()
    assert hit["proc.pname"] == _agent_comm()


TCP = textwrap.dedent("""
    import socket, sys, threading, time
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    def serve():
        c, _ = srv.accept()
        c.sendall(b"hi")
        c.close()
    t = threading.Thread(target=serve)
    t.start()
    cli = socket.create_connection(("127.0.0.1", port))
    cli.recv(2)
    print(port, cli.getsockname()[1], flush=True)
    t.join()
    # The agent reads connect()'s local end from the live socket (see state/sockets.py):
    # stay alive past the consumer's next poll.
    time.sleep(1.0)
""")


def test_tcp_connection_on_loopback(run_watch, tmp_path, capfd):
    script = tmp_path / "tcp.py"
    script.write_text(TCP)
    conds = ["evt.type = connect and fd.sip = 127.0.0.1", "evt.type in (accept, accept4)",
             "evt.type = bind and fd.is_server = true", "evt.type = listen"]
    code, hits = run_watch([sys.executable, str(script)], conds)
    assert code == 0
    port, cport = map(int, capfd.readouterr().out.split())
    (conn,) = hits[conds[0]]
    assert conn["fd.name"] == "127.0.0.1:%d->127.0.0.1:%d" % (cport, port)
    assert (conn["fd.sport"], conn["fd.cport"], conn["fd.l4proto"]) == (port, cport, "tcp")
    assert conn["fd.type"] == "ipv4" and conn["fd.typechar"] == "4" and conn["fd.connected"]
    (acc,) = hits[conds[1]]
    assert acc["fd.name"] == conn["fd.name"]
    assert acc["fd.sport"] == port and acc["fd.cport"] == cport
    (bind,) = hits[conds[2]]
    assert bind["fd.name"] == "127.0.0.1:0"
    (lst,) = hits[conds[3]]
    assert lst["fd.name"] == "127.0.0.1:0"


def test_users_from_a_container_passwd_file(run_watch, tmp_path):
    (tmp_path / "passwd").write_text("admin:x:%d:0::/root:/bin/sh\n" % os.getuid())
    (tmp_path / "group").write_text("ops:x:%d:\n" % os.getgid())
    users = UserDb(str(tmp_path / "passwd"), str(tmp_path / "group"))
    cond = "evt.type = execve and proc.name = id and user.name = admin"
    code, hits = run_watch(["id", "-u"], [cond, "evt.type = execve and group.name = ops"],
                           users=users)
    (hit,) = hits[cond]
    assert hit["user.uid"] == os.getuid()
    assert len(hits["evt.type = execve and group.name = ops"]) == 1


DUP = textwrap.dedent("""
    import os, sys
    path = sys.argv[1]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.dup2(fd, 7)
    os.close(fd)
    os.write(7, b"x")
    os.close(7)
    try:
        os.fchmod(7, 0o600)
    except OSError:
        pass
""")


def test_dup_and_close_semantics(run_watch, tmp_path):
    script = tmp_path / "dup.py"
    script.write_text(DUP)
    target = str(tmp_path / "out.txt")
    conds = ["evt.type = dup2", "evt.type = close and fd.num = 7",
             "evt.type = fchmod and fd.num = 7"]
    code, hits = run_watch([sys.executable, str(script), target], conds)
    assert code == 0
    (dup,) = hits[conds[0]]
    assert (dup["fd.num"], dup["fd.name"], dup["fd.type"]) == (7, target, "file")
    (close,) = hits[conds[1]]
    assert close["fd.name"] == target          # still there while the close is evaluated
    (after,) = hits[conds[2]]
    assert after["fd.type"] is None and after["fd.name"] == ""   # gone afterwards


THREAD_EXEC = textwrap.dedent("""
    import os, threading, time
    def f():
        os.execv("/bin/true", ["true", "from-thread"])
    threading.Thread(target=f).start()
    time.sleep(10)
""")


def test_exec_from_a_thread(run_watch, tmp_path):
    script = tmp_path / "t.py"
    script.write_text(THREAD_EXEC)
    cond = "evt.type = execve and proc.name = true"
    code, hits = run_watch([sys.executable, str(script)], [cond])
    assert code == 0
    (hit,) = hits[cond]
    assert hit["thread.tid"] == hit["proc.pid"]
    assert hit["proc.cmdline"] == "true from-thread"
    assert hit["proc.pname"] == _agent_comm()


def test_drift_of_a_file_written_then_executed(run_watch, tmp_path):
    dropped = tmp_path / "dropped-tool"
    cmd = "cp %s %s && chmod +x %s && %s && true" % (shutil.which("true"), dropped, dropped,
                                                       dropped)
    conds = ["evt.type = execve and proc.is_exe_upper_layer = true",
             "evt.type = execve and proc.name = cp"]
    code, hits = run_watch(["sh", "-c", cmd], conds, start_ns=time.time_ns())
    assert code == 0
    (hit,) = hits[conds[0]]
    assert hit["proc.name"] == "dropped-tool" and hit["proc.exepath"] == str(dropped)
    (cp,) = hits[conds[1]]
    assert cp["proc.is_exe_upper_layer"] is False


MEMFD = textwrap.dedent("""
    import os, sys
    fd = os.memfd_create("wa-fileless", 0)
    with open(sys.argv[1], "rb") as f:
        os.write(fd, f.read())
    if sys.argv[2] == "path":
        os.execv("/proc/self/fd/%d" % fd, ["fileless", "one"])
    os.execve(fd, ["fileless", "two"], dict(os.environ))
""")


@pytest.mark.parametrize("how", ["path", "fexecve"])
def test_memfd_exec(run_watch, tmp_path, how):
    script = tmp_path / "m.py"
    script.write_text(MEMFD)
    cond = "evt.type = execve and proc.is_exe_from_memfd = true"
    code, hits = run_watch([sys.executable, str(script), shutil.which("true"), how],
                           [cond, "evt.type = memfd_create"])
    assert code == 0
    (hit,) = hits[cond]
    assert hit["proc.exepath"] == "memfd:wa-fileless"
    assert hit["proc.exe"] == "fileless"
    assert hit["proc.is_exe_upper_layer"] is False
    (mc,) = hits["evt.type = memfd_create"]
    assert (mc["fd.type"], mc["fd.name"]) == ("memfd", "wa-fileless")


def test_script_exec_names_the_script_and_the_interpreter(run_watch, tmp_path):
    script = tmp_path / "entry.sh"
    script.write_text("#!/bin/sh\ncat /etc/hostname > /dev/null\n")
    script.chmod(0o755)
    cond = "evt.type = execve and proc.name = entry.sh"
    code, hits = run_watch([str(script)], [cond, "evt.type = openat and fd.name = /etc/hostname"])
    assert code == 0
    (hit,) = hits[cond]
    assert hit["proc.exe"] == str(script)
    assert hit["proc.exepath"] == os.path.realpath("/bin/sh")   # the interpreter, as the kernel has it
    (op,) = hits["evt.type = openat and fd.name = /etc/hostname"]
    assert op["proc.pname"] == "entry.sh"


SESSION = textwrap.dedent("""
    import os, socket, time
    os.setsid()
    d = os.open("/usr", os.O_RDONLY | os.O_DIRECTORY)
    os.fchdir(d)
    srv = socket.socket()
    srv.bind(("0.0.0.0", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    cli = socket.create_connection(("127.0.0.1", port))
    conn, _ = srv.accept()
    time.sleep(1.0)   # the local end of a socket is read from the live socket (state/sockets.py)
    os.execv("/bin/sh", ["sh", "-c", "cat /etc/hostname >/dev/null"])
""")


def test_setsid_fchdir_and_a_wildcard_listener(run_watch, tmp_path):
    script = tmp_path / "s.py"
    script.write_text(SESSION)
    conds = ["evt.type = execve and proc.name = sh", "evt.type in (accept, accept4)",
             "evt.type = bind"]
    code, hits = run_watch([sys.executable, str(script)], conds + [
        "evt.type = openat and proc.name = cat and proc.sname = sh and proc.is_sid_leader = false"
        " and fd.name = /etc/hostname"])
    assert code == 0
    (sh,) = hits[conds[0]]
    assert sh["proc.cwd"] == "/usr/"
    (acc,) = hits[conds[1]]
    assert acc["fd.sip"] == "127.0.0.1" and acc["fd.cip"] == "127.0.0.1"   # not 0.0.0.0
    (bind,) = hits[conds[2]]
    assert bind["fd.name"] == "0.0.0.0:0"
    (cat,) = hits[list(hits)[3]]
    assert cat["proc.cwd"] == "/usr/"
