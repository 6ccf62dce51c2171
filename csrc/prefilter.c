#define _GNU_SOURCE
#include "prefilter.h"

#include <stdlib.h>
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

/* ---- the exec program ------------------------------------------------------ */

/* Each subject as the state will compute it from these two records (state/parse_process.py,
 * rules/fields/proc.py); known 0 when it cannot be told here, and every atom on it holds. */
struct subj { int done, known; const char *s; size_t n; };

struct exec_view {
    const struct wa_buf *sys, *img;
    const struct wa_pf_prog *prog;
    const char *pname;
    const struct wa_proc_facts *facts;
    struct subj sub[7];
    char name[16];
    char *joined[2];   /* args, env */
};

/* The data of the blob at slot if it is of kind and has none of the reject flags. */
static const uint8_t *blob_bytes(const struct wa_buf *b, uint16_t slot, uint16_t kind, uint16_t reject,
                                 size_t *n)
{
    const struct wa_blob *h = wa_blob_find(b, slot);
    if (!h || h->kind != kind || (h->flags & reject))
        return NULL;
    *n = h->len;
    return (const uint8_t *)(h + 1);
}

static int ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 0;
    return 1;
}

/* out is written only on success. */
static int exec_comm(const char *path, size_t n, char out[16])
{
    const char *nul = memchr(path, 0, n);
    if (nul)
        n = (size_t)(nul - path);
    while (n > 0 && path[n - 1] == '/')
        n--;
    const char *base = path;
    for (size_t i = 0; i < n; i++)
        if (path[i] == '/')
            base = path + i + 1;
    size_t bl = n - (size_t)(base - path);
    if (bl == 0)
        return -1;   /* no name: the state keeps the old one */
    if (bl > 15) {
        if (!ascii(base, bl))
            return -1;   /* the state cuts 15 characters, not bytes */
        bl = 15;
    }
    memcpy(out, base, bl);
    out[bl] = 0;
    return 0;
}

int wa_exec_name(const struct wa_buf *sys, uint8_t path_arg, char out[16])
{
    size_t n = 0;
    const uint8_t *d = blob_bytes(sys, path_arg, WA_C_PATH, WA_B_UNREADABLE | WA_B_TRUNCATED, &n);
    return d ? exec_comm((const char *)d, n, out) : -1;
}

/* argv items from the first (skip = 1) or all, joined by spaces as proc.args/proc.env. */
static char *join_items(const uint8_t *d, size_t n, int skip, size_t *outn)
{
    if (skip) {
        const uint8_t *cut = memchr(d, 0, n);
        if (!cut) {
            n = 0;
        } else {
            n -= (size_t)(cut + 1 - d);
            d = cut + 1;
        }
    }
    if (n > 0 && d[n - 1] == 0)
        n--;   /* the last item's terminator, not an empty item */
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++)
        s[i] = d[i] ? (char)d[i] : ' ';
    s[n] = 0;
    *outn = n;
    return s;
}

static void subject(struct exec_view *v, int which)
{
    int k = which - WA_PF_S_NAME;
    if (v->sub[k].done)
        return;
    v->sub[k].done = 1;
    size_t n = 0;
    const uint8_t *d;
    switch (which) {
    case WA_PF_S_NAME:
        if (wa_exec_name(v->sys, v->prog->path_arg, v->name) == 0) {
            v->sub[k].s = v->name;
            v->sub[k].n = strlen(v->name);
            v->sub[k].known = 1;
        }
        break;
    case WA_PF_S_EXE:
        d = blob_bytes(v->sys, v->prog->flags_arg, WA_C_ARGV, WA_B_UNREADABLE, &n);
        if (d) {
            const uint8_t *nul = memchr(d, 0, n);
            v->sub[k].s = (const char *)d;
            v->sub[k].n = nul ? (size_t)(nul - d) : n;
            v->sub[k].known = 1;
        }
        break;
    case WA_PF_S_EXEPATH:
    case WA_PF_S_EXEPATH_BASE:
        d = blob_bytes(v->img, WA_SLOT_EXE, WA_C_LINK, WA_B_UNREADABLE | WA_B_TRUNCATED, &n);
        if (d && n > 0 && !memchr(d, 0, n)) {
            static const char del[] = " (deleted)";
            if (n >= sizeof del - 1 && memcmp(d + n - (sizeof del - 1), del, sizeof del - 1) == 0)
                n -= sizeof del - 1;
            if (n >= 7 && memcmp(d, "/memfd:", 7) == 0) {
                d++;
                n--;
            }
            if (which == WA_PF_S_EXEPATH_BASE) {
                const uint8_t *slash = NULL;
                for (size_t i = 0; i < n; i++)
                    if (d[i] == '/')
                        slash = d + i;
                if (slash) {
                    n -= (size_t)(slash + 1 - d);
                    d = slash + 1;
                }
            }
            v->sub[k].s = (const char *)d;
            v->sub[k].n = n;
            v->sub[k].known = 1;
        }
        break;
    case WA_PF_S_ARGS:
    case WA_PF_S_ENV: {
        int env = which == WA_PF_S_ENV;
        d = blob_bytes(v->sys, (uint16_t)(v->prog->flags_arg + env), WA_C_ARGV, WA_B_UNREADABLE, &n);
        if (d) {
            char *s = join_items(d, n, !env, &v->sub[k].n);
            if (s) {
                v->joined[env] = s;
                v->sub[k].s = s;
                v->sub[k].known = 1;
            }
        }
        break;
    }
    case WA_PF_S_PNAME:
        if (v->pname) {
            v->sub[k].s = v->pname;
            v->sub[k].n = strlen(v->pname);
            v->sub[k].known = 1;
        }
        break;
    default:
        break;
    }
}

/* proc.args[i]: argv[i + 1] as the state splits the vector (a truncated last item is an
 * item), "" past the last one. */
static int arg_item(const struct exec_view *v, int i, struct subj *out)
{
    size_t n = 0;
    const uint8_t *d = blob_bytes(v->sys, v->prog->flags_arg, WA_C_ARGV, WA_B_UNREADABLE, &n);
    if (!d)
        return -1;
    const uint8_t *end = d + n, *p = memchr(d, 0, n);
    out->s = "";
    out->n = 0;
    if (!p)
        return 0;
    for (p++; p < end; i--) {
        const uint8_t *q = memchr(p, 0, (size_t)(end - p));
        if (i == 0) {
            out->s = (const char *)p;
            out->n = (size_t)((q ? q : end) - p);
            return 0;
        }
        if (!q)
            break;
        p = q + 1;
    }
    return 0;
}

static int icontains(const char *h, size_t hn, const char *lower, size_t ln)
{
    if (ln > hn)
        return 0;
    for (size_t i = 0; i + ln <= hn; i++) {
        size_t j = 0;
        while (j < ln) {
            char c = h[i + j];
            if (c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
            if (c != lower[j])
                break;
            j++;
        }
        if (j == ln)
            return 1;
    }
    return 0;
}

/* The next non-empty '/'-separated component from *p (of end), or NULL. */
static const char *component(const char **p, const char *end, size_t *n)
{
    const char *s = *p;
    while (s < end && *s == '/')
        s++;
    if (s == end)
        return NULL;
    const char *e = s;
    while (e < end && *e != '/')
        e++;
    *n = (size_t)(e - s);
    *p = e;
    return s;
}

/* v pmatch pat: the components of pat are the first components of v. */
static int pmatch(const char *v, size_t vn, const char *pat, size_t pn)
{
    const char *vp = v, *ve = v + vn, *pp = pat, *pe = pat + pn;
    for (;;) {
        size_t a, b;
        const char *pc = component(&pp, pe, &b);
        if (!pc)
            return 1;
        const char *vc = component(&vp, ve, &a);
        if (!vc || a != b || memcmp(vc, pc, a) != 0)
            return 0;
    }
}

static int exec_atom_holds(const struct wa_pf *pf, struct exec_view *v, const struct wa_pf_atom *a)
{
    switch (a->op) {
    case WA_PF_TTY:
        return !v->facts || !(v->facts->valid & WA_PF_STAT) || v->facts->tty != 0;
    case WA_PF_EXE_NEW: {
        size_t n = 0;
        const uint8_t *d = blob_bytes(v->img, WA_SLOT_SCRIPT, WA_C_FILE_FACTS, WA_B_UNREADABLE, &n);
        struct wa_file_facts f;
        if (d && n == sizeof f)
            memcpy(&f, d, sizeof f);
        else if (v->facts && (v->facts->valid & WA_PF_EXE))
            f = v->facts->exe;
        else
            return 1;
        return f.ctime_ns > (int64_t)a->value || f.mtime_ns > (int64_t)a->value;
    }
    case WA_PF_MEMFD: {
        size_t n = 0;
        const uint8_t *d = blob_bytes(v->sys, v->prog->path_arg, WA_C_PATH, WA_B_UNREADABLE, &n);
        if (!d || (n >= 6 && memcmp(d, "/proc/", 6) == 0) || (n >= 8 && memcmp(d, "/dev/fd/", 8) == 0))
            return 1;
        subject(v, WA_PF_S_EXEPATH);
        const struct subj *s = &v->sub[WA_PF_S_EXEPATH - WA_PF_S_NAME];
        return !s->known || (s->n >= 6 && memcmp(s->s, "memfd:", 6) == 0);
    }
    default:
        break;
    }
    struct subj item;
    const struct subj *s = &item;
    if (a->arg >= WA_PF_S_ARG0 && a->arg < WA_PF_S_ARG0 + WA_PF_ARGN_MAX) {
        if (arg_item(v, a->arg - WA_PF_S_ARG0, &item) != 0)
            return 1;
    } else {
        if (a->arg < WA_PF_S_NAME || a->arg > WA_PF_S_PNAME)
            return 1;
        subject(v, a->arg);
        s = &v->sub[a->arg - WA_PF_S_NAME];
        if (!s->known)
            return 1;
    }
    if (a->op == WA_PF_STR_ICONTAINS && !ascii(s->s, s->n))
        return 1;   /* the rules lower the case of every character, not only ASCII */
    for (uint32_t k = 0; k < a->nstr; k++) {
        uint32_t i = a->first_str + k;
        const char *x = pf->pool + pf->str_off[i];
        size_t xl = pf->str_len[i];
        switch (a->op) {
        case WA_PF_STR_IN:
            if (xl == s->n && memcmp(x, s->s, xl) == 0)
                return 1;
            break;
        case WA_PF_STR_PREFIX:
            if (xl <= s->n && memcmp(x, s->s, xl) == 0)
                return 1;
            break;
        case WA_PF_STR_SUFFIX:
            if (xl <= s->n && memcmp(x, s->s + s->n - xl, xl) == 0)
                return 1;
            break;
        case WA_PF_STR_CONTAINS:
            if (xl == 0 || memmem(s->s, s->n, x, xl))
                return 1;
            break;
        case WA_PF_STR_ICONTAINS:
            if (icontains(s->s, s->n, x, xl))
                return 1;
            break;
        case WA_PF_STR_PMATCH:
            if (pmatch(s->s, s->n, x, xl))
                return 1;
            break;
        default:
            return 1;   /* an operation this core does not know: never drop on it */
        }
    }
    return 0;
}

int wa_prefilter_exec_keep(const struct wa_pf *pf, const struct wa_buf *sys, const struct wa_buf *img,
                           const char *pname)
{
    if (!pf || !pf->exec.active)
        return 1;
    const struct wa_record *r = (const struct wa_record *)sys->buf;
    if (!sys->len || (r->flags & WA_F_FOREIGN_ARCH) || !img->len)
        return 1;
    size_t n = 0;
    const uint8_t *fd = blob_bytes(img, WA_SLOT_PROC, WA_C_PROC_FACTS, WA_B_UNREADABLE, &n);
    if (!fd || n != sizeof(struct wa_proc_facts))
        return 1;   /* the state would read /proc later: nothing here is what it will see */
    struct exec_view v;
    memset(&v, 0, sizeof v);
    v.sys = sys;
    v.img = img;
    v.prog = &pf->exec;
    v.pname = pname;
    v.facts = (const struct wa_proc_facts *)fd;
    int keep = 0;
    for (uint32_t c = 0; c < pf->exec.nclauses && !keep; c++) {
        const struct wa_pf_clause *cl = &pf->clauses[pf->exec.first_clause + c];
        int all = 1;
        for (uint32_t k = 0; k < cl->natoms && all; k++)
            all = exec_atom_holds(pf, &v, &pf->atoms[cl->first_atom + k]);
        keep = all;
    }
    free(v.joined[0]);
    free(v.joined[1]);
    return keep;
}
