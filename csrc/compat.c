#include "compat.h"
#include "mem.h"

#include <string.h>

void wa_compat_init(struct wa_compat_state *c, const struct wa_compat *cfg)
{
    memset(c, 0, sizeof *c);
    c->socketcall_nr = -1;
    if (!cfg || !cfg->arch || !cfg->specs)
        return;
    c->arch = cfg->arch;
    memcpy(c->specs, cfg->specs, sizeof c->specs);
    c->socketcall_nr = cfg->socketcall_nr;
    memcpy(c->socketcall_to, cfg->socketcall_to, sizeof c->socketcall_to);
    memcpy(c->socketcall_nargs, cfg->socketcall_nargs, sizeof c->socketcall_nargs);
}

const struct wa_spec *wa_compat_prepare(const struct wa_compat_state *c, pid_t tid, uint64_t *nr,
                                        uint64_t args[6])
{
    /* The kernel's compat entry uses the low halves only; the upper ones are whatever the
     * 64-bit code left there, and must not make us read another address. */
    for (int i = 0; i < 6; i++)
        args[i] &= 0xffffffffu;
    if (c->socketcall_nr >= 0 && *nr == (uint64_t)c->socketcall_nr) {
        uint64_t call = args[0];
        if (call >= WA_SOCKETCALL_MAX || c->socketcall_to[call] < 0)
            return NULL;
        uint32_t sub[6] = { 0 };
        size_t want = (size_t)c->socketcall_nargs[call] * 4u;
        if (want > sizeof sub)
            want = sizeof sub;
        /* The kernel copies exactly these bytes; a fault there fails the call (EFAULT). */
        if (want && wa_mem_read(tid, args[1], sub, want) != want)
            return NULL;
        *nr = (uint64_t)c->socketcall_to[call];
        for (int i = 0; i < 6; i++)
            args[i] = sub[i];
    }
    if (*nr >= WA_MAX_NR || !c->specs[*nr].traced)
        return NULL;
    return &c->specs[*nr];
}

int wa_read_ptr(pid_t tid, uint64_t addr, int compat, uint64_t *out)
{
    if (compat) {
        uint32_t p;
        if (wa_mem_read(tid, addr, &p, sizeof p) != sizeof p)
            return -1;
        *out = p;
        return 0;
    }
    return wa_mem_read(tid, addr, out, sizeof *out) == sizeof *out ? 0 : -1;
}

int wa_read_msghdr_name(pid_t tid, uint64_t addr, int compat, uint64_t *name, uint32_t *namelen)
{
    if (!addr)
        return -1;
    if (compat) {
        struct { uint32_t name; uint32_t namelen; } mh;
        if (wa_mem_read(tid, addr, &mh, sizeof mh) != sizeof mh)
            return -1;
        *name = mh.name;
        *namelen = mh.namelen;
        return 0;
    }
    struct { uint64_t name; uint32_t namelen; } mh;
    if (wa_mem_read(tid, addr, &mh, sizeof mh) != sizeof mh)
        return -1;
    *name = mh.name;
    *namelen = mh.namelen;
    return 0;
}
