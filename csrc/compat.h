/* The compat ABI (i386 through int 0x80 on x86_64, arm on aarch64): a 64-bit kernel runs
 * these syscalls for any process, so a workload can use them to hide from a tracer that
 * only decodes its native table. They are decoded like native ones: their own spec table,
 * 32-bit registers and pointers, and socketcall replaced by the call it carries. */
#ifndef WA_COMPAT_H
#define WA_COMPAT_H
#include "tracer.h"

#include <stdint.h>
#include <sys/types.h>

struct wa_compat_state {
    uint32_t arch;                       /* 0: no compat decoding */
    struct wa_spec specs[WA_MAX_NR];
    int32_t socketcall_nr;
    int16_t socketcall_to[WA_SOCKETCALL_MAX];
    uint8_t socketcall_nargs[WA_SOCKETCALL_MAX];
};

/* Copies the config's tables (cfg may be NULL: compat calls then stay raw). */
void wa_compat_init(struct wa_compat_state *c, const struct wa_compat *cfg);

/* At a compat syscall's entry: cuts the arguments to the 32 bits the kernel uses and
 * demultiplexes socketcall (its arguments are read from the tracee's array), rewriting
 * *nr and args in place. Returns the spec to capture with, or NULL when this call is
 * not to be recorded (a socketcall sub-call nobody traces, an unreadable array). */
const struct wa_spec *wa_compat_prepare(const struct wa_compat_state *c, pid_t tid, uint64_t *nr,
                                        uint64_t args[6]);

/* A pointer-sized value of the tracee at addr (4 bytes when compat, else 8). */
int wa_read_ptr(pid_t tid, uint64_t addr, int compat, uint64_t *out);

/* msg_name and msg_namelen of the struct msghdr (or compat_msghdr) at addr. */
int wa_read_msghdr_name(pid_t tid, uint64_t addr, int compat, uint64_t *name, uint32_t *namelen);
#endif
