#define _GNU_SOURCE
#include "prefilter.h"

#include <string.h>

#define PATH_MAX_LEN 4096

/* A path whose text a rule's value could differ from (".", "..", "//", a trailing
 * slash): the state normalises it, the prefilter does not try. */
static int needs_normalising(const char *p, size_t n)
{
    if (n > 1 && p[n - 1] == '/')
        return 1;
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] != '/')
            continue;
        if (p[i + 1] == '/')
            return 1;
        if (p[i + 1] == '.' && (i + 2 == n || p[i + 2] == '/' ||
                                (p[i + 2] == '.' && (i + 3 == n || p[i + 3] == '/'))))
            return 1;
    }
    return 0;
}

/* The event's path as the state will name it, in out; -1 when it cannot be known here. */
static int event_path(const struct wa_buf *b, uint8_t arg, char *out, size_t cap, size_t *outlen)
{
    const struct wa_blob *h = wa_blob_find(b, arg);
    if (!h || h->kind != WA_C_PATH || (h->flags & (WA_B_TRUNCATED | WA_B_UNREADABLE)) || h->len == 0)
        return -1;
    const char *p = (const char *)(h + 1);
    if (memchr(p, 0, h->len))
        return -1;
    size_t n = 0;
    if (p[0] != '/') {
        const struct wa_blob *base = wa_blob_find(b, (uint16_t)(WA_SLOT_BASE + arg));
        if (!base || base->kind != WA_C_LINK || (base->flags & (WA_B_TRUNCATED | WA_B_UNREADABLE)) ||
            base->len == 0 || base->len + 1 + h->len >= cap)
            return -1;
        const char *bp = (const char *)(base + 1);
        if (bp[0] != '/')
            return -1;
        memcpy(out, bp, base->len);
        n = base->len;
        if (n > 1)
            out[n++] = '/';
    } else if (h->len >= cap) {
        return -1;
    }
    memcpy(out + n, p, h->len);
    n += h->len;
    out[n] = 0;
    if (needs_normalising(out, n))
        return -1;
    *outlen = n;
    return 0;
}

static int str_is(const struct wa_pf *pf, uint32_t i, const char *s, size_t n)
{
    return pf->str_len[i] == n && memcmp(pf->pool + pf->str_off[i], s, n) == 0;
}

static int atom_holds(const struct wa_pf *pf, const struct wa_pf_atom *a, int have_path, const char *path,
                      size_t n, int have_flags, uint64_t flags, const uint64_t *args)
{
    if (a->op == WA_PF_FLAGS_ANY && a->arg < 6)
        return (args[a->arg] & a->value) != 0;   /* a flags or mode argument of its own */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t blen = n - (size_t)(base - path);
    size_t dlen = base - path > 1 ? (size_t)(base - path) - 1 : 1;   /* "/x" -> "/" */
    switch (a->op) {
    case WA_PF_ACCMODE_IN:
        return !have_flags || ((a->value >> (flags & 3)) & 1);
    case WA_PF_FLAGS_ANY:
        return !have_flags || (flags & a->value) != 0;
    default:
        break;
    }
    if (!have_path)
        return 1;
    for (uint32_t k = 0; k < a->nstr; k++) {
        uint32_t i = a->first_str + k;
        const char *s = pf->pool + pf->str_off[i];
        size_t sl = pf->str_len[i];
        switch (a->op) {
        case WA_PF_PATH_IN:
            if (str_is(pf, i, path, n))
                return 1;
            break;
        case WA_PF_PATH_PREFIX:
            if (sl <= n && memcmp(path, s, sl) == 0)
                return 1;
            break;
        case WA_PF_PATH_SUFFIX:
            if (sl <= n && memcmp(path + n - sl, s, sl) == 0)
                return 1;
            break;
        case WA_PF_PATH_CONTAINS:
            if (memmem(path, n, s, sl))
                return 1;
            break;
        case WA_PF_DIR_IN:
            if (str_is(pf, i, path, dlen) || str_is(pf, i, path, n))
                return 1;
            break;
        case WA_PF_BASE_IN:
            if (str_is(pf, i, base, blen))
                return 1;
            break;
        case WA_PF_BASE_PREFIX:
            if (sl <= blen && memcmp(base, s, sl) == 0)
                return 1;
            break;
        default:
            return 1;   /* an operation this core does not know: never drop on it */
        }
    }
    return 0;
}

/* The paths of up to two arguments, resolved when an atom first asks (rename and link
 * name two); a third stays unknown, and an atom on an unknown path holds. */
struct paths {
    int nslots;
    struct { uint8_t arg; int ok; size_t n; char buf[PATH_MAX_LEN * 2 + 2]; } slot[2];
};

static const char *path_of(const struct wa_buf *b, struct paths *ps, uint8_t arg, size_t *n)
{
    for (int i = 0; i < ps->nslots; i++)
        if (ps->slot[i].arg == arg) {
            *n = ps->slot[i].n;
            return ps->slot[i].ok ? ps->slot[i].buf : NULL;
        }
    if (arg >= 6 || ps->nslots == 2)
        return NULL;
    int i = ps->nslots++;
    ps->slot[i].arg = arg;
    ps->slot[i].ok = event_path(b, arg, ps->slot[i].buf, sizeof ps->slot[i].buf, &ps->slot[i].n) == 0;
    *n = ps->slot[i].n;
    return ps->slot[i].ok ? ps->slot[i].buf : NULL;
}

int wa_prefilter_keep(const struct wa_pf *pf, const struct wa_buf *b)
{
    if (!pf || !pf->progs || !b->len)
        return 1;
    const struct wa_record *r = (const struct wa_record *)b->buf;
    if (r->nr < 0 || r->nr >= 1024 || (r->flags & WA_F_FOREIGN_ARCH))
        return 1;
    const struct wa_pf_prog *prog = &pf->progs[r->nr];
    if (!prog->active)
        return 1;
    struct paths ps;
    ps.nslots = 0;
    int have_flags = prog->flags_arg < 6;
    uint64_t flags = have_flags ? r->args[prog->flags_arg] : 0;
    for (uint32_t c = 0; c < prog->nclauses; c++) {
        const struct wa_pf_clause *cl = &pf->clauses[prog->first_clause + c];
        int all = 1;
        for (uint32_t k = 0; k < cl->natoms && all; k++) {
            const struct wa_pf_atom *a = &pf->atoms[cl->first_atom + k];
            size_t n = 0;
            const char *path = NULL;
            if (a->op != WA_PF_ACCMODE_IN && a->op != WA_PF_FLAGS_ANY)
                path = path_of(b, &ps, a->arg < 6 ? a->arg : prog->path_arg, &n);
            all = atom_holds(pf, a, path != NULL, path ? path : "", n, have_flags, flags, r->args);
        }
        if (all)
            return 1;
    }
    return 0;
}
