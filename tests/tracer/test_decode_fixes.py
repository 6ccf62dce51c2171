"""Decoding details checked against what the kernel does, each on a real traced program:
mode registers cut to umode_t, O_TMPFILE's mode, abstract unix names with NULs, a sockaddr
shorter than its family, negative fd arguments, prctl's integer options, and an exec from
a thread that is not the leader."""
import sys
import textwrap

import pytest

from workload_agent.events import records as R
from workload_agent.events.arch import native_arch
from workload_agent.events.decode import arg_text, render_params
from workload_agent.events.syscall_table import SYSCALLS as TABLE

PROGRAM = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *dir = argv[1];
    char path[512];
    snprintf(path, sizeof path, "%s/m", dir);
    syscall(SYS_mkdirat, -100, path, 0xFFFF0000u | 0755);
    snprintf(path, sizeof path, "%s/m2", dir);
#ifdef SYS_mkdir /* not on arm64 */
    syscall(SYS_mkdir, path, 0xFFFF0000u | 0700);
    syscall(SYS_chmod, path, 0xFFFF0000u | 0750);
#endif
    syscall(SYS_openat, -100, dir, O_TMPFILE | O_RDWR, 0640);
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    memcpy(un.sun_path, "\0wa\0abs", 7);
    bind(u, (struct sockaddr *)&un, offsetof(struct sockaddr_un, sun_path) + 7);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(0x7f000001) };
    syscall(SYS_connect, s, &sin, 4);
    syscall(SYS_openat, -1, "relative-x", O_RDONLY);
    syscall(SYS_fchmod, -7, 0600);
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    prctl(PR_SET_NAME, "wa-name", 0, 0, 0);
    return 0;
}
"""

LEGACY = [n for n in ("mkdir", "chmod") if n in TABLE[native_arch()]]  # none on arm64
SYSCALLS = ["mkdirat", *LEGACY, "openat", "socket", "bind", "connect", "fchmod", "prctl"]


@pytest.fixture(scope="module")
def program(cc):
    return cc(PROGRAM, "fixes")


@pytest.fixture
def traced(trace, program, tmp_path, mode):
    code, c = trace([program, str(tmp_path)], syscalls=SYSCALLS, use_seccomp=(mode == "seccomp"))
    assert code == 0
    return c, str(tmp_path)


def test_mode_registers_are_cut_to_umode_t(traced):
    c, d = traced
    (_, mkdirat), = c.decoded("mkdirat")
    assert mkdirat["mode"] == 0o755
    assert "mode=1ED" in render_params("mkdirat", mkdirat)
    modes = {"mkdir": 0o700, "chmod": 0o750}
    assert [p["mode"] for name in LEGACY for _, p in c.decoded(name)] == [modes[name] for name in LEGACY]


def test_o_tmpfile_open_shows_its_mode(traced):
    c, d = traced
    (r, p), = [(r, p) for r, p in c.decoded("openat") if p["name"] == d]
    assert r.ret >= 0 and p["mode"] == 0o640
    assert "O_TMPFILE" in arg_text("openat", "flags", p["flags"])


def test_abstract_unix_name_is_not_cut_at_an_embedded_nul(traced):
    c, _ = traced
    (r, p), = c.decoded("bind")
    assert r.ret == 0 and arg_text("bind", "addr", p["addr"]) == "@wa@abs"


def test_sockaddr_shorter_than_its_family_is_no_address(traced):
    c, _ = traced
    (r, p), = c.decoded("connect")
    assert r.ret == -22 and p["addr"] is None and p["tuple"] is None
    assert "addr=<NA>" in render_params("connect", p)


def test_negative_fd_arguments_are_numbers_and_returned_errors_are_errnos(traced):
    c, _ = traced
    (r, p), = [(r, p) for r, p in c.decoded("openat") if p["dirfd"] == -1]
    assert arg_text("openat", "dirfd", p["dirfd"]) == "-1"
    assert "dirfd=-1 " in render_params("openat", p) and "fd=-9(EBADF)" in render_params("openat", p)
    (r, p), = c.decoded("fchmod")
    assert "fd=-7 " in render_params("fchmod", p)


def test_prctl_integer_options_are_not_read_as_strings(traced):
    c, _ = traced
    (dumpable, p1), (name, p2) = c.decoded("prctl")
    assert p1["arg2_int"] == 1 and p1["arg2_str"] is None
    assert not dumpable.blobs.get(1) and not dumpable.flags & R.F_UNREADABLE
    assert p2["arg2_str"] == "wa-name" and not name.flags & R.F_UNREADABLE


THREAD_EXEC = textwrap.dedent("""
    import os, threading
    def go():
        os.execv("/bin/true", ["true", "from-thread"])
    t = threading.Thread(target=go)
    t.start()
    t.join()
""")


def test_exec_from_a_non_leader_thread_is_reported_under_the_leader_tid(trace, tmp_path, mode):
    script = tmp_path / "t.py"
    script.write_text(THREAD_EXEC)
    code, c = trace([sys.executable, str(script)], syscalls=["execve", "clone"],
                    use_seccomp=(mode == "seccomp"))
    assert code == 0
    (r,), = [[r for r in c.syscalls("execve") if r.ret == 0 and b"from-thread" in r.blobs[1].data]]
    threads = [x.extra for x in c.of_kind(R.K_CLONE) if x.flags & R.F_THREAD and x.tgid == r.tgid]
    assert threads, "the exec'ing thread's creation was not seen"
    assert r.tid == r.tgid  # the thread took the leader's tid when the exec succeeded
    (ex,) = [x for x in c.of_kind(R.K_EXEC) if x.tgid == r.tgid and x.extra != x.tid]
    assert ex.extra in threads and ex.tid == r.tgid
