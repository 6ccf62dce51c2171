#define _GNU_SOURCE
#include "tracer.h"
#include "compat.h"
#include "guard.h"
#include "mem.h"
#include "record.h"
#include "recbuf.h"
#include "prefilter.h"
#include "procfacts.h"
#include "placement.h"
#include "attach.h"
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <elf.h>

#if defined(__x86_64__)
#define NATIVE_ARCH 0xc000003eu   /* AUDIT_ARCH_X86_64 */
#elif defined(__aarch64__)
#define NATIVE_ARCH 0xc00000b7u   /* AUDIT_ARCH_AARCH64 */
#else
#error "unsupported architecture"
#endif

/* The kernel's struct ptrace_syscall_info (>= 5.3), spelled out because glibc's and the
 * kernel's headers cannot both be included and musl lacks it. */
#ifndef PTRACE_GET_SYSCALL_INFO
#define PTRACE_GET_SYSCALL_INFO 0x420e
#endif
#define SI_OP_ENTRY 1
#define SI_OP_EXIT 2
#define SI_OP_SECCOMP 3
struct syscall_info {
    uint8_t op;
    uint8_t pad[3];
    uint32_t arch;
    uint64_t instruction_pointer;
    uint64_t stack_pointer;
    union {
        struct { uint64_t nr; uint64_t args[6]; } entry;
        struct { int64_t rval; uint8_t is_error; } exit;
        struct { uint64_t nr; uint64_t args[6]; uint32_t ret_data; } seccomp;
    };
};

/* RET_TRACE data bits set by the BPF filter Python builds (tracer/seccomp.py). */
#define DATA_EXIT 0x1u
#define DATA_GUARD 0x4u    /* run the guard check (csrc/guard.c) at this stop */

enum task_state {
    T_KNOWN = 1u << 0,        /* tgid known, task running under us */
    T_IN_SYSCALL = 1u << 1,   /* a record is pending until the syscall-exit stop */
    T_PARKED = 1u << 2,       /* first stop seen before the parent's clone event */
    T_EXPECT_INIT = 1u << 3,  /* registered by the parent's event, first stop not seen yet */
    T_FULL = 1u << 4,         /* no seccomp filter (attached): stops on every syscall; inherited */
    T_ATTACHING = 1u << 5,    /* seized, first stop not seen yet: its ATTACH record is due */
    T_ANNOUNCED = 1u << 6,    /* on a leader's slot: its process's ATTACH record was sent */
    T_QUIET = 1u << 7,        /* born under us, nothing of it reached the ring yet (see below) */
    T_NO_PARENT = 1u << 8,    /* CLONE_PARENT: the state's parent is not the cloner */
    T_EXEC_OK = 1u << 9,      /* at its exec stop: the exec can match no rule */
    T_FACTS_LATE = 1u << 10,  /* its held exec record still lacks the rest of its facts */
};

struct task {
    struct wa_buf rb;   /* pending record */
    int32_t tgid;
    uint32_t state;
    uint32_t gen;       /* bumped when the slot is forgotten: a link to a former owner fails */
    int32_t parent;     /* the process that cloned it (its leader's tid) */
    uint32_t parent_gen;
    uint32_t quiet_kids;   /* quiet children alive or held: its own records must stay */
    char name[16];      /* on a leader's slot: proc.name as the state will have it; "": unknown */
};

/* A record held back for a quiet process (see "quiet processes"). */
struct held {
    int32_t owner;
    uint32_t gen;
    uint32_t off, len;
    uint32_t facts;   /* an exec record whose facts lack the rest: their offset in it; 0 none */
};

struct wa_tracer {
    struct wa_spec specs[WA_MAX_NR];
    struct wa_compat_state compat;
    struct sock_fprog prog;
    struct sock_filter *filter;
    const char *path;
    char *const *argv;
    char *const *envp;
    sigset_t child_mask;
    uint32_t max_str, max_argv_bytes, max_argv_items;

    struct wa_ring ring;
    pthread_t thread;
    pid_t pid;
    _Atomic int done;
    int status;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int start_state;        /* 0 pending, 1 running, -1 failed */
    char err[512];
    int exec_errno;
    int errpipe;

    struct task *tasks;
    uint32_t ntasks;
    int32_t *seen;          /* every tid that got a slot, so freeing never walks all of pid_max */
    uint32_t nseen, capseen;
    struct wa_buf scratch;    /* for records that are committed at once */
    uint8_t argv_win[WA_WINDOWS_MAX * WA_WINDOW];   /* cap_argv's string windows */
    struct wa_buf held;       /* records of quiet processes, in the order they were made */
    struct held *hq;
    uint32_t nhq, caphq;
    _Atomic uint64_t quiet_dropped;

    _Atomic uint64_t stops, task_count, read_failures, prefiltered;
    uint32_t wake_gap_us;
    int follow_cpu;
    struct wa_attach attach;      /* foreign processes Python asked us to seize */
    struct wa_watch watch;        /* tells the scanner when a new pid showed up */
    /* The tables stay the caller's, alive until wa_free: a swap never frees the old ones
     * under an evaluation in progress. */
    _Atomic(const struct wa_pf *) pf;

    /* guarded syscalls (csrc/guard.c): the rules, and the consumer's acknowledgements */
    struct wa_guard guard;
    int has_guard;
    int ack_efd;
    _Atomic int ack_waiting;
    _Atomic uint64_t acked;          /* ring tail the consumer has fully handled */
    _Atomic uint64_t guard_hits, denied, ack_timeouts;

    struct wa_placement placement;   /* the tracer thread's own: only it reads or writes */
    char agent_name[16];             /* the agent's name as the state reads it (its comm) */
    uint32_t late_facts;             /* emit_exec to commit: where the deferred facts are */
    uint64_t cpu_final;              /* the tracer thread's CPU time, written before done */
    _Atomic uint64_t tracer_moves;
};


/* ---- record building ---------------------------------------------------- */

/* ---- quiet processes -------------------------------------------------------
 * A process born under the tracer whose exec no rule can match (the prefilter's exec
 * program) and that does nothing a rule or the state needs is quiet: its clone, exec and
 * exit records are held back here instead of going to the ring. Any other record, of any
 * process, first releases everything held, in order, so that the state has seen every
 * process the moment it reads one. A quiet process that exits without children takes its
 * held records with it: Python never hears of a /bin/true that no rule could match, and
 * pays nothing for it. */

#define HELD_MAX_BYTES (256u << 10)
#define HELD_MAX_RECORDS 4096u

static struct task *task_of(struct wa_tracer *t, pid_t tid);

/* A quiet exec's stop reads only what its judgement needs; the rest of its facts is read
 * at the process's next stop on a call that could change them, before the call runs, or
 * when its records are released: a quiet process whose records are dropped never pays for
 * them. What can drift meanwhile changes only through untraced calls (setrlimit, the
 * terminal's ioctls) or by itself (the memory counters). */
static void facts_more(uint8_t *facts, pid_t tid, unsigned what)
{
    struct wa_proc_facts f;
    memcpy(&f, facts, sizeof f);   /* blob data is 8-aligned in the buffer, not in memory */
    wa_proc_facts_more(tid, &f, what);
    memcpy(facts, &f, sizeof f);
}

/* The rest of an exec record's facts, read now: its process (if still this slot's owner)
 * has no late facts left. */
static void facts_rest(struct wa_tracer *t, uint8_t *facts, pid_t owner, uint32_t gen)
{
    facts_more(facts, owner, WA_FACTS_ALL);
    struct task *tk = task_of(t, owner);
    if (tk && tk->gen == gen)
        tk->state &= ~T_FACTS_LATE;
}

static void held_release(struct wa_tracer *t)
{
    for (uint32_t i = 0; i < t->nhq; i++) {
        struct held *h = &t->hq[i];
        struct task *tk = task_of(t, h->owner);
        if (h->facts)
            facts_rest(t, t->held.buf + h->off + h->facts, h->owner, h->gen);
        wa_ring_put(&t->ring, t->held.buf + h->off, h->len);
        if (tk && tk->gen == h->gen)
            tk->state &= ~T_QUIET;
    }
    t->nhq = 0;
    t->held.len = 0;
}

/* The record in b could not be held: out it goes, after everything held. */
static void held_overflow(struct wa_tracer *t, struct wa_buf *b, pid_t owner, uint32_t gen, uint32_t facts)
{
    held_release(t);
    if (facts)
        facts_rest(t, b->buf + facts, owner, gen);
    wa_ring_put(&t->ring, b->buf, b->len);
}

static void held_put(struct wa_tracer *t, struct wa_buf *b, pid_t owner, uint32_t gen, uint32_t facts)
{
    if (t->nhq == t->caphq) {
        uint32_t cap = t->caphq ? t->caphq * 2 : 64;
        struct held *p = realloc(t->hq, cap * sizeof *p);
        if (!p) {
            held_overflow(t, b, owner, gen, facts);
            return;
        }
        t->hq = p;
        t->caphq = cap;
    }
    if (reserve(&t->held, b->len) != 0) {
        held_overflow(t, b, owner, gen, facts);
        return;
    }
    memcpy(t->held.buf + t->held.len, b->buf, b->len);
    t->hq[t->nhq++] = (struct held){ owner, gen, t->held.len, b->len, facts };
    t->held.len += b->len;
    if (t->held.len > HELD_MAX_BYTES || t->nhq > HELD_MAX_RECORDS)
        held_release(t);
}

/* A quiet process ended with no children: its held records go, the others close up. */
static void held_discard(struct wa_tracer *t, pid_t owner, uint32_t gen)
{
    uint32_t j = 0, off = 0;
    for (uint32_t i = 0; i < t->nhq; i++) {
        struct held h = t->hq[i];
        if (h.owner == owner && h.gen == gen)
            continue;
        if (h.off != off)
            memmove(t->held.buf + off, t->held.buf + h.off, h.len);
        h.off = off;
        off += h.len;
        t->hq[j++] = h;
    }
    t->nhq = j;
    t->held.len = off;
}

/* A process whose exec facts are still partial: read the rest now. */
static void facts_now(struct wa_tracer *t, pid_t tid, struct task *tk)
{
    tk->state &= ~T_FACTS_LATE;   /* even if no held record is found */
    for (uint32_t i = 0; i < t->nhq; i++) {
        struct held *h = &t->hq[i];
        if (h->owner == tid && h->gen == tk->gen && h->facts) {
            facts_rest(t, t->held.buf + h->off + h->facts, tid, h->gen);
            h->facts = 0;
        }
    }
}

/* A process whose exec facts are still partial entered a call: read the rest before the
 * call runs, unless it is one that cannot change them. A read-only open cannot (only a
 * write to /proc/self/loginuid changes the loginuid): those are the dynamic loader's. */
static void facts_before(struct wa_tracer *t, pid_t tid, struct task *tk, uint32_t arch, uint64_t nr,
                         const uint64_t *args)
{
    if (!(tk->state & T_FACTS_LATE))
        return;
    if (arch == NATIVE_ARCH) {
        uint64_t flags = nr == SYS_openat ? args[2] : UINT64_MAX;
#ifdef SYS_open
        if (nr == SYS_open)
            flags = args[1];
#endif
        if (flags != UINT64_MAX && (flags & O_ACCMODE) == O_RDONLY)
            return;
    }
    facts_now(t, tid, tk);
}

static void commit(struct wa_tracer *t, struct wa_buf *b)
{
    if (!b->len)
        return;
    struct wa_record *r = rec(b);
    r->len = b->len;
    int native = r->kind == WA_K_SYSCALL && r->arch == NATIVE_ARCH && !(r->flags & WA_F_FOREIGN_ARCH) &&
                 r->nr >= 0 && r->nr < WA_MAX_NR;
    if (native && r->nr == SYS_prctl) {
        struct task *lk = task_of(t, r->tgid);
        if (lk)
            lk->name[0] = 0;   /* PR_SET_NAME: the state takes the new name from the record */
    }
    pid_t owner = r->kind == WA_K_CLONE && !(r->flags & WA_F_THREAD) ? (pid_t)r->extra : r->tid;
    struct task *ok = task_of(t, owner);
    if (ok && (ok->state & T_QUIET)) {
        /* A quiet process is one thread: a thread of its own ends its quiet. */
        int holdable = (r->kind == WA_K_CLONE && !(r->flags & WA_F_THREAD)) || r->kind == WA_K_EXEC ||
                       r->kind == WA_K_EXIT ||
                       (r->kind == WA_K_SYSCALL && (ok->state & T_EXEC_OK));
        const struct wa_pf *pf = native && !holdable ? atomic_load_explicit(&t->pf, memory_order_acquire) : NULL;
        if (pf && (r->nr == SYS_execve || r->nr == SYS_execveat) && (r->flags & WA_F_HAS_EXIT) && r->ret < 0)
            holdable = pf->quiet_failed_exec;
        else if (pf && pf->progs)
            holdable = pf->progs[r->nr].quiet_hold;
        if (holdable) {
            held_put(t, b, owner, ok->gen, r->kind == WA_K_EXEC ? t->late_facts : 0);
            b->len = 0;
            return;
        }
    }
    if (r->kind == WA_K_EXEC && t->late_facts) {   /* not held after all: complete it now */
        facts_rest(t, b->buf + t->late_facts, r->tid, ok ? ok->gen : 0);
        t->late_facts = 0;
    }
    if (t->nhq)
        held_release(t);
    wa_ring_put(&t->ring, b->buf, b->len);
    b->len = 0;
}

/* ---- argument capture ---------------------------------------------------- */

static void cap_bytes(struct wa_tracer *t, pid_t tid, struct wa_buf *b, int i, uint16_t kind,
                      uint64_t addr, uint64_t len, uint32_t max)
{
    uint16_t fl = 0;
    if (len > max) {
        len = max;
        fl |= WA_B_TRUNCATED;
    }
    long off = blob_begin(b, (uint16_t)i, kind, (uint32_t)len);
    if (off < 0)
        return;
    size_t got = wa_mem_read(tid, addr, blob_data(b, off), (size_t)len);
    if (got < len) {
        /* Part of the object is unmapped: the kernel would fail the call (EFAULT), so the
         * readable part is no value of it (a half sockaddr is no address). */
        fl |= WA_B_UNREADABLE;
        got = 0;
        atomic_fetch_add(&t->read_failures, 1);
    }
    blob_end(b, off, (uint32_t)got, fl);
}

static void cap_str(struct wa_tracer *t, pid_t tid, struct wa_buf *b, int i, uint16_t kind, uint64_t addr)
{
    long off = blob_begin(b, (uint16_t)i, kind, t->max_str);
    if (off < 0)
        return;
    int trunc, unread;
    size_t n = wa_mem_read_str(tid, addr, (char *)blob_data(b, off), t->max_str, &trunc, &unread);
    if (unread)
        atomic_fetch_add(&t->read_failures, 1);
    blob_end(b, off, (uint32_t)n, (uint16_t)((trunc ? WA_B_TRUNCATED : 0) | (unread ? WA_B_UNREADABLE : 0)));
}

/* One string of an argv or envp vector, of at most maxp bytes, into dst: from its window
 * (wa_mem_read_windows) when that settles it, else read alone. Same results either way. */
static size_t argv_item(pid_t tid, uint64_t p, const uint8_t *win, uint32_t got, char *dst, size_t maxp,
                        int *trunc, int *unread)
{
    const uint8_t *nul = got ? memchr(win, 0, got) : NULL;
    *trunc = *unread = 0;
    if (nul && (size_t)(nul - win) < maxp) {
        memcpy(dst, win, (size_t)(nul - win));
        return (size_t)(nul - win);
    }
    if (got && maxp <= got) {   /* no NUL in the first maxp bytes */
        memcpy(dst, win, maxp);
        *trunc = 1;
        return maxp;
    }
    return wa_mem_read_str(tid, p, dst, maxp, trunc, unread);
}

/* A NULL-terminated char*[]: blob holds the strings, each NUL-terminated. */
static void cap_argv(struct wa_tracer *t, pid_t tid, struct wa_buf *b, int i, uint64_t addr, int compat)
{
    uint32_t max = t->max_argv_bytes;
    long off = blob_begin(b, (uint16_t)i, WA_C_ARGV, max);
    if (off < 0)
        return;
    uint16_t fl = 0;
    uint32_t used = 0;
    if (!addr) {
        blob_end(b, off, 0, WA_B_UNREADABLE);
        return;
    }
    /* Pointers and the strings' first bytes a batch at a time: an environment of 40
     * strings read one by one was 80 system calls per exec. */
    const size_t w = compat ? 4 : 8;
    uint64_t ptrs[WA_WINDOWS_MAX];
    uint32_t got[WA_WINDOWS_MAX];
    uint8_t raw[WA_WINDOWS_MAX * 8];
    int done = 0;
    for (uint32_t k = 0; !done;) {
        size_t np = wa_mem_read(tid, addr + w * k, raw, WA_WINDOWS_MAX * w) / w;
        size_t m = 0;
        int end = 0;
        for (; m < np; m++) {
            uint64_t p;
            if (compat) {
                uint32_t q;
                memcpy(&q, raw + 4 * m, 4);
                p = q;
            } else {
                memcpy(&p, raw + 8 * m, 8);
            }
            if (!p) {
                end = 1;
                break;
            }
            ptrs[m] = p;
        }
        wa_mem_read_windows(tid, ptrs, m, t->argv_win, got);
        for (size_t j = 0;; j++, k++) {
            if (k >= t->max_argv_items) {
                fl |= WA_B_TRUNCATED;
                done = 1;
                break;
            }
            if (j == m) {
                if (end)
                    done = 1;
                else if (np == 0) {
                    fl |= WA_B_UNREADABLE;   /* the kernel would fail the exec (EFAULT) */
                    done = 1;
                }
                break;   /* else: the next batch of pointers, from k */
            }
            if (used >= max) {
                fl |= WA_B_TRUNCATED;
                done = 1;
                break;
            }
            /* The string buffer must be re-derived: blob_data does not move (reserved above). */
            char *dst = (char *)blob_data(b, off) + used;
            int trunc, unread;
            size_t room = max - used;
            size_t n = argv_item(tid, ptrs[j], t->argv_win + j * WA_WINDOW, got[j], dst,
                                 room > 1 ? room - 1 : 0, &trunc, &unread);
            if (unread) {
                fl |= WA_B_UNREADABLE;   /* one bad element is not an empty argument */
                done = 1;
                break;
            }
            if (trunc || room <= 1)
                fl |= WA_B_TRUNCATED;
            if (room <= 1) {
                done = 1;
                break;
            }
            dst[n] = 0;
            used += (uint32_t)n + 1;
            if (trunc) {
                done = 1;
                break;
            }
        }
    }
    if (fl & WA_B_UNREADABLE) {
        atomic_fetch_add(&t->read_failures, 1);
        used = 0;
    }
    blob_end(b, off, used, fl);
}

#define SOCKADDR_MAX 128u
#define AT_FDCWD_VALUE (-100)

/* A path, and for a relative one the directory it resolves against, read now: the dirfd
 * may be closed or the cwd changed by the time anyone else looks. */
static void cap_path(struct wa_tracer *t, pid_t tid, struct wa_buf *b, int i, const uint64_t *args,
                     uint8_t dirfd_arg)
{
    long start = b->len;
    cap_str(t, tid, b, i, WA_C_PATH, args[i]);
    if ((long)b->len == start)
        return;
    const struct wa_blob *h = (const struct wa_blob *)(b->buf + start);
    const char *p = (const char *)(h + 1);
    if (h->len == 0 || p[0] == '/' || (h->flags & WA_B_UNREADABLE))
        return;
    int dirfd = dirfd_arg < 6 ? (int)args[dirfd_arg] : AT_FDCWD_VALUE;
    if (dirfd == AT_FDCWD_VALUE) {
        wa_capture_link(tid, "cwd", (uint16_t)(WA_SLOT_BASE + i), b);
    } else if (dirfd >= 0) {
        char what[32];
        snprintf(what, sizeof what, "fd/%d", dirfd);
        wa_capture_link(tid, what, (uint16_t)(WA_SLOT_BASE + i), b);
    }
}

static void capture_entry(struct wa_tracer *t, pid_t tid, struct wa_buf *b, const struct wa_spec *s,
                          const uint64_t *args, int compat)
{
    if (s->when_arg && s->when_arg <= 6 && args[s->when_arg - 1] != s->when_value)
        return;
    for (int i = 0; i < 6; i++) {
        uint64_t len = s->len_arg[i] < 6 ? args[s->len_arg[i]] : 0;
        switch (s->kind[i]) {
        case WA_C_PATH:
            cap_path(t, tid, b, i, args, s->len_arg[i]);
            break;
        case WA_C_STR:
            cap_str(t, tid, b, i, s->kind[i], args[i]);
            break;
        case WA_C_FD_ORIGIN:
            if ((int)args[i] >= 0)
                wa_capture_fd(rec(b)->tgid, tid, (int)args[i], i, b);
            break;
        case WA_C_CAPDATA:
            cap_bytes(t, tid, b, i, WA_C_CAPDATA, args[i], 24, 24);
            break;
        case WA_C_SOCKADDR:
            cap_bytes(t, tid, b, i, WA_C_SOCKADDR, args[i], (uint32_t)len, SOCKADDR_MAX);
            break;
        case WA_C_BUF:
            cap_bytes(t, tid, b, i, WA_C_BUF, args[i], len, 256);
            break;
        case WA_C_OPEN_HOW:
            cap_bytes(t, tid, b, i, WA_C_OPEN_HOW, args[i], len, 64);
            break;
        case WA_C_ARGV:
            cap_argv(t, tid, b, i, args[i], compat);
            break;
        case WA_C_MSGHDR_NAME: {
            uint64_t name;
            uint32_t namelen;
            if (wa_read_msghdr_name(tid, args[i], compat, &name, &namelen) == 0 && name)
                cap_bytes(t, tid, b, i, WA_C_MSGHDR_NAME, name, namelen, SOCKADDR_MAX);
            break;
        }
        default:
            break;
        }
    }
}

/* getsockname() of another process's socket: borrow the fd with pidfd_getfd (5.6+; we are
 * its tracer, which the kernel's ptrace-attach check asks for). */
static void cap_sockname(struct wa_tracer *t, struct wa_buf *b, int i, uint16_t kind, pid_t tgid, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    uint16_t fl = WA_B_UNREADABLE;
    int pfd = (int)syscall(SYS_pidfd_open, tgid, 0);
    if (pfd >= 0) {
        int sfd = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
        if (sfd >= 0) {
            if (getsockname(sfd, (struct sockaddr *)&ss, &len) == 0)
                fl = 0;
            close(sfd);
        }
        close(pfd);
    }
    if (fl) {
        atomic_fetch_add(&t->read_failures, 1);
        len = 0;
    }
    if (len > sizeof ss)
        len = sizeof ss;
    long off = blob_begin(b, (uint16_t)i, kind, len);
    if (off < 0)
        return;
    memcpy(blob_data(b, off), &ss, len);
    blob_end(b, off, len, fl);
}

static void capture_exit(struct wa_tracer *t, pid_t tid, struct wa_buf *b, const struct wa_spec *s,
                         const uint64_t *args, int64_t ret)
{
    if (ret < 0 && ret != -EINPROGRESS)   /* a non-blocking connect has its local end already */
        return;
    for (int i = 0; i < 6; i++) {
        if (s->kind[i] == WA_C_SOCKADDR_OUT && args[i] && s->len_arg[i] < 6 && args[s->len_arg[i]]) {
            uint32_t alen = 0;
            if (wa_mem_read(tid, args[s->len_arg[i]], &alen, sizeof alen) == sizeof alen)
                cap_bytes(t, tid, b, i, WA_C_SOCKADDR_OUT, args[i], alen, SOCKADDR_MAX);
        } else if (s->kind[i] == WA_C_INT_PAIR_OUT && args[i]) {
            cap_bytes(t, tid, b, i, WA_C_INT_PAIR_OUT, args[i], 8, 8);
        } else if (s->kind[i] == WA_C_SOCKNAME_OUT) {
            cap_sockname(t, b, i, WA_C_SOCKNAME_OUT, rec(b)->tgid, (int)args[i]);
        } else if (s->kind[i] == WA_C_SOCKNAME_RET) {
            cap_sockname(t, b, i, WA_C_SOCKNAME_RET, rec(b)->tgid, (int)ret);
        } else if (s->kind[i] == WA_C_COMM_OUT) {
            wa_capture_comm(tid, b);
        }
    }
}

/* ---- tasks ---------------------------------------------------------------- */

static struct task *task_of(struct wa_tracer *t, pid_t tid)
{
    if (tid <= 0 || (uint32_t)tid >= t->ntasks)
        return NULL;
    return &t->tasks[tid];
}

static void task_note(struct wa_tracer *t, pid_t tid)
{
    if (t->nseen == t->capseen) {
        uint32_t cap = t->capseen ? t->capseen * 2 : 256;
        int32_t *p = realloc(t->seen, cap * sizeof *p);
        if (!p)
            return;
        t->seen = p;
        t->capseen = cap;
    }
    t->seen[t->nseen++] = tid;
}

/* An empty slot, a new generation: links to its former owner fail. */
static void task_clear(struct task *tk)
{
    uint32_t gen = tk->gen + 1;
    memset(tk, 0, sizeof *tk);
    tk->gen = gen;
}

static void task_forget(struct task *tk)
{
    free(tk->rb.buf);
    task_clear(tk);
}

/* Inside a syscall whose exit we want, every resume must keep the exit stop armed. */
static void resume(struct wa_tracer *t, pid_t tid, int sig)
{
    struct task *tk = task_of(t, tid);
    int req = (!t->filter || (tk && (tk->state & (T_IN_SYSCALL | T_FULL)))) ? PTRACE_SYSCALL : PTRACE_CONT;
    ptrace(req, tid, 0, (void *)(long)sig);
}

/* A syscall recorded at entry only: it is complete as it is. */
static void commit_now(struct wa_tracer *t, struct task *tk)
{
    commit(t, &tk->rb);
    tk->state &= ~T_IN_SYSCALL;
}

/* Flushes a syscall record whose exit will never be seen. */
static void flush_pending(struct wa_tracer *t, struct task *tk)
{
    if (tk->state & T_IN_SYSCALL) {
        rec(&tk->rb)->flags |= WA_F_NO_EXIT;
        commit(t, &tk->rb);
        tk->state &= ~T_IN_SYSCALL;
    }
}

/* The spec a syscall stop is captured with: NULL and *skip when it is not recorded,
 * NULL alone for an ABI recorded raw. Compat calls get their nr and args rewritten. */
static const struct wa_spec *spec_for(struct wa_tracer *t, pid_t tid, uint32_t arch, uint64_t *nr,
                                      uint64_t args[6], int *skip)
{
    *skip = 0;
    if (arch == NATIVE_ARCH)
        return *nr < WA_MAX_NR ? &t->specs[*nr] : NULL;
    if (!t->compat.arch || arch != t->compat.arch)
        return NULL;
    const struct wa_spec *s = wa_compat_prepare(&t->compat, tid, nr, args);
    *skip = !s;
    return s;
}

/* The spec of a pending record, to finish it at the exit. */
static const struct wa_spec *spec_of_record(struct wa_tracer *t, const struct wa_record *r)
{
    if (r->nr < 0 || r->nr >= WA_MAX_NR || (r->flags & WA_F_FOREIGN_ARCH))
        return NULL;
    if (r->arch == NATIVE_ARCH)
        return &t->specs[r->nr];
    return r->arch == t->compat.arch ? &t->compat.specs[r->nr] : NULL;
}

static void begin_syscall(struct wa_tracer *t, pid_t tid, struct task *tk, uint32_t arch, uint64_t nr,
                          const uint64_t *args, const struct wa_spec *s)
{
    flush_pending(t, tk);
    if (!tk->rb.buf)
        task_note(t, tid);
    if (rec_start(&tk->rb, WA_K_SYSCALL, tk->tgid, tid) != 0)
        return;
    struct wa_record *r = rec(&tk->rb);
    r->nr = (int32_t)nr;
    r->arch = arch;
    memcpy(r->args, args, sizeof r->args);
    if (!s)
        r->flags |= WA_F_FOREIGN_ARCH;
    else
        capture_entry(t, tid, &tk->rb, s, args, arch != NATIVE_ARCH);
    tk->state |= T_IN_SYSCALL;
}

/* After the guard has had its look (a guarded call is its to judge): a record no enabled
 * rule can match is dropped here, with no exit stop. */
static void prefilter_apply(struct wa_tracer *t, struct task *tk, uint32_t arch, const struct wa_spec *s)
{
    const struct wa_pf *pf = atomic_load_explicit(&t->pf, memory_order_acquire);
    if (!pf || !s || arch != NATIVE_ARCH || !(tk->state & T_IN_SYSCALL))
        return;
    if (!wa_prefilter_keep(pf, &tk->rb)) {
        tk->rb.len = 0;
        tk->state &= ~T_IN_SYSCALL;
        atomic_fetch_add_explicit(&t->prefiltered, 1, memory_order_relaxed);
    }
}

static void end_syscall(struct wa_tracer *t, pid_t tid, struct task *tk, int64_t rval)
{
    if (!(tk->state & T_IN_SYSCALL))
        return;
    struct wa_record *r = rec(&tk->rb);
    r->ret = rval;
    r->ts_exit = wa_now_ns();
    r->flags |= WA_F_HAS_EXIT;
    const struct wa_spec *s = spec_of_record(t, r);
    if (s) {
        uint64_t args[6];
        memcpy(args, r->args, sizeof args);
        capture_exit(t, tid, &tk->rb, s, args, rval);
    }
    commit(t, &tk->rb);
    tk->state &= ~T_IN_SYSCALL;
}

static void emit_simple(struct wa_tracer *t, uint16_t kind, int32_t tgid, int32_t tid, int32_t nr,
                        uint64_t arg0, uint32_t extra, uint16_t flags)
{
    struct wa_buf *b = &t->scratch;
    if (rec_start(b, kind, tgid, tid) != 0)
        return;
    rec(b)->nr = nr;
    rec(b)->args[0] = arg0;
    rec(b)->extra = extra;
    rec(b)->flags = flags;
    rec(b)->arch = NATIVE_ARCH;
    commit(t, b);
}

/* The first PATH blob of a pending record (the file an exec named), NUL-terminated in out. */
static int pending_exec_path(struct task *tk, char *out, size_t cap)
{
    if (!(tk->state & T_IN_SYSCALL) || !tk->rb.len)
        return -1;
    for (uint16_t i = 0; i < 6; i++) {
        const struct wa_blob *h = wa_blob_find(&tk->rb, i);
        if (!h || h->kind != WA_C_PATH)
            continue;
        const char *data = (const char *)(h + 1);
        if ((h->flags & (WA_B_UNREADABLE | WA_B_TRUNCATED)) || h->len == 0 || h->len >= cap ||
            memchr(data, 0, h->len) != NULL)
            return -1;
        memcpy(out, data, h->len);
        out[h->len] = 0;
        return 0;
    }
    return -1;
}

/* The parent's name as the state has it when it reads this process's records, or NULL. */
static const char *parent_name(struct wa_tracer *t, const struct task *tk)
{
    if (tk->tgid == t->pid)   /* the workload's own process: its parent is the agent */
        return t->agent_name[0] ? t->agent_name : NULL;
    if (tk->state & T_NO_PARENT)
        return NULL;
    const struct task *pk = task_of(t, tk->parent);
    if (!pk || pk->gen != tk->parent_gen || !(pk->state & T_KNOWN) || !pk->name[0])
        return NULL;
    return pk->name;
}

/* At a successful exec, whether the exec program can judge it (a native execve). */
static const struct wa_pf *exec_program(struct wa_tracer *t, struct task *tk)
{
    const struct wa_record *sr = rec(&tk->rb);
    const struct wa_pf *pf = atomic_load_explicit(&t->pf, memory_order_acquire);
    int judged = (tk->state & T_IN_SYSCALL) && tk->rb.len && sr->arch == NATIVE_ARCH &&
                 sr->nr == SYS_execve && !(sr->flags & WA_F_FOREIGN_ARCH) && pf && pf->exec.active;
    return judged ? pf : NULL;
}

/* The new image, read at the exec stop: the exe's inode even if it is unlinked a
 * microsecond later, the tty and session even if the process exits at once. */
static void emit_exec(struct wa_tracer *t, pid_t tid, struct task *tk, pid_t former)
{
    struct wa_buf *b = &t->scratch;
    if (rec_start(b, WA_K_EXEC, tk->tgid, tid) != 0)
        return;
    rec(b)->extra = (uint32_t)former;
    rec(b)->arch = NATIVE_ARCH;
    int quiet = (tk->state & T_QUIET) != 0;
    long facts = wa_capture_proc_facts(tid, b, quiet ? 0 : WA_FACTS_ALL);
    char path[4096];
    /* /proc/self and /dev/fd name the tracer's own files from here: the exe facts cover them. */
    if (pending_exec_path(tk, path, sizeof path) == 0 && strncmp(path, "/proc/", 6) != 0 && strncmp(path, "/dev/fd/", 8) != 0) {
        const struct wa_blob *h = wa_blob_find(b, WA_SLOT_PROC);
        const struct wa_proc_facts *pf = NULL;
        if (h && h->kind == WA_C_PROC_FACTS && h->len == sizeof *pf)
            pf = (const struct wa_proc_facts *)(h + 1);
        struct wa_file_facts exe;
        int have = pf && (pf->valid & WA_PF_EXE);
        if (have)
            exe = pf->exe;
        wa_capture_file_facts(tid, path, WA_SLOT_SCRIPT, b, have ? &exe : NULL);
    }
    const struct wa_pf *pf = exec_program(t, tk);
    if (quiet) {
        /* Judged first without the stat facts, a terminal counting as present: most execs
         * are quiet all the same. The others are judged again with them. */
        const char *pname = parent_name(t, tk);
        int keep = !pf || wa_prefilter_exec_keep(pf, &tk->rb, b, pname);
        if (keep && pf && facts > 0) {
            facts_more(b->buf + facts, tid, WA_FACTS_STAT);
            keep = wa_prefilter_exec_keep(pf, &tk->rb, b, pname);
        }
        t->late_facts = 0;
        if (!keep) {
            tk->state |= T_EXEC_OK;
            if (facts > 0) {
                t->late_facts = (uint32_t)facts;   /* held: the rest is read later */
                tk->state |= T_FACTS_LATE;
            }
        } else {
            tk->state &= ~T_QUIET;   /* this record releases everything held before it */
            if (facts > 0)
                facts_more(b->buf + facts, tid, WA_FACTS_ALL);
        }
    }
    /* The name the state will give the process (names matter only to the exec program). */
    if (!pf || wa_exec_name(&tk->rb, pf->exec.path_arg, tk->name) != 0)
        tk->name[0] = 0;
    commit(t, b);
    t->late_facts = 0;
}

#define NR_CLONE3 435   /* same number on x86_64 and aarch64 */

/* The clone flags of the syscall a task is stopped in: clone takes them in the first
 * register, clone3 (allowed in full-ptrace mode) in struct clone_args's first field. */
static uint64_t clone_flags_of(pid_t tid)
{
    uint64_t nr = 0, arg0 = 0;
#if defined(__x86_64__)
    struct user_regs_struct regs;
    if (ptrace(PTRACE_GETREGS, tid, 0, &regs) != 0)
        return 0;
    nr = regs.orig_rax;
    arg0 = regs.rdi;
    struct syscall_info si;
    if (ptrace((enum __ptrace_request)PTRACE_GET_SYSCALL_INFO, tid, (void *)sizeof si, &si) > 0 &&
        si.arch != NATIVE_ARCH)
        return regs.rbx & 0xffffffffu;   /* i386 clone (int 0x80): flags in ebx; clone3 is refused */
#elif defined(__aarch64__)
    struct user_regs_struct regs;
    struct iovec iov = { &regs, sizeof regs };
    if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &iov) != 0)
        return 0;
    nr = regs.regs[8];
    arg0 = regs.regs[0];
#endif
    if (nr == NR_CLONE3) {
        uint64_t flags = 0;
        wa_mem_read(tid, arg0, &flags, sizeof flags);
        return flags;
    }
    return arg0;
}

/* ---- guarded syscalls ----------------------------------------------------- */

/* The tracee stays stopped until the consumer has handled everything up to this record:
 * its alert is written before the call goes on (or fails). */
static void guard_wait_ack(struct wa_tracer *t)
{
    uint64_t upto = atomic_load(&t->ring.head);
    uint64_t start = wa_now_ns(), limit = (uint64_t)t->guard.ack_timeout_ms * 1000000ull;
    uint64_t one = 1;
    ssize_t w = write(t->ring.efd, &one, sizeof one);   /* do not wait for the consumer's timer */
    (void)w;
    while (atomic_load(&t->acked) < upto && !atomic_load(&t->ring.closing)) {
        atomic_store(&t->ack_waiting, 1);
        if (atomic_load(&t->acked) >= upto)
            break;
        struct pollfd p = { t->ack_efd, POLLIN, 0 };
        if (poll(&p, 1, 20) > 0) {
            uint64_t v;
            ssize_t n = read(t->ack_efd, &v, sizeof v);
            (void)n;
        }
        if (limit && wa_now_ns() - start > limit) {
            atomic_fetch_add(&t->ack_timeouts, 1);
            break;
        }
    }
    atomic_store(&t->ack_waiting, 0);
}

/* At the entry stop of a guarded syscall, its record begun (tk pending). Returns 1 when
 * it consumed the record: committed (a hit) or discarded (no hit, and only the guard
 * wanted this stop); 0 leaves the record to the usual path. */
static int guard_entry(struct wa_tracer *t, pid_t tid, struct task *tk, uint64_t nr, const uint64_t *args,
                       int foreign)
{
    int traced = !foreign && nr < WA_MAX_NR && t->specs[nr].traced;
    uint32_t flags;
    int err, rule;
    if (foreign) {
        flags = t->guard.foreign_flags;
        err = t->guard.foreign_err;
        rule = flags ? WA_GUARD_MAX_RULES + 1 : 0;
    } else {
        rule = wa_guard_match(&t->guard, tid, nr, args, (tk->state & T_IN_SYSCALL) ? tk->rb.buf : NULL,
                              (tk->state & T_IN_SYSCALL) ? tk->rb.len : 0);
        flags = rule ? t->guard.rules[rule - 1].flags : 0;
        err = rule ? t->guard.rules[rule - 1].err : 0;
    }
    if (!rule) {
        if (traced)
            return 0;
        tk->state &= ~T_IN_SYSCALL;   /* only the guard wanted this stop */
        tk->rb.len = 0;
        return 1;
    }
    struct wa_record *r = (tk->state & T_IN_SYSCALL) ? rec(&tk->rb) : NULL;
    if (flags & WA_GR_DENY) {
        wa_guard_skip(tid, err);
        atomic_fetch_add(&t->denied, 1);
        if (r) {
            r->ret = -err;
            r->ts_exit = wa_now_ns();
            r->flags |= WA_F_HAS_EXIT | WA_F_DENIED;
        }
    }
    if (!(flags & WA_GR_RECORD)) {
        if (r && traced && (flags & WA_GR_DENY)) {
            r->flags &= (uint16_t)~WA_F_DENIED;   /* a quiet refusal: an ordinary failed call */
            commit_now(t, tk);
        } else {
            tk->state &= ~T_IN_SYSCALL;
            tk->rb.len = 0;
        }
        return 1;
    }
    atomic_fetch_add(&t->guard_hits, 1);
    if (r) {
        r->flags |= WA_F_GUARD;
        r->extra = (uint32_t)rule;      /* which guard rule: Python named them */
        commit_now(t, tk);
        guard_wait_ack(t);
    }
    return 1;
}

/* ---- the loop ------------------------------------------------------------- */

static void start_result(struct wa_tracer *t, int state)
{
    pthread_mutex_lock(&t->mu);
    if (t->start_state == 0) {
        t->start_state = state;
        pthread_cond_broadcast(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
}

struct child_report { int stage; int err; };
enum { STAGE_NNP = 1, STAGE_SECCOMP = 2, STAGE_EXEC = 3 };
static const char *stage_name[] = { "?", "prctl(PR_SET_NO_NEW_PRIVS)", "seccomp(SET_MODE_FILTER)", "execve" };

static void on_main_exit_before_exec(struct wa_tracer *t)
{
    struct child_report rep = { 0, 0 };
    ssize_t n = read(t->errpipe, &rep, sizeof rep);
    if (n == (ssize_t)sizeof rep && rep.stage == STAGE_EXEC) {
        t->exec_errno = rep.err;
        snprintf(t->err, sizeof t->err, "cannot execute %s: %s", t->path, strerror(rep.err));
    } else if (n == (ssize_t)sizeof rep && rep.stage > 0 && rep.stage < 3) {
        snprintf(t->err, sizeof t->err, "%s failed in the workload process: %s",
                 stage_name[rep.stage], strerror(rep.err));
    } else {
        snprintf(t->err, sizeof t->err, "the workload process died before exec (wait status %#x)", t->status);
    }
    start_result(t, -1);
}

static void handle_event(struct wa_tracer *t, pid_t tid, struct task *tk, int event)
{
    unsigned long msg = 0;
    switch (event) {
    case PTRACE_EVENT_SECCOMP: {
        struct syscall_info si;
        if (tk->state & T_FULL)
            break;   /* someone else's filter: its syscalls are seen at the entry stop */
        if (ptrace((enum __ptrace_request)PTRACE_GET_SYSCALL_INFO, tid, (void *)sizeof si, &si) <= 0 || si.op != SI_OP_SECCOMP)
            break;
        facts_before(t, tid, tk, si.arch, si.seccomp.nr, si.seccomp.args);
        uint32_t data = si.seccomp.ret_data;
        uint64_t nr = si.seccomp.nr;
        int foreign = si.arch != NATIVE_ARCH;
        int guarded = (data & DATA_GUARD) && t->has_guard;
        int skip;
        const struct wa_spec *s = spec_for(t, tid, si.arch, &nr, si.seccomp.args, &skip);
        if (skip && !guarded)
            break;
        begin_syscall(t, tid, tk, si.arch, nr, si.seccomp.args, s);
        if (guarded && guard_entry(t, tid, tk, si.seccomp.nr, si.seccomp.args, foreign))
            break;
        prefilter_apply(t, tk, si.arch, s);
        if (!(data & DATA_EXIT))
            commit_now(t, tk);
        break;
    }
    case PTRACE_EVENT_CLONE:
    case PTRACE_EVENT_FORK:
    case PTRACE_EVENT_VFORK: {
        ptrace(PTRACE_GETEVENTMSG, tid, 0, &msg);
        pid_t child = (pid_t)msg;
        uint64_t flags = event == PTRACE_EVENT_CLONE ? clone_flags_of(tid) : 0;
        int thread = event == PTRACE_EVENT_CLONE && (flags & CLONE_THREAD);
        struct task *ck = task_of(t, child);
        struct task *pk = task_of(t, tk->tgid);
        if (ck && !thread && pk) {
            /* The state's view of the child: its parent, and the name it inherits. */
            ck->parent = tk->tgid;
            ck->parent_gen = pk->gen;
            memcpy(ck->name, pk->name, sizeof ck->name);
            const struct wa_pf *pf = atomic_load_explicit(&t->pf, memory_order_acquire);
            if (pf && pf->exec.active && !(tk->state & T_FULL)) {
                ck->state |= T_QUIET;   /* before the clone record, which is then held */
                pk->quiet_kids++;
            }
            if (flags & CLONE_PARENT)
                ck->state |= T_NO_PARENT;
        }
        emit_simple(t, WA_K_CLONE, tk->tgid, tid, event, flags, (uint32_t)child, thread ? WA_F_THREAD : 0);
        atomic_fetch_add(&t->task_count, 1);
        if (ck) {
            int parked = ck->state & T_PARKED;
            ck->tgid = thread ? tk->tgid : child;
            ck->state = T_KNOWN | (parked ? 0 : T_EXPECT_INIT) | (tk->state & T_FULL) |
                        (ck->state & (T_QUIET | T_NO_PARENT));
            if (parked)
                resume(t, child, 0);
        }
        break;
    }
    case PTRACE_EVENT_EXEC: {
        /* A quiet process has one thread (a thread of its own ends its quiet): it is the
         * one that exec'd. */
        msg = (unsigned long)tid;
        if (!(tk->state & T_QUIET))
            ptrace(PTRACE_GETEVENTMSG, tid, 0, &msg);
        pid_t former = (pid_t)msg;
        if (former != tid) {
            /* The kernel numbers the former tid in the namespace of whoever was the parent
             * when the exec began: a process seized during its exec (attach.c) reports its
             * pid outside our namespace. Only a thread of this process can be the former. */
            struct task *ck = task_of(t, former);
            if (!ck || !(ck->state & T_KNOWN) || ck->tgid != tk->tgid)
                former = tid;
        }
        if (former != tid) {
            /* A non-leader thread exec'd: it now carries the leader's tid. */
            struct task *fk = task_of(t, former);
            flush_pending(t, tk);
            if (fk) {
                struct task moved = *fk;
                uint32_t lgen = tk->gen + 1;
                free(tk->rb.buf);
                *tk = moved;
                tk->gen = lgen;   /* a new incarnation of the leader's slot for children's links */
                if (tk->rb.buf)
                    task_note(t, tid);
                task_clear(fk);   /* its buffer moved with it */
            }
            tk->tgid = tid;
            tk->state |= T_KNOWN;
            /* The exec's own record finishes here, under the tid the thread now has. */
            if (tk->state & T_IN_SYSCALL)
                rec(&tk->rb)->tid = tid;
        }
        emit_exec(t, tid, tk, former);
        /* A successful exec returns 0, and this stop is already in the new image: the
         * exec's record ends here, and the exit stop is not taken (one stop less per exec). */
        end_syscall(t, tid, tk, 0);
        tk->state &= ~T_EXEC_OK;
        if (tid == t->pid)
            start_result(t, 1);
        break;
    }
    default:
        break;
    }
    resume(t, tid, 0);
}

static void handle_syscall_stop(struct wa_tracer *t, pid_t tid, struct task *tk)
{
    struct syscall_info si;
    long n = ptrace((enum __ptrace_request)PTRACE_GET_SYSCALL_INFO, tid, (void *)sizeof si, &si);
    if (n > 0 && si.op == SI_OP_EXIT) {
        end_syscall(t, tid, tk, si.exit.rval);
    } else if (n > 0 && si.op == SI_OP_ENTRY && (!t->filter || (tk->state & T_FULL))) {
        facts_before(t, tid, tk, si.arch, si.entry.nr, si.entry.args);
        uint64_t nr = si.entry.nr;
        int foreign = si.arch != NATIVE_ARCH;
        int guarded = t->has_guard && (foreign ? t->guard.foreign_flags != 0 : wa_guard_watches(&t->guard, nr));
        int skip;
        const struct wa_spec *s = spec_for(t, tid, si.arch, &nr, si.entry.args, &skip);
        int traced = s && s->traced;
        if (traced || guarded)
            begin_syscall(t, tid, tk, si.arch, nr, si.entry.args, s);
        if (!(guarded && guard_entry(t, tid, tk, si.entry.nr, si.entry.args, foreign)) && traced)
            prefilter_apply(t, tk, si.arch, s);
    }
    resume(t, tid, 0);
}

/* ---- foreign processes (attach.c) ---------------------------------------- */

/* No EXITKILL: an attached process has no filter of ours, so it runs on untraced if the
 * agent goes away. TRACESECCOMP only so that a filter of its own with RET_TRACE does not
 * turn into ENOSYS because a tracer is present. */
#define ATTACH_OPTS (PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | \
                     PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_TRACESECCOMP)

/* Also called from the watcher thread: a hint there, exact in the tracer thread. */
static int attach_known_cb(void *ctx, pid_t tid)
{
    struct task *tk = task_of(ctx, tid);
    return !tk || __atomic_load_n(&tk->state, __ATOMIC_RELAXED) != 0;
}

static void attach_seized_cb(void *ctx, pid_t tid, pid_t tgid)
{
    struct wa_tracer *t = ctx;
    struct task *tk = task_of(t, tid);
    tk->tgid = tgid;
    tk->state = T_KNOWN | T_FULL | T_ATTACHING;
    atomic_fetch_add(&t->task_count, 1);
}

static void attach_failed(struct wa_tracer *t, pid_t pid, int err, uint64_t asked)
{
    struct wa_buf *b = &t->scratch;
    if (rec_start(b, WA_K_ATTACH, pid, pid) != 0)
        return;
    rec(b)->ret = -err;
    rec(b)->args[0] = asked;
    rec(b)->arch = NATIVE_ARCH;
    commit(t, b);
}

static void attach_drain(struct wa_tracer *t)
{
    struct wa_attach_req rq;
    while (wa_attach_pop(&t->attach, &rq)) {
        struct task *tk = task_of(t, rq.pid);
        if (!tk)
            continue;
        if (tk->state) {
            atomic_fetch_add(&t->attach.known, 1);
            continue;
        }
        int n = wa_attach_seize(rq.pid, ATTACH_OPTS, attach_known_cb, attach_seized_cb, t);
        if (n > 0) {
            rq.threads = (uint32_t)n;
            wa_attach_note(&t->attach, &rq);
            continue;
        }
        int err = -n;
        if (err == EPERM) {
            int tracer = wa_attach_tracer_of(rq.pid);
            /* TracerPid names the tracing thread: this one, for a workload child whose clone
             * event is still to come. */
            if (tracer == (int)syscall(SYS_gettid)) {
                atomic_fetch_add(&t->attach.known, 1);
                continue;
            }
            if (tracer > 0)
                err = EBUSY;
            else if (!wa_attach_alive(rq.pid))
                err = ESRCH;
        }
        if (err == EPERM)
            atomic_fetch_add(&t->attach.denied, 1);
        else if (err == EBUSY)
            atomic_fetch_add(&t->attach.busy, 1);
        else
            atomic_fetch_add(&t->attach.gone, 1);
        attach_failed(t, rq.pid, err, rq.ts);
    }
}

/* The first stop of a seized thread: the process's facts, read while it cannot change
 * them, go out before any other record of it. */
static void attach_first_stop(struct wa_tracer *t, pid_t tid, struct task *tk)
{
    tk->state &= ~T_ATTACHING;
    struct task *lk = task_of(t, tk->tgid);
    if (!lk || (lk->state & T_ANNOUNCED))
        return;
    lk->state |= T_ANNOUNCED;
    struct wa_attach_req rq = wa_attach_take(&t->attach, tk->tgid);
    struct wa_buf *b = &t->scratch;
    if (wa_attach_record(b, tk->tgid, tid, rq.ts, NATIVE_ARCH, t->max_argv_bytes) != 0)
        return;
    rec(b)->extra = rq.threads;
    commit(t, b);
    atomic_fetch_add(&t->attach.attached, 1);
}

/* A seized thread that ended before its first stop; 1 when the caller should skip it. */
static int attach_gone(struct wa_tracer *t, pid_t tid, struct task *tk, int st)
{
    if (!(WIFEXITED(st) || WIFSIGNALED(st)))
        return 0;
    struct task *lk = task_of(t, tk->tgid);
    if (lk && (lk->state & T_ANNOUNCED))
        return 0;   /* its process was announced: an ordinary exit */
    if (tid == tk->tgid) {
        struct wa_attach_req rq = wa_attach_take(&t->attach, tid);
        atomic_fetch_add(&t->attach.gone, 1);
        attach_failed(t, tid, ESRCH, rq.ts);
    }
    task_forget(tk);
    return 1;
}

/* A quiet process ended with no quiet children: nothing of it ever reaches Python. */
static void quiet_gone(struct wa_tracer *t, pid_t tid, struct task *tk)
{
    held_discard(t, tid, tk->gen);
    atomic_fetch_add_explicit(&t->quiet_dropped, 1, memory_order_relaxed);
    struct task *pk = task_of(t, tk->parent);
    if (pk && pk->gen == tk->parent_gen && pk->quiet_kids)
        pk->quiet_kids--;
}

static void trace_loop(struct wa_tracer *t)
{
    for (;;) {
        int st;
        if (atomic_load_explicit(&t->attach.pending, memory_order_relaxed))
            attach_drain(t);
        pid_t tid = waitpid(-1, &st, __WALL);
        if (tid < 0) {
            if (errno == EINTR)
                continue;
            break;   /* ECHILD: nothing left */
        }
        atomic_fetch_add_explicit(&t->stops, 1, memory_order_relaxed);
        struct task *tk = task_of(t, tid);
        if (!tk) {
            /* Beyond pid_max as read at start: cannot happen; keep the task running. */
            if (WIFSTOPPED(st))
                ptrace(PTRACE_CONT, tid, 0, 0);
            continue;
        }
        if ((tk->state & T_ATTACHING) && attach_gone(t, tid, tk, st))
            continue;
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            flush_pending(t, tk);
            if ((tk->state & T_QUIET) && tk->quiet_kids == 0) {
                quiet_gone(t, tid, tk);
            } else {
                emit_simple(t, WA_K_EXIT, tk->tgid ? tk->tgid : tid, tid, 0, 0, (uint32_t)st, 0);
            }
            task_forget(tk);
            if (tid == t->pid) {
                t->status = st;
                if (t->start_state == 0)
                    on_main_exit_before_exec(t);
                break;
            }
            continue;
        }
        if (!WIFSTOPPED(st))
            continue;
        if (wa_placement_follow(&t->placement, tid))
            atomic_fetch_add_explicit(&t->tracer_moves, 1, memory_order_relaxed);
        int sig = WSTOPSIG(st);
        int event = (unsigned)st >> 16;
        if (tk->state & T_ATTACHING)
            attach_first_stop(t, tid, tk);
        if (sig == (SIGTRAP | 0x80)) {
            handle_syscall_stop(t, tid, tk);
        } else if (event == PTRACE_EVENT_STOP) {
            if (!(tk->state & T_KNOWN)) {
                tk->state |= T_PARKED;   /* resumed when the parent's clone event names it */
            } else if (tk->state & T_EXPECT_INIT) {
                tk->state &= ~T_EXPECT_INIT;
                resume(t, tid, 0);
            } else if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
                ptrace(PTRACE_LISTEN, tid, 0, 0);   /* group-stop: stay stopped until SIGCONT */
            } else {
                resume(t, tid, 0);
            }
        } else if (sig == SIGTRAP && event) {
            handle_event(t, tid, tk, event);
        } else {
            resume(t, tid, sig);   /* signal-delivery-stop: never swallow */
        }
    }
    if (t->nhq)
        held_release(t);
    wa_ring_finish(&t->ring, 5000);
    t->cpu_final = wa_clock_ns(CLOCK_THREAD_CPUTIME_ID);
    atomic_store(&t->done, 1);
    uint64_t one = 1;
    ssize_t w = write(t->ring.efd, &one, sizeof one);
    (void)w;
    start_result(t, -1);
}

static void child_exec(struct wa_tracer *t, int wfd)
{
    struct child_report rep = { 0, 0 };
    signal(SIGPIPE, SIG_DFL);   /* the agent's runtime ignores these; the workload must not */
    signal(SIGXFSZ, SIG_DFL);
    sigprocmask(SIG_SETMASK, &t->child_mask, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* A process whose credentials changed (setuid without exec) is not dumpable, and an
     * unprivileged tracer may not seize it; exec resets this for the workload anyway. */
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    raise(SIGSTOP);             /* the tracer seizes us here */
    if (t->filter) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
            rep.stage = STAGE_NNP;
            goto fail;
        }
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &t->prog) != 0) {
            rep.stage = STAGE_SECCOMP;
            goto fail;
        }
    }
    execve(t->path, t->argv, t->envp);
    rep.stage = STAGE_EXEC;
fail:
    rep.err = errno;
    if (write(wfd, &rep, sizeof rep) < 0)
        _exit(127);
    _exit(rep.stage == STAGE_EXEC ? (rep.err == ENOENT ? 127 : 126) : 125);
}

/* The state names the workload's parent from the agent's stat comm, which nothing
 * changes while we run (the leader's; thread names are the threads' own). */
static void agent_comm(struct wa_tracer *t)
{
    char path[64], buf[32];
    int trunc = 0;
    snprintf(path, sizeof path, "/proc/%d/comm", (int)getpid());
    ssize_t n = wa_slurp(path, buf, sizeof buf - 1, &trunc);
    t->agent_name[0] = 0;
    if (n <= 0 || trunc)
        return;
    buf[n] = 0;
    buf[strcspn(buf, "\n")] = 0;
    if (strlen(buf) < sizeof t->agent_name)
        strcpy(t->agent_name, buf);
}

static void *tracer_main(void *arg)
{
    struct wa_tracer *t = arg;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        snprintf(t->err, sizeof t->err, "pipe: %s", strerror(errno));
        atomic_store(&t->done, 1);
        start_result(t, -1);
        return NULL;
    }
    agent_comm(t);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        child_exec(t, pfd[1]);
    }
    close(pfd[1]);
    t->errpipe = pfd[0];
    if (pid < 0) {
        snprintf(t->err, sizeof t->err, "fork: %s", strerror(errno));
        atomic_store(&t->done, 1);
        start_result(t, -1);
        return NULL;
    }
    t->pid = pid;
    int st;
    while (waitpid(pid, &st, WUNTRACED) < 0 && errno == EINTR)
        ;
    if (!WIFSTOPPED(st)) {
        t->status = st;
        snprintf(t->err, sizeof t->err, "the workload process died before tracing began");
        atomic_store(&t->done, 1);
        start_result(t, -1);
        return NULL;
    }
    long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE |
                PTRACE_O_TRACEEXEC | PTRACE_O_TRACESECCOMP | PTRACE_O_EXITKILL;
    if (ptrace(PTRACE_SEIZE, pid, 0, (void *)opts) != 0) {
        snprintf(t->err, sizeof t->err, "PTRACE_SEIZE: %s (ptrace is not permitted here: a container "
                 "needs the SYS_PTRACE capability or a seccomp profile that allows ptrace)", strerror(errno));
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        t->status = st;
        atomic_store(&t->done, 1);
        start_result(t, -1);
        return NULL;
    }
    struct task *tk = task_of(t, pid);
    tk->tgid = pid;
    tk->state = T_KNOWN;
    /* The workload's own process is quiet like any process born under us: a workload
     * that does nothing a rule can see sends Python nothing at all. */
    const struct wa_pf *pf = atomic_load_explicit(&t->pf, memory_order_acquire);
    if (pf && pf->exec.active)
        tk->state |= T_QUIET;
    atomic_fetch_add(&t->task_count, 1);
    /* The workload is the agent's fork: said like any other fork, so the state builds it
     * from its parent and its exec record rather than from /proc. */
    emit_simple(t, WA_K_CLONE, getpid(), (int32_t)syscall(SYS_gettid), PTRACE_EVENT_FORK, 0, (uint32_t)pid, 0);
    /* After the fork: the workload keeps the affinity it was started with. */
    wa_placement_init(&t->placement, t->follow_cpu, 64);
    kill(pid, SIGCONT);
    wa_attach_arm_wake();
    trace_loop(t);
    return NULL;
}

static uint32_t read_pid_max(void)
{
    uint32_t v = 4194304;
    FILE *f = fopen("/proc/sys/kernel/pid_max", "re");
    if (f) {
        if (fscanf(f, "%u", &v) != 1)
            v = 4194304;
        fclose(f);
    }
    return v + 1;
}

struct wa_tracer *wa_start(const struct wa_config *cfg, char *err, size_t errlen, int *exec_errno)
{
    *exec_errno = 0;
    struct wa_tracer *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(t->specs, cfg->specs, sizeof t->specs);
    wa_compat_init(&t->compat, cfg->compat);
    if (cfg->filter) {
        t->filter = malloc(cfg->filter_len * sizeof(struct sock_filter));
        memcpy(t->filter, cfg->filter, cfg->filter_len * sizeof(struct sock_filter));
        t->prog.len = (unsigned short)cfg->filter_len;
        t->prog.filter = t->filter;
    }
    t->path = cfg->path;
    t->argv = cfg->argv;
    t->envp = cfg->envp;
    sigemptyset(&t->child_mask);
    if (cfg->sigmask)
        for (int s = 1; s < 64; s++)
            if (*cfg->sigmask & (1ull << (s - 1)))
                sigaddset(&t->child_mask, s);
    t->max_str = cfg->max_str ? cfg->max_str : 4096;
    t->wake_gap_us = cfg->wake_gap_us;
    t->follow_cpu = cfg->follow_cpu;
    atomic_store(&t->pf, cfg->prefilter && cfg->prefilter->progs ? cfg->prefilter : NULL);
    t->max_argv_bytes = cfg->max_argv_bytes ? cfg->max_argv_bytes : 16384;
    t->max_argv_items = cfg->max_argv_items ? cfg->max_argv_items : 1024;
    t->ntasks = read_pid_max();
    /* Indexed by tid; calloc'd pages stay untouched (and unbacked) until a tid lands there. */
    t->tasks = calloc(t->ntasks, sizeof(struct task));
    if (!t->tasks || wa_ring_init(&t->ring, cfg->ring_bytes ? cfg->ring_bytes : (8u << 20)) != 0) {
        snprintf(err, errlen, "out of memory");
        free(t->tasks);
        free(t->filter);
        free(t);
        return NULL;
    }
    t->ring.wake_gap_ns = (uint64_t)t->wake_gap_us * 1000u;
    t->ring.never_drop = cfg->never_drop;
    t->ack_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (cfg->guard) {
        t->guard = *cfg->guard;
        t->has_guard = 1;
    }
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    wa_attach_init(&t->attach);
    t->errpipe = -1;
    if (pthread_create(&t->thread, NULL, tracer_main, t) != 0) {
        snprintf(err, errlen, "pthread_create failed");
        wa_ring_destroy(&t->ring);
        free(t->tasks);
        free(t->filter);
        free(t);
        return NULL;
    }
    pthread_mutex_lock(&t->mu);
    while (t->start_state == 0)
        pthread_cond_wait(&t->cv, &t->mu);
    int ok = t->start_state > 0;
    pthread_mutex_unlock(&t->mu);
    if (!ok) {
        snprintf(err, errlen, "%s", t->err);
        *exec_errno = t->exec_errno;
        wa_free(t);
        return NULL;
    }
    return t;
}

int wa_pid(struct wa_tracer *t) { return t->pid; }

void wa_set_prefilter(struct wa_tracer *t, const struct wa_pf *pf)
{
    atomic_store_explicit(&t->pf, pf && pf->progs ? pf : NULL, memory_order_release);
}

size_t wa_read(struct wa_tracer *t, void *buf, size_t cap) { return wa_ring_get(&t->ring, buf, cap); }

int wa_wait(struct wa_tracer *t, int timeout_ms)
{
    /* Waits in slices of the wake gap: records the producer did not wake us for (it woke
     * us less than a gap ago) are found at the end of the slice. */
    int slice = (int)(t->ring.wake_gap_ns / 1000000u);
    if (slice < 1)
        slice = 1;
    for (int waited = 0;;) {
        if (!wa_ring_empty(&t->ring) || atomic_load(&t->done))
            return 1;
        if (waited >= timeout_ms)
            return 0;
        int step = timeout_ms - waited < slice ? timeout_ms - waited : slice;
        atomic_store(&t->ring.consumer_waiting, 1);
        if (!wa_ring_empty(&t->ring) || atomic_load(&t->done)) {
            atomic_store(&t->ring.consumer_waiting, 0);
            return 1;
        }
        struct pollfd p = { t->ring.efd, POLLIN, 0 };
        int r = poll(&p, 1, step);
        atomic_store(&t->ring.consumer_waiting, 0);
        if (r > 0) {
            uint64_t v;
            ssize_t n = read(t->ring.efd, &v, sizeof v);
            (void)n;
        }
        waited += step;
    }
}

int wa_done(struct wa_tracer *t, int *status)
{
    if (!atomic_load(&t->done))
        return 0;
    *status = t->status;
    return 1;
}

void wa_get_stats(struct wa_tracer *t, struct wa_stats *s)
{
    s->records = atomic_load(&t->ring.records_total);
    s->drops = atomic_load(&t->ring.drops_total);
    s->stops = atomic_load(&t->stops);
    s->tasks = atomic_load(&t->task_count);
    s->read_failures = atomic_load(&t->read_failures);
    s->prefiltered = atomic_load(&t->prefiltered);
    s->quiet_dropped = atomic_load(&t->quiet_dropped);
    s->ring_waits = atomic_load(&t->ring.waits_total);
    s->ring_wait_ns = atomic_load(&t->ring.wait_ns_total);
    s->guard_hits = atomic_load(&t->guard_hits);
    s->denied = atomic_load(&t->denied);
    s->ack_timeouts = atomic_load(&t->ack_timeouts);
    s->tracer_moves = atomic_load(&t->tracer_moves);
    clockid_t cid;
    if (atomic_load(&t->done))
        s->tracer_cpu_ns = t->cpu_final;
    else
        s->tracer_cpu_ns = pthread_getcpuclockid(t->thread, &cid) == 0 ? wa_clock_ns(cid) : 0;
}

void wa_ack(struct wa_tracer *t)
{
    atomic_store(&t->acked, atomic_load(&t->ring.tail));
    if (atomic_exchange(&t->ack_waiting, 0)) {
        uint64_t one = 1;
        ssize_t n = write(t->ack_efd, &one, sizeof one);
        (void)n;
    }
}

void wa_free(struct wa_tracer *t)
{
    if (!t)
        return;
    wa_ring_close(&t->ring);   /* nobody reads any more: a tracer waiting for room stops waiting */
    wa_watch_stop(&t->watch);
    pthread_join(t->thread, NULL);
    if (t->errpipe >= 0)
        close(t->errpipe);
    for (uint32_t i = 0; t->tasks && i < t->nseen; i++) {
        struct task *tk = task_of(t, t->seen[i]);
        if (tk && tk->rb.buf) {
            free(tk->rb.buf);
            tk->rb.buf = NULL;
        }
    }
    free(t->seen);
    free(t->scratch.buf);
    free(t->held.buf);
    free(t->hq);
    if (t->ack_efd >= 0)
        close(t->ack_efd);
    free(t->tasks);
    free(t->filter);
    wa_ring_destroy(&t->ring);
    wa_attach_destroy(&t->attach);
    free(t);
}

int wa_attach(struct wa_tracer *t, int pid)
{
    if (atomic_load(&t->done) || wa_attach_push(&t->attach, pid) != 0)
        return -1;
    pthread_kill(t->thread, wa_attach_wake_signal());
    return 0;
}

int wa_attach_kick(struct wa_tracer *t)
{
    /* The wake-up can land just before the tracer thread enters waitpid: then the request
     * waits for the next stop of any tracee, or for this kick. */
    if (atomic_load(&t->done) || !atomic_load(&t->attach.pending))
        return 0;
    pthread_kill(t->thread, wa_attach_wake_signal());
    return 1;
}

int wa_task_known(struct wa_tracer *t, int pid)
{
    struct task *tk = task_of(t, pid);
    uint32_t st = tk ? __atomic_load_n(&tk->state, __ATOMIC_RELAXED) : 0;
    return (st & T_ANNOUNCED) ? 2 : st != 0;
}

void wa_get_attach_stats(struct wa_tracer *t, struct wa_attach_stats *s) { wa_attach_get_stats(&t->attach, s); }

static void watch_tick(void *ctx) { wa_attach_kick(ctx); }

int wa_scan_start(struct wa_tracer *t, uint32_t period_us)
{
    return wa_watch_start(&t->watch, period_us, attach_known_cb, watch_tick, t);
}

int wa_scan_wait(struct wa_tracer *t, int timeout_ms) { return wa_watch_wait(&t->watch, timeout_ms); }

void wa_scan_stop(struct wa_tracer *t) { wa_watch_stop(&t->watch); }
