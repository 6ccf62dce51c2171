"""Quiet processes: a process born under the tracer whose exec no rule can match has its
clone, exec and exit records held in C and dropped when it ends (csrc/tracer.c).

The property test is the soundness proof of the exec program: for generated execs (name,
argv, environment, tty, exe link, exe times, parent name) the C evaluator's "no rule can
match" is checked against the state tracker and the rules themselves. The live tests trace
real process trees with and without it, with a prompt and a late consumer: the same alerts,
and the quiet processes never reach Python.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import needs_tracing
from tests.state.rules_sink import RulesSink
from workload_agent import detect, runner
from workload_agent.events import capture_kinds as K
from workload_agent.events import facts
from workload_agent.events import records as R
from workload_agent.events.syscall_table import AUDIT_ARCH, SYSCALLS
from workload_agent.rules.event import Container
from workload_agent.rules.compiler import _widen_legacy
from workload_agent.rules.loader import load_rules
from workload_agent.state import StateTracker
from workload_agent.tracer.prefilter import LIFECYCLE_TYPES, compile_prefilter, exec_program, failed_exec_quiet
from workload_agent.tracer.seccomp import native_arch

from .conftest import upstream_ruleset

core = pytest.importorskip("workload_agent.tracer._core")
ffi, lib = core.ffi, core.lib
ARCH = native_arch()
TABLE = SYSCALLS[ARCH]
START_NS = time.time_ns()
OLD_NS, NEW_NS = START_NS - 10**12, START_NS + 10**9
CONTAINER = Container(id="abcdef012345", name="app", image="app:1", repository="app", tag="1",
                      privileged=False)
PARENT, CHILD = 4_000_001, 4_000_002


def _blob(slot: int, kind: int, data: bytes) -> bytes:
    return R.BLOB.pack(slot, kind, 0, 0, len(data), 0) + data + b"\0" * ((-len(data)) % 8)


def _rec(kind: int, tid: int, blobs, *, nr=0, args=(0,) * 6, ret=0, flags=0, extra=0) -> bytes:
    body = b"".join(blobs)
    return R.HEADER.pack(R.HEADER.size + len(body), kind, flags, 1, 2, tid, tid, nr, AUDIT_ARCH[ARCH],
                         ret, *args, len(blobs), 0, extra) + body


def _proc_facts(tty: int, ctime: int, mtime: int) -> bytes:
    exe = facts.FILE_FACTS.pack(2049, 1234, 0o100755, 0, 0, 1, ctime, mtime)
    valid = 0x1 | 0x2 | 0x4
    return facts.PROC_FACTS.pack(valid, 1, 1, 1, tty, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xFFFFFFFF, 0,
                                 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1024, exe, b"x")


def _exec_records(tid, filename: bytes, argv, env, tty=0, link=None, ctime=OLD_NS, mtime=OLD_NS):
    """(EXEC record, execve record) of a successful exec, as the tracer makes them."""
    img = [_blob(K.SLOT_PROC, K.PROC_FACTS, _proc_facts(tty, ctime, mtime))]
    if link is not None:
        img.append(_blob(K.SLOT_EXE, K.LINK, link))
    sys_blobs = [_blob(0, K.PATH, filename), _blob(1, K.ARGV, b"".join(a + b"\0" for a in argv)),
                 _blob(2, K.ARGV, b"".join(e + b"\0" for e in env))]
    return (_rec(R.K_EXEC, tid, img, extra=tid),
            _rec(R.K_SYSCALL, tid, sys_blobs, nr=TABLE["execve"], flags=R.F_HAS_EXIT))


def _buf(raw: bytes):
    keep = ffi.new("char[]", raw)
    b = ffi.new("struct wa_buf *")
    b.buf, b.len, b.cap = ffi.cast("uint8_t *", keep), len(raw), len(raw)
    return b, keep


class _Compiled:
    def __init__(self, ruleset):
        names, _ = detect.traced_syscalls(ruleset, ARCH)
        self.prefilter = compile_prefilter(ruleset, names, keep=detect.IDENTITY_SYSCALLS,
                                           start_ns=START_NS)
        self.pf, self._keep = self.prefilter.to_c(ffi, lib, TABLE)

    def keeps(self, img: bytes, sysrec: bytes, pname) -> bool:
        (bi, k1), (bs, k2) = _buf(img), _buf(sysrec)
        name = ffi.new("char[]", pname.encode()) if pname is not None else ffi.NULL
        return bool(lib.wa_prefilter_exec_keep(self.pf, bs, bi, name))


def _judged(rule) -> bool:
    """Upstream rules read clone and exit events, and some exec rules test what the stop
    cannot tell (container.privileged...): either turns quiet processes off. The rest,
    every upstream exec rule the program can judge, make the ruleset checked here."""
    return (rule.event_types is not None and not rule.event_types & LIFECYCLE_TYPES
            and exec_program([(rule, _widen_legacy(rule.condition))], START_NS) is not None)


def _rulesets():
    out = {"default": detect.load_ruleset([])[0]}
    upstream = upstream_ruleset(_judged)
    if upstream is not None:
        assert sum(r.enabled and "execve" in r.event_types for r in upstream.rules) >= 10
        out["upstream exec rules"] = upstream
    return out


RULESETS = _rulesets()
COMPILED = {k: _Compiled(v) for k, v in RULESETS.items()}


def _matches(ruleset, pname, child_records):
    """The rules the child's exec matches, its parent having exec'd /usr/sbin/<pname>."""
    tracker = StateTracker(CONTAINER, start_ns=START_NS)
    if pname is not None:
        for r in R.decode_batch(b"".join(_exec_records(PARENT, b"/usr/sbin/" + pname.encode(),
                                                       [pname.encode()], []))):
            tracker.process(r)
    clone = _rec(R.K_CLONE, PARENT, [], nr=1, extra=CHILD)
    ev = None
    for r in R.decode_batch(clone + b"".join(child_records)):
        ev = tracker.process(r)
    assert ev is not None and ev.type == "execve"
    return [r.name for r in ruleset.match(ev, "all")]


_NAMES = st.sampled_from(["true", "sh", "bash", "nc", "ncat", "whoami", "id", "curl", "xmrig",
                          "base64", "sudo", "python3", "node", "find", "grep", "kubectl", "mkfs.ext4",
                          "pip", "apt-get", "crontab", "tcpdump", "pkexec", "debugfs", "rsync",
                          "a-rather-long-program-name", "socat", "openssl", "xxd", "useradd", "é" * 9])
_DIRS = st.sampled_from(["/usr/bin/", "/tmp/", "/dev/shm/", "./", "", "/var/tmp/x/", "//tmp/",
                         "/proc/self/fd/", "/dev/fd/", "tmp/", "/run/shm/"])
_ARGS = st.lists(st.sampled_from([b"-d", b"--decode", b"-e", b"/bin/sh", b"-c", b"id_rsa", b"install",
                                  b"i", b"stratum+TCP://pool", b"-s", b"\\", b"-r", b"base64", b"-m",
                                  b"pip", b"--exec", b"EXEC:x", b"-la", b"", b"x y", b"/tmp/x.sh",
                                  b"//tmp/./y", b"/tmpfoo/z", b"/dev/shm", b"tmp/x"]), max_size=4)
_ENV = st.lists(st.sampled_from([b"PATH=/bin", b"LD_PRELOAD=/tmp/x.so", b"GLIBC_TUNABLES=x",
                                 b"glibc_tunables=y", b"HOME=/root", b"LD_PRELOAD=libjemalloc.so"]),
                max_size=3)
#: a first argument: a shell is judged by where its script is
_FIRST_ARGS = st.sampled_from([None, b"/tmp/x.sh", b"//tmp/./y", b"/tmpfoo/z", b"/dev/shm", b"-c"])
_LINKS = st.sampled_from([None, "same", "/memfd:x (deleted)", "/tmp/gone (deleted)", "/usr/bin/dash"])
_PNAMES = st.sampled_from([None, "sh", "nginx", "postgres", "bash", "python3", "httpd", "mysqld"])


@pytest.mark.parametrize("which", sorted(RULESETS))
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=_NAMES, where=_DIRS, argv0=st.sampled_from(["path", "name", "other"]),
       first_arg=_FIRST_ARGS, args=_ARGS,
       env=_ENV, tty=st.sampled_from([0, 34816]), link=_LINKS, new=st.booleans(), pname=_PNAMES,
       pname_known=st.booleans())
def test_an_exec_judged_quiet_matches_no_rule(which, name, where, argv0, first_arg, args, env, tty,
                                              link, new, pname, pname_known):
    compiled = COMPILED[which]
    if compiled.prefilter.exec_program is None:
        pytest.skip(f"{which}: a rule reads clone or exit events, so no process is quiet")
    path = (where + name).encode()
    first = {"path": path, "name": name.encode(), "other": b"/opt/x"}[argv0]
    exe_link = None if link is None else (path.decode() if link == "same" else link).encode()
    times = (NEW_NS, OLD_NS) if new else (OLD_NS, OLD_NS)
    args = ([first_arg] if first_arg is not None else []) + args
    child = _exec_records(CHILD, path, [first] + args, env, tty, exe_link, *times)
    if compiled.keeps(child[0], child[1], pname if pname_known else None):
        return
    assert _matches(RULESETS[which], pname, child) == []


def test_the_default_rules_keep_what_they_watch_and_let_the_rest_be_quiet():
    """Both ways, so that the property above has drops to check and a program that kept
    everything (or nothing) fails here."""
    c = COMPILED["default"]
    assert c.prefilter.exec_program is not None

    def keeps(path, argv, env=(), tty=0, link=None, pname="sh", new=False):
        img, sysrec = _exec_records(CHILD, path, argv, list(env), tty, link,
                                    *((NEW_NS, NEW_NS) if new else (OLD_NS, OLD_NS)))
        return c.keeps(img, sysrec, pname)

    assert not keeps(b"/bin/true", [b"true"], link=b"/usr/bin/true")
    assert not keeps(b"/usr/bin/id", [b"id"], link=b"/usr/bin/id")            # no terminal
    assert keeps(b"/usr/bin/id", [b"id"], tty=34816, link=b"/usr/bin/id")     # on a terminal
    assert keeps(b"/usr/bin/id", [b"id"], link=b"/usr/bin/id", pname="nginx")
    assert keeps(b"/usr/bin/id", [b"id"], link=b"/usr/bin/id", pname=None)    # parent unknown
    assert keeps(b"/opt/xmrig", [b"xmrig"], link=b"/opt/xmrig")
    assert keeps(b"/bin/true", [b"true", b"stratum+tcp://pool"], link=b"/usr/bin/true")
    assert keeps(b"/bin/true", [b"true"], [b"LD_PRELOAD=/x.so"], link=b"/usr/bin/true")
    assert keeps(b"/bin/true", [b"true"], link=b"/usr/bin/true", new=True)   # drift
    assert keeps(b"/tmp/run", [b"/tmp/run"], link=b"/tmp/run")
    assert keeps(b"/proc/self/fd/3", [b"x"], link=b"/memfd:x (deleted)")
    assert keeps(b"/usr/bin/true", [b"true"], link=None)                     # exepath unknown: a memfd?
    # each string test as the rules make it: case, argv[0] apart from the arguments, paths
    # by component, names cut at 15 characters
    true = dict(link=b"/usr/bin/true")
    assert keeps(b"/bin/true", [b"true", b"STRATUM+TCP://pool"], **true)
    assert not keeps(b"/bin/true", [b"stratum+tcp://pool"], **true)
    assert keeps(b"/bin/true", [b"true"], [b"glibc_tunables=1"], **true)
    assert keeps(b"/usr/bin/find", [b"find", b"/", b"-name", b"ID_RSA"], link=b"/usr/bin/find")
    assert keeps(b"/usr/bin/y", [b"//tmp/./y"], link=b"/usr/bin/y") is True   # not normalised: kept
    assert keeps(b"/usr/bin/y", [b"//tmp//y"], link=b"/usr/bin/y")
    assert not keeps(b"/usr/bin/y", [b"/tmpx/y"], link=b"/usr/bin/y")
    assert not keeps(b"/usr/bin/y", [b"/tm/y"], link=b"/usr/bin/y")
    assert not keeps(b"/opt/xmrig-notls-but-longer", [b"x"], link=b"/opt/y")
    assert keeps(b"/opt/xmrig-notls", [b"x"], link=b"/opt/y")
    assert not keeps(b"/usr/bin/id", [b"id"], link=b"/usr/bin/id", pname="httpd-helper")
    # proc.args[N]: one argument, "" past the last; a shell is judged by its script's place
    sh = dict(link=b"/usr/bin/dash", pname="workload-agent")
    assert not keeps(b"/bin/sh", [b"sh", b"-c", b"true"], **sh)
    assert not keeps(b"/bin/sh", [b"sh"], **sh)
    assert not keeps(b"/bin/sh", [b"sh", b"-e", b"/tmp/x.sh"], **sh)   # args[0] is -e
    assert not keeps(b"/bin/sh", [b"sh", b"/tmpx/y.sh"], **sh)
    assert keeps(b"/bin/sh", [b"sh", b"/tmp/x.sh"], **sh)
    assert keeps(b"/bin/sh", [b"sh", b"//tmp/./x.sh", b"more"], **sh)
    assert keeps(b"/bin/bash", [b"bash", b"/dev/shm"], **sh)
    assert not keeps(b"/bin/true", [b"true", b"/tmp/x.sh"], link=b"/usr/bin/true")   # not a shell


@pytest.mark.parametrize("which", sorted(RULESETS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["sh", "bash", "dash", "zsh", "true", "python3"]),
       args=st.lists(st.sampled_from([b"/tmp/x.sh", b"//tmp/./y", b"/tmpfoo/z", b"/dev/shm",
                                      b"/var/tmp", b"/run/shm/a/b", b"tmp/x", b"-c", b"-e", b""]),
                     max_size=3),
       pname=st.sampled_from(["sh", "bash", "workload-agent", "python3"]))
def test_an_exec_judged_quiet_by_its_arguments_matches_no_rule(which, name, args, pname):
    """The test above with everything else benign, so that each argument's place decides
    (proc.args[N]): a shell given a script from /tmp must be kept."""
    compiled = COMPILED[which]
    if compiled.prefilter.exec_program is None:
        pytest.skip(f"{which}: a rule reads clone or exit events, so no process is quiet")
    path = b"/usr/bin/" + name.encode()
    child = _exec_records(CHILD, path, [name.encode()] + args, [], 0, path)
    if compiled.keeps(child[0], child[1], pname):
        return
    assert _matches(RULESETS[which], pname, child) == []


def test_rules_on_exit_or_clone_events_turn_quiet_processes_off(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("- rule: exits\n  desc: d\n  condition: evt.type = procexit and proc.name = x\n"
                 "  output: o\n  priority: WARNING\n")
    rs = load_rules([str(f)]).ruleset
    assert exec_program([(r, r.condition) for r in rs.rules], START_NS) is None


# ---- live ------------------------------------------------------------------------------


class Sink(RulesSink):
    """What the agent's consumer does, noting each exec too: its name, its facts as the
    state has them, and which facts its record brought (valid bits)."""

    def __init__(self, ruleset, delay):
        super().__init__(ruleset, CONTAINER, delay, on_event=self._note)
        self.execs, self.exec_facts, self.fact_bits = [], [], set()

    def handle(self, batch):
        for r in batch:
            if r.kind == R.K_EXEC:
                pf = facts.proc_facts(r.blobs)
                self.fact_bits.add(pf.valid if pf is not None else None)
        super().handle(batch)

    def _note(self, tracker, ev):
        if ev.type == "execve":
            p = ev.proc
            self.execs.append(p.name)
            self.exec_facts.append((p.name, p.user.uid if p.user else None,
                                    p.group.gid if p.group else None, p.loginuid,
                                    p.fdlimit, p.cap_effective, p.tty, p.sid))


def _same_alerts(ruleset, script, delay):
    """(with quiet processes, without): traced twice, the late consumer with them. script:
    a shell script, or the workload's whole argv."""
    with_quiet = _trace(ruleset, script, True, delay)
    without = _trace(ruleset, script, False, 0.0)
    assert sorted(with_quiet.fired) == sorted(without.fired)
    assert without.stats["quiet_dropped"] == 0
    return with_quiet, without


def _trace(ruleset, script, quiet: bool, delay: float):
    sink = Sink(ruleset, delay)
    names, _ = detect.traced_syscalls(ruleset, ARCH)
    pf = compile_prefilter(ruleset, names, keep=detect.IDENTITY_SYSCALLS,
                           start_ns=sink.tracker.start_ns) if quiet else None
    argv = ["sh", "-c", script] if isinstance(script, str) else script
    code = runner.run(argv, sink=sink, syscalls=names, prefilter=pf,
                      priority="security")
    assert code == 0
    assert sink.stats["drops"] == 0
    return sink


@pytest.mark.parametrize("delay", [0.0, 1.5], ids=["prompt", "late"])
def test_live_alerts_are_the_same_with_quiet_processes(tmp_path, delay):
    needs_tracing()
    d = tmp_path
    for link, target in (("nginx", "/bin/sh"), ("xmrig", "/bin/true")):
        os.symlink(target, d / link)
    # Five quiet /bin/true; a "web server" whose exec no rule watches starting a shell
    # that runs `id` (its exec is judged by the parent's name, tracked in C, and the
    # shell's records bring the held web server's with them); a miner by name and one by
    # argument; a preloaded library; a quiet shell with two quiet children (all three
    # dropped); a quiet Python that starts a thread (which ends its quiet); true again.
    script = (f"for i in 1 2 3 4 5; do /bin/true; done; {d}/nginx -c 'sh -c id >/dev/null; /bin/true'; "
              f"{d}/xmrig; /bin/true stratum+tcp://pool; LD_PRELOAD= /bin/true; "
              f"sh -c '/bin/true; /bin/true'; (cd / && /bin/true); "
              f"{sys.executable} -S -c 'import threading; t = threading.Thread(target=len, args=((),)); "
              f"t.start(); t.join()'; /bin/true")
    with_quiet, without = _same_alerts(detect.load_ruleset([])[0], script, delay)
    fired = {name for name, _, _ in with_quiet.fired}
    assert {"Crypto miner started", "Shell spawned by web server"} <= fired, with_quiet.fired
    assert ("Shell spawned by web server", "sh", "nginx") in with_quiet.fired
    # the loop's five, the quiet shell and its first child (the shell execs its last
    # command itself), the subshell that changed directory, the last /bin/true
    assert with_quiet.stats["quiet_dropped"] >= 9, with_quiet.stats
    assert Path(sys.executable).name[:15] in without.execs
    assert sorted(map(str, with_quiet.execs)).count(Path(sys.executable).name[:15]) == \
        sorted(map(str, without.execs)).count(Path(sys.executable).name[:15])   # its thread told
    assert with_quiet.execs.count("true") < without.execs.count("true")


@pytest.mark.parametrize("delay", [0.0, 1.5], ids=["prompt", "late"])
def test_live_the_workloads_own_process_is_quiet_too(tmp_path, delay):
    """The workload's first process is born quiet like its children: a workload that does
    nothing a rule can see sends Python nothing; one whose own exec a rule matches is judged
    with the agent as its parent, as the state has it."""
    needs_tracing()
    rules = detect.load_ruleset([])[0]
    quiet, loud = _same_alerts(rules, ["/bin/true"], delay)
    assert quiet.execs == [] and quiet.stats["records"] == 0 and quiet.stats["quiet_dropped"] == 1
    assert loud.execs == ["true"]
    quiet, _ = _same_alerts(rules, ["sh", "-c", "/bin/true; /bin/true"], delay)
    assert quiet.execs == [] and quiet.stats["quiet_dropped"] == 3
    # its own exec from a temporary directory: the alert names the agent as the parent
    os.symlink("/bin/true", tmp_path / "payload")
    quiet, loud = _same_alerts(rules, [str(tmp_path / "payload")], delay)
    assert [f[0] for f in quiet.fired] == ["Execution from temporary directory"], quiet.fired
    assert quiet.fired[0][2] is not None   # the agent, by the name C tracked for it
    # a quiet shell whose child a rule matches: the held shell comes out first, so the
    # child's parent is the shell
    os.symlink("/bin/true", tmp_path / "xmrig")
    quiet, _ = _same_alerts(rules, ["sh", "-c", f"{tmp_path}/xmrig; /bin/true"], delay)
    assert ("Crypto miner started", "xmrig", "sh") in quiet.fired, quiet.fired


@pytest.mark.parametrize("delay", [0.0, 1.5], ids=["prompt", "late"])
def test_live_a_quiet_exec_keeps_the_facts_it_had(delay):
    """A quiet process's credentials, loginuid and fd limit are read at its next stop (or
    when its records are released), not at its exec stop: they must be what the exec had.
    The quiet Python sets its loginuid where it may (an open for writing: not the loader's
    read-only opens, which leave the facts unread) and drops its privileges: setgid is
    kept, and releases the held exec, whose facts were read before either call ran."""
    needs_tracing()
    if os.geteuid() != 0:
        pytest.skip("needs root to change user")
    login = subprocess.run(["sh", "-c", "echo 4321 > /proc/self/loginuid"],
                           stderr=subprocess.DEVNULL).returncode == 0
    set_login = ('fd = os.open(\"/proc/self/loginuid\", os.O_WRONLY); os.write(fd, b\"4321\"); '
                 if login else "")
    script = (f"/bin/true; {sys.executable} -S -c 'import os; {set_login}os.setgid(65534); "
              f"os.setuid(65534); os.execv(\"/bin/true\", [\"true\"])'; /bin/true")
    quiet, loud = _same_alerts(detect.load_ruleset([])[0], script, delay)
    py = Path(sys.executable).name[:15]
    mine = [f for f in quiet.exec_facts if f[0] == py]
    assert mine and mine == [f for f in loud.exec_facts if f[0] == py], (quiet.exec_facts, loud.exec_facts)
    assert mine[0][1:3] == (0, 0)   # the exec ran as root
    # every exec record as complete as without quiet processes (the fd limit of another
    # user's process may be unreadable: prlimit's permission check)
    assert quiet.fact_bits == loud.fact_bits, (quiet.fact_bits, loud.fact_bits)
    whole = facts.PF_STAT | facts.PF_STATUS | facts.PF_EXE
    assert all(bits & whole == whole for bits in quiet.fact_bits), quiet.fact_bits
    # the true it then exec'd (no longer quiet: its records reached the ring) as nobody
    assert ("true", 65534) in [f[:2] for f in quiet.exec_facts]
    assert ("true", 65534) in [f[:2] for f in loud.exec_facts]
    if login:
        assert mine[0][3] != 4321 and ("true", 4321) in [(f[0], f[3]) for f in quiet.exec_facts]


PTY_SHELL = ("import os\n"
             "pid, fd = os.forkpty()\n"
             "if pid == 0:\n"
             "    os.execv('/bin/sh', ['sh', '-c', 'sh -c true; true'])\n"
             "while True:\n"
             "    try:\n"
             "        if not os.read(fd, 1024):\n"
             "            break\n"
             "    except OSError:\n"
             "        break\n"
             "os.waitpid(pid, 0)\n")


@pytest.mark.parametrize("delay", [0.0, 1.5], ids=["prompt", "late"])
def test_live_a_quiet_shell_on_a_terminal_is_judged_with_it(delay):
    """A quiet exec is judged first without /proc/PID/stat, a terminal counting as present;
    a shell on a terminal is then judged again with it, and kept. (The first shell set up
    the terminal, with calls that end its quiet; the one it starts is born quiet.)"""
    needs_tracing()
    quiet, loud = _same_alerts(detect.load_ruleset([])[0], [sys.executable, "-S", "-c", PTY_SHELL],
                               delay)
    assert "Shell with terminal in container" in {f[0] for f in quiet.fired}, quiet.fired
    shells = [f for f in quiet.exec_facts if f[0] == "sh"]
    assert len(shells) == 2 and all(f[6] not in (None, 0) for f in shells), quiet.exec_facts


def _ruleset(tmp_path, text):
    f = tmp_path / "rules.yaml"
    f.write_text(text)
    result = load_rules([str(f)])
    assert result.ok, result.errors
    return result.ruleset


FAILED_EXEC_RULE = """
- rule: failed exec
  desc: d
  condition: evt.type = execve and evt.res != SUCCESS
  output: o
  priority: WARNING
"""


def test_failed_execs_stay_quiet_only_when_no_rule_can_match_them(tmp_path):
    default = [(r, r.condition) for r in detect.load_ruleset([])[0].rules if r.enabled]
    assert failed_exec_quiet(default)
    watched = [(r, r.condition) for r in _ruleset(tmp_path, FAILED_EXEC_RULE).rules]
    assert not failed_exec_quiet(watched)
    one_error = _ruleset(tmp_path, FAILED_EXEC_RULE.replace("!= SUCCESS", "= ENOENT"))
    assert not failed_exec_quiet([(r, r.condition) for r in one_error.rules])


# execvp: each PATH directory in turn, the first two fail (ENOENT)
EXECVP = ("import os, subprocess\n"
          "os.environ['PATH'] = '/nonexistent/a:/nonexistent/b:' + os.environ.get('PATH', '/usr/bin:/bin')\n"
          "for i in range(5):\n    subprocess.run(['true'])\n")


@pytest.mark.parametrize("delay", [0.0, 1.5], ids=["prompt", "late"])
def test_live_failed_execs(tmp_path, delay):
    needs_tracing()
    script = f"{sys.executable} -S -c \"{EXECVP}\""
    for ruleset, quiet_expected in ((detect.load_ruleset([])[0], True),
                                    (_ruleset(tmp_path, FAILED_EXEC_RULE), False)):
        with_quiet, _ = _same_alerts(ruleset, script, delay)
        if quiet_expected:
            assert with_quiet.stats["quiet_dropped"] >= 5, with_quiet.stats
        else:
            assert [n for n, _, _ in with_quiet.fired].count("failed exec") >= 10, with_quiet.fired


CHDIR_RULE = """
- rule: into the root
  desc: d
  condition: evt.type = chdir and evt.arg.path = /
  output: o
  priority: WARNING
"""


def test_a_quiet_process_stays_quiet_through_calls_no_rule_watches(tmp_path):
    """chdir, prctl, setsid... change only their own process's state: held with its other
    records when no rule can match them, sent (ending the quiet) when one can."""
    names = sorted(detect.traced_syscalls(detect.load_ruleset([])[0], ARCH)[0])
    pf = compile_prefilter(detect.load_ruleset([])[0], names, keep=detect.IDENTITY_SYSCALLS,
                           start_ns=START_NS)
    assert {"chdir", "fchdir", "prctl", "setsid"} <= pf.quiet_hold
    assert "setpgid" not in pf.quiet_hold   # it can join another process's group
    watched = _ruleset(tmp_path, CHDIR_RULE)
    pf = compile_prefilter(watched, sorted(detect.traced_syscalls(watched, ARCH)[0]),
                           keep=detect.IDENTITY_SYSCALLS, start_ns=START_NS)
    assert "chdir" not in pf.quiet_hold and pf.exec_program is not None


@pytest.mark.parametrize("delay", [0.0, 1.5], ids=["prompt", "late"])
def test_live_calls_a_rule_watches_end_the_quiet(tmp_path, delay):
    needs_tracing()
    script = "for i in 1 2 3; do (cd / && /bin/true); done; (cd /tmp && /bin/true); /bin/true; /bin/true"
    with_quiet, _ = _same_alerts(_ruleset(tmp_path, CHDIR_RULE), script, delay)
    assert [n for n, _, _ in with_quiet.fired].count("into the root") == 3
    # every subshell changed directory, which a rule watches (whatever the path: chdir
    # changes state, so it is never dropped at its stop); the two plain ones stay quiet
    assert with_quiet.stats["quiet_dropped"] == 2, with_quiet.stats
