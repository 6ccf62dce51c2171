"""Context the tracer reads at the stop: the layout Python decodes, and the values checked
against what the test itself sees of the same process and files."""
import os
import shutil
import subprocess
import sys
import textwrap


from tests.conftest import needs

from workload_agent.events import capture_kinds as K
from workload_agent.events import facts
from workload_agent.events import records as R
from workload_agent.events.params import capture_table
from workload_agent.tracer.core import CaptureSpec, Tracer

core = needs("workload_agent.tracer._core")
ffi, lib = core.ffi, core.lib


def test_facts_layout_matches_c():
    assert facts.PROC_FACTS.size == ffi.sizeof("struct wa_proc_facts")
    assert facts.FILE_FACTS.size == ffi.sizeof("struct wa_file_facts")
    assert ffi.offsetof("struct wa_proc_facts", "exe") == facts.PROC_FACTS.size - 16 - 48
    assert ffi.offsetof("struct wa_proc_facts", "cap_inh") == 72
    for name in ("PROC", "EXE", "CWD", "SCRIPT", "COMM", "BASE", "FD", "FD_LOCAL", "FD_PEER"):
        assert getattr(K, "SLOT_" + name) == getattr(lib, "WA_SLOT_" + name)
    for name in ("STAT", "STATUS", "EXE", "LOGINUID", "FDLIMIT"):
        assert getattr(facts, "PF_" + name) == getattr(lib, "WA_PF_" + name)


def trace(argv, names=("execve", "execveat", "openat", "fchmod", "prctl", "capset")):
    table = capture_table()
    specs = {n: CaptureSpec(exit_needed=table[n][1], args=table[n][0]) for n in names}
    t = Tracer(argv, path=shutil.which(argv[0]) or argv[0], syscalls=specs)
    t.start()
    recs = []
    while True:
        t.wait(0.1)
        recs += t.read()
        if t.done() is not None:
            recs += t.read()
            break
    t.close()
    return recs


def test_exec_facts_are_the_running_image(tmp_path):
    out = tmp_path / "out"
    prog = textwrap.dedent(f"""
        import os, resource
        st = os.stat("/proc/self/exe")
        lim = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        open({str(out)!r}, "w").write("%d %d %d %d %d %s" % (st.st_ino, os.getpgrp(), os.getsid(0),
            os.geteuid(), lim, os.readlink("/proc/self/exe")))
    """)
    recs = trace([sys.executable, "-c", prog])
    (ex,) = [r for r in recs if r.kind == R.K_EXEC]
    pf = facts.proc_facts(ex.blobs)
    ino, pgrp, sid, euid, lim, exe = out.read_text().split()
    assert pf.has_stat and pf.has_status and pf.exe is not None
    assert pf.exe.ino == int(ino) and pf.pgid == int(pgrp) and pf.sid == int(sid)
    assert pf.uids[1] == int(euid) and pf.fdlimit == int(lim)
    assert facts.link_text(ex.blobs, K.SLOT_EXE) == exe
    assert facts.link_text(ex.blobs, K.SLOT_CWD) == os.getcwd()
    assert pf.vm_size_kb > 0 and pf.comm == os.path.basename(sys.executable)[:15]
    assert facts.script_facts(ex.blobs) is None   # a binary: the exe is the file exec'd


def test_script_facts_are_the_script_and_survive_its_removal(tmp_path):
    script = tmp_path / "s.sh"
    script.write_text("#!/bin/sh\nrm -f \"$0\"\n")
    script.chmod(0o755)
    ino = script.stat().st_ino
    recs = trace(["sh", "-c", f"{script}; true"])
    assert not script.exists()
    execs = [r for r in recs if r.kind == R.K_EXEC]
    found = [facts.script_facts(r.blobs) for r in execs if facts.script_facts(r.blobs) is not None]
    assert [f.ino for f in found] == [ino]


def test_relative_paths_carry_their_base(tmp_path):
    sub = tmp_path / "d"
    sub.mkdir()
    (sub / "f").write_text("x")
    prog = textwrap.dedent(f"""
        import os
        os.chdir({str(tmp_path)!r})
        open("d/f").close()
        d = os.open("d", os.O_RDONLY | os.O_DIRECTORY)
        os.close(os.open("f", os.O_RDONLY, dir_fd=d))
    """)
    recs = trace([sys.executable, "-c", prog])
    rel = [r for r in recs if r.kind == R.K_SYSCALL and 1 in r.blobs and
           r.blobs[1].data in (b"d/f", b"f")]
    bases = {r.blobs[1].data: facts.link_text(r.blobs, K.SLOT_BASE + 1) for r in rel}
    assert bases == {b"d/f": str(tmp_path), b"f": str(sub)}


def test_fd_origin_and_comm_and_capset(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    prog = textwrap.dedent(f"""
        import ctypes, os
        fd = os.open({str(f)!r}, os.O_RDONLY)
        os.fchmod(fd, 0o600)
        libc = ctypes.CDLL(None)
        libc.prctl(15, b"renamed-x", 0, 0, 0)
    """)
    recs = trace([sys.executable, "-c", prog])
    (fch,) = [r for r in recs if r.kind == R.K_SYSCALL and K.SLOT_FD in r.blobs]
    assert facts.link_text(fch.blobs, K.SLOT_FD) == str(f)
    comms = [r.blobs[K.SLOT_COMM].data for r in recs if r.kind == R.K_SYSCALL and K.SLOT_COMM in r.blobs]
    assert b"renamed-x" in comms


def test_rules_describe_names_approximate_fields(tmp_path):
    rules = tmp_path / "r.yaml"
    rules.write_text("- rule: r\n  desc: d\n  condition: evt.type = execve and proc.vmrss > 1\n"
                     "  output: o\n  priority: NOTICE\n")
    out = subprocess.run([sys.executable, "-m", "workload_agent", "rules", "describe", "-r", str(rules)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "approximate fields: proc.vmrss (read at the process's last exec" in out.stdout
