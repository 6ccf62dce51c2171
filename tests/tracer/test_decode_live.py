"""Decoded arguments of real syscalls, checked against values this test chose."""
import os
import socket
import sys
import textwrap

import pytest

from workload_agent.events.decode import arg_text, decode_params
from workload_agent.events.display import syscall_name
from workload_agent.events.arch import native_arch
from workload_agent.events.syscall_table import SYSCALLS

WORKLOAD = textwrap.dedent("""
    import ctypes, os, socket, sys, threading
    libc = ctypes.CDLL(None, use_errno=True)
    tmp, port = sys.argv[1], int(sys.argv[2])
    d = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY)
    fd = os.open("child.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640, dir_fd=d)
    os.close(fd)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(4)
    cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t = threading.Thread(target=cli.connect, args=(("127.0.0.1", port),))
    t.start()
    conn, peer = srv.accept()
    t.join()
    open(os.path.join(tmp, "peer"), "w").write(str(peer[1]))
    os.unlink("child.txt", dir_fd=d)
    open(os.path.join(tmp, "old"), "w").close()
    AT_FDCWD = -100
    libc.syscall(NR_RENAMEAT2, AT_FDCWD, os.path.join(tmp, "old").encode(), AT_FDCWD,
                 os.path.join(tmp, "new").encode(), 1)          # RENAME_NOREPLACE
    libc.syscall(NR_PTRACE, 2, 1, ctypes.c_void_p(0x1000), 0)  # ptrace(PTRACE_PEEKDATA, 1, ...)
    os.memfd_create("wa-test-memfd", os.MFD_CLOEXEC)
    os.setuid(os.getuid())
    os.execv("/bin/sh", ["sh", "-c", "exit 0", "wa-arg-one", "wa arg two"])
""")
# this machine's numbers (aarch64's differ from x86_64's)
WORKLOAD = WORKLOAD.replace("NR_RENAMEAT2", str(SYSCALLS[native_arch()]["renameat2"])).replace(
    "NR_PTRACE", str(SYSCALLS[native_arch()]["ptrace"]))


class Ctx:
    def __init__(self, cwd):
        self._cwd = cwd

    def cwd(self, tid):
        return self._cwd

    def fd_path(self, tid, fd):
        return None


@pytest.fixture
def traced(trace, tmp_path, mode):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    script = tmp_path / "w.py"
    script.write_text(WORKLOAD)
    code, c = trace([sys.executable, str(script), str(tmp_path), str(port)],
                    use_seccomp=(mode == "seccomp"))
    assert code == 0
    return c, tmp_path, port


def decoded(c, name, pred=lambda p: True, cwd="/"):
    out = []
    for r in c.syscalls(name):
        p = decode_params(syscall_name(r.arch, r.nr), r.args, r.ret if r.has_exit else None, r.blobs,
                          Ctx(cwd), tid=r.tid)
        if pred(p):
            out.append((r, p))
    return out


def text(name, params, pname):
    return arg_text(name, pname, params[pname])


def test_openat_relative_to_dirfd(traced):
    c, tmp, _ = traced
    # The dirfd is resolved by the test through the record of the directory's open.
    dirs = decoded(c, "openat", lambda p: str(p.get("name")) == str(tmp)
                   and "O_DIRECTORY" in text("openat", p, "flags"))
    [(r, p)] = decoded(c, "openat", lambda p: str(p.get("name", "")).endswith("child.txt"))
    assert r.args[0] in [d.ret for d, _ in dirs]  # dirfd is an fd a directory open returned
    assert r.blobs[1].data == b"child.txt"
    assert set(text("openat", p, "flags").split("|")) >= {"O_CREAT", "O_EXCL", "O_WRONLY"}
    assert p["mode"] == 0o640 or text("openat", p, "mode") in ("0640", "640")
    assert p["fd"] >= 0


def test_bind_connect_accept4(traced):
    c, _, port = traced
    [(_, pb)] = decoded(c, "bind", lambda p: p.get("res") == 0 and str(port) in text("bind", p, "addr"))
    assert text("bind", pb, "addr") == f"127.0.0.1:{port}"
    [(_, pc)] = decoded(c, "connect", lambda p: f":{port}" in text("connect", p, "tuple"))
    tup = text("connect", pc, "tuple")
    assert tup.endswith(f"->127.0.0.1:{port}")
    [(ra, pa)] = decoded(c, "accept4", lambda p: (p.get("fd") or -1) >= 0)
    # Client side: accept's peer out-parameter; server side: the accepted socket's own
    # address, which the tracer reads at the exit stop (no fd state needed in this context).
    peer = (traced[1] / "peer").read_text()
    assert text("accept4", pa, "tuple") == f"127.0.0.1:{peer}->127.0.0.1:{port}"
    assert ra.blobs[1].kind == 6 and not ra.blobs[1].unreadable
    # connect's local end, read the same way while the connecting thread was stopped
    assert tup == f"127.0.0.1:{peer}->127.0.0.1:{port}"


def test_unlinkat_renameat2_ptrace_memfd_setuid(traced):
    c, tmp, _ = traced
    [(r, p)] = decoded(c, "unlinkat", lambda p: str(p.get("name", "")).endswith("child.txt"))
    assert r.ret == 0
    [(r, p)] = decoded(c, "renameat2")
    assert str(p["oldpath"]) == str(tmp / "old") and str(p["newpath"]) == str(tmp / "new")
    assert "RENAME_NOREPLACE" in text("renameat2", p, "flags")
    [(r, p)] = decoded(c, "ptrace")
    assert text("ptrace", p, "request") == "PTRACE_PEEKDATA"
    assert p["pid"] == 1
    # Without an exit stop the result is unavailable, never a made-up 0.
    assert p["res"] is None if not r.has_exit else p["res"] < 0
    [(r, p)] = decoded(c, "memfd_create")
    assert p["name"] == "wa-test-memfd" and "MFD_CLOEXEC" in text("memfd_create", p, "flags")
    assert r.ret >= 0
    [(r, p)] = decoded(c, "setuid")
    assert p["uid"] == os.getuid() and r.ret == 0


def test_execve_argv(traced):
    c, _, _ = traced
    [(r, p)] = decoded(c, "execve", lambda p: p.get("exe") == "sh")
    assert r.ret == 0
    assert r.blobs[1].data.split(b"\0")[:-1] == [b"sh", b"-c", b"exit 0", b"wa-arg-one", b"wa arg two"]
    assert str(p["filename"]) == "/bin/sh"
