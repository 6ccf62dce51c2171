"""Arguments that run into unmapped memory: the kernel fails such calls with EFAULT, so the
readable part is no value of the argument. Each is marked unreadable for that parameter
alone and shown as Falco shows a value it could not read, never as a plausible value."""
import errno

import pytest

from workload_agent.events import records as R
from workload_agent.events.decode import render_params

PROGRAM = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    /* a readable page, then a hole */
    char *p = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(p + 4096, 4096);
    char *end = p + 4096;
    memset(p, 'A', 4096);                                   /* no NUL before the hole */
    syscall(SYS_openat, -100, end - 100, 0);                 /* path runs into the hole */
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(0x7f000001) };
    memcpy(end - 8, &sin, 8);                                /* half of it before the hole */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    syscall(SYS_connect, s, end - 8, sizeof sin);
    strcpy(p, "/bin/true");
    char **argv = (char **)(p + 64);
    argv[0] = p; argv[1] = end + 16; argv[2] = 0;           /* argv[1] unreadable */
    syscall(SYS_execve, p, argv, 0);
    char **tail = (char **)(end - 8);
    tail[0] = p;                                             /* argv's NULL would be in the hole */
    syscall(SYS_execve, p, tail, 0);
    syscall(SYS_openat, -100, "/dev/null", 0);               /* a normal call still decodes */
    return 0;
}
"""


@pytest.fixture(scope="module")
def program(cc):
    return cc(PROGRAM, "partial")


def test_values_running_into_unmapped_memory_are_unreadable(trace, program, mode):
    code, c = trace([program], syscalls=["openat", "connect", "execve"], use_seccomp=(mode == "seccomp"))
    assert code == 0
    opens = c.decoded("openat")
    cut = [(r, p) for r, p in opens if r.ret == -errno.EFAULT]
    assert len(cut) == 1
    r, p = cut[0]
    assert r.blobs[1].unreadable and r.blobs[1].data == b"" and r.flags & R.F_UNREADABLE
    assert p["name"] is None and "name=<NA>" in render_params("openat", p)
    assert [p["name"] for r, p in opens if r.ret >= 0][-1] == "/dev/null"

    (r, p), = c.decoded("connect")
    assert r.ret == -errno.EFAULT and r.blobs[1].unreadable and r.blobs[1].data == b""
    assert p["addr"] is None and p["fd"] >= 0 and "addr=<NA>" in render_params("connect", p)

    execs = [(r, p) for r, p in c.decoded("execve") if r.ret == -errno.EFAULT]
    assert len(execs) == 2
    for r, p in execs:
        assert r.blobs[1].unreadable and r.blobs[1].data == b""
        assert p["exe"] is None and p["args"] is None  # not "/bin/true" with an empty argument
        assert p["filename"] == "/bin/true"
