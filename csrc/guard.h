/* Guarded syscalls: a generic check, compiled by Python, that the tracer runs at a
 * syscall's entry stop (seccomp stop, or the entry stop in full-ptrace mode) for the
 * syscalls the filter marks with DATA_GUARD. A matching rule makes the record carry
 * WA_F_GUARD (and WA_F_DENIED when the call is made to fail), and the tracee is resumed
 * only once the consumer has acknowledged the record: the alert is out before the call
 * goes on. No policy lives here: which syscalls, which arguments, deny or not, and which
 * errno all come from workload_agent/tracer/guard.py. */
#ifndef WA_GUARD_H
#define WA_GUARD_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WA_GUARD_MAX_RULES 32
#define WA_GUARD_MAX_PIDS 8
#define WA_GUARD_MAX_NAMES 4
#define WA_GUARD_NAME_LEN 16

enum wa_guard_match {
    WA_G_ALWAYS = 0,        /* every call of that syscall */
    WA_G_ARG_EQ = 1,        /* (int32)arg[k] == value */
    WA_G_ARG_MASK = 2,      /* arg[k] & value */
    WA_G_MEM_MASK = 3,      /* the u64 at address arg[k] & value (clone3's clone_args.flags) */
    WA_G_AGENT_TASK = 4,    /* (int32)arg[k] is the agent: its pid, one of its threads, or pids[] */
    WA_G_AGENT_PIDFD = 5,   /* fd arg[k] of the caller refers to the agent (pidfd or /proc/<agent>) */
    WA_G_AGENT_PROCFILE = 6,/* path arg[k] (relative to dirfd arg[dirfd_arg]) is
                               /proc/<agent task>/[task/<tid>/]<one of names[]> */
};

struct wa_guard_rule {
    int32_t nr;          /* native syscall number */
    uint8_t match;       /* WA_G_* */
    uint8_t arg;
    int8_t dirfd_arg;    /* WA_G_AGENT_PROCFILE: the dirfd argument, or -1 */
    uint8_t flags;       /* WA_GR_* */
    int32_t err;         /* errno the call fails with when WA_GR_DENY */
    uint32_t pad;
    uint64_t value;
};

enum wa_guard_rule_flag {
    WA_GR_DENY = 1u << 0,    /* make the call fail with -err */
    WA_GR_RECORD = 1u << 1,  /* record it (flag WA_F_GUARD) and wait for the consumer's ack */
};

struct wa_guard {
    uint32_t nrules;
    int32_t agent_pid;
    int32_t pids[WA_GUARD_MAX_PIDS];   /* more values that name the agent (e.g. -1, -pgid for kill) */
    uint32_t npids;
    uint32_t nnames;
    char names[WA_GUARD_MAX_NAMES][WA_GUARD_NAME_LEN];
    uint32_t foreign_flags;            /* WA_GR_* for any syscall through a foreign ABI */
    int32_t foreign_err;
    uint32_t ack_timeout_ms;           /* how long a recorded hit waits for the ack; 0: forever */
    uint32_t pad;
    struct wa_guard_rule rules[WA_GUARD_MAX_RULES];
};

/* The first rule that matches nr and its arguments: its index + 1, or 0. rec/rec_len:
 * the record begun for this call (its path blobs spare a second read), or NULL. */
int wa_guard_match(const struct wa_guard *g, pid_t tid, uint64_t nr, const uint64_t *args,
                   const void *rec, size_t rec_len);
/* 1 if some rule names nr: the full-ptrace entry stop calls the check only then. */
int wa_guard_watches(const struct wa_guard *g, uint64_t nr);
/* Makes the syscall the tracee is stopped at (entry) fail with -err without running it. */
int wa_guard_skip(pid_t tid, int err);
#endif
