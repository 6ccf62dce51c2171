"""cffi builder for the C tracer core (csrc/). Used by setup.py's cffi_modules.

The record layout and enums are declared with `...` so that cffi takes their
values and offsets from csrc/record.h itself: the header stays the one definition.
"""
import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.normpath(os.path.join(HERE, "..", "..", "csrc"))

CDEF = """
#define WA_MAX_NR ...
struct wa_spec { uint8_t traced; uint8_t exit_needed; uint8_t kind[6]; uint8_t len_arg[6]; uint8_t when_arg; uint8_t when_value; ...; };
#define WA_SOCKETCALL_MAX ...
struct wa_compat {
    uint32_t arch; const struct wa_spec *specs; int32_t socketcall_nr;
    int16_t socketcall_to[...]; uint8_t socketcall_nargs[...];
    ...;
};
struct wa_config {
    const char *path; char *const *argv; char *const *envp;
    const void *filter; uint32_t filter_len;
    const struct wa_spec *specs;
    uint64_t ring_bytes; uint32_t max_str; uint32_t max_argv_bytes; uint32_t max_argv_items;
    const uint64_t *sigmask; uint32_t wake_gap_us; const struct wa_pf *prefilter;
    const struct wa_compat *compat; int never_drop; const struct wa_guard *guard; int follow_cpu;
    ...;
};
struct wa_stats { uint64_t records; uint64_t drops; uint64_t stops; uint64_t tasks; uint64_t read_failures;
                  uint64_t prefiltered; uint64_t ring_waits; uint64_t ring_wait_ns; uint64_t guard_hits; uint64_t denied;
                  uint64_t ack_timeouts; uint64_t tracer_moves; uint64_t quiet_dropped;
                  uint64_t tracer_cpu_ns; };
struct wa_pf_atom { uint8_t op; uint8_t arg; uint32_t nstr; uint32_t first_str; uint64_t value; ...; };
struct wa_pf_clause { uint32_t first_atom; uint32_t natoms; };
struct wa_pf_prog { uint8_t active; uint8_t path_arg; uint8_t flags_arg; uint8_t quiet_hold; uint32_t first_clause; uint32_t nclauses; ...; };
struct wa_pf { const struct wa_pf_prog *progs; const struct wa_pf_clause *clauses; const struct wa_pf_atom *atoms;
               const uint32_t *str_off; const uint32_t *str_len; const char *pool; struct wa_pf_prog exec;
               uint32_t quiet_failed_exec; };
enum wa_pf_op { WA_PF_PATH_IN=..., WA_PF_PATH_PREFIX=..., WA_PF_PATH_SUFFIX=..., WA_PF_PATH_CONTAINS=...,
                WA_PF_DIR_IN=..., WA_PF_BASE_IN=..., WA_PF_BASE_PREFIX=..., WA_PF_ACCMODE_IN=..., WA_PF_FLAGS_ANY=...,
                WA_PF_STR_IN=..., WA_PF_STR_PREFIX=..., WA_PF_STR_SUFFIX=..., WA_PF_STR_CONTAINS=...,
                WA_PF_STR_ICONTAINS=..., WA_PF_STR_PMATCH=..., WA_PF_TTY=..., WA_PF_EXE_NEW=..., WA_PF_MEMFD=... };
enum wa_pf_subject { WA_PF_S_NAME=..., WA_PF_S_EXE=..., WA_PF_S_EXEPATH=..., WA_PF_S_EXEPATH_BASE=...,
                     WA_PF_S_ARGS=..., WA_PF_S_ENV=..., WA_PF_S_PNAME=...,
                     WA_PF_S_ARG0=..., WA_PF_ARGN_MAX=... };
struct wa_buf { uint8_t *buf; uint32_t len; uint32_t cap; };
int wa_prefilter_keep(const struct wa_pf *pf, const struct wa_buf *b);
int wa_prefilter_exec_keep(const struct wa_pf *pf, const struct wa_buf *sys, const struct wa_buf *img,
                           const char *pname);
#define WA_GUARD_MAX_RULES ...
#define WA_GUARD_MAX_PIDS ...
#define WA_GUARD_MAX_NAMES ...
#define WA_GUARD_NAME_LEN ...
struct wa_guard_rule { int32_t nr; uint8_t match; uint8_t arg; int8_t dirfd_arg; uint8_t flags; int32_t err;
                       uint64_t value; ...; };
struct wa_guard {
    uint32_t nrules; int32_t agent_pid; int32_t pids[...]; uint32_t npids; uint32_t nnames; char names[...][16];
    uint32_t foreign_flags; int32_t foreign_err; uint32_t ack_timeout_ms;
    struct wa_guard_rule rules[...];
    ...;
};
enum wa_guard_match { WA_G_ALWAYS=..., WA_G_ARG_EQ=..., WA_G_ARG_MASK=..., WA_G_MEM_MASK=..., WA_G_AGENT_TASK=...,
                      WA_G_AGENT_PIDFD=..., WA_G_AGENT_PROCFILE=... };
enum wa_guard_rule_flag { WA_GR_DENY=..., WA_GR_RECORD=... };
void wa_ack(struct wa_tracer *t);
struct wa_tracer;
struct wa_tracer *wa_start(const struct wa_config *cfg, char *err, size_t errlen, int *exec_errno);
int wa_pid(struct wa_tracer *t);
void wa_set_prefilter(struct wa_tracer *t, const struct wa_pf *pf);
size_t wa_read(struct wa_tracer *t, void *buf, size_t cap);
int wa_wait(struct wa_tracer *t, int timeout_ms);
int wa_done(struct wa_tracer *t, int *status);
void wa_get_stats(struct wa_tracer *t, struct wa_stats *s);
void wa_free(struct wa_tracer *t);
struct wa_attach_stats { uint64_t requested; uint64_t attached; uint64_t gone; uint64_t denied; uint64_t busy;
                         uint64_t known; uint64_t overflow; };
int wa_attach(struct wa_tracer *t, int pid);
int wa_attach_kick(struct wa_tracer *t);
int wa_task_known(struct wa_tracer *t, int pid);
void wa_get_attach_stats(struct wa_tracer *t, struct wa_attach_stats *s);
int wa_scan_start(struct wa_tracer *t, uint32_t period_us);
int wa_scan_wait(struct wa_tracer *t, int timeout_ms);
size_t wa_notice_record(int pid, void *out, size_t cap, uint32_t max, uint32_t arch);
void wa_scan_stop(struct wa_tracer *t);

struct wa_record {
    uint32_t len; uint16_t kind; uint16_t flags; uint64_t ts_enter; uint64_t ts_exit;
    int32_t tgid; int32_t tid; int32_t nr; uint32_t arch; int64_t ret; uint64_t args[6];
    uint16_t nblobs; uint32_t extra; ...;
};
struct wa_blob { uint16_t argidx; uint16_t kind; uint16_t flags; uint32_t len; ...; };
enum wa_kind { WA_K_PAD=..., WA_K_SYSCALL=..., WA_K_CLONE=..., WA_K_EXEC=..., WA_K_EXIT=...,
               WA_K_SIGNAL=..., WA_K_DROP=..., WA_K_ATTACH=... };
enum wa_flag { WA_F_NO_EXIT=..., WA_F_TRUNCATED=..., WA_F_UNREADABLE=..., WA_F_FOREIGN_ARCH=...,
               WA_F_HAS_EXIT=..., WA_F_THREAD=..., WA_F_GUARD=..., WA_F_DENIED=... };
enum wa_blob_flag { WA_B_TRUNCATED=..., WA_B_UNREADABLE=... };
enum wa_capture { WA_C_NONE=..., WA_C_PATH=..., WA_C_STR=..., WA_C_SOCKADDR=..., WA_C_ARGV=..., WA_C_BUF=...,
                  WA_C_SOCKADDR_OUT=..., WA_C_MSGHDR_NAME=..., WA_C_OPEN_HOW=..., WA_C_INT_PAIR_OUT=...,
                  WA_C_SOCKNAME_OUT=..., WA_C_SOCKNAME_RET=..., WA_C_PROC_FACTS=..., WA_C_FILE_FACTS=...,
                  WA_C_LINK=..., WA_C_FD_ORIGIN=..., WA_C_SOCK_LOCAL=..., WA_C_SOCK_PEER=...,
                  WA_C_COMM_OUT=..., WA_C_CAPDATA=... };
enum wa_slot { WA_SLOT_PROC=..., WA_SLOT_EXE=..., WA_SLOT_CWD=..., WA_SLOT_SCRIPT=..., WA_SLOT_COMM=...,
               WA_SLOT_CMDLINE=..., WA_SLOT_ENVIRON=..., WA_SLOT_CGROUP=...,
               WA_SLOT_BASE=..., WA_SLOT_FD=..., WA_SLOT_FD_LOCAL=..., WA_SLOT_FD_PEER=... };
enum wa_proc_valid { WA_PF_STAT=..., WA_PF_STATUS=..., WA_PF_EXE=..., WA_PF_LOGINUID=..., WA_PF_FDLIMIT=... };
struct wa_file_facts { uint64_t dev; uint64_t ino; uint32_t mode; uint32_t uid; uint32_t gid; uint32_t nlink;
                       int64_t ctime_ns; int64_t mtime_ns; ...; };
struct wa_proc_facts { uint32_t valid; int32_t ppid; int32_t pgid; int32_t sid; int32_t tty; int32_t vpid;
                       int32_t vpgid; int32_t vsid; uint32_t uid[4]; uint32_t gid[4]; uint32_t loginuid;
                       uint64_t cap_inh; uint64_t cap_prm; uint64_t cap_eff; uint64_t cap_bnd; uint64_t cap_amb;
                       uint64_t start_ticks; uint64_t vm_size_kb; uint64_t vm_rss_kb; uint64_t vm_swap_kb;
                       uint64_t pf_min; uint64_t pf_maj; uint64_t fdlimit; struct wa_file_facts exe;
                       char comm[16]; ...; };
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "workload_agent.tracer._core",
    '#include "tracer.h"\n#include "record.h"\n#include "prefilter.h"\n#include "guard.h"\n#include "attach.h"\n',
    sources=[os.path.relpath(os.path.join(CSRC, f)) for f in ("tracer.c", "ring.c", "mem.c", "procfacts.c", "placement.c",
                                                               "prefilter.c", "compat.c", "guard.c",
                                                               "attach.c")],
    include_dirs=[os.path.relpath(CSRC)],
    extra_compile_args=["-O2", "-std=gnu11", "-Wall"],
    libraries=["pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=False)
