#define _GNU_SOURCE
#include "procfacts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LINK_MAX_LEN 4096

/* once: the file is made whole at its first read (single-record /proc files: stat,
 * status, loginuid), so a short read is its end and needs no second read. */
static ssize_t slurp(const char *path, void *buf, size_t cap, int *truncated, int once)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t used = 0;
    *truncated = 0;
    for (;;) {
        if (used == cap) {
            char extra;
            *truncated = read(fd, &extra, 1) > 0;
            break;
        }
        ssize_t n = read(fd, (char *)buf + used, cap - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        used += (size_t)n;
        if (once && used < cap)
            break;
    }
    close(fd);
    return (ssize_t)used;
}

ssize_t wa_slurp(const char *path, void *buf, size_t cap, int *truncated)
{
    return slurp(path, buf, cap, truncated, 0);
}

/* A small /proc text file, NUL-terminated (cut at cap - 1 bytes). */
static ssize_t read_file(const char *path, char *buf, size_t cap)
{
    int truncated;
    ssize_t n = slurp(path, buf, cap - 1, &truncated, 1);
    if (n >= 0)
        buf[n] = 0;
    return n;
}

static void file_facts_of(const struct stat *st, struct wa_file_facts *f)
{
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    f->mode = st->st_mode;
    f->uid = st->st_uid;
    f->gid = st->st_gid;
    f->nlink = (uint32_t)st->st_nlink;
    f->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000ll + st->st_ctim.tv_nsec;
    f->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000ll + st->st_mtim.tv_nsec;
}

/* /proc/TID/stat: the comm is parenthesised and may itself hold spaces and ')'. */
static int parse_stat(const char *buf, struct wa_proc_facts *f)
{
    const char *open_p = strchr(buf, '(');
    const char *close_p = strrchr(buf, ')');
    if (!open_p || !close_p || close_p < open_p)
        return -1;
    size_t n = (size_t)(close_p - open_p - 1);
    if (n > sizeof f->comm - 1)
        n = sizeof f->comm - 1;
    memcpy(f->comm, open_p + 1, n);
    f->comm[n] = 0;
    /* fields from 3 (state) on */
    char state;
    long long ppid, pgrp, session, tty, tpgid;
    unsigned long long flags, minflt, cminflt, majflt, cmajflt, utime, stime;
    long long cutime, cstime, prio, nice, nthreads, itreal;
    unsigned long long start, vsize;
    long long rss;
    int got = sscanf(close_p + 2,
                     "%c %lld %lld %lld %lld %lld %llu %llu %llu %llu %llu %llu %llu %lld %lld %lld %lld %lld %lld %llu %llu %lld",
                     &state, &ppid, &pgrp, &session, &tty, &tpgid, &flags, &minflt, &cminflt, &majflt,
                     &cmajflt, &utime, &stime, &cutime, &cstime, &prio, &nice, &nthreads, &itreal, &start,
                     &vsize, &rss);
    if (got < 22)
        return -1;
    f->ppid = (int32_t)ppid;
    f->pgid = (int32_t)pgrp;
    f->sid = (int32_t)session;
    f->tty = (int32_t)tty;
    f->pf_min = minflt;
    f->pf_maj = majflt;
    f->start_ticks = start;
    f->vm_size_kb = vsize / 1024;
    f->vm_rss_kb = rss > 0 ? (uint64_t)rss * (uint64_t)(sysconf(_SC_PAGESIZE) / 1024) : 0;
    return 0;
}

/* The last number of a "Key:\tA\tB\tC" line: the innermost namespace's id. */
static int last_number(const char *line, int32_t *out)
{
    const char *p = line;
    long long v = 0;
    int any = 0;
    while (*p && *p != '\n') {
        char *end;
        long long x = strtoll(p, &end, 10);
        if (end != p) {
            v = x;
            any = 1;
            p = end;
        } else {
            p++;
        }
    }
    if (any)
        *out = (int32_t)v;
    return any ? 0 : -1;
}

static void parse_status(const char *buf, struct wa_proc_facts *f)
{
    for (const char *line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        const char *v = strchr(line, ':');
        if (!v)
            continue;
        size_t klen = (size_t)(v - line);
        v++;
#define KEY(k) (klen == sizeof(k) - 1 && memcmp(line, k, klen) == 0)
        if (KEY("Uid"))
            sscanf(v, "%u %u %u %u", &f->uid[0], &f->uid[1], &f->uid[2], &f->uid[3]);
        else if (KEY("Gid"))
            sscanf(v, "%u %u %u %u", &f->gid[0], &f->gid[1], &f->gid[2], &f->gid[3]);
        else if (KEY("CapInh"))
            f->cap_inh = strtoull(v, NULL, 16);
        else if (KEY("CapPrm"))
            f->cap_prm = strtoull(v, NULL, 16);
        else if (KEY("CapEff"))
            f->cap_eff = strtoull(v, NULL, 16);
        else if (KEY("CapBnd"))
            f->cap_bnd = strtoull(v, NULL, 16);
        else if (KEY("CapAmb"))
            f->cap_amb = strtoull(v, NULL, 16);
        else if (KEY("NSpid"))
            last_number(v, &f->vpid);
        else if (KEY("NSpgid"))
            last_number(v, &f->vpgid);
        else if (KEY("NSsid"))
            last_number(v, &f->vsid);
        else if (KEY("VmSwap"))
            f->vm_swap_kb = strtoull(v, NULL, 10);
#undef KEY
    }
}

void wa_proc_facts_more(pid_t tid, struct wa_proc_facts *f, unsigned what)
{
    char path[64], buf[4096];
    if ((what & WA_FACTS_STAT) && !(f->valid & WA_PF_STAT)) {
        snprintf(path, sizeof path, "/proc/%d/stat", tid);
        if (read_file(path, buf, sizeof buf) > 0 && parse_stat(buf, f) == 0)
            f->valid |= WA_PF_STAT;
    }
    if (!(what & WA_FACTS_REST))
        return;
    snprintf(path, sizeof path, "/proc/%d/status", tid);
    if (read_file(path, buf, sizeof buf) > 0) {
        parse_status(buf, f);
        f->valid |= WA_PF_STATUS;
    }
    snprintf(path, sizeof path, "/proc/%d/loginuid", tid);
    if (read_file(path, buf, sizeof buf) > 0) {
        f->loginuid = (uint32_t)strtoul(buf, NULL, 10);
        f->valid |= WA_PF_LOGINUID;
    }
    struct rlimit rl;
    if (prlimit(tid, RLIMIT_NOFILE, NULL, &rl) == 0) {
        f->fdlimit = rl.rlim_cur;
        f->valid |= WA_PF_FDLIMIT;
    }
}

long wa_capture_proc_facts(pid_t tid, struct wa_buf *b, unsigned what)
{
    struct wa_proc_facts f;
    char path[64];
    struct stat st;
    memset(&f, 0, sizeof f);
    wa_proc_facts_more(tid, &f, what);
    /* stat() through the magic link reaches the running file even once it is unlinked. */
    snprintf(path, sizeof path, "/proc/%d/exe", tid);
    if (stat(path, &st) == 0) {
        file_facts_of(&st, &f.exe);
        f.valid |= WA_PF_EXE;
    }
    long at = blob_begin(b, WA_SLOT_PROC, WA_C_PROC_FACTS, sizeof f);
    if (at >= 0) {
        memcpy(blob_data(b, at), &f, sizeof f);
        blob_end(b, at, sizeof f, 0);
    }
    wa_capture_link(tid, "exe", WA_SLOT_EXE, b);
    wa_capture_link(tid, "cwd", WA_SLOT_CWD, b);
    return at < 0 ? -1 : at + (long)sizeof(struct wa_blob);
}

int wa_capture_link(pid_t tid, const char *what, uint16_t slot, struct wa_buf *b)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", tid, what);
    long off = blob_begin(b, slot, WA_C_LINK, LINK_MAX_LEN);
    if (off < 0)
        return -1;
    ssize_t n = readlink(path, (char *)blob_data(b, off), LINK_MAX_LEN);
    if (n < 0) {
        blob_end(b, off, 0, WA_B_UNREADABLE);
        return -1;
    }
    blob_end(b, off, (uint32_t)n, n == LINK_MAX_LEN ? WA_B_TRUNCATED : 0);
    return 0;
}

int wa_capture_file_facts(pid_t tid, const char *path, uint16_t slot, struct wa_buf *b,
                          const struct wa_file_facts *unless)
{
    struct stat st;
    int rc;
    if (path[0] == '/') {
        rc = stat(path, &st);
    } else {
        char cwd[64];
        snprintf(cwd, sizeof cwd, "/proc/%d/cwd", tid);
        int dfd = open(cwd, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            return -1;
        rc = fstatat(dfd, path, &st, 0);
        close(dfd);
    }
    if (rc != 0)
        return -1;
    if (unless && unless->dev == st.st_dev && unless->ino == st.st_ino)
        return 1;
    struct wa_file_facts f;
    memset(&f, 0, sizeof f);
    file_facts_of(&st, &f);
    blob_put(b, slot, WA_C_FILE_FACTS, &f, sizeof f, 0);
    return 0;
}

/* getsockname/getpeername of another process's socket: borrow the fd with pidfd_getfd
 * (5.6+; being its tracer satisfies the kernel's ptrace-access check). */
void wa_capture_fd(pid_t tgid, pid_t tid, int fd, int i, struct wa_buf *b)
{
    char what[32];
    snprintf(what, sizeof what, "fd/%d", fd);
    long off = blob_begin(b, (uint16_t)(WA_SLOT_FD + i), WA_C_LINK, LINK_MAX_LEN);
    if (off < 0)
        return;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", tid, what);
    char *dst = (char *)blob_data(b, off);
    ssize_t n = readlink(path, dst, LINK_MAX_LEN);
    if (n < 0) {
        blob_end(b, off, 0, WA_B_UNREADABLE);
        return;
    }
    int is_socket = n > 7 && memcmp(dst, "socket:", 7) == 0;
    blob_end(b, off, (uint32_t)n, n == LINK_MAX_LEN ? WA_B_TRUNCATED : 0);
    if (!is_socket)
        return;
    int pfd = (int)syscall(SYS_pidfd_open, tgid, 0);
    if (pfd < 0)
        return;
    int sfd = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
    close(pfd);
    if (sfd < 0)
        return;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(sfd, (struct sockaddr *)&ss, &len) == 0)
        blob_put(b, (uint16_t)(WA_SLOT_FD_LOCAL + i), WA_C_SOCK_LOCAL, &ss,
                 len > sizeof ss ? (uint32_t)sizeof ss : len, 0);
    len = sizeof ss;
    if (getpeername(sfd, (struct sockaddr *)&ss, &len) == 0)
        blob_put(b, (uint16_t)(WA_SLOT_FD_PEER + i), WA_C_SOCK_PEER, &ss,
                 len > sizeof ss ? (uint32_t)sizeof ss : len, 0);
    close(sfd);
}

void wa_capture_comm(pid_t tid, struct wa_buf *b)
{
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/%d/comm", tid);
    ssize_t n = read_file(path, buf, sizeof buf);
    if (n < 0) {
        blob_put(b, WA_SLOT_COMM, WA_C_STR, "", 0, WA_B_UNREADABLE);
        return;
    }
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    blob_put(b, WA_SLOT_COMM, WA_C_STR, buf, (uint32_t)n, 0);
}
