"""32-bit syscalls (int 0x80) from a 64-bit process: decoded like native ones, in both modes.

The program below needs no 32-bit toolchain: it is a 64-bit program that enters the
kernel through the i386 entry with inline assembly, with its pointers in the low 4 GiB
(mmap MAP_32BIT). It also sets the upper halves of some registers, which the kernel
ignores and so must the tracer.
"""
import os
import socket
import subprocess
import sys

import pytest

from workload_agent.events import records as R
from workload_agent.events.arch import native_arch, syscall_name
from workload_agent.events.decode import arg_text, decode_params
from workload_agent.events.syscall_table import AUDIT_ARCH

if native_arch() != "x86_64":
    pytest.skip("the int 0x80 entry is x86_64's compat ABI", allow_module_level=True)

PROGRAM = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static long sys32(long nr, long a, long b, long c, long d)
{
    long r;
    __asm__ volatile ("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d) : "memory");
    return r;
}

static char *top;
static void *low(size_t n) { void *p = top; top += (n + 15) & ~15ul; return p; }
static char *s32(const char *s) { char *p = low(strlen(s) + 1); strcpy(p, s); return p; }
static unsigned p32(void *p) { return (unsigned)(unsigned long)p; }
#define HI 0xdead000000000000L   /* ignored by the compat entry */

int main(int argc, char **argv)
{
    const char *dir = argv[1];
    int port = atoi(argv[2]), uport = atoi(argv[3]);
    top = mmap(0, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    char path[512];
    snprintf(path, sizeof path, "%s/c32-open", dir);
    long fd = sys32(5, HI | (long)s32(path), O_CREAT | O_WRONLY, 0640, 0);          /* open */
    sys32(6, fd, 0, 0, 0);                                                         /* close */
    snprintf(path, sizeof path, "%s/c32-openat", dir);
    sys32(295, -100, (long)s32(path), O_CREAT | O_WRONLY, 0600);                   /* openat */
    snprintf(path, sizeof path, "%s/c32-open", dir);
    sys32(15, (long)s32(path), 0751, 0, 0);                                        /* chmod */
    snprintf(path, sizeof path, "%s/c32-creat", dir);
    sys32(8, (long)s32(path), 0644, 0, 0);                                         /* creat */
    sys32(301, -100, (long)s32(path), 0, 0);                                       /* unlinkat */
    sys32(213, getuid(), 0, 0, 0);                                                 /* setuid32 */
    struct sockaddr_in *sin = low(sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(0x7f000001);
    unsigned *a = low(24);
    a[0] = AF_INET; a[1] = SOCK_STREAM; a[2] = 0;
    long s = sys32(102, 1, (long)a, 0, 0);                                         /* socketcall(SOCKET) */
    a[0] = s; a[1] = p32(sin); a[2] = sizeof *sin;
    sys32(102, 3, HI | (long)a, 0, 0);                                             /* socketcall(CONNECT) */
    long s2 = sys32(359, AF_INET, SOCK_STREAM, 0, 0);                              /* socket */
    sys32(362, s2, (long)sin, sizeof *sin, 0);                                     /* connect */
    struct sockaddr_in *uin = low(sizeof *uin);
    *uin = *sin;
    uin->sin_port = htons(uport);
    a[0] = AF_INET; a[1] = SOCK_DGRAM; a[2] = 0;
    long u = sys32(102, 1, (long)a, 0, 0);                                         /* socketcall(SOCKET) */
    unsigned *iov = low(8), *msg = low(28);
    iov[0] = p32(s32("ping")); iov[1] = 4;
    msg[0] = p32(uin); msg[1] = sizeof *uin; msg[2] = p32(iov); msg[3] = 1;
    msg[4] = 0; msg[5] = 0; msg[6] = 0;                                            /* compat_msghdr */
    a[0] = u; a[1] = p32(msg); a[2] = 0;
    sys32(102, 16, (long)a, 0, 0);                                                 /* socketcall(SENDMSG) */
    sys32(102, 0x7fffffff, (long)a, 0, 0);                                         /* hostile socketcalls: */
    sys32(102, 32, (long)a, 0, 0);                                                 /* no such call, */
    sys32(102, 3, 0, 0, 0);                                                        /* NULL array, */
    sys32(102, 3, 0xfffff000L, 0, 0);                                              /* unmapped array */
    unsigned *av = low(16), *ev = low(8);
    av[0] = p32(s32("/bin/true")); av[1] = p32(s32("c32-arg")); av[2] = 0;
    ev[0] = p32(s32("C32=1")); ev[1] = 0;
    sys32(11, (long)s32("/bin/true"), (long)av, (long)ev, 0);                      /* execve */
    return 99;
}
"""

TRACED = ["open", "openat", "chmod", "creat", "unlinkat", "setuid", "socket", "connect", "sendmsg",
          "execve"]


@pytest.fixture(scope="module")
def program(cc):
    return cc(PROGRAM, "c32")


@pytest.fixture
def listeners():
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    yield tcp.getsockname()[1], udp.getsockname()[1]
    tcp.close()
    udp.close()


class Cwd:
    def cwd(self, tid):
        return "/"

    def fd_path(self, tid, fd):
        return None


def _events(c, names):
    out = []
    for r in c.syscalls():
        name = syscall_name(r.arch, r.nr)
        if name in names and r.arch == AUDIT_ARCH["i386"]:
            out.append((name, r, decode_params(name, r.args, r.ret if r.has_exit else None, r.blobs,
                                               Cwd(), tid=r.tid, strict=True)))
    return out


def test_int80_calls_carry_paths_addresses_and_argv(trace, program, listeners, tmp_path, mode):
    # Also: socketcalls with a bad call number or argument array are not recorded (the
    # kernel refuses them before any call happens) and do not disturb the tracer.
    port, uport = listeners
    code, c = trace([program, str(tmp_path), str(port), str(uport)], syscalls=TRACED,
                    use_seccomp=(mode == "seccomp"))
    assert code == 0
    ev = _events(c, set(TRACED))
    names = [n for n, _, _ in ev]
    assert names == ["open", "openat", "chmod", "creat", "unlinkat", "setuid", "socket", "connect",
                     "socket", "connect", "socket", "sendmsg", "execve"]
    assert not any(r.flags & R.F_FOREIGN_ARCH for _, r, _ in ev)  # not left raw
    by = {}
    for n, r, p in ev:
        by.setdefault(n, []).append(p)
    d = str(tmp_path)
    assert by["open"][0]["name"] == f"{d}/c32-open" and by["open"][0]["mode"] == 0o640
    assert by["open"][0]["fd"] >= 0
    assert arg_text("open", "flags", by["open"][0]["flags"]) == "O_CREAT|O_WRONLY"
    assert by["openat"][0]["name"] == f"{d}/c32-openat" and by["openat"][0]["dirfd"] == -100
    assert by["chmod"][0]["filename"] == f"{d}/c32-open" and by["chmod"][0]["mode"] == 0o751
    assert by["creat"][0]["name"] == f"{d}/c32-creat" and by["creat"][0]["mode"] == 0o644
    assert by["unlinkat"][0]["name"] == f"{d}/c32-creat" and by["unlinkat"][0]["res"] == 0
    assert by["setuid"][0]["uid"] == os.getuid()
    for p in by["connect"]:
        assert p["res"] == 0 and p["addr"].ip == "127.0.0.1" and p["addr"].port == port
        assert p["tuple"].dport == port and p["tuple"].sport > 0
    assert [p["domain"] for p in by["socket"]] == [by["socket"][0]["domain"]] * 3
    sm = by["sendmsg"][0]
    assert sm["res"] == 4 and sm["tuple"].dport == uport and sm["tuple"].dip == "127.0.0.1"
    ex = by["execve"][0]
    assert ex["res"] == 0 and ex["exe"] == "/bin/true" and ex["args"] == b"c32-arg\0"
    assert ex["env"] == b"C32=1\0" and ex["filename"] == "/bin/true"


def test_socketcall_keeps_only_the_traced_sub_calls(trace, program, listeners, tmp_path, mode):
    port, uport = listeners
    code, c = trace([program, str(tmp_path), str(port), str(uport)], syscalls=["connect"],
                    use_seccomp=(mode == "seccomp"))
    assert code == 0
    names = [n for n, _, _ in _events(c, {"socket", "connect", "sendmsg", "socketcall"})]
    assert names == ["connect", "connect"]


RULES = """
- rule: Compat open
  desc: test
  condition: evt.type in (open, openat) and fd.name startswith DIR/c32- and proc.name = c32
  output: "compat open (file=%fd.name)"
  priority: WARNING
- rule: Compat connect
  desc: test
  condition: evt.type = connect and fd.sport = PORT and proc.name = c32
  output: "compat connect (conn=%fd.name)"
  priority: WARNING
- rule: Compat exec
  desc: test
  condition: evt.type = execve and proc.name = true and proc.args contains c32-arg
  output: "compat exec (cmd=%proc.cmdline parent=%proc.pname)"
  priority: WARNING
"""


def test_rules_fire_on_int80_calls(program, listeners, tmp_path, mode_args):
    port, uport = listeners
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("DIR", str(tmp_path)).replace("PORT", str(port)))
    p = subprocess.run([sys.executable, "-m", "workload_agent", "run", "-r", str(rules),
                        "--rule-matching", "all", "--alerts-to", "stderr", *mode_args, "--",
                        program, str(tmp_path), str(port), str(uport)], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    err = p.stderr.decode()
    assert f"compat open (file={tmp_path}/c32-open)" in err
    assert f"compat open (file={tmp_path}/c32-openat)" in err
    assert err.count(f"->127.0.0.1:{port})") == 2
    assert "compat exec (cmd=true c32-arg parent=" in err


UPSTREAM_PROGRAM = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>

static long sys32(long nr, long a, long b, long c)
{
    long r;
    __asm__ volatile ("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
    return r;
}

int main(int argc, char **argv)
{
    char *m = mmap(0, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    strcpy(m, "/etc/shadow");
    sys32(5, (long)m, O_RDONLY, 0);                                                /* open */
    char *path = m + 64;
    strcpy(path, argv[1]);
    unsigned *av = (unsigned *)(m + 4096);
    av[0] = (unsigned)(long)path; av[1] = 0;
    sys32(11, (long)path, (long)av, (long)(av + 1));                               /* execve */
    return 99;
}
"""


def test_upstream_rules_fire_on_int80_calls(cc, tmp_path, mode):
    import shutil
    import time

    from tests.conftest import needs_tracing
    from workload_agent import runner
    from workload_agent.detect import traced_syscalls
    from workload_agent.rules.event import Container
    from workload_agent.rules.loader import load_rules
    from workload_agent.state import StateTracker

    needs_tracing()
    rules = "/work/shared/falco-rules/falco_rules.yaml"
    if not os.path.isfile(rules):
        pytest.skip("upstream falco-rules not found")
    result = load_rules([rules])
    assert result.ok, result.errors
    up32 = cc(UPSTREAM_PROGRAM, "up32")
    dropped = tmp_path / "implant"

    class Alerts:
        tracker = StateTracker(Container(id="abcdef012345", name="app", image="app:1", repository="app",
                                         tag="1", privileged=False), start_ns=time.time_ns())
        fired = []

        def handle(self, batch):
            for r in batch:
                ev = self.tracker.process(r)
                if ev is not None:
                    self.fired += [(rule.name, rule.output.render(ev)) for rule in result.ruleset.match(ev, "all")]

        def close(self, stats):
            pass

    a = Alerts()
    names, _ = traced_syscalls(result.ruleset, native_arch())
    runner.run(["sh", "-c", f"cp {shutil.which('true')} {dropped} && {up32} {dropped}"], sink=a,
               syscalls=names, use_seccomp=(mode == "seccomp"))
    fired = dict(a.fired)
    assert "Drop and execute new binary in container" in fired
    assert f"proc_exe={dropped}" in fired["Drop and execute new binary in container"]
    if os.geteuid() == 0:  # /etc/shadow is readable
        assert "file=/etc/shadow" in fired["Read sensitive file untrusted"]
        assert "process=up32" in fired["Read sensitive file untrusted"]


THREAD_PROGRAM = r"""
#define _GNU_SOURCE
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void)
{
    char *stack = mmap(0, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
    long r;
    /* i386 clone: flags in ebx (rdi holds something else); the new thread exits at once,
     * without touching its stack. */
    __asm__ volatile ("int $0x80\n\t"
                      "test %%eax, %%eax\n\t"
                      "jnz 1f\n\t"
                      "mov $1, %%eax\n\t"
                      "xor %%ebx, %%ebx\n\t"
                      "int $0x80\n\t"
                      "1:"
                      : "=a"(r) : "a"(120L), "b"(flags), "c"(stack + (1 << 16)), "d"(0L), "S"(0L), "D"(0L)
                      : "memory");
    usleep(100000);
    return r > 0 ? 0 : 1;
}
"""


def test_int80_clone_of_a_thread_is_a_thread(trace, cc, mode):
    prog = cc(THREAD_PROGRAM, "thread32")
    code, c = trace([prog], syscalls=["openat"], use_seccomp=(mode == "seccomp"))
    assert code == 0
    (main,) = [r for r in c.of_kind(R.K_EXEC) if r.extra == r.tid]
    clones = [r for r in c.of_kind(R.K_CLONE) if r.tgid == main.tgid]
    assert len(clones) == 1
    assert clones[0].flags & R.F_THREAD  # the flags came from ebx, not from rdi
