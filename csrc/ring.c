#include "ring.h"
#include "record.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

int wa_ring_init(struct wa_ring *r, uint64_t size)
{
    uint64_t s = 1 << 16;
    while (s < size)
        s <<= 1;
    memset(r, 0, sizeof *r);
    r->data = aligned_alloc(64, s);
    if (!r->data)
        return -1;
    r->size = s;
    r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    r->room_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->efd < 0 || r->room_efd < 0) {
        if (r->efd >= 0)
            close(r->efd);
        if (r->room_efd >= 0)
            close(r->room_efd);
        free(r->data);
        return -1;
    }
    return 0;
}

void wa_ring_destroy(struct wa_ring *r)
{
    free(r->data);
    if (r->efd >= 0)
        close(r->efd);
    if (r->room_efd >= 0)
        close(r->room_efd);
    r->data = NULL;
    r->efd = -1;
    r->room_efd = -1;
}

void wa_ring_close(struct wa_ring *r)
{
    atomic_store(&r->closing, 1);
    uint64_t one = 1;
    ssize_t n = write(r->room_efd, &one, sizeof one);
    (void)n;
}

static int put_raw(struct wa_ring *r, const void *rec, uint32_t len);

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Back-pressure: block until the consumer has taken enough for len bytes to fit. The
 * poll timeout only guards against a lost wake-up; the consumer's write ends the wait. */
static int put_waiting(struct wa_ring *r, const void *rec, uint32_t len)
{
    if (put_raw(r, rec, len) == 0)
        return 0;
    if (len > r->size / 2)
        return -1;   /* might never fit across the wrap point, even in an empty ring */
    uint64_t t0 = mono_ns();
    atomic_fetch_add(&r->waits_total, 1);
    for (;;) {
        if (atomic_load(&r->closing))
            return -1;
        atomic_store(&r->producer_waiting, 1);
        if (put_raw(r, rec, len) == 0)
            break;
        /* The consumer may be asleep on its timer: wake it now that we are stuck. */
        uint64_t one = 1;
        ssize_t n = write(r->efd, &one, sizeof one);
        (void)n;
        struct pollfd p = { r->room_efd, POLLIN, 0 };
        if (poll(&p, 1, 20) > 0) {
            uint64_t v;
            n = read(r->room_efd, &v, sizeof v);
            (void)n;
        }
    }
    atomic_store(&r->producer_waiting, 0);
    atomic_fetch_add(&r->wait_ns_total, mono_ns() - t0);
    return 0;
}

/* Place len bytes contiguously, padding to the wrap point when needed. */
static int put_raw(struct wa_ring *r, const void *rec, uint32_t len)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint64_t off = head & (r->size - 1);
    uint64_t to_end = r->size - off;
    uint64_t need = len <= to_end ? len : to_end + len;
    if (r->size - (head - tail) < need)
        return -1;
    if (len > to_end) {
        struct wa_record *pad = (struct wa_record *)(r->data + off);
        pad->len = (uint32_t)to_end;
        pad->kind = WA_K_PAD;
        head += to_end;
        off = 0;
    }
    memcpy(r->data + off, rec, len);
    atomic_store_explicit(&r->head, head + len, memory_order_release);
    return 0;
}

void wa_ring_wake(struct wa_ring *r)
{
    if (atomic_exchange(&r->consumer_waiting, 0)) {
        uint64_t one = 1;
        ssize_t n = write(r->efd, &one, sizeof one);
        (void)n;
    }
}

static int put_drop(struct wa_ring *r)
{
    struct wa_record d;
    struct timespec ts;
    memset(&d, 0, sizeof d);
    clock_gettime(CLOCK_REALTIME, &ts);
    d.len = sizeof d;
    d.kind = WA_K_DROP;
    d.ts_enter = r->drop_start_ns;   /* the window the drops happened in */
    d.ts_exit = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    d.extra = (uint32_t)(r->drops_pending > UINT32_MAX ? UINT32_MAX : r->drops_pending);
    if (put_raw(r, &d, sizeof d) != 0)
        return -1;
    r->drops_pending = 0;
    return 0;
}

void wa_ring_finish(struct wa_ring *r, int timeout_ms)
{
    /* Tracing is over, nobody waits on us: the consumer must still learn of the last drops. */
    for (int waited = 0; r->drops_pending && waited < timeout_ms; waited++) {
        if (put_drop(r) == 0)
            break;
        wa_ring_wake(r);
        struct timespec ts = { 0, 1000000L };
        nanosleep(&ts, NULL);
    }
}

int wa_ring_put(struct wa_ring *r, const void *rec, uint32_t len)
{
    if (r->drops_pending)
        put_drop(r);
    if (r->never_drop && !r->drops_pending) {
        if (put_waiting(r, rec, len) == 0)
            goto stored;
    } else if (!r->drops_pending && put_raw(r, rec, len) == 0) {
        goto stored;
    }
    if (!r->drops_pending++) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        r->drop_start_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
    }
    atomic_fetch_add(&r->drops_total, 1);
    return -1;
stored:
    atomic_fetch_add_explicit(&r->records_total, 1, memory_order_relaxed);
    /* A waiting consumer is woken at once (alerts must not sit in the ring) unless it was
     * woken less than a gap ago: then it finds the records when its own gap-long wait ends.
     * A busy consumer finds them on its next read. */
    if (atomic_load_explicit(&r->consumer_waiting, memory_order_relaxed)) {
        uint64_t now = mono_ns();
        if (now - r->last_wake_ns >= r->wake_gap_ns) {
            r->last_wake_ns = now;
            wa_ring_wake(r);
        }
    }
    return 0;
}

int wa_ring_empty(struct wa_ring *r)
{
    return atomic_load(&r->head) == atomic_load(&r->tail);
}

size_t wa_ring_get(struct wa_ring *r, uint8_t *buf, size_t cap)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    size_t out = 0;
    while (tail != head) {
        const struct wa_record *rec = (const struct wa_record *)(r->data + (tail & (r->size - 1)));
        uint32_t len = rec->len;
        if (rec->kind != WA_K_PAD) {
            if (out + len > cap)
                break;
            memcpy(buf + out, rec, len);
            out += len;
        }
        tail += len;
    }
    atomic_store_explicit(&r->tail, tail, memory_order_release);
    if (out && atomic_exchange(&r->producer_waiting, 0)) {
        uint64_t one = 1;
        ssize_t n = write(r->room_efd, &one, sizeof one);
        (void)n;
    }
    return out;
}
