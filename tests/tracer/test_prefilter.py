"""The prefilter is sound: whatever the C core drops, no enabled rule could have matched.

The property test builds open-family records (paths absolute and relative, with base
directories, odd spellings, every access mode), asks the C evaluator whether it keeps
them, and for every drop runs the same record through the state tracker and the rules
(the shipped ones and all three upstream files): none may match. The live tests trace
real processes with and without the prefilter: the alerts are the same, fewer records.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workload_agent import detect
from workload_agent.events import capture_kinds as K
from workload_agent.events import records as R
from workload_agent.events.params import SPECS
from workload_agent.events.syscall_table import AUDIT_ARCH, SYSCALLS
from workload_agent.rules.event import Container
from workload_agent.rules.loader import load_rules
from workload_agent.state import StateTracker
from workload_agent.tracer.prefilter import TRUE, compile_prefilter, necessary
from workload_agent.tracer.seccomp import native_arch

from .conftest import upstream_ruleset

core = pytest.importorskip("workload_agent.tracer._core")
ffi, lib = core.ffi, core.lib
ARCH = native_arch()
TABLE = SYSCALLS[ARCH]


def _rulesets():
    out = {"default": detect.load_ruleset([])[0]}
    # every rule, whatever its default: the widest necessary condition
    upstream = upstream_ruleset(lambda rule: True)
    if upstream is not None:
        out["upstream"] = upstream
    return out


RULESETS = _rulesets()
OPEN_FAMILY = [n for n in ("open", "openat", "openat2", "creat") if n in TABLE]



def _blob(slot: int, kind: int, data: bytes, flags: int = 0) -> bytes:
    pad = (-len(data)) % 8
    return R.BLOB.pack(slot, kind, flags, 0, len(data), 0) + data + b"\0" * pad


def _record(name: str, path: bytes, base, flags: int, ret: int) -> bytes:
    args = [0] * 6
    path_arg = 0 if name in ("open", "creat") else 1
    if name in ("openat", "openat2"):
        args[0] = (-100) & 0xFFFFFFFFFFFFFFFF
    if name == "open":
        args[1] = flags
    elif name == "openat":
        args[2] = flags
    blobs = [_blob(path_arg, K.PATH, path)]
    if base is not None:
        blobs.append(_blob(K.SLOT_BASE + path_arg, K.LINK, base))
    body = b"".join(blobs)
    length = R.HEADER.size + len(body)
    header = R.HEADER.pack(length, R.K_SYSCALL, R.F_HAS_EXIT, 1, 2, os.getpid(), os.getpid(),
                           TABLE[name], AUDIT_ARCH[ARCH], ret, *args, len(blobs), 0, 0)
    return header + body


def _path_params(name: str):
    """(arg of each path param, arg of its dirfd or None) from the param table."""
    spec = SPECS[name]
    by_name = {p.name: p for p in spec.params}
    out = []
    for p in spec.params:
        if p.type in ("FSPATH", "FSRELPATH") and p.src[0] == "path":
            rel = by_name.get(p.rel) if p.rel else None
            out.append((p.src[1], rel.src[1] if rel is not None and len(rel.src) > 1 else None))
    return out


#: The other syscalls with path arguments that the default rules trace.
PATH_CALLS = [n for n in ("unlink", "unlinkat", "mkdir", "mkdirat", "rename", "renameat", "renameat2",
                          "link", "linkat", "symlink", "symlinkat", "truncate", "chmod", "fchmodat",
                          "utimensat", "fchmod") if n in TABLE]


def _path_record(name: str, paths, base, flags: int, ret: int) -> bytes:
    """A record of ``name`` with each path param's argument set from ``paths`` (relative ones
    against ``base`` as read at the stop), its dirfds AT_FDCWD, and ``flags`` in its mode
    argument (chmod) or else the argument after the last path (unlinkat's AT_REMOVEDIR...)."""
    args = [0] * 6
    blobs = []
    where = _path_params(name)
    for (arg, dirfd), path in zip(where, paths):
        if dirfd is not None:
            args[dirfd] = (-100) & 0xFFFFFFFFFFFFFFFF
        blobs.append(_blob(arg, K.PATH, path))
        if base is not None:
            blobs.append(_blob(K.SLOT_BASE + arg, K.LINK, base))
    modes = [p.src[1] for p in SPECS[name].params if p.type == "MODE"]
    for i in modes or [max(a for a, _ in where) + 1]:
        if i < 6:
            args[i] = flags
    body = b"".join(blobs)
    header = R.HEADER.pack(R.HEADER.size + len(body), R.K_SYSCALL, R.F_HAS_EXIT, 1, 2, os.getpid(),
                           os.getpid(), TABLE[name], AUDIT_ARCH[ARCH], ret, *args, len(blobs), 0, 0)
    return header + body


class _Compiled:
    def __init__(self, ruleset):
        names = sorted(OPEN_FAMILY + PATH_CALLS)
        self.prefilter = compile_prefilter(ruleset, names, keep=detect.IDENTITY_SYSCALLS)
        self.pf, self._keep = self.prefilter.to_c(ffi, lib, TABLE)

    def keeps(self, raw: bytes) -> bool:
        buf = ffi.new("char[]", raw)
        b = ffi.new("struct wa_buf *")
        b.buf, b.len, b.cap = ffi.cast("uint8_t *", buf), len(raw), len(raw)
        return bool(lib.wa_prefilter_keep(self.pf, b))


COMPILED = {k: _Compiled(v) for k, v in RULESETS.items()}

_COMPONENTS = st.sampled_from(["etc", "shadow", "passwd", "sudoers", "sudoers.d", "pam.d", ".ssh",
                               "id_rsa", "authorized_keys", "root", "var", "log", "auth.log", "bin",
                               "usr", "dev", "mem", "sda", "tmp", "x", ".", "..", "", "cron.d",
                               "release_agent", ".bash_history", "proc", "self", "host", "apt",
                               "sources.list", "yum.repos.d", "lib", "boot", ".aws", "credentials", "environ", "1", "exe",
                               "fd", "thread-self", "userfaultfd", "ld.so.preload",
                               "nvme0", "profile", "zsh", "www", "index.html"])
_PATHS = st.builds(lambda absolute, parts: ("/" if absolute else "") + "/".join(parts),
                   st.booleans(), st.lists(_COMPONENTS, min_size=1, max_size=5))
_BASES = st.one_of(st.none(), st.sampled_from(["/", "/etc", "/root/.ssh", "/var/log", "/tmp", "/dev",
                                               "/usr/bin", "/root"]))
_ACCESS = st.sampled_from([0, 1, 2, 3])
_EXTRA = st.sampled_from([0, 0o100, 0o1000, 0o1100, 0o2100, 0o200000, 0o2000000, 0o20200000, 0o4010000])


def _matches(ruleset, raw: bytes):
    (rec,) = R.decode_batch(raw)
    tracker = StateTracker(Container(id="abcdef012345", name="app", image="app:1", repository="app",
                                     tag="1", privileged=False))
    ev = tracker.process(rec)
    return [] if ev is None else [r.name for r in ruleset.match(ev, "all")]


@pytest.mark.parametrize("which", sorted(RULESETS))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(OPEN_FAMILY), path=_PATHS, base=_BASES, access=_ACCESS, extra=_EXTRA,
       ret=st.sampled_from([3, -2, -13]))
def test_a_dropped_event_matches_no_rule(which, name, path, base, access, extra, ret):
    raw = _record(name, path.encode(), None if base is None else base.encode(), access | extra, ret)
    if COMPILED[which].keeps(raw):
        return
    assert _matches(RULESETS[which], raw) == []


@pytest.mark.parametrize("which", sorted(RULESETS))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(PATH_CALLS), paths=st.lists(_PATHS, min_size=2, max_size=2), base=_BASES,
       flags=st.sampled_from([0, 0x200, 0x100, 1, 2, 0o755, 0o4755, 0o2711, 0o6000, 0o1777, 0o104755]),
       ret=st.sampled_from([0, -2, -13]))
def test_a_dropped_path_call_matches_no_rule(which, name, paths, base, flags, ret):
    raw = _path_record(name, [p.encode() for p in paths], None if base is None else base.encode(),
                       flags, ret)
    if COMPILED[which].keeps(raw):
        return
    assert _matches(RULESETS[which], raw) == []


FLAG_RULES = """
- rule: t trunc
  desc: d
  condition: evt.type = openat and evt.arg.flags contains O_TRUNC and fd.name startswith /tmp/t
  output: o
  priority: WARNING
- rule: t write only
  desc: d
  condition: evt.type = openat and evt.arg.flags contains O_WRONLY and fd.name startswith /tmp/w
  output: o
  priority: WARNING
- rule: t read write
  desc: d
  condition: evt.type = openat and evt.arg.flags contains O_RDWR and fd.name startswith /tmp/r
  output: o
  priority: WARNING
- rule: t read only
  desc: d
  condition: evt.type = openat and evt.arg.flags contains O_RDONLY and fd.name startswith /tmp/o
  output: o
  priority: WARNING
- rule: t direct
  desc: d
  condition: evt.type = openat and evt.arg.flags contains O_DIRECT and fd.name startswith /tmp/d
  output: o
  priority: WARNING
- rule: t creat as on arm64
  desc: d
  condition: >
    evt.type = openat and evt.arg.flags contains O_CREAT and evt.arg.flags contains O_TRUNC
    and evt.arg.flags contains O_WRONLY and fd.name startswith /tmp/c
  output: o
  priority: WARNING
"""


def _flag_ruleset():
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(FLAG_RULES)
    try:
        result = load_rules([f.name])
    finally:
        os.unlink(f.name)
    assert result.ok
    return result.ruleset


FLAG_RULESET = _flag_ruleset()
FLAG_COMPILED = _Compiled(FLAG_RULESET)
_OPEN_FLAG_BITS = [0o100, 0o200, 0o1000, 0o2000, 0o4000, 0o40000, 0o200000, 0o400000, 0o2000000,
                   0o4010000, 0o20200000]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(["/tmp/t", "/tmp/w", "/tmp/r", "/tmp/o", "/tmp/d", "/tmp/c", "/tmp/x"]),
       access=_ACCESS, extra=st.lists(st.sampled_from(_OPEN_FLAG_BITS), max_size=4),
       ret=st.sampled_from([3, -2]))
def test_open_flag_tests_drop_only_what_no_rule_matches(path, access, extra, ret):
    """Rules on evt.arg.flags: each flag name and access mode, and O_DIRECT, whose name is
    inside O_DIRECTORY's (never judged in C). Every sampled flag combination: a drop means
    no match, and a match is always kept."""
    flags = access
    for bits in extra:
        flags |= bits
    raw = _record("openat", path.encode(), None, flags, ret)
    matched = _matches(FLAG_RULESET, raw)
    if not FLAG_COMPILED.keeps(raw):
        assert matched == []


def test_open_flag_tests_are_judged_in_c():
    c = FLAG_COMPILED
    assert not c.keeps(_record("openat", b"/tmp/t", None, 0o1, 3))
    assert c.keeps(_record("openat", b"/tmp/t", None, 0o1001, 3))
    assert not c.keeps(_record("openat", b"/tmp/w", None, 0o2, 3))
    assert c.keeps(_record("openat", b"/tmp/w", None, 0o1, 3))
    assert c.keeps(_record("openat", b"/tmp/r", None, 0o2, 3))
    assert not c.keeps(_record("openat", b"/tmp/c", None, 0o1102, 3))   # O_RDWR, not O_WRONLY
    assert c.keeps(_record("openat", b"/tmp/c", None, 0o1101, 3))
    assert not c.keeps(_record("openat", b"/tmp/c", None, 0o101, 3))
    assert c.keeps(_record("openat", b"/tmp/d", None, 0, 3))   # O_DIRECT: never judged in C


def test_the_default_rules_prefilter_judges_unlink_and_mkdir_by_their_paths():
    c = COMPILED["default"]
    for name in ("unlinkat", "mkdirat"):
        assert c.keeps(_path_record(name, [b"/usr/bin/ls"], None, 0, 0))
        assert not c.keeps(_path_record(name, [b"/tmp/build/x.o"], None, 0, 0))
        assert not c.keeps(_path_record(name, [b"x.o"], b"/tmp/build", 0, 0))
        assert c.keeps(_path_record(name, [b"ls"], b"/usr/bin", 0, 0))
        assert c.keeps(_path_record(name, [b"ls"], None, 0, 0))   # no base: the rules judge
    assert c.keeps(_path_record("unlinkat", [b"/root/.bash_history"], None, 0, 0))
    assert c.keeps(_path_record("unlinkat", [b"/var/log/auth.log"], None, 0, 0))
    # chmod: only a setuid or setgid bit can make a rule match
    assert not c.keeps(_path_record("fchmodat", [b"/usr/local/bin/tool"], None, 0o755, 0))
    assert c.keeps(_path_record("fchmodat", [b"/tmp/tool"], None, 0o4755, 0))
    assert c.keeps(_path_record("fchmod", [], None, 0o2755, 0))
    assert not c.keeps(_path_record("fchmod", [], None, 0o644, 0))
    # renames feed the windowed rates whatever the rules say: never dropped
    assert c.keeps(_path_record("renameat2", [b"/tmp/a", b"/tmp/b"], None, 0, 0))


def test_the_default_rules_prefilter_drops_ordinary_opens():
    c = COMPILED["default"]
    assert c.keeps(_record("openat", b"/etc/shadow", None, 0, 3))
    assert not c.keeps(_record("openat", b"/usr/share/zoneinfo/UTC", None, 0, 3))
    assert not c.keeps(_record("openat", b"index.html", b"/var/www", 0, 3))
    # Spellings the state normalises, and relative paths without a base, are never dropped.
    assert c.keeps(_record("openat", b"/usr/../etc/shadow", None, 0, 3))
    assert c.keeps(_record("openat", b"shadow", None, 0, 3))
    assert c.keeps(_record("openat", b"shadow", b"/etc", 0, 3))


def test_negations_and_unknown_fields_never_restrict():
    from workload_agent.rules.condition import parse_condition

    cond = parse_condition("evt.type = openat and not fd.name startswith /etc and proc.name = x")
    assert necessary(cond, "openat") == TRUE
    assert necessary(parse_condition("evt.type = unlinkat and fd.name = /x"), "openat") == ()


def _run(args, tmp_path, rules_dir=None):
    import subprocess

    out = tmp_path / ("alerts-%d" % len(args))
    prog = tmp_path / "prog.py"
    prog.write_text("for i in range(200):\n    open('/usr/lib/os-release').close()\n"
                    "open('/etc/shadow').close()\n")
    p = subprocess.run([sys.executable, "-m", "workload_agent", "run", "--priority", "security",
                        "--alerts-to", str(out), *args, "--", sys.executable, str(prog)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    text = out.read_text()
    assert "Password or sudoers" in text, text
    return [line.split(" ", 1)[1] for line in text.splitlines() if line]


@pytest.mark.skipif(os.geteuid() != 0, reason="reading /etc/shadow needs root")
def test_live_alerts_are_the_same_with_and_without_the_prefilter(tmp_path):
    with_pf = _run([], tmp_path)
    without = _run(["--no-prefilter"], tmp_path)
    assert with_pf and with_pf == without


def test_prefilter_counts_what_it_drops():
    from workload_agent import runner

    ruleset = RULESETS["default"]
    names, _ = detect.traced_syscalls(ruleset, ARCH)

    class Count:
        def __init__(self):
            self.records = 0
            self.stats = None

        def handle(self, batch):
            self.records += len(batch)

        def close(self, stats):
            self.stats = stats

    prog = "for i in range(300):\n    open('/usr/lib/os-release').close()\n"
    counts = {}
    for mode in ("on", "off"):
        sink = Count()
        pf = detect.prefilter_for(ruleset, names) if mode == "on" else None
        assert runner.run([sys.executable, "-c", prog], sink=sink, syscalls=names, prefilter=pf) == 0
        counts[mode] = (sink.records, sink.stats["prefiltered"])
    assert counts["off"][1] == 0
    assert counts["on"][1] >= 300
    assert counts["off"][0] - counts["on"][0] >= 300


@pytest.mark.skipif(os.geteuid() != 0, reason="writing below /var/log needs root")
def test_live_unlinks_and_mkdirs_are_judged_in_c_and_alerts_stay(tmp_path):
    """A build-like workload (mkdir, unlink, rmdir in a scratch directory) and one log file
    removed: the scratch calls are dropped in C, the log removal still alerts, the same
    alerts with and without the prefilter."""
    import subprocess

    log = Path("/var/log") / f"wa-prefilter-test-{os.getpid()}.log"
    prog = tmp_path / "build.py"
    prog.write_text(
        "import os, sys\n"
        f"d = {str(tmp_path / 'scratch')!r}\n"
        "os.makedirs(d, exist_ok=True)\n"
        "for i in range(150):\n"
        "    p = os.path.join(d, str(i))\n"
        "    os.mkdir(p); open(p + '/f', 'w').close(); os.unlink(p + '/f'); os.rmdir(p)\n"
        f"open({str(log)!r}, 'w').close(); os.unlink({str(log)!r})\n")
    alerts = {}
    for mode, extra in (("on", []), ("off", ["--no-prefilter"])):
        out = tmp_path / f"alerts-{mode}"
        stats = tmp_path / f"stats-{mode}.json"
        p = subprocess.run([sys.executable, "-m", "workload_agent", "run", "--priority", "security",
                            "--alerts-to", str(out), *extra, "--", sys.executable, str(prog)],
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, WORKLOAD_AGENT_STATS_FILE=str(stats)))
        assert p.returncode == 0, p.stderr
        import json
        alerts[mode] = ([line.split(" ", 1)[1] for line in out.read_text().splitlines() if line],
                        json.loads(stats.read_text())["prefiltered"])
    assert any("Log file" in a and str(log) in a for a in alerts["on"][0]), alerts["on"][0]
    assert alerts["on"][0] == alerts["off"][0]
    assert alerts["on"][1] >= 450 and alerts["off"][1] == 0


def test_the_compilers_operations_and_subjects_are_the_c_cores():
    """prefilter.py names the C core's enums for the compiler, which runs without the
    extension (rules validate): each must be the value csrc/prefilter.h gives it."""
    import workload_agent.tracer.prefilter as P
    core = pytest.importorskip("workload_agent.tracer._core")
    ops = ("PATH_IN", "PATH_PREFIX", "PATH_SUFFIX", "PATH_CONTAINS", "DIR_IN", "BASE_IN",
           "BASE_PREFIX", "ACCMODE_IN", "FLAGS_ANY", "STR_IN", "STR_PREFIX", "STR_SUFFIX",
           "STR_CONTAINS", "STR_ICONTAINS", "STR_PMATCH", "TTY", "EXE_NEW", "MEMFD")
    subjects = ("S_NAME", "S_EXE", "S_EXEPATH", "S_EXEPATH_BASE", "S_ARGS", "S_ENV", "S_PNAME",
                "S_ARG0", "ARGN_MAX")
    for name in ops + subjects:
        assert getattr(P, name) == getattr(core.lib, "WA_PF_" + name), name
    assert P.S_PNAME < P.S_ARG0 and P.S_ARG0 + P.ARGN_MAX <= 256   # an atom's arg is a byte
