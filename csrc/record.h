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
    /* A process that did not descend from the workload, seized at Python's request
     * (csrc/attach.c). tgid: the process; tid: its thread that stopped first; ret: 0, or
     * -errno when it could not be attached (ESRCH gone, EPERM not permitted, EBUSY traced
     * by someone else); args[0]: when Python asked (ns); extra: threads seized. On
     * success the blobs are its facts read at that stop (SLOT_PROC, EXE, CWD, CMDLINE,
     * ENVIRON, CGROUP): the first record of the process. */
    WA_K_ATTACH = 7,
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
    /* Context read at the stop rather than from argument memory (see the slots below). */
    WA_C_PROC_FACTS = 12,   /* struct wa_proc_facts */
    WA_C_FILE_FACTS = 13,   /* struct wa_file_facts */
    WA_C_LINK = 14,         /* a /proc magic link's target (exe, cwd, fd) */
    WA_C_FD_ORIGIN = 15,    /* spec: resolve this fd argument at the stop (link + socket ends) */
    WA_C_SOCK_LOCAL = 16,   /* sockaddr: getsockname of an fd argument's socket */
    WA_C_SOCK_PEER = 17,    /* sockaddr: getpeername of an fd argument's socket */
    WA_C_COMM_OUT = 18,     /* spec: the thread's comm after the call (prctl PR_SET_NAME) */
    WA_C_CAPDATA = 19,      /* spec: the two struct __user_cap_data_struct of capset */
};

/* Blob slots (wa_blob.argidx) beyond the six arguments: context captured at the stop. */
enum wa_slot {
    WA_SLOT_PROC = 8,        /* WA_C_PROC_FACTS: the process at an exec or attach */
    WA_SLOT_EXE = 9,         /* WA_C_LINK: /proc/TID/exe */
    WA_SLOT_CWD = 10,        /* WA_C_LINK: /proc/TID/cwd */
    WA_SLOT_SCRIPT = 11,     /* WA_C_FILE_FACTS: the file exec'd when it is not the exe (#!) */
    WA_SLOT_COMM = 12,       /* string: comm after the call */
    WA_SLOT_CMDLINE = 13,    /* WA_C_ARGV: /proc/TGID/cmdline at an attach */
    WA_SLOT_ENVIRON = 14,    /* WA_C_ARGV: /proc/TGID/environ at an attach */
    WA_SLOT_CGROUP = 15,     /* WA_C_STR: /proc/TGID/cgroup at an attach */
    WA_SLOT_BASE = 16,       /* +i: directory a relative path argument i resolved against */
    WA_SLOT_FD = 24,         /* +i: WA_C_LINK of fd argument i */
    WA_SLOT_FD_LOCAL = 32,   /* +i: WA_C_SOCK_LOCAL of fd argument i */
    WA_SLOT_FD_PEER = 40,    /* +i: WA_C_SOCK_PEER of fd argument i */
};

struct wa_file_facts {
    uint64_t dev;
    uint64_t ino;
    uint32_t mode;
    uint32_t uid;
    uint32_t gid;
    uint32_t nlink;
    int64_t ctime_ns;
    int64_t mtime_ns;
};

enum wa_proc_valid {
    WA_PF_STAT = 1u << 0,     /* ppid..comm, start, vm, faults from /proc/TID/stat */
    WA_PF_STATUS = 1u << 1,   /* ids, caps, namespace ids, vm from /proc/TID/status */
    WA_PF_EXE = 1u << 2,      /* exe: stat of /proc/TID/exe */
    WA_PF_LOGINUID = 1u << 3,
    WA_PF_FDLIMIT = 1u << 4,
};

/* A process as it was at one stop (the tracee cannot change it meanwhile). */
struct wa_proc_facts {
    uint32_t valid;          /* WA_PF_* */
    int32_t ppid, pgid, sid, tty;
    int32_t vpid, vpgid, vsid;   /* innermost pid namespace (NSpid, NSpgid, NSsid) */
    uint32_t uid[4];             /* real, effective, saved, fs */
    uint32_t gid[4];
    uint32_t loginuid;
    uint32_t pad0;
    uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
    uint64_t start_ticks;        /* since boot, in clock ticks */
    uint64_t vm_size_kb, vm_rss_kb, vm_swap_kb;
    uint64_t pf_min, pf_maj;
    uint64_t fdlimit;            /* RLIMIT_NOFILE, soft */
    struct wa_file_facts exe;
    char comm[16];
};

#endif
