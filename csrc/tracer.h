/* The tracer core: forks the workload, ptraces its whole tree from one dedicated
 * thread, and streams event records into a ring. It holds no policy: what to trace,
 * which stops to take and what memory to capture all come from the config. */
#ifndef WA_TRACER_H
#define WA_TRACER_H
#include <stddef.h>
#include <stdint.h>

#define WA_MAX_NR 1024

struct wa_guard;

/* Per native syscall number: what to capture. Python fills it from events/params.py. */
struct wa_spec {
    uint8_t traced;       /* full-ptrace mode: record this syscall */
    uint8_t exit_needed;  /* full-ptrace mode: wait for the exit (seccomp mode: RET_TRACE data) */
    uint8_t kind[6];      /* capture kind per argument (WA_C_*) */
    uint8_t len_arg[6];   /* for kinds that need a length: index of the argument holding it */
    uint8_t pad[2];
};

struct wa_config {
    const char *path;             /* resolved executable */
    char *const *argv;
    char *const *envp;
    const void *filter;           /* struct sock_filter[], built by Python; NULL: full-ptrace mode */
    uint32_t filter_len;          /* instructions */
    const struct wa_spec *specs;  /* WA_MAX_NR entries */
    uint64_t ring_bytes;
    uint32_t max_str;             /* path/string capture limit */
    uint32_t max_argv_bytes;      /* argv/envp capture limit */
    uint32_t max_argv_items;
    int capture_env;              /* capture execve envp */
    const uint64_t *sigmask;      /* the workload's initial blocked-signal mask (64 signals) */
    int never_drop;               /* a full ring makes the tracer wait for room (no drops) */
    const struct wa_guard *guard; /* guarded syscalls (csrc/guard.h); NULL: none */
};

struct wa_stats {
    uint64_t records;
    uint64_t drops;
    uint64_t stops;
    uint64_t tasks;
    uint64_t read_failures;
    uint64_t ring_waits;          /* records that waited for room (never_drop) */
    uint64_t ring_wait_ns;
    uint64_t guard_hits;          /* guarded calls recorded (aimed at the agent, evasion) */
    uint64_t denied;              /* calls made to fail */
    uint64_t ack_timeouts;        /* guarded stops that stopped waiting for the consumer */
};

struct wa_tracer;

/* Starts the workload traced. Returns NULL with a message in err when tracing could not
 * start; the workload is then not running. *exec_errno is set when the exec itself failed. */
struct wa_tracer *wa_start(const struct wa_config *cfg, char *err, size_t errlen, int *exec_errno);
int wa_pid(struct wa_tracer *t);
/* Copies whole records into buf; returns bytes. */
size_t wa_read(struct wa_tracer *t, void *buf, size_t cap);
/* Blocks up to timeout_ms for records or the end of the workload; 1 if either is there. */
int wa_wait(struct wa_tracer *t, int timeout_ms);
/* 1 once the main workload process has exited (status: raw wait status), else 0. */
int wa_done(struct wa_tracer *t, int *status);
void wa_get_stats(struct wa_tracer *t, struct wa_stats *s);
/* The consumer has handled every record it has read: tracees held at a guarded stop
 * for one of them may go on. */
void wa_ack(struct wa_tracer *t);
/* Joins the tracer thread (after wa_done) and frees everything. */
void wa_free(struct wa_tracer *t);
#endif
