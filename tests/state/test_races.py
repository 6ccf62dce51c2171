"""An event is judged by what was true when it happened.

Each test runs a quick attacker-like workload under the upstream rules (the syscall set
production traces for them, a container context) twice: with a consumer that keeps up,
and with one that looks only after the workload is gone (files removed or replaced,
processes exited, fd numbers reused). The alerts and fields must not move.
"""
from __future__ import annotations

import os
import shutil
import sys
import textwrap

import pytest

from tests.conftest import needs_tracing
from tests.rules.upstream_files import upstream_file
from tests.state.rules_sink import RulesSink

from workload_agent import runner
from workload_agent.detect import traced_syscalls
from workload_agent.events.syscall_table import SYSCALLS
from workload_agent.rules.condition import parse_condition
from workload_agent.rules.compiler import compile_condition
from workload_agent.rules.event import Container
from workload_agent.rules.loader import load_rules
from workload_agent.rules.output import compile_output
from workload_agent.events.arch import native_arch

needs_tracing()

FIELDS = ("evt.type proc.name proc.pid proc.exepath proc.exe_ino proc.exe_ino.ctime "
          "proc.exe_ino.mtime proc.is_exe_upper_layer proc.tty proc.sid proc.vpgid "
          "proc.is_sid_leader proc.is_vpgid_leader fd.name fd.num fd.type fd.sport fd.cport "
          "fd.sip fd.cip").split()
CONTAINER = Container(id="abcdef012345", name="app", image="app:1", repository="app", tag="1",
                      privileged=False)
#: How late the slow consumer starts: long enough for every workload here to finish.
LATE = 1.5


@pytest.fixture(scope="module")
def ruleset():
    result = load_rules([str(upstream_file("falco_rules.yaml")), str(upstream_file("falco-sandbox_rules.yaml"))])
    assert result.ok, result.errors
    return result.ruleset


def run(ruleset, argv, conditions=(), delay=0.0, extra=(), on_event=None):
    """Trace argv under the rules; sink.hits[condition] holds FIELDS of each event that
    matched one of the test's own conditions."""
    checks = [(c, compile_condition(parse_condition(c))) for c in conditions]
    fields = compile_output(" ".join("%" + f for f in FIELDS))

    def check(tracker, ev):
        for cond, pred in checks:
            if pred(ev):
                sink.hits[cond].append(fields.fields(ev))
        if on_event is not None:
            on_event(tracker, ev)

    sink = RulesSink(ruleset, CONTAINER, delay, on_event=check)
    sink.hits = {c: [] for c in conditions}
    names, _ = traced_syscalls(ruleset, native_arch())
    table = SYSCALLS[native_arch()]
    syscalls = sorted(set(names) | {n for n in extra if n in table})
    code = runner.run(list(argv), sink=sink, syscalls=syscalls)
    assert sink.stats is not None and sink.stats["drops"] == 0
    return code, sink


@pytest.fixture(params=[0.0, LATE], ids=["prompt", "late"])
def delay(request):
    return request.param


@pytest.fixture
def drop_dir(tmp_path):
    # A directory the rules treat like any other: the drop is judged by the inode times.
    d = tmp_path / "drop"
    d.mkdir()
    return d


DROP_RULE = "Drop and execute new binary in container"


def test_exec_then_rm_after_exit(ruleset, drop_dir, delay):
    x = drop_dir / "x"
    script = f"cp {shutil.which('true')} {x} && stat -c %i {x} > {drop_dir}/ino && {x} && rm {x}"
    cond = f"evt.type = execve and proc.exepath = {x}"
    code, sink = run(ruleset, ["sh", "-c", script], [cond], delay)
    assert code == 0 and not x.exists()
    assert DROP_RULE in sink.rules_fired()
    (hit,) = sink.hits[cond]
    assert hit["proc.exe_ino"] == int((drop_dir / "ino").read_text())
    assert hit["proc.is_exe_upper_layer"] is True
    assert hit["proc.exe_ino.mtime"] is not None


def test_exec_then_rm_while_alive(ruleset, drop_dir, delay):
    x = drop_dir / "sleeper"
    script = (f"cp {shutil.which('sleep')} {x} && stat -c %i {x} > {drop_dir}/ino && "
              f"{{ {x} 0.3 & }} && sleep 0.1 && rm {x} && wait")
    cond = f"evt.type = execve and proc.exepath = {x}"
    code, sink = run(ruleset, ["sh", "-c", script], [cond], delay)
    assert code == 0
    assert DROP_RULE in sink.rules_fired()
    (hit,) = sink.hits[cond]
    assert hit["proc.exe_ino"] == int((drop_dir / "ino").read_text())


def test_replaced_exe_keeps_the_first_files_facts(ruleset, drop_dir, delay):
    x = drop_dir / "x"
    # The first file keeps a second name, so the filesystem cannot hand its inode number
    # to the replacement.
    script = (f"cp {shutil.which('true')} {x} && stat -c %i {x} > {drop_dir}/ino1 && {x} && "
              f"ln {x} {drop_dir}/keep && rm {x} && cp {shutil.which('ls')} {x} && "
              f"stat -c %i {x} > {drop_dir}/ino2")
    cond = f"evt.type = execve and proc.exepath = {x}"
    code, sink = run(ruleset, ["sh", "-c", script], [cond], delay)
    assert code == 0
    first, second = (int((drop_dir / n).read_text()) for n in ("ino1", "ino2"))
    assert first != second
    (hit,) = sink.hits[cond]
    assert hit["proc.exe_ino"] == first


@pytest.mark.parametrize("how", ["symlink", "script", "proc-self-fd"])
def test_exec_variants_are_drift(ruleset, drop_dir, delay, how):
    x = drop_dir / "x"
    if how == "symlink":
        script = (f"cp {shutil.which('true')} {x} && ln -s {x} {drop_dir}/link && {drop_dir}/link; "
                  f"rm -f {x} {drop_dir}/link")
        argv = ["sh", "-c", script]
    elif how == "script":
        script = f"printf '#!/bin/sh\\nexit 0\\n' > {x} && chmod +x {x} && {x}; rm -f {x}"
        argv = ["sh", "-c", script]
    else:
        prog = textwrap.dedent(f"""
            import os, shutil
            shutil.copy({shutil.which('true')!r}, {str(x)!r})
            fd = os.open({str(x)!r}, os.O_RDONLY)
            os.set_inheritable(fd, True)
            os.unlink({str(x)!r})
            os.execv("/proc/self/fd/%d" % fd, ["dropped"])
        """)
        argv = [sys.executable, "-c", prog]
    code, sink = run(ruleset, argv, delay=delay)
    assert code == 0
    assert DROP_RULE in sink.rules_fired()


def test_short_lived_shell_on_a_fresh_pty(ruleset, delay):
    prog = textwrap.dedent("""
        import os, pty
        pid, fd = pty.fork()
        if pid == 0:
            os.execv("/bin/sh", ["sh", "-c", "exit 0"])
        try:
            while os.read(fd, 1024):
                pass
        except OSError:
            pass
        os.waitpid(pid, 0)
    """)
    cond = "evt.type = execve and proc.name = sh"
    code, sink = run(ruleset, [sys.executable, "-c", prog], [cond], delay)
    assert code == 0
    (hit,) = sink.hits[cond]
    assert hit["proc.tty"] != 0
    assert hit["proc.is_sid_leader"] is True


def test_setsid_in_short_lived_processes(ruleset, delay):
    cond = "evt.type = execve and proc.name = true"
    code, sink = run(ruleset, ["sh", "-c", "setsid true; setsid true; setsid true"], [cond], delay)
    assert code == 0
    hits = sink.hits[cond]
    assert len(hits) == 3
    for hit in hits:
        assert hit["proc.is_sid_leader"] is True and hit["proc.sid"] == hit["proc.pid"]


def test_setpgid_then_an_event_in_the_same_image(ruleset, delay):
    prog = "import os; os.setpgid(0, 0); open('/etc/hostname').close()"
    cond = "evt.type in (open, openat) and fd.name = /etc/hostname"
    code, sink = run(ruleset, [sys.executable, "-c", prog], [cond], delay, extra=("openat", "open"))
    assert code == 0
    (hit,) = sink.hits[cond]
    assert hit["proc.vpgid"] == hit["proc.pid"] and hit["proc.is_vpgid_leader"] is True


def test_fd_from_an_untraced_call_reused_before_python_looks(ruleset, tmp_path, delay):
    """fcntl(F_DUPFD) is not traced: the fchmod on the duplicate names the file it was
    then, although the number holds another file (and then nothing) when Python looks."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("a")
    b.write_text("b")
    prog = textwrap.dedent(f"""
        import fcntl, os
        fa = os.open({str(a)!r}, os.O_RDONLY)
        n = fcntl.fcntl(fa, fcntl.F_DUPFD, 60)
        os.fchmod(n, 0o640)
        os.close(n)
        fb = os.open({str(b)!r}, os.O_RDONLY)
        m = fcntl.fcntl(fb, fcntl.F_DUPFD, 60)
        assert m == n, (m, n)
        os.fchmod(m, 0o600)
    """)
    cond = "evt.type = fchmod"
    code, sink = run(ruleset, [sys.executable, "-c", prog], [cond], delay, extra=("fchmod",))
    assert code == 0
    hits = sink.hits[cond]
    assert [h["fd.name"] for h in hits] == [str(a), str(b)]


def test_socket_fd_reused_within_one_batch(ruleset, delay):
    """A UDP socket duplicated by an untraced call sends, is closed, and the number is taken
    by another socket: each sendto keeps its own tuple."""
    prog = textwrap.dedent("""
        import fcntl, os, socket
        r1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r1.bind(("127.0.0.1", 0))
        r2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r2.bind(("127.0.0.1", 0))
        for r in (r1, r2):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.connect(r.getsockname())
            n = fcntl.fcntl(s.fileno(), fcntl.F_DUPFD, 70)
            os.write(1, b"%d %d\\n" % (n, r.getsockname()[1]))
            dup = socket.socket(fileno=n)
            dup.send(b"x")
            dup.close(); s.close()
    """)
    cond = "evt.type in (sendto, sendmsg) and fd.num = 70"
    code, sink = run(ruleset, [sys.executable, "-c", prog], [cond], delay, extra=("sendto", "sendmsg"))
    assert code == 0
    hits = sink.hits[cond]
    assert len(hits) == 2
    ports = [h["fd.sport"] for h in hits]
    assert all(isinstance(p, int) and p > 0 for p in ports) and ports[0] != ports[1]


def test_child_cloexec_change_does_not_touch_the_parent(ruleset, tmp_path, delay):
    f = tmp_path / "kept"
    f.write_text("x")
    prog = textwrap.dedent(f"""
        import fcntl, os, sys
        fd = os.open({str(f)!r}, os.O_RDONLY)
        os.set_inheritable(fd, True)
        os.dup2(fd, 40)
        pid = os.fork()
        if pid == 0:
            fcntl.fcntl(40, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
            os._exit(0)
        os.waitpid(pid, 0)
        os.execv("/bin/true", ["true"])
    """)
    seen = {}

    def on_event(tracker, ev):
        if ev.type == "execve" and ev.proc is not None and ev.proc.name == "true":
            seen["fd40"] = ev.proc.fds.get(40)

    code, sink = run(ruleset, [sys.executable, "-c", prog], delay=delay,
                     extra=("fcntl", "dup2", "dup3", "openat"), on_event=on_event)
    assert code == 0
    assert seen["fd40"] is not None and seen["fd40"].name == str(f)


def test_proc_reads_are_counted_not_the_normal_path(ruleset, drop_dir):
    code, sink = run(ruleset, ["sh", "-c", "cat /etc/hostname > /dev/null; true"])
    assert code == 0
    # The seeded main process may be read; no exec, fd or socket look-up may be.
    assert not {"exec", "fd", "socket ends", "capset"} & set(sink.tracker.proc_reads), \
        sink.tracker.proc_reads


def test_upstream_rule_fires_through_the_cli_in_container_mode(drop_dir):
    """The user's view: `run -r falco_rules.yaml --container-id ...` on exec-then-rm."""
    import subprocess

    x = drop_dir / "x"
    alerts = drop_dir / "alerts"
    script = f"cp {shutil.which('true')} {x} && {x} && rm {x}"
    p = subprocess.run([sys.executable, "-m", "workload_agent", "run", "--priority", "security",
                        "-r", str(upstream_file("falco_rules.yaml")), "--container-id", "abcdef012345",
                        "--alerts-to", str(alerts), "--", "sh", "-c", script],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    text = alerts.read_text()
    # The stable file's name for the drift rule; the sandbox file's is DROP_RULE.
    assert "Executing binary not part of base image" in text and f"proc_exepath={x}" in text, text
