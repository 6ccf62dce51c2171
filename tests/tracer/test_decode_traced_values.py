"""End to end: the C tracer captures what params.SPECS asks for, decode_params turns
it into the values the workload really passed (values chosen by this test).

Skipped when the C extension is not built (``python3 workload_agent/tracer/build.py``
or ``pip install .``)."""
from __future__ import annotations

import os
import socket
import sys
import textwrap

import pytest

from workload_agent.events.decode import arg_text, decode_params, render_params
from workload_agent.events.params import capture_table, event_type

from tests.conftest import needs_tracing  # noqa: E402
from workload_agent.tracer import core  # noqa: E402

needs_tracing()

from workload_agent.events import records  # noqa: E402
from workload_agent.events.syscall_table import SYSCALLS  # noqa: E402
from workload_agent.events.arch import native_arch  # noqa: E402


class MiniState:
    """Just enough state for path resolution: cwd (from chdir) and opened paths."""

    def __init__(self, cwd: str):
        self._cwd = cwd
        self.fds = {}

    def cwd(self, tid):
        return self._cwd

    def fd_path(self, tid, fd):
        return self.fds.get(fd)

    def update(self, name, params):
        if name == "chdir" and params["res"] == 0:
            self._cwd = params["path"] if params["path"].startswith("/") else os.path.join(
                self._cwd, params["path"])
        if name in ("open", "openat") and isinstance(params["fd"], int) and params["fd"] >= 0:
            self.fds[params["fd"]] = str(params["name"])


def trace(code: str, cwd: str, use_seccomp: bool = True):
    arch = native_arch()
    table = SYSCALLS[arch]
    nr_names = {nr: name for name, nr in table.items()}
    specs = {n: core.CaptureSpec(exit_needed=e, args=a)
             for n, (a, e) in capture_table().items() if n in table}
    t = core.Tracer([sys.executable, "-c", code], path=sys.executable, syscalls=specs,
                    use_seccomp=use_seccomp)
    t.start()
    recs = []
    try:
        for _ in range(600):
            t.wait(0.1)
            recs += t.read()
            if t.done() is not None:
                break
        recs += t.read()
        status = t.done()
    finally:
        t.close()
    assert status is not None and core.exit_code(status) == 0
    state = MiniState(cwd)
    events = []
    for r in recs:
        if r.kind != records.K_SYSCALL:
            continue
        name = nr_names.get(r.nr)
        if name is None:
            continue
        ret = r.ret if r.has_exit else None
        params = decode_params(name, r.args, ret, r.blobs, state, tid=r.tid, strict=True)
        state.update(name, params)
        events.append((event_type(name, ret), params))
    return events


def find(events, etype, **match):
    for name, params in events:
        if name == etype and all(params.get(k) == v for k, v in match.items()):
            return params
    raise AssertionError("no %s with %r in %s" % (etype, match,
                         [render_params(n, p) for n, p in events if n == etype]))


@pytest.mark.parametrize("use_seccomp", [True, False], ids=["seccomp", "full-ptrace"])
def test_live_decoding_of_values_the_test_chose(tmp_path, use_seccomp):
    work = tmp_path / "work"
    sub = work / "sub"
    sub.mkdir(parents=True)
    (sub / "old-name").write_text("x")
    (sub / "gone-dir").mkdir()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    code = textwrap.dedent("""
        import ctypes, os, signal, socket
        os.chdir(%(work)r)
        fd = os.open("chosen.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        d = os.open("sub", os.O_RDONLY | os.O_DIRECTORY)
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.renameat2(d, b"old-name", d, b"new-name", 1) == 0
        os.unlink("new-name", dir_fd=d)
        os.rmdir("gone-dir", dir_fd=d)
        c = socket.create_connection(("127.0.0.1", %(port)d))
        c.close()
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        me = socket.create_connection(lst.getsockname())
        conn, peer = lst.accept()
        m = os.memfd_create("wa-memfd", os.MFD_CLOEXEC)
        os.kill(os.getpid(), 0)
        os.setuid(os.getuid())
        os.execv("/bin/true", ["true", "arg-one", "arg two"])
    """) % {"work": str(work), "port": port}
    try:
        events = trace(code, os.getcwd(), use_seccomp)
    finally:
        server.close()

    opened = find(events, "openat", name=str(work / "chosen.txt"))
    assert opened.get("name").raw == "chosen.txt"
    assert opened["fd"] >= 0
    # Python adds O_CLOEXEC to every os.open.
    assert arg_text("openat", "flags", opened["flags"]) == "O_EXCL|O_CREAT|O_WRONLY|O_CLOEXEC"
    assert opened["mode"] == 0o600

    renamed = find(events, "renameat2", oldpath=str(sub / "old-name"))
    assert renamed["newpath"] == str(sub / "new-name")
    assert renamed["res"] == 0
    assert arg_text("renameat2", "flags", renamed["flags"]) == "RENAME_NOREPLACE"

    unlinked = find(events, "unlinkat", name=str(sub / "new-name"))
    assert unlinked["flags"] == 0 and unlinked["res"] == 0
    removed = find(events, "unlinkat", name=str(sub / "gone-dir"))
    assert arg_text("unlinkat", "flags", removed["flags"]) == "AT_REMOVEDIR"

    connected = [p for n, p in events if n == "connect" and p["addr"] is not None
                 and p["addr"].port == port]
    assert connected and connected[0]["addr"].ip == "127.0.0.1"
    assert connected[0]["tuple"].dport == port and connected[0]["res"] == 0

    bound = [p for n, p in events if n == "bind" and p["addr"] is not None
             and p["addr"].ip == "127.0.0.1"]
    assert bound and bound[0]["res"] == 0
    accepted = [p for n, p in events if n == "accept4" and isinstance(p["fd"], int) and p["fd"] >= 0]
    assert accepted, "accept4 not seen"
    assert accepted[0]["tuple"].sip == "127.0.0.1" and accepted[0]["tuple"].sport > 0
    assert accepted[0]["flags"] & 0x1000  # SOCK_CLOEXEC -> PPM O_CLOEXEC

    memfd = find(events, "memfd_create", name="wa-memfd")
    assert arg_text("memfd_create", "flags", memfd["flags"]) == "MFD_CLOEXEC" and memfd["fd"] >= 0

    killed = find(events, "kill", sig=0)
    assert killed["pid"] > 0
    find(events, "setuid", uid=os.getuid())

    ex = find(events, "execve", exe="true")
    assert ex["res"] == 0 and ex["args"] == b"arg-one\0arg two\0"
    assert ex["filename"] == "/bin/true" and ex["comm"] == "true"
    assert "args=arg-one.arg two." in render_params("execve", ex)
