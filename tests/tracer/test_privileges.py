"""No root, no extra capability: a process may trace its own children. And when tracing
cannot start at all, --priority decides between running untraced and refusing."""
import ctypes
import os
import struct
import subprocess
import sys
import textwrap

import pytest

from workload_agent import runner
from workload_agent.events import records as R

AGENT = [sys.executable, "-m", "workload_agent", "run"]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user/capability set")


def _in_child(fn):
    """Run fn() in a forked child and return what it returns (through a pipe)."""
    import pickle

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            out = fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            out = ("error", repr(exc))
        os.write(w, pickle.dumps(out))
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return pickle.loads(data)


@needs_root
@pytest.mark.parametrize("use_seccomp", [True, False])
def test_unprivileged_user_traces_its_children(use_seccomp):
    import pathlib
    import shutil
    import tempfile

    from workload_agent.tracer.core import _core

    _core()  # loaded while files are still readable to us; the child cannot read /root
    where = pathlib.Path(tempfile.mkdtemp(prefix="wa-nobody-"))
    os.chmod(where, 0o777)
    target = where / "made-by-nobody"

    class Sink:
        def __init__(self):
            self.paths = []

        def handle(self, batch):
            self.paths += [r.blobs[1].data for r in batch if r.kind == R.K_SYSCALL and 1 in r.blobs]

        def close(self, stats):
            pass

    def body():
        os.setgroups([])
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)
        sink = Sink()
        code = runner.run(["sh", "-c", f"echo x > {target}; exit 6"], sink=sink, use_seccomp=use_seccomp)
        with open("/proc/self/status") as f:
            caps = [l for l in f if l.startswith("CapEff")][0].split()[1]
        return code, sink.paths, os.geteuid(), caps

    try:
        code, paths, euid, caps = _in_child(body)
    finally:
        text = target.read_text() if target.exists() else None
        shutil.rmtree(where)
    assert euid == 65534 and int(caps, 16) == 0  # really unprivileged, no capability at all
    assert code == 6
    assert str(target).encode() in paths
    assert text == "x\n"


DOCKER_DEFAULT_CAPS = ("chown,dac_override,fowner,fsetid,kill,setgid,setuid,setpcap,net_bind_service,"
                       "net_raw,sys_chroot,mknod,audit_write,setfcap")


@needs_root
def test_fargate_like_capability_set(tmp_path):
    if not os.path.exists("/usr/bin/setpriv"):
        pytest.skip("setpriv (util-linux) is not installed")
    caps = ",".join("+" + c for c in (DOCKER_DEFAULT_CAPS + ",sys_ptrace").split(","))
    events = tmp_path / "events"
    p = subprocess.run(["setpriv", "--bounding-set", "-all," + caps, "--inh-caps", "-all"] + AGENT +
                       ["--events-file", str(events), "--", "sh", "-c",
                        "grep CapEff /proc/self/status; cat /etc/hostname >/dev/null"],
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    cap_eff = int(p.stdout.split()[1], 16)
    CAP_SYS_ADMIN = 21
    assert not cap_eff & (1 << CAP_SYS_ADMIN)
    assert b"name=/etc/hostname" in events.read_bytes()


# A launcher that makes ptrace fail the way a restrictive seccomp profile does, then runs
# the agent: tracing cannot start, for real.
DENY_PTRACE = textwrap.dedent("""
    import ctypes, os, struct, sys
    from workload_agent.events.syscall_table import SYSCALLS
    from workload_agent.events.arch import native_arch
    nr = SYSCALLS[native_arch()]["ptrace"]
    ins = [(0x20, 0, 0, 0), (0x15, 0, 1, nr), (0x06, 0, 0, 0x00050000 | 1), (0x06, 0, 0, 0x7fff0000)]
    prog = b"".join(struct.pack("<HBBI", *i) for i in ins)
    buf = ctypes.create_string_buffer(prog)
    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    fp = Fprog(len(ins), ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(38, 1, 0, 0, 0) == 0                      # PR_SET_NO_NEW_PRIVS
    assert libc.prctl(22, 2, ctypes.byref(fp), 0, 0) == 0       # PR_SET_SECCOMP, FILTER
    os.execv(sys.executable, [sys.executable, "-m", "workload_agent"] + sys.argv[1:])
""")


def test_availability_runs_untraced_with_a_warning(tmp_path):
    marker = tmp_path / "ran"
    p = subprocess.run([sys.executable, "-c", DENY_PTRACE, "run", "--", "sh", "-c", f"touch {marker}; exit 4"],
                       capture_output=True, timeout=60)
    assert p.returncode == 4
    assert marker.exists()
    assert b"UNTRACED" in p.stderr and b"PTRACE_SEIZE" in p.stderr


def test_security_refuses_to_start(tmp_path):
    marker = tmp_path / "ran"
    env = dict(os.environ, SYSDIG_PRIORITY="security")
    p = subprocess.run([sys.executable, "-c", DENY_PTRACE, "run", "--", "sh", "-c", f"touch {marker}"],
                       capture_output=True, timeout=60, env=env)
    assert p.returncode == runner.EXIT_REFUSED
    assert not marker.exists()
    assert b"refusing" in p.stderr
