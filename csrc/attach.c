#define _GNU_SOURCE
#include "attach.h"
#include "procfacts.h"
#include "record.h"

#include <dirent.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <unistd.h>

void wa_attach_init(struct wa_attach *a)
{
    memset(a, 0, sizeof *a);
    pthread_mutex_init(&a->mu, NULL);
}

void wa_attach_destroy(struct wa_attach *a) { pthread_mutex_destroy(&a->mu); }

int wa_attach_push(struct wa_attach *a, pid_t pid)
{
    int rc = -1;
    pthread_mutex_lock(&a->mu);
    if (a->tail - a->head < WA_ATTACH_QUEUE) {
        struct wa_attach_req *r = &a->q[a->tail % WA_ATTACH_QUEUE];
        r->pid = pid;
        r->ts = wa_now_ns();
        a->tail++;
        rc = 0;
    }
    atomic_store(&a->pending, a->tail != a->head);
    pthread_mutex_unlock(&a->mu);
    if (rc == 0)
        atomic_fetch_add(&a->requested, 1);
    else
        atomic_fetch_add(&a->overflow, 1);
    return rc;
}

int wa_attach_pop(struct wa_attach *a, struct wa_attach_req *out)
{
    int got = 0;
    pthread_mutex_lock(&a->mu);
    if (a->head != a->tail) {
        *out = a->q[a->head % WA_ATTACH_QUEUE];
        a->head++;
        got = 1;
    }
    atomic_store(&a->pending, a->tail != a->head);
    pthread_mutex_unlock(&a->mu);
    return got;
}

void wa_attach_get_stats(struct wa_attach *a, struct wa_attach_stats *s)
{
    s->requested = atomic_load(&a->requested);
    s->attached = atomic_load(&a->attached);
    s->gone = atomic_load(&a->gone);
    s->denied = atomic_load(&a->denied);
    s->busy = atomic_load(&a->busy);
    s->known = atomic_load(&a->known);
    s->overflow = atomic_load(&a->overflow);
}

void wa_attach_note(struct wa_attach *a, const struct wa_attach_req *r)
{
    if (a->ninflight == WA_ATTACH_QUEUE) {   /* never stopped: forget the oldest */
        memmove(a->inflight, a->inflight + 1, (WA_ATTACH_QUEUE - 1) * sizeof *r);
        a->ninflight--;
    }
    a->inflight[a->ninflight++] = *r;
}

struct wa_attach_req wa_attach_take(struct wa_attach *a, pid_t tgid)
{
    struct wa_attach_req r;
    memset(&r, 0, sizeof r);
    for (uint32_t i = 0; i < a->ninflight; i++) {
        if (a->inflight[i].pid == tgid) {
            r = a->inflight[i];
            a->inflight[i] = a->inflight[--a->ninflight];
            break;
        }
    }
    return r;
}

/* A real-time signal: never sent by a terminal or a runtime, and queued, not merged with
 * a SIGCHLD the agent might get. */
int wa_attach_wake_signal(void) { return SIGRTMIN + 3; }

static void on_wake(int sig) { (void)sig; }

void wa_attach_arm_wake(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_wake;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;   /* no SA_RESTART: waitpid must return EINTR */
    sigaction(wa_attach_wake_signal(), &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, wa_attach_wake_signal());
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

int wa_attach_seize(pid_t tgid, long opts, wa_known_fn known, wa_seized_fn seized, void *ctx)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", tgid);
    int total = 0, first_err = 0;
    /* Threads that a not-yet-seized thread creates meanwhile show up on the next pass;
     * those a seized thread creates are ours through PTRACE_O_TRACECLONE. */
    for (int pass = 0; pass < 16; pass++) {
        DIR *d = opendir(path);
        if (!d) {
            if (!first_err)
                first_err = errno == ENOENT ? ESRCH : errno;
            break;
        }
        int added = 0;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            char *end;
            long v = strtol(de->d_name, &end, 10);
            if (*end || v <= 0)
                continue;
            pid_t tid = (pid_t)v;
            if (known(ctx, tid))
                continue;
            if (ptrace(PTRACE_SEIZE, tid, 0, (void *)opts) != 0) {
                if (!first_err)
                    first_err = errno;
                continue;
            }
            seized(ctx, tid, tgid);
            ptrace(PTRACE_INTERRUPT, tid, 0, 0);
            added++;
        }
        closedir(d);
        total += added;
        if (!added)
            break;
    }
    return total ? total : -(first_err ? first_err : ESRCH);
}

int wa_attach_tracer_of(pid_t pid)
{
    char path[64];
    uint8_t buf[4096];
    int trunc;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    ssize_t n = wa_slurp(path, buf, sizeof buf - 1, &trunc);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    const char *p = strstr((const char *)buf, "\nTracerPid:");
    return p ? atoi(p + 11) : -1;
}

int wa_attach_alive(pid_t pid)
{
    char path[64];
    uint8_t buf[512];
    int trunc;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    ssize_t n = wa_slurp(path, buf, sizeof buf - 1, &trunc);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    const char *p = strrchr((const char *)buf, ')');
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X' && p[2] != 'x';
}

static void put_file(pid_t tgid, const char *what, uint16_t slot, uint16_t kind, struct wa_buf *b, uint32_t max)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", tgid, what);
    long off = blob_begin(b, slot, kind, max);
    if (off < 0)
        return;
    int trunc = 0;
    ssize_t n = wa_slurp(path, blob_data(b, off), max, &trunc);
    if (n < 0)
        blob_end(b, off, 0, WA_B_UNREADABLE);
    else
        blob_end(b, off, (uint32_t)n, trunc ? WA_B_TRUNCATED : 0);
}

void wa_attach_capture(pid_t tgid, struct wa_buf *b, uint32_t max)
{
    put_file(tgid, "cmdline", WA_SLOT_CMDLINE, WA_C_ARGV, b, max);
    put_file(tgid, "environ", WA_SLOT_ENVIRON, WA_C_ARGV, b, max);
    put_file(tgid, "cgroup", WA_SLOT_CGROUP, WA_C_STR, b, 4096);
}

/* ---- the watcher ------------------------------------------------------------ */

static long last_pid(int fd)
{
    char buf[128];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *sp = strrchr(buf, ' ');
    return sp ? strtol(sp + 1, NULL, 10) : -1;
}

static void *watch_main(void *arg)
{
    struct wa_watch *w = arg;
    int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    long last = -1;
    struct timespec ts = { w->period_us / 1000000u, (long)(w->period_us % 1000000u) * 1000L };
    while (!atomic_load(&w->stop)) {
        nanosleep(&ts, NULL);
        if (w->tick)
            w->tick(w->ctx);
        atomic_fetch_add_explicit(&w->looks, 1, memory_order_relaxed);
        long lp = fd >= 0 ? last_pid(fd) : -1;
        if (lp == last && lp >= 0)
            continue;
        /* Pids are handed out in order: the new ones are (last, lp]. One the tracer does
         * not follow and that still exists is worth a look from Python (it may also be
         * one of the agent's own threads, or a workload child whose clone event is on
         * its way: Python sorts that out). */
        int wake = last < 0 || lp < last || lp - last > 64;
        for (long pid = last + 1; !wake && pid <= lp; pid++) {
            if (w->known(w->ctx, (pid_t)pid))
                continue;
            char path[32];
            snprintf(path, sizeof path, "/proc/%ld", pid);
            wake = access(path, F_OK) == 0;
        }
        last = lp;
        if (wake) {
            uint64_t one = 1;
            ssize_t r = write(w->efd, &one, sizeof one);
            (void)r;
            atomic_fetch_add_explicit(&w->wakes, 1, memory_order_relaxed);
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

int wa_watch_start(struct wa_watch *w, uint32_t period_us, wa_known_fn known, void (*tick)(void *), void *ctx)
{
    if (w->running)
        return 0;
    w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->efd < 0)
        return -1;
    atomic_store(&w->stop, 0);
    w->period_us = period_us ? period_us : 5000;
    w->known = known;
    w->tick = tick;
    w->ctx = ctx;
    /* Not the tracer's wake signal's target; keep every signal away from this thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&w->th, NULL, watch_main, w);
    if (rc == 0)
        pthread_setname_np(w->th, "wa-watch");   /* its name in top -H and in each task comm file */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        close(w->efd);
        return -1;
    }
    w->running = 1;
    return 0;
}

int wa_watch_wait(struct wa_watch *w, int timeout_ms)
{
    if (!w->running)
        return 0;
    struct pollfd p = { w->efd, POLLIN, 0 };
    if (poll(&p, 1, timeout_ms) <= 0)
        return 0;
    uint64_t v;
    ssize_t n = read(w->efd, &v, sizeof v);
    return n == (ssize_t)sizeof v;
}

void wa_watch_stop(struct wa_watch *w)
{
    if (!w->running)
        return;
    atomic_store(&w->stop, 1);
    pthread_join(w->th, NULL);
    close(w->efd);
    w->running = 0;
}

int wa_attach_record(struct wa_buf *b, pid_t tgid, pid_t tid, uint64_t ts, uint32_t arch, uint32_t max)
{
    if (rec_start(b, WA_K_ATTACH, tgid, tid) != 0)
        return -1;
    rec(b)->args[0] = ts;
    rec(b)->arch = arch;
    wa_capture_proc_facts(tgid, b, WA_FACTS_ALL);
    wa_attach_capture(tgid, b, max);
    return 0;
}

/* Alert mode: what a foreign process is, read from /proc the moment the scanner notices
 * it (not when the consumer gets to it: a short-lived process is gone by then). Not
 * stopped, so a thread of it could change what is read meanwhile; the facts are those of
 * the moment all the same. Returns the record's length in out, or 0 (gone, too large). */
size_t wa_notice_record(int pid, void *out, size_t cap, uint32_t max, uint32_t arch)
{
    struct wa_buf b = { 0 };
    size_t n = 0;
    if (wa_attach_record(&b, pid, pid, wa_now_ns(), arch, max) == 0 && wa_attach_alive(pid) &&
        b.len <= cap) {
        rec(&b)->len = b.len;
        memcpy(out, b.buf, b.len);
        n = b.len;
    }
    free(b.buf);
    return n;
}
