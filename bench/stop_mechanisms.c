/* What one traced syscall costs the workload, by mechanism and by where the tracer runs.
 *
 *   stop_mechanisms MECHANISM PLACEMENT ITERATIONS
 *
 * The workload is this program's child: it installs a filter that sends openat to its
 * tracer and loops open("/etc/hostname") + close ITERATIONS times; it times its own
 * loop and reports nanoseconds per iteration on stdout. At each event the tracer does
 * what the agent must do at a minimum: read the syscall's arguments and 256 bytes of
 * the path from the tracee's memory, then let the call go on.
 *
 * MECHANISM  native       no filter: the loop alone
 *            ptrace       SECCOMP_RET_TRACE, one stop (PTRACE_CONT: no exit stop)
 *            ptrace_exit  SECCOMP_RET_TRACE, then the syscall-exit stop (the result)
 *            notif        SECCOMP_RET_USER_NOTIF, answered with ..._FLAG_CONTINUE (no
 *                         result is ever seen, and the tracee is not stopped: only its
 *                         syscall waits)
 * PLACEMENT  any          no affinity set
 *            same         tracer and workload both on CPU 0
 *            cross        tracer on CPU 0, workload on CPU 1
 *            follow       workload unpinned; every 64 events the tracer reads the CPU
 *                         the workload last ran on and moves there (csrc/placement.c,
 *                         what the agent does by default)
 *
 * Build: gcc -O2 -o stop_mechanisms bench/stop_mechanisms.c csrc/placement.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../csrc/placement.h"   /* follow: the agent's own code (csrc/placement.c) */

enum { M_NATIVE, M_PTRACE, M_PTRACE_EXIT, M_NOTIF };
enum { P_ANY, P_SAME, P_CROSS, P_FOLLOW };

struct info { uint8_t op; uint8_t pad[3]; uint32_t arch; uint64_t ip, sp;
              union { struct { uint64_t nr, args[6]; uint32_t ret_data; } seccomp; struct { int64_t rval; } exit; }; };

static void pin(pid_t who, int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    if (sched_setaffinity(who, sizeof s, &s) != 0) {
        perror("sched_setaffinity");
        exit(2);
    }
}

static void read_path(pid_t tid, uint64_t addr)
{
    char buf[256];
    struct iovec l = { buf, sizeof buf }, r = { (void *)(uintptr_t)addr, sizeof buf };
    process_vm_readv(tid, &l, 1, &r, 1, 0);
}

static int install_filter(int notif)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, notif ? SECCOMP_RET_USER_NOTIF : SECCOMP_RET_TRACE),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { 4, f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, notif ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0, &prog);
}

static void send_fd(int sock, int fd)
{
    char c = 0, ctl[CMSG_SPACE(sizeof(int))];
    struct iovec io = { &c, 1 };
    struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(h), &fd, sizeof fd);
    if (sendmsg(sock, &m, 0) != 1)
        _exit(3);
}

static int recv_fd(int sock)
{
    char c, ctl[CMSG_SPACE(sizeof(int))];
    struct iovec io = { &c, 1 };
    struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
    if (recvmsg(sock, &m, 0) != 1)
        return -1;
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    int fd = -1;
    if (h && h->cmsg_type == SCM_RIGHTS)
        memcpy(&fd, CMSG_DATA(h), sizeof fd);
    return fd;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The workload: filter, then the timed loop; ns per iteration on the result pipe. */
static void workload(int mech, int place, long n, int sock, int result)
{
    if (place == P_SAME)
        pin(0, 0);
    else if (place == P_CROSS)
        pin(0, 1);
    if (mech == M_PTRACE || mech == M_PTRACE_EXIT)
        raise(SIGSTOP);   /* the tracer seizes us here */
    if (mech != M_NATIVE) {
        int fd = install_filter(mech == M_NOTIF);
        if (fd < 0)
            _exit(4);
        if (mech == M_NOTIF)
            send_fd(sock, fd);
    }
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        int fd = open("/etc/hostname", O_RDONLY);
        if (fd < 0)
            _exit(5);
        close(fd);
    }
    uint64_t per = (now_ns() - t0) / (uint64_t)n;
    if (write(result, &per, sizeof per) != sizeof per)
        _exit(6);
    _exit(0);
}

static void serve_ptrace(pid_t pid, int mech, int place)
{
    int st;
    waitpid(pid, &st, WUNTRACED);
    ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACESECCOMP | PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL);
    kill(pid, SIGCONT);
    struct wa_placement pl;
    wa_placement_init(&pl, place == P_FOLLOW, 64);
    for (;;) {
        pid_t t = waitpid(pid, &st, __WALL);
        if (t < 0 || WIFEXITED(st) || WIFSIGNALED(st))
            return;
        int sig = WSTOPSIG(st), ev = (unsigned)st >> 16;
        struct info si;
        if (ev == PTRACE_EVENT_SECCOMP) {
            ptrace((enum __ptrace_request)0x420e, t, sizeof si, &si);
            read_path(t, si.seccomp.args[1]);
            wa_placement_follow(&pl, t);
            ptrace(mech == M_PTRACE_EXIT ? PTRACE_SYSCALL : PTRACE_CONT, t, 0, 0);
        } else if (sig == (SIGTRAP | 0x80)) {
            ptrace((enum __ptrace_request)0x420e, t, sizeof si, &si);
            ptrace(PTRACE_CONT, t, 0, 0);
        } else if (ev == PTRACE_EVENT_STOP) {
            ptrace(PTRACE_CONT, t, 0, 0);
        } else {
            ptrace(PTRACE_CONT, t, 0, ev ? 0 : sig);
        }
    }
}

static void serve_notif(pid_t pid, int sock, int place)
{
    int fd = recv_fd(sock);
    if (fd < 0) {
        fprintf(stderr, "stop_mechanisms: no listener fd from the workload\n");
        exit(2);
    }
    struct seccomp_notif_sizes sz;
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) != 0) {
        perror("SECCOMP_GET_NOTIF_SIZES");
        exit(2);
    }
    struct seccomp_notif *req = calloc(1, sz.seccomp_notif > sizeof *req ? sz.seccomp_notif : sizeof *req);
    struct seccomp_notif_resp *resp = calloc(1, sz.seccomp_notif_resp > sizeof *resp ? sz.seccomp_notif_resp : sizeof *resp);
    struct wa_placement pl;
    wa_placement_init(&pl, place == P_FOLLOW, 64);
    for (;;) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            break;
        if (p.revents & POLLHUP)
            break;   /* the workload, the filter's last user, is gone */
        memset(req, 0, sz.seccomp_notif);
        if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, req) != 0)
            continue;
        read_path((pid_t)req->pid, req->data.args[1]);
        /* The pid could be another process by now: the id check says the call still waits. */
        if (ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) != 0)
            continue;
        wa_placement_follow(&pl, (pid_t)req->pid);
        memset(resp, 0, sz.seccomp_notif_resp);
        resp->id = req->id;
        resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, resp);
    }
    int st;
    waitpid(pid, &st, 0);
    close(fd);
}

static int pick(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

int main(int argc, char **argv)
{
    static const char *const mechs[] = { "native", "ptrace", "ptrace_exit", "notif" };
    static const char *const places[] = { "any", "same", "cross", "follow" };
    int mech = argc == 4 ? pick(argv[1], mechs, 4) : -1;
    int place = argc == 4 ? pick(argv[2], places, 4) : -1;
    long n = argc == 4 ? atol(argv[3]) : 0;
    if (mech < 0 || place < 0 || n <= 0) {
        fprintf(stderr, "usage: %s native|ptrace|ptrace_exit|notif any|same|cross|follow ITERATIONS\n", argv[0]);
        return 2;
    }
    if ((place == P_CROSS) && sysconf(_SC_NPROCESSORS_ONLN) < 2) {
        fprintf(stderr, "stop_mechanisms: 'cross' needs two CPUs\n");
        return 2;
    }
    int sv[2], res[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || pipe(res) != 0)
        return 2;
    if (place == P_SAME || place == P_CROSS)
        pin(0, 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        close(res[0]);
        workload(mech, place, n, sv[1], res[1]);
    }
    close(sv[1]);
    close(res[1]);
    if (mech == M_PTRACE || mech == M_PTRACE_EXIT)
        serve_ptrace(pid, mech, place);
    else if (mech == M_NOTIF)
        serve_notif(pid, sv[0], place);
    else
        waitpid(pid, NULL, 0);
    uint64_t per = 0;
    if (read(res[0], &per, sizeof per) != sizeof per) {
        fprintf(stderr, "stop_mechanisms: the workload gave no result\n");
        return 1;
    }
    printf("%llu\n", (unsigned long long)per);
    return 0;
}
