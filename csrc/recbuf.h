/* Building one event record in a growable buffer: the fixed header, then typed blobs.
 * Shared by the tracer loop and the capture modules (procfacts.c, ...). */
#ifndef WA_RECBUF_H
#define WA_RECBUF_H
#include "record.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct wa_buf {
    uint8_t *buf;
    uint32_t len, cap;
};

/* A clock's reading in ns; 0 when it cannot be read (a thread's CPU clock once it ended). */
static inline uint64_t wa_clock_ns(clockid_t clock)
{
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t wa_now_ns(void)
{
    return wa_clock_ns(CLOCK_REALTIME);
}

static inline int reserve(struct wa_buf *b, uint32_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    uint32_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *p = realloc(b->buf, cap);
    if (!p)
        return -1;
    b->buf = p;
    b->cap = cap;
    return 0;
}

static inline struct wa_record *rec(struct wa_buf *b) { return (struct wa_record *)b->buf; }

static inline int rec_start(struct wa_buf *b, uint16_t kind, int32_t tgid, int32_t tid)
{
    b->len = 0;
    if (reserve(b, sizeof(struct wa_record)) != 0)
        return -1;
    memset(b->buf, 0, sizeof(struct wa_record));
    b->len = sizeof(struct wa_record);
    struct wa_record *r = rec(b);
    r->kind = kind;
    r->tgid = tgid;
    r->tid = tid;
    r->ts_enter = wa_now_ns();
    return 0;
}

/* Reserves a blob of up to max data bytes; returns its header offset or -1. */
static inline long blob_begin(struct wa_buf *b, uint16_t argidx, uint16_t kind, uint32_t max)
{
    uint32_t need = (uint32_t)sizeof(struct wa_blob) + ((max + 7u) & ~7u);
    if (reserve(b, need) != 0)
        return -1;
    long off = b->len;
    struct wa_blob *h = (struct wa_blob *)(b->buf + off);
    memset(h, 0, sizeof *h);
    h->argidx = argidx;
    h->kind = kind;
    return off;
}

static inline uint8_t *blob_data(struct wa_buf *b, long off) { return b->buf + off + sizeof(struct wa_blob); }

static inline void blob_end(struct wa_buf *b, long off, uint32_t len, uint16_t flags)
{
    struct wa_blob *h = (struct wa_blob *)(b->buf + off);
    h->len = len;
    h->flags = flags;
    uint32_t padded = (len + 7u) & ~7u;
    memset(blob_data(b, off) + len, 0, padded - len);
    b->len = (uint32_t)off + (uint32_t)sizeof(struct wa_blob) + padded;
    struct wa_record *r = rec(b);
    r->nblobs++;
    if (flags & WA_B_TRUNCATED)
        r->flags |= WA_F_TRUNCATED;
    if (flags & WA_B_UNREADABLE)
        r->flags |= WA_F_UNREADABLE;
}

/* The blob a record in b holds at this slot (argidx), or NULL. */
static inline const struct wa_blob *wa_blob_find(const struct wa_buf *b, uint16_t slot)
{
    if (b->len < sizeof(struct wa_record))
        return NULL;
    const struct wa_record *r = (const struct wa_record *)b->buf;
    uint32_t off = sizeof(struct wa_record);
    for (uint16_t k = 0; k < r->nblobs && off < b->len; k++) {
        const struct wa_blob *h = (const struct wa_blob *)(b->buf + off);
        if (h->argidx == slot)
            return h;
        off += (uint32_t)sizeof *h + ((h->len + 7u) & ~7u);
    }
    return NULL;
}

/* A whole blob from bytes already in hand. */
static inline void blob_put(struct wa_buf *b, uint16_t argidx, uint16_t kind, const void *data,
                            uint32_t len, uint16_t flags)
{
    long off = blob_begin(b, argidx, kind, len);
    if (off < 0)
        return;
    if (len)
        memcpy(blob_data(b, off), data, len);
    blob_end(b, off, len, flags);
}
#endif
