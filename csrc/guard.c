#define _GNU_SOURCE
#include "guard.h"
#include "mem.h"
#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <unistd.h>
#include <elf.h>

#ifndef NT_ARM_SYSTEM_CALL
#define NT_ARM_SYSTEM_CALL 0x404
#endif

#define PATH_MAX_GUARD 4096

/* Is n the agent: its pid, a thread of it (the tracer runs inside the agent, so
 * /proc/self/task lists exactly the agent's threads), or one of the extra values? */
static int is_agent(const struct wa_guard *g, int32_t n)
{
    if (n == g->agent_pid)
        return 1;
    for (uint32_t i = 0; i < g->npids && i < WA_GUARD_MAX_PIDS; i++)
        if (n == g->pids[i])
            return 1;
    if (n <= 0)
        return 0;
    char p[48];
    snprintf(p, sizeof p, "/proc/self/task/%d", n);
    return access(p, F_OK) == 0;
}

static int parse_pid(const char *s, size_t len, int32_t *out)
{
    if (!len || len > 10)
        return 0;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = (int32_t)v;
    return v > 0 && v < INT32_MAX;
}

/* A pidfd's fdinfo names its process ("Pid:\t123"); a /proc/<pid> directory fd (which
 * pidfd_send_signal also takes) links to that directory. */
static int fd_is_agent(const struct wa_guard *g, pid_t tid, int fd)
{
    char p[64], buf[512];
    snprintf(p, sizeof p, "/proc/%d/fdinfo/%d", tid, fd);
    int f = open(p, O_RDONLY | O_CLOEXEC);
    if (f >= 0) {
        ssize_t n = read(f, buf, sizeof buf - 1);
        close(f);
        if (n > 0) {
            buf[n] = 0;
            const char *s = strstr(buf, "\nPid:");
            if (s) {
                s += 5;
                while (*s == ' ' || *s == '\t')
                    s++;
                int32_t pid;
                size_t len = strspn(s, "0123456789");
                if (parse_pid(s, len, &pid) && is_agent(g, pid))
                    return 1;
            }
        }
    }
    snprintf(p, sizeof p, "/proc/%d/fd/%d", tid, fd);
    ssize_t n = readlink(p, buf, sizeof buf - 1);
    if (n > 6 && !memcmp(buf, "/proc/", 6)) {
        int32_t pid;
        if (parse_pid(buf + 6, (size_t)n - 6, &pid) && is_agent(g, pid))
            return 1;
    }
    return 0;
}

/* Lexical normalisation in place: "//", "/./" and "x/.." collapse. */
static size_t normalize(char *path, size_t len)
{
    char out[PATH_MAX_GUARD];
    size_t o = 0, i = 0;
    while (i < len) {
        while (i < len && path[i] == '/')
            i++;
        size_t start = i;
        while (i < len && path[i] != '/')
            i++;
        size_t n = i - start;
        if (n == 0 || (n == 1 && path[start] == '.'))
            continue;
        if (n == 2 && path[start] == '.' && path[start + 1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
            continue;
        }
        if (o + 1 + n >= sizeof out)
            return 0;
        out[o++] = '/';
        memcpy(out + o, path + start, n);
        o += n;
    }
    if (o == 0)
        out[o++] = '/';
    memcpy(path, out, o);
    path[o] = 0;
    return o;
}

static int component(const char **s, const char *end, const char **c, size_t *n)
{
    if (*s >= end || **s != '/')
        return 0;
    const char *p = ++*s;
    while (*s < end && **s != '/')
        (*s)++;
    *c = p;
    *n = (size_t)(*s - p);
    return *n > 0;
}

/* /proc/<agent task>/[task/<tid>/]<name> with name one of g->names. */
static int procfile_is_agent(const struct wa_guard *g, pid_t tid, const char *path, size_t len, int dirfd)
{
    char full[PATH_MAX_GUARD];
    size_t n = 0;
    if (!len)
        return 0;
    if (path[0] != '/') {
        char link[64];
        if (dirfd == AT_FDCWD)
            snprintf(link, sizeof link, "/proc/%d/cwd", tid);
        else
            snprintf(link, sizeof link, "/proc/%d/fd/%d", tid, dirfd);
        ssize_t k = readlink(link, full, sizeof full - 1);
        if (k <= 0)
            return 0;
        n = (size_t)k;
        full[n++] = '/';
    }
    if (n + len >= sizeof full)
        return 0;
    memcpy(full + n, path, len);
    n = normalize(full, n + len);
    const char *s = full, *end = full + n, *c;
    size_t cn;
    int32_t pid;
    if (!component(&s, end, &c, &cn) || cn != 4 || memcmp(c, "proc", 4))
        return 0;
    if (!component(&s, end, &c, &cn) || !parse_pid(c, cn, &pid))
        return 0;   /* self and thread-self are the caller itself */
    int agent = is_agent(g, pid);
    if (!component(&s, end, &c, &cn))
        return 0;
    if (cn == 4 && !memcmp(c, "task", 4)) {
        if (!component(&s, end, &c, &cn) || !parse_pid(c, cn, &pid))
            return 0;
        agent = agent || is_agent(g, pid);
        if (!component(&s, end, &c, &cn))
            return 0;
    }
    if (!agent || s != end)
        return 0;
    for (uint32_t i = 0; i < g->nnames && i < WA_GUARD_MAX_NAMES; i++)
        if (strnlen(g->names[i], WA_GUARD_NAME_LEN) == cn && !memcmp(g->names[i], c, cn))
            return 1;
    return 0;
}

int wa_guard_watches(const struct wa_guard *g, uint64_t nr)
{
    for (uint32_t i = 0; i < g->nrules && i < WA_GUARD_MAX_RULES; i++)
        if ((uint64_t)(int64_t)g->rules[i].nr == nr)
            return 1;
    return 0;
}

/* The captured blob of argument argidx in a record being built, or NULL. */
static const char *blob_of(const void *rec, size_t rec_len, unsigned argidx, size_t *len)
{
    if (!rec || rec_len < sizeof(struct wa_record))
        return NULL;
    const struct wa_record *r = rec;
    size_t off = sizeof *r;
    for (unsigned i = 0; i < r->nblobs && off + sizeof(struct wa_blob) <= rec_len; i++) {
        const struct wa_blob *b = (const struct wa_blob *)((const char *)rec + off);
        size_t data = off + sizeof *b;
        if (data + b->len > rec_len)
            return NULL;
        if (b->argidx == argidx && (b->kind == WA_C_PATH || b->kind == WA_C_STR) &&
            !(b->flags & (WA_B_UNREADABLE | WA_B_TRUNCATED))) {
            *len = strnlen((const char *)rec + data, b->len);
            return (const char *)rec + data;
        }
        off = data + ((b->len + 7u) & ~7u);
    }
    return NULL;
}

/* Cheap first test: only a path whose last component is one of the names can match. */
static int last_is_name(const struct wa_guard *g, const char *path, size_t len)
{
    while (len > 1 && path[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && path[start - 1] != '/')
        start--;
    for (uint32_t i = 0; i < g->nnames && i < WA_GUARD_MAX_NAMES; i++)
        if (strnlen(g->names[i], WA_GUARD_NAME_LEN) == len - start && !memcmp(g->names[i], path + start, len - start))
            return 1;
    return 0;
}

int wa_guard_match(const struct wa_guard *g, pid_t tid, uint64_t nr, const uint64_t *args,
                   const void *rec, size_t rec_len)
{
    for (uint32_t i = 0; i < g->nrules && i < WA_GUARD_MAX_RULES; i++) {
        const struct wa_guard_rule *r = &g->rules[i];
        if ((uint64_t)(int64_t)r->nr != nr || r->arg > 5)
            continue;
        uint64_t a = args[r->arg];
        int hit = 0;
        switch (r->match) {
        case WA_G_ALWAYS:
            hit = 1;
            break;
        case WA_G_ARG_EQ:
            hit = (int32_t)a == (int32_t)r->value;
            break;
        case WA_G_ARG_MASK:
            hit = (a & r->value) != 0;
            break;
        case WA_G_MEM_MASK: {
            uint64_t v = 0;
            hit = wa_mem_read(tid, a, &v, sizeof v) == sizeof v && (v & r->value);
            break;
        }
        case WA_G_AGENT_TASK:
            hit = is_agent(g, (int32_t)a);
            break;
        case WA_G_AGENT_PIDFD:
            hit = fd_is_agent(g, tid, (int)a);
            break;
        case WA_G_AGENT_PROCFILE: {
            char buf[PATH_MAX_GUARD];
            size_t path_len = 0;
            const char *path = blob_of(rec, rec_len, r->arg, &path_len);
            if (!path) {
                int trunc = 0, unread = 0;
                path_len = wa_mem_read_str(tid, a, buf, sizeof buf - 1, &trunc, &unread);
                if (unread || trunc)
                    path_len = 0;
                path = buf;
            }
            if (!last_is_name(g, path, path_len))
                break;
            int dirfd = r->dirfd_arg >= 0 && r->dirfd_arg < 6 ? (int)(int32_t)args[r->dirfd_arg] : AT_FDCWD;
            hit = procfile_is_agent(g, tid, path, path_len, dirfd);
            break;
        }
        default:
            break;
        }
        if (hit)
            return (int)i + 1;
    }
    return 0;
}

/* Syscall number -1 skips the call; the return register, set at the same stop, is what
 * the caller sees (seccomp(2), "the tracer can skip the system call"). */
int wa_guard_skip(pid_t tid, int err)
{
#if defined(__x86_64__)
    struct user_regs_struct regs;
    if (ptrace(PTRACE_GETREGS, tid, 0, &regs) != 0)
        return -1;
    regs.orig_rax = (unsigned long long)-1;
    regs.rax = (unsigned long long)(long long)-err;
    return (int)ptrace(PTRACE_SETREGS, tid, 0, &regs);
#elif defined(__aarch64__)
    int nr = -1;
    struct iovec sc = { &nr, sizeof nr };
    if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_ARM_SYSTEM_CALL, &sc) != 0)
        return -1;
    struct user_regs_struct regs;
    struct iovec iov = { &regs, sizeof regs };
    if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &iov) != 0)
        return -1;
    regs.regs[0] = (unsigned long long)(long long)-err;
    return (int)ptrace(PTRACE_SETREGSET, tid, (void *)NT_PRSTATUS, &iov);
#endif
}
