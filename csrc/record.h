/* Event records passed from the tracer thread to Python: the one definition of the
 * layout. Little-endian, every record and blob 8-byte aligned. Python decodes these
 * with struct formats checked against this header by tests (cffi offsetof). */
#ifndef WA_RECORD_H
#define WA_RECORD_H
#include <stdint.h>

enum wa_kind {
    WA_K_PAD = 0,      /* filler before the ring wraps; never returned to Python */
    WA_K_SYSCALL = 1,
    WA_K_CLONE = 2,    /* tgid/tid: parent; extra: new tid; nr: PTRACE_EVENT_*; args[0]: clone flags */
    WA_K_EXEC = 3,     /* tid: the tid after exec; extra: former tid */
    WA_K_EXIT = 4,     /* extra: raw wait status */
    WA_K_SIGNAL = 5,   /* extra: signal number */
    WA_K_DROP = 6,     /* extra: records dropped since the previous DROP, from ts_enter to ts_exit */
};

enum wa_flag {
    WA_F_NO_EXIT = 1u << 0,     /* the syscall's exit was never seen (thread died, exec'd away) */
    WA_F_TRUNCATED = 1u << 1,   /* some blob was cut at its size limit */
    WA_F_UNREADABLE = 1u << 2,  /* some argument pointer could not be read */
    WA_F_FOREIGN_ARCH = 1u << 3,/* e.g. int 0x80 on x86_64: args raw, no blobs */
    WA_F_HAS_EXIT = 1u << 4,    /* ret and ts_exit are valid */
    WA_F_THREAD = 1u << 5,      /* CLONE: the new task is a thread */
    WA_F_GUARD = 1u << 6,       /* a guard rule matched (aimed at the agent, tracing evasion);
                                   SYSCALL extra: that rule's index + 1 */
    WA_F_DENIED = 1u << 7,      /* the tracer made the call fail: ret is the errno it returned */
};

struct wa_record {
    uint32_t len;        /* whole record including blobs, multiple of 8 */
    uint16_t kind;
    uint16_t flags;
    uint64_t ts_enter;   /* CLOCK_REALTIME ns */
    uint64_t ts_exit;
    int32_t tgid;
    int32_t tid;
    int32_t nr;
    uint32_t arch;       /* AUDIT_ARCH_* */
    int64_t ret;
    uint64_t args[6];
    uint16_t nblobs;
    uint16_t reserved;
    uint32_t extra;
};

enum wa_blob_flag {
    WA_B_TRUNCATED = 1u << 0,
    WA_B_UNREADABLE = 1u << 1,
};

struct wa_blob {
    uint16_t argidx;     /* which syscall argument this came from */
    uint16_t kind;       /* capture kind (workload_agent/events/capture_kinds.py) */
    uint16_t flags;
    uint16_t reserved;
    uint32_t len;        /* data bytes following, before padding to 8 */
    uint32_t reserved2;
};

/* Capture kinds: mirror of workload_agent/events/capture_kinds.py. */
enum wa_capture {
    WA_C_NONE = 0,
    WA_C_PATH = 1,
    WA_C_STR = 2,
    WA_C_SOCKADDR = 3,
    WA_C_ARGV = 4,
    WA_C_BUF = 5,
    WA_C_SOCKADDR_OUT = 6,
    WA_C_MSGHDR_NAME = 7,
    WA_C_OPEN_HOW = 8,
    WA_C_INT_PAIR_OUT = 9,
    WA_C_SOCKNAME_OUT = 10,
    WA_C_SOCKNAME_RET = 11,
};

#endif
