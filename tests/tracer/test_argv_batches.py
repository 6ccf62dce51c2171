"""An exec's argv and environment are read a batch at a time (pointers, and each string's
first bytes, in one system call each: csrc/tracer.c cap_argv, csrc/mem.c
wa_mem_read_windows). The vectors here cross every edge of that: more items than a batch,
strings that start just before a page ends, strings longer than a window and than a page,
empty ones, the pointer array's NULL as the last word before unmapped memory, the byte
limit reached in the middle of an item, and an item that runs into unmapped memory. The
captured bytes must be exactly what reading each string alone gave: the expected values
below follow that algorithm, item by item."""
import errno

import pytest

from tests.conftest import needs_tracing

PROGRAM = r"""
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const int LENS[8] = {0, 1, 255, 256, 257, 1000, 13, 40};
static char *region;
static size_t off;

/* String i: every fifth starts 10 bytes before a page ends. */
static char *place(int i, int len, char c)
{
    if (i % 5 == 0) {
        size_t pe = (off + 4095) & ~(size_t)4095;
        if (pe - off < 10)
            pe += 4096;
        off = pe - 10;
    }
    char *s = region + off;
    memset(s, c, (size_t)len);
    s[len] = 0;
    off += (size_t)len + 1;
    return s;
}

/* A vector of n pointers whose NULL is the last word before an unmapped page. */
static char **vector(int n)
{
    size_t bytes = ((size_t)(n + 1) * 8 + 4095) & ~(size_t)4095;
    char *m = mmap(0, bytes + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(m + bytes, 4096);
    return (char **)(m + bytes) - (n + 1);
}

/* argv[1]: "ok"; "cut": environment item 70 runs into unmapped memory; "hole": it starts
 * there; "lens": the arguments are strings of the lengths that follow. */
int main(int argc, char **argv)
{
    region = mmap(0, 64 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int lens = strcmp(argv[1], "lens") == 0;
    int na = lens ? argc - 2 : 150, ne = 100;
    char **av = vector(na), **ev = vector(ne);
    for (int i = 0; i < na; i++)
        av[i] = place(i, lens ? atoi(argv[2 + i]) : LENS[i % 8] + i / 8, (char)('a' + i % 26));
    av[na] = 0;
    for (int i = 0; i < ne; i++)
        ev[i] = place(1000 + i, 5 + i % 16, (char)('A' + i % 26));
    ev[ne] = 0;
    if (strncmp(argv[1], "mixed", 5) == 0) {
        /* pointers out of address order, some twice: the environment reversed, and each
         * seventh item the one before it */
        for (int i = 0; i < ne / 2; i++) {
            char *t = ev[i];
            ev[i] = ev[ne - 1 - i];
            ev[ne - 1 - i] = t;
        }
        for (int i = 7; i < ne; i += 7)
            ev[i] = ev[i - 1];
        if (strcmp(argv[1], "mixed") == 0) {
            execve("/bin/true", av, ev);
            return 1;
        }
        argv[1] = "hole";
    }
    if (strcmp(argv[1], "cut") == 0 || strcmp(argv[1], "hole") == 0) {
        char *h = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        munmap(h + 4096, 4096);
        memset(h, 'Z', 4096);
        ev[70] = strcmp(argv[1], "cut") == 0 ? h + 4096 - 5 : h + 4096;
        execve("/bin/true", av, ev);
        return 0;   /* EFAULT, as expected */
    }
    execve("/bin/true", av, ev);
    return 1;
}
"""

LENS = (0, 1, 255, 256, 257, 1000, 13, 40)
MAX_BYTES, MAX_ITEMS = 16384, 1024   # the tracer's limits (workload_agent/tracer/core.py)


def _expected(items):
    """(bytes, truncated) as reading each string alone, in order, gives them."""
    out, used, truncated = b"", 0, False
    for k, s in enumerate(items + [None]):
        if k >= MAX_ITEMS:
            return out, True
        if s is None:
            break
        if used >= MAX_BYTES:
            return out, True
        room = MAX_BYTES - used
        maxp = room - 1 if room > 1 else 0
        cut = len(s) >= maxp
        truncated = truncated or cut or room <= 1
        if room <= 1:
            break
        n = maxp if cut else len(s)
        out += s[:n] + b"\0"
        used += n + 1
        if cut:
            break
    return out, truncated


ARGV = [bytes([ord("a") + i % 26]) * (LENS[i % 8] + i // 8) for i in range(150)]
ENV = [bytes([ord("A") + i % 26]) * (5 + i % 16) for i in range(100)]
MIXED_ENV = list(reversed(ENV))
for _i in range(7, 100, 7):
    MIXED_ENV[_i] = MIXED_ENV[_i - 1]


@pytest.fixture(scope="module")
def program(cc):
    return cc(PROGRAM, "argv_batches")


def _true_execs(c):
    return [r for r in c.syscalls("execve") if r.blobs.get(0) and r.blobs[0].data.rstrip(b"\0") == b"/bin/true"]


def test_vectors_across_batches_pages_and_limits(trace, program, mode):
    needs_tracing()
    code, c = trace([program, "ok"], syscalls=["execve"], use_seccomp=(mode == "seccomp"))
    assert code == 0
    (r,) = _true_execs(c)
    argv, env = r.blobs[1], r.blobs[2]
    want_argv, argv_cut = _expected(ARGV)
    assert argv_cut and len(want_argv) == MAX_BYTES - 1 or len(want_argv) <= MAX_BYTES
    assert (argv.data, argv.truncated, argv.unreadable) == (want_argv, argv_cut, False)
    want_env, env_cut = _expected(ENV)
    assert not env_cut and want_env.count(b"\0") == 100   # more items than one batch, all there
    assert (env.data, env.truncated, env.unreadable) == (want_env, False, False)


def test_pointers_out_of_address_order_and_repeated(trace, program, mode):
    """The batch merges the windows it reads by address: the items still come out in the
    vector's order, a repeated pointer twice."""
    needs_tracing()
    code, c = trace([program, "mixed"], syscalls=["execve"], use_seccomp=(mode == "seccomp"))
    assert code == 0
    (r,) = _true_execs(c)
    assert (r.blobs[2].data, r.blobs[2].truncated, r.blobs[2].unreadable) == \
        (_expected(MIXED_ENV)[0], False, False)
    assert r.blobs[1].data == _expected(ARGV)[0]


@pytest.mark.parametrize("how", ["cut", "hole", "mixed-hole"])
def test_an_item_running_into_unmapped_memory_makes_the_vector_unreadable(trace, program, mode, how):
    needs_tracing()
    code, c = trace([program, how], syscalls=["execve"], use_seccomp=(mode == "seccomp"))
    assert code == 0
    (r,) = _true_execs(c)
    assert r.ret == -errno.EFAULT
    assert r.blobs[2].unreadable and r.blobs[2].data == b""
    assert not r.blobs[1].unreadable and r.blobs[1].data == _expected(ARGV)[0]


def _strings(lens):
    return [bytes([ord("a") + i % 26]) * n for i, n in enumerate(lens)]


@pytest.mark.parametrize("lens", [
    [MAX_BYTES - 2],                 # fills the limit but for the NUL: whole
    [MAX_BYTES - 1],                 # one byte more: cut
    [100, MAX_BYTES - 102],          # the second exactly fits
    [100, MAX_BYTES - 101],          # ... or is cut by one byte
    [100, MAX_BYTES - 102, 0],       # an empty item after the limit: cut there
    [3000, 6000, 9000],
    [MAX_BYTES - 102, 99],           # a short last item (decided from its window) fits
    [MAX_BYTES - 102, 100],          # ... or is cut by one byte
    [MAX_BYTES - 102, 99, 5],        # and nothing fits after it
], ids=["fits", "one-over", "second-fits", "second-over", "empty-after", "long", "short-fits",
        "short-over", "short-then-more"])
def test_the_byte_limit_cuts_where_reading_alone_cut(trace, program, lens):
    needs_tracing()
    code, c = trace([program, "lens", *map(str, lens)], syscalls=["execve"])
    assert code == 0
    (r,) = _true_execs(c)
    assert (r.blobs[1].data, r.blobs[1].truncated) == _expected(_strings(lens))
