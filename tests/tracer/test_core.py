"""The C core's own guarantees: record layout, filter behaviour, memory-read flags, drops."""
import errno
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import needs

from workload_agent import runner
from workload_agent.events import capture_kinds as K
from workload_agent.events import records as R
from workload_agent.events.syscall_table import AUDIT_ARCH, SYSCALLS
from workload_agent.tracer.core import CaptureSpec, Tracer, exit_code
from workload_agent.events.arch import native_arch

core = needs("workload_agent.tracer._core")
ffi, lib = core.ffi, core.lib


def test_record_layout_matches_c():
    assert R.HEADER.size == ffi.sizeof("struct wa_record")
    assert R.BLOB.size == ffi.sizeof("struct wa_blob")
    fields = ["len", "kind", "flags", "ts_enter", "ts_exit", "tgid", "tid", "nr", "arch", "ret", "args",
              "nblobs", "extra"]
    offsets = [ffi.offsetof("struct wa_record", f) for f in fields]
    import struct
    expect, off = [], 0
    for code in ["I", "H", "H", "Q", "Q", "i", "i", "i", "I", "q", "6Q", "H", "H", "I"]:
        expect.append(off)
        off += struct.calcsize("<" + code)
    assert offsets == [e for i, e in enumerate(expect) if i != 12]  # 12: reserved
    for name in ["K_SYSCALL", "K_CLONE", "K_EXEC", "K_EXIT", "K_SIGNAL", "K_DROP", "K_ATTACH"]:
        assert getattr(R, name) == getattr(lib, "WA_" + name)
    for name in ["F_NO_EXIT", "F_TRUNCATED", "F_UNREADABLE", "F_FOREIGN_ARCH", "F_HAS_EXIT", "F_THREAD"]:
        assert getattr(R, name) == getattr(lib, "WA_" + name)
    assert (R.B_TRUNCATED, R.B_UNREADABLE) == (lib.WA_B_TRUNCATED, lib.WA_B_UNREADABLE)
    for k, name in K.NAMES.items():
        assert getattr(lib, "WA_C_" + name) == k


PROBE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    long r;
#ifdef __x86_64__
    __asm__ volatile ("int $0x80" : "=a"(r) : "a"(20L) : "memory");   /* i386 getpid */
    printf("int80 %ld %d\n", r, (int)getpid());
    errno = 0; r = syscall(39 | 0x40000000);                           /* x32 getpid */
    printf("x32 %ld %d\n", r, errno);
#endif
    errno = 0; r = syscall(435, 0, 0);                                 /* clone3 */
    printf("clone3 %ld %d\n", r, errno);
    errno = 0; r = syscall(SYS_clone, 0x00800000L | SIGCHLD, 0, 0, 0, 0); /* CLONE_UNTRACED */
    if (r == 0) _exit(0);
    printf("untraced %ld %d\n", r, errno);
    syscall(SYS_openat, -100, (char *)8, 0);                           /* unreadable pointer */
    char *p = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(p + 4096, 4096);
    memset(p, 'A', 4096);                                              /* no NUL before the hole */
    syscall(SYS_openat, -100, p + 4096 - 100, 0);
    return 0;
}
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    d = tmp_path_factory.mktemp("probe")
    src = d / "probe.c"
    src.write_text(PROBE)
    subprocess.run(["gcc", "-O1", "-o", str(d / "probe"), str(src)], check=True)
    return str(d / "probe")


def _run_tracer(argv, specs, **kw):
    t = Tracer(argv, path=argv[0], syscalls=specs, **kw)
    t.start()
    recs = []
    while True:
        t.wait(0.2)
        st = t.done()
        recs += t.read()
        if st is not None:
            recs += t.read()
            break
    stats = t.stats()
    t.close()
    return exit_code(st), recs, stats


def test_filter_refuses_escapes_and_traces_foreign_abi(probe):
    specs = {"getpid": CaptureSpec(True, ()), "openat": CaptureSpec(True, ((0, -1), (K.PATH, -1)))}
    out = subprocess.run([sys.executable, "-c", f"""
import sys
from workload_agent.tracer.core import CaptureSpec, Tracer
from workload_agent import runner
sys.exit(runner.run([{probe!r}], syscalls=["openat"]))
"""], capture_output=True, timeout=60)
    lines = dict(l.split(None, 1) for l in out.stdout.decode().splitlines())
    assert lines["clone3"].split() == ["-1", str(errno.ENOSYS)]
    assert lines["untraced"].split() == ["-1", str(errno.EPERM)]
    if native_arch() == "x86_64":
        assert lines["x32"].split() == ["-1", str(errno.ENOSYS)]
        code, recs, _ = _run_tracer([probe], specs)
        compat = [r for r in recs if r.kind == R.K_SYSCALL and r.arch != AUDIT_ARCH["x86_64"]]
        assert len(compat) == 1  # decoded with the compat table (tests/tracer/test_compat_abi.py)
        f = compat[0]
        assert f.arch == AUDIT_ARCH["i386"] and f.nr == SYSCALLS["i386"]["getpid"]
        assert not f.flags & R.F_FOREIGN_ARCH
        assert f.has_exit and f.ret == f.tgid


def test_unreadable_and_truncated_pointers_are_flagged(probe):
    specs = {"openat": CaptureSpec(True, ((0, -1), (K.PATH, -1)))}
    code, recs, stats = _run_tracer([probe], specs)
    assert code == 0
    opens = [r for r in recs if r.kind == R.K_SYSCALL]
    bad = [r for r in opens if r.args[1] == 8]
    assert len(bad) == 1 and bad[0].flags & R.F_UNREADABLE and bad[0].blobs[1].unreadable
    assert bad[0].ret == -errno.EFAULT
    # Running into the hole before a NUL is EFAULT for the kernel: unreadable, nothing kept.
    cut = [r for r in opens if r.ret == -errno.EFAULT and r.args[1] != 8]
    assert len(cut) == 1 and cut[0].blobs[1].unreadable and cut[0].blobs[1].data == b""
    assert not cut[0].blobs[1].truncated
    assert stats["read_failures"] >= 1


def test_full_ring_drops_and_reports_without_blocking_the_workload():
    class SlowSink:
        def __init__(self):
            self.records = []

        def handle(self, batch):
            if not self.records:
                time.sleep(1.0)  # the tracer must keep the workload running meanwhile
            self.records += batch

        def close(self, stats):
            self.stats = stats

    sink = SlowSink()
    code = runner.run(["sh", "-c", "i=0; while [ $i -lt 3000 ]; do : < /etc/hostname; i=$((i+1)); done"],
                      sink=sink, syscalls=["openat"], ring_bytes=1 << 16)
    assert code == 0
    drops = [r for r in sink.records if r.kind == R.K_DROP]
    assert sink.stats["drops"] > 0 and drops
    assert 0 < sum(r.extra for r in drops) <= sink.stats["drops"]
    seen = sum(1 for r in sink.records if r.kind == R.K_SYSCALL)
    assert seen + sink.stats["drops"] >= 3000


def _exec_chain(n: int) -> list:
    """sh execs itself n times, then /bin/true: with the workload's own, n + 2 execs."""
    script = 'n=$1; if [ "$n" -gt 0 ]; then exec "$0" -c "$2" "$0" $((n - 1)) "$2"; fi; exec /bin/true'
    return ["/bin/sh", "-c", script, "/bin/sh", str(n), script]


def test_a_successful_exec_is_complete_at_its_exec_stop():
    """The exec's record ends at the exec stop, with no syscall-exit stop after it: a chain of
    execs costs two stops each (the seccomp stop and the exec stop), and every exec's record
    still says it succeeded."""
    specs = {"execve": CaptureSpec(exit_needed=True)}
    runs = {}
    for n in (2, 12):
        code, recs, stats = _run_tracer(_exec_chain(n), specs)
        assert code == 0
        calls = [r for r in recs if r.kind == R.K_SYSCALL and r.nr == SYSCALLS[native_arch()]["execve"]]
        assert len(calls) == n + 2
        assert all(r.ret == 0 and r.flags & R.F_HAS_EXIT for r in calls)
        assert len([r for r in recs if r.kind == R.K_EXEC]) == n + 2
        runs[n] = stats["stops"]
    assert (runs[12] - runs[2]) / 10 == 2


def test_a_failed_exec_still_gets_its_exit_stop():
    specs = {"execve": CaptureSpec(exit_needed=True)}
    code, recs, _ = _run_tracer(["/bin/sh", "-c", "/nonexistent/x 2>/dev/null; exit 0"], specs)
    assert code == 0
    failed = [r for r in recs if r.kind == R.K_SYSCALL and r.ret == -errno.ENOENT]
    assert failed and all(r.flags & R.F_HAS_EXIT for r in failed)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to move between")
@pytest.mark.parametrize("follow", [True, False])
def test_the_tracer_follows_its_tracee_to_its_cpu(follow):
    """A workload that pins itself to one CPU and makes a few hundred traced calls: the tracer
    thread moves there (follow) or stays where the scheduler puts it (any)."""
    cpu = max(os.sched_getaffinity(0))
    script = (f"import os\nos.sched_setaffinity(0, {{{cpu}}})\n"
              "for _ in range(400):\n    open('/dev/null').close()\n")
    specs = {"openat": CaptureSpec(exit_needed=False)}
    code, recs, stats = _run_tracer([sys.executable, "-I", "-c", script], specs, follow_cpu=follow)
    assert code == 0
    assert len([r for r in recs if r.kind == R.K_SYSCALL]) >= 400
    if follow:
        assert stats["tracer_moves"] >= 1
    else:
        assert stats["tracer_moves"] == 0


def test_the_tracer_thread_reports_its_own_cpu_time():
    """stats' tracer_cpu_ns: the tracer thread's CPU, part of this process's (which also
    counts the consumer), none of the workload's busy loop (a child, not a thread)."""
    import resource
    before = resource.getrusage(resource.RUSAGE_SELF)
    specs = {"openat": CaptureSpec(exit_needed=False)}
    script = "for _ in range(3000):\n    open('/dev/null').close()\nx = 0\nfor i in range(3000000):\n    x += i\n"
    code, recs, stats = _run_tracer([sys.executable, "-I", "-c", script], specs)
    after = resource.getrusage(resource.RUSAGE_SELF)
    assert code == 0
    ours_ns = ((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)) * 1e9
    # at least a microsecond per stop; at most this process's CPU (the rusage ticks are
    # coarser than the thread clock: a 20 ms margin)
    assert 3000 * 1000 <= stats["tracer_cpu_ns"] <= ours_ns + 20e6, (stats["tracer_cpu_ns"], ours_ns)
