/* The prefilter: necessary conditions on a syscall's raw values, compiled in Python from
 * the enabled rules (workload_agent/tracer/prefilter.py). An event that satisfies none of
 * its syscall's clauses can match no rule: it is counted and dropped at the entry stop,
 * and its exit stop is never taken. The C side only evaluates; it decides nothing. */
#ifndef WA_PREFILTER_H
#define WA_PREFILTER_H
#include <stddef.h>
#include <stdint.h>

#include "recbuf.h"

enum wa_pf_op {
    WA_PF_PATH_IN = 1,        /* the event's path (absolute, normalised) equals one of the strings */
    WA_PF_PATH_PREFIX = 2,    /* ... starts with one of them */
    WA_PF_PATH_SUFFIX = 3,    /* ... ends with one of them */
    WA_PF_PATH_CONTAINS = 4,  /* ... contains one of them */
    WA_PF_DIR_IN = 5,         /* its directory (or the path itself) is one of them */
    WA_PF_BASE_IN = 6,        /* its last component is one of them */
    WA_PF_BASE_PREFIX = 7,    /* its last component starts with one of them */
    WA_PF_ACCMODE_IN = 8,     /* (flags & O_ACCMODE) is a bit set in value */
    WA_PF_FLAGS_ANY = 9,      /* flags & value != 0 (the atom's arg when < 6, else the open flags) */
};

struct wa_pf_atom {
    uint8_t op;
    uint8_t arg;          /* the argument whose path the path ops test; 255: the program's path_arg */
    uint8_t pad[2];
    uint32_t nstr;        /* strings: consecutive entries of the string table from first_str */
    uint32_t first_str;
    uint32_t pad2;
    uint64_t value;
};

struct wa_pf_clause {     /* all atoms hold */
    uint32_t first_atom;
    uint32_t natoms;
};

struct wa_pf_prog {       /* per syscall number: some clause holds, or the event is dropped */
    uint8_t active;       /* 0: no prefilter for this syscall (everything passes) */
    uint8_t path_arg;     /* the argument whose PATH blob is the path; 255: none */
    uint8_t flags_arg;    /* the argument holding open flags; 255: none */
    uint8_t pad;
    uint32_t first_clause;
    uint32_t nclauses;
    uint32_t pad2;
};

struct wa_pf {
    const struct wa_pf_prog *progs;      /* WA_MAX_NR entries */
    const struct wa_pf_clause *clauses;
    const struct wa_pf_atom *atoms;
    const uint32_t *str_off;             /* string i: pool + str_off[i], str_len[i] bytes */
    const uint32_t *str_len;
    const char *pool;
};

/* 1: keep the record built in b (syscall nr, args and entry blobs), 0: drop it. */
int wa_prefilter_keep(const struct wa_pf *pf, const struct wa_buf *b);
#endif
