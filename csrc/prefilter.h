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
    /* The exec program's tests, on a string the atom's arg names (enum wa_pf_subject). */
    WA_PF_STR_IN = 10,        /* equals one of the strings */
    WA_PF_STR_PREFIX = 11,
    WA_PF_STR_SUFFIX = 12,
    WA_PF_STR_CONTAINS = 13,
    WA_PF_STR_ICONTAINS = 14, /* ASCII case-insensitive (strings given lowercase) */
    WA_PF_STR_PMATCH = 15,    /* component-wise path prefix, as the rules' pmatch */
    WA_PF_TTY = 16,           /* the process has a controlling terminal */
    WA_PF_EXE_NEW = 17,       /* the file exec'd changed (ctime or mtime) after value (ns) */
    WA_PF_MEMFD = 18,         /* the image may come from a memfd or an fd */
};

/* What an exec program's string atom tests (wa_pf_atom.arg). */
enum wa_pf_subject {
    WA_PF_S_NAME = 200,       /* proc.name: the exec'd file's basename, 15 bytes at most */
    WA_PF_S_EXE = 201,        /* proc.exe: argv[0] */
    WA_PF_S_EXEPATH = 202,    /* proc.exepath: /proc/TID/exe at the exec stop */
    WA_PF_S_EXEPATH_BASE = 203,
    WA_PF_S_ARGS = 204,       /* proc.args: argv[1:] joined by spaces */
    WA_PF_S_ENV = 205,        /* proc.env: envp joined by spaces (when captured) */
    WA_PF_S_PNAME = 206,      /* proc.pname: the parent's name as the tracer tracked it */
    WA_PF_S_ARG0 = 210,       /* proc.args[N] is WA_PF_S_ARG0 + N: argv[N + 1], "" past the end */
    WA_PF_ARGN_MAX = 32,
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
    /* 1: no rule can match this syscall and it changes only its own process's state (cwd,
     * name, credentials, session): a quiet process's record of it is held, not sent. */
    uint8_t quiet_hold;
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
    /* For processes born under the tracer: a successful execve that satisfies no clause of
     * exec can match no rule. exec.active 0: every exec counts (and no process's clone,
     * exec and exit records are held back; see csrc/tracer.c, "quiet processes").
     * Its path_arg is the filename's argument, flags_arg argv's (envp follows it). */
    struct wa_pf_prog exec;
    /* 1: no rule can match a failed execve or execveat (which changes no state), so a quiet
     * process stays quiet through one (execvp tries each PATH directory in turn). */
    uint32_t quiet_failed_exec;
};

/* 1: keep the record built in b (syscall nr, args and entry blobs), 0: drop it. */
int wa_prefilter_keep(const struct wa_pf *pf, const struct wa_buf *b);

/* 1: the exec whose execve record is in sys (blobs of its entry) and EXEC record in img
 * (facts read at the exec stop) may match a rule; 0: none can. pname: the parent's name
 * (NUL-terminated), NULL when the tracer does not know it. */
int wa_prefilter_exec_keep(const struct wa_pf *pf, const struct wa_buf *sys, const struct wa_buf *img,
                           const char *pname);

/* proc.name after the successful exec whose record (its entry blobs) is sys, its file the
 * PATH blob at path_arg, into out[16] (written only then); -1: the state's is unknown here. */
int wa_exec_name(const struct wa_buf *sys, uint8_t path_arg, char out[16]);
#endif
