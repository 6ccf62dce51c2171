/* The baseline the agent's per-event cost is compared with: a minimal seccomp+ptrace
 * tracer doing the same stops for one syscall (openat) and nothing else: at each stop
 * PTRACE_GET_SYSCALL_INFO and a 256-byte process_vm_readv of the path; with "exit" it
 * also takes the syscall-exit stop. Usage: bare_tracer entry|exit CMD ARGS... */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

struct info { uint8_t op; uint8_t pad[3]; uint32_t arch; uint64_t ip, sp;
              union { struct { uint64_t nr, args[6]; uint32_t ret_data; } seccomp; struct { int64_t rval; } exit; }; };

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: %s entry|exit CMD ARGS...\n", argv[0]); return 2; }
    int want_exit = strcmp(argv[1], "exit") == 0;
    pid_t pid = fork();
    if (pid == 0) {
        raise(SIGSTOP);
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = { 4, f };
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
        execvp(argv[2], argv + 2);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, WUNTRACED);
    ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACESECCOMP | PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK |
           PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE | PTRACE_O_EXITKILL);
    kill(pid, SIGCONT);
    char buf[256];
    for (;;) {
        pid_t t = waitpid(-1, &st, __WALL);
        if (t < 0) break;
        if (WIFEXITED(st) || WIFSIGNALED(st)) { if (t == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st); continue; }
        int sig = WSTOPSIG(st), ev = (unsigned)st >> 16;
        struct info si;
        if (ev == PTRACE_EVENT_SECCOMP) {
            ptrace(0x420e, t, sizeof si, &si);
            struct iovec l = { buf, sizeof buf }, r = { (void *)(uintptr_t)si.seccomp.args[1], sizeof buf };
            process_vm_readv(t, &l, 1, &r, 1, 0);
            ptrace(want_exit ? PTRACE_SYSCALL : PTRACE_CONT, t, 0, 0);
        } else if (sig == (SIGTRAP | 0x80)) {
            ptrace(0x420e, t, sizeof si, &si);
            ptrace(PTRACE_CONT, t, 0, 0);
        } else if (ev == PTRACE_EVENT_STOP) {
            ptrace(sig == SIGSTOP || sig == SIGTSTP ? PTRACE_LISTEN : PTRACE_CONT, t, 0, 0);
        } else if (sig == SIGTRAP && ev) {
            ptrace(PTRACE_CONT, t, 0, 0);
        } else {
            ptrace(PTRACE_CONT, t, 0, sig);
        }
    }
    return 0;
}
