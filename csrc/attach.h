/* Foreign processes: processes in the agent's PID namespace that did not descend from the
 * workload (docker exec, kubectl exec, ECS Exec). Python decides which pids to attach to
 * and queues them here; the tracer thread, the only one that may call ptrace, seizes them
 * when it is woken. An attached process gets no seccomp filter: it and its children run in
 * full-ptrace mode (a per-task flag in the tracer), while the workload keeps its filter. */
#ifndef WA_ATTACH_H
#define WA_ATTACH_H
#include "recbuf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#define WA_ATTACH_QUEUE 256

struct wa_attach_req {
    int32_t pid;
    uint32_t threads;        /* once seized: how many */
    uint64_t ts;             /* CLOCK_REALTIME ns when Python queued it */
};

struct wa_attach_stats {
    uint64_t requested;      /* requests queued */
    uint64_t attached;       /* processes announced with their facts */
    uint64_t gone;           /* exited before they could be stopped: a counted miss */
    uint64_t denied;         /* PTRACE_SEIZE not permitted (no CAP_SYS_PTRACE) */
    uint64_t busy;           /* traced by another tracer (a debugger) */
    uint64_t known;          /* already ours (a workload process the scan saw early) */
    uint64_t overflow;       /* queue full: the request was refused */
};

struct wa_attach {
    pthread_mutex_t mu;
    struct wa_attach_req q[WA_ATTACH_QUEUE];
    uint32_t head, tail;     /* under mu */
    _Atomic int pending;
    _Atomic uint64_t requested, attached, gone, denied, busy, known, overflow;
    /* tracer thread only: seized processes whose first stop is still due */
    struct wa_attach_req inflight[WA_ATTACH_QUEUE];
    uint32_t ninflight;
};

void wa_attach_init(struct wa_attach *a);
void wa_attach_destroy(struct wa_attach *a);
/* Any thread: queue a pid; 0, or -1 when the queue is full. */
int wa_attach_push(struct wa_attach *a, pid_t pid);
/* Tracer thread: the next request; 1 if one was there. */
int wa_attach_pop(struct wa_attach *a, struct wa_attach_req *out);
void wa_attach_get_stats(struct wa_attach *a, struct wa_attach_stats *s);
/* Tracer thread: remember a seized process until its first stop; take it back then
 * (a zeroed request when it is not there). */
void wa_attach_note(struct wa_attach *a, const struct wa_attach_req *r);
struct wa_attach_req wa_attach_take(struct wa_attach *a, pid_t tgid);

/* The signal that interrupts the tracer thread's waitpid (handler without SA_RESTART,
 * so waitpid returns EINTR and the loop drains the queue). */
int wa_attach_wake_signal(void);
/* Installs the handler (process-wide, idempotent) and unblocks the signal in the calling
 * thread: called by the tracer thread before its loop. */
void wa_attach_arm_wake(void);

typedef int (*wa_known_fn)(void *ctx, pid_t tid);
typedef void (*wa_seized_fn)(void *ctx, pid_t tid, pid_t tgid);
/* Tracer thread: PTRACE_SEIZE every thread of tgid that known() does not claim, then
 * PTRACE_INTERRUPT it (its first stop is where the facts are read). Re-reads the thread
 * list until no new thread appears. Returns the number seized, or -errno of the first
 * failure when none was. */
int wa_attach_seize(pid_t tgid, long opts, wa_known_fn known, wa_seized_fn seized, void *ctx);
/* 1 while a process runs (not gone, not a zombie): an exiting process refuses
 * PTRACE_SEIZE with EPERM too. */
int wa_attach_alive(pid_t pid);
/* The TracerPid of a process (0: none, -1: unknown). */
int wa_attach_tracer_of(pid_t pid);
/* Appends what an attach record carries besides the process facts: the command line,
 * the environment (each as NUL-separated strings, up to max bytes) and the cgroup file. */
void wa_attach_capture(pid_t tgid, struct wa_buf *b, uint32_t max);
/* An ATTACH record in b: the process facts and what wa_attach_capture adds, read now;
 * args[0] is ts (when it was asked for). 0, or -1 when b cannot grow. */
int wa_attach_record(struct wa_buf *b, pid_t tgid, pid_t tid, uint64_t ts, uint32_t arch, uint32_t max);
/* Alert mode: an ATTACH record of pid read from /proc now, without seizing it (record
 * layout of record.h) into out; its length, or 0 when it is gone or does not fit. */
size_t wa_notice_record(int pid, void *out, size_t cap, uint32_t max, uint32_t arch);

/* The watcher: a thread that looks at /proc/loadavg's last allocated pid every period
 * (a 2 us read) and wakes the Python scanner only when a pid the tracer does not follow
 * showed up; Python sleeps meanwhile. Each period it also calls tick (the tracer's
 * re-kick of queued requests). */
struct wa_watch {
    pthread_t th;
    int efd;                      /* eventfd: the scanner waits on it */
    _Atomic int stop;
    int running;
    uint32_t period_us;
    wa_known_fn known;
    void (*tick)(void *ctx);
    void *ctx;
    _Atomic uint64_t wakes, looks;
};
int wa_watch_start(struct wa_watch *w, uint32_t period_us, wa_known_fn known, void (*tick)(void *), void *ctx);
/* Blocks up to timeout_ms for the watcher; 1 if it saw something new. */
int wa_watch_wait(struct wa_watch *w, int timeout_ms);
void wa_watch_stop(struct wa_watch *w);

/* The Python side (declared here to keep tracer.h the workload's API). */
struct wa_tracer;
/* Queue pid and wake the tracer thread; 0, or -1 (tracing over, queue full). */
int wa_attach(struct wa_tracer *t, int pid);
/* Wake the tracer thread again if requests are still queued; 1 if it did. */
int wa_attach_kick(struct wa_tracer *t);
/* 0: the tracer does not follow this tid; 1: it does; 2: it does, and it is a process it
 * attached to whose ATTACH record has gone out. A hint, read without locking. */
int wa_task_known(struct wa_tracer *t, int pid);
void wa_get_attach_stats(struct wa_tracer *t, struct wa_attach_stats *s);
int wa_scan_start(struct wa_tracer *t, uint32_t period_us);
int wa_scan_wait(struct wa_tracer *t, int timeout_ms);
void wa_scan_stop(struct wa_tracer *t);
#endif
