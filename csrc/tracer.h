/* The tracer core: forks the workload, ptraces its whole tree from one dedicated
 * thread, and streams event records into a ring. It holds no policy: what to trace,
 * which stops to take and what memory to capture all come from the config. */
#ifndef WA_TRACER_H
#define WA_TRACER_H
#include <stddef.h>
#include <stdint.h>

#define WA_MAX_NR 1024

struct wa_pf;
struct wa_guard;

/* Per native syscall number: what to capture. Python fills it from events/params.py. */
struct wa_spec {
    uint8_t traced;       /* full-ptrace mode: record this syscall */
    uint8_t exit_needed;  /* full-ptrace mode: wait for the exit (seccomp mode: RET_TRACE data) */
    uint8_t kind[6];      /* capture kind per argument (WA_C_*) */
    uint8_t len_arg[6];   /* for kinds that need a length: index of the argument holding it */
    /* 1 + index of an argument whose value decides whether argument memory is read at the
     * entry (0: always), and the value it must have: prctl reads a string for one option
     * only, and its other options' integers are no pointers. */
    uint8_t when_arg;
    uint8_t when_value;
};

/* socketcall's call numbers (SYS_SOCKET = 1 ... SYS_SENDMMSG = 20) fit below this. */
#define WA_SOCKETCALL_MAX 32

/* The compat ABI's tables, compiled by Python (tracer/core.py) like the native ones. */
struct wa_compat {
    uint32_t arch;                  /* AUDIT_ARCH_* of the compat ABI */
    const struct wa_spec *specs;    /* WA_MAX_NR entries, by compat syscall number */
    int32_t socketcall_nr;          /* the multiplexer's compat number; -1: none */
    /* per socketcall call number: the compat syscall it stands for (-1: not traced) and
     * how many 32-bit arguments its array holds */
    int16_t socketcall_to[WA_SOCKETCALL_MAX];
    uint8_t socketcall_nargs[WA_SOCKETCALL_MAX];
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
    uint32_t wake_gap_us;            /* at most one consumer wake-up per this many us */
    const struct wa_pf *prefilter;   /* NULL: every traced syscall is recorded */
    const struct wa_compat *compat;  /* NULL: compat-ABI syscalls are recorded raw */
    int never_drop;               /* a full ring makes the tracer wait for room (no drops) */
    const struct wa_guard *guard; /* guarded syscalls (csrc/guard.h); NULL: none */
    int follow_cpu;               /* the tracer thread follows the CPU of the tracee it serves */
};

struct wa_stats {
    uint64_t records;
    uint64_t drops;
    uint64_t stops;
    uint64_t tasks;
    uint64_t read_failures;
    uint64_t prefiltered;   /* syscalls the prefilter dropped at their entry stop */
    uint64_t ring_waits;          /* records that waited for room (never_drop) */
    uint64_t ring_wait_ns;
    uint64_t guard_hits;          /* guarded calls recorded (aimed at the agent, evasion) */
    uint64_t denied;              /* calls made to fail */
    uint64_t ack_timeouts;        /* guarded stops that stopped waiting for the consumer */
    uint64_t tracer_moves;        /* times the tracer thread moved to its tracee's CPU */
    uint64_t quiet_dropped;       /* processes no rule could see: their records never sent */
    uint64_t tracer_cpu_ns;       /* CPU time of the tracer thread so far */
};

struct wa_tracer;

/* Starts the workload traced. Returns NULL with a message in err when tracing could not
 * start; the workload is then not running. *exec_errno is set when the exec itself failed. */
struct wa_tracer *wa_start(const struct wa_config *cfg, char *err, size_t errlen, int *exec_errno);
int wa_pid(struct wa_tracer *t);
/* Replaces the prefilter (NULL: none) from any thread; the old tables must stay valid. */
void wa_set_prefilter(struct wa_tracer *t, const struct wa_pf *pf);
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
