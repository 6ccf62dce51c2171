/* Single-producer (tracer thread) / single-consumer (Python) byte ring of records.
 * By default the producer never blocks: a record that does not fit is dropped and
 * counted. With never_drop (--priority security) it waits for the consumer to make
 * room instead, and counts the waits: the tracees stopped meanwhile wait with it. */
#ifndef WA_RING_H
#define WA_RING_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct wa_ring {
    uint8_t *data;
    uint64_t size;                 /* power of two */
    _Atomic uint64_t head;         /* written by the producer */
    _Atomic uint64_t tail;         /* written by the consumer */
    _Atomic int consumer_waiting;
    int efd;                       /* eventfd that wakes a waiting consumer */
    uint64_t drops_pending;        /* producer-only: dropped since the last DROP record */
    uint64_t drop_start_ns;        /* producer-only: CLOCK_REALTIME of the first of those */
    _Atomic uint64_t drops_total;
    _Atomic uint64_t records_total;
    int never_drop;                /* wait for room instead of dropping */
    _Atomic int producer_waiting;
    int room_efd;                  /* eventfd the consumer writes when it freed room */
    _Atomic uint64_t waits_total;  /* records that had to wait for room */
    _Atomic uint64_t wait_ns_total;
    _Atomic int closing;           /* set at teardown: a waiting producer gives up (drops) */
    uint64_t wake_gap_ns;          /* at most one wake-up per gap: a burst is read in batches */
    uint64_t last_wake_ns;         /* producer-only */
};

int wa_ring_init(struct wa_ring *r, uint64_t size);
void wa_ring_destroy(struct wa_ring *r);
/* Producer: copy one complete record in; returns 0, or -1 if it was dropped. */
int wa_ring_put(struct wa_ring *r, const void *rec, uint32_t len);
void wa_ring_wake(struct wa_ring *r);
/* Teardown: no consumer will come any more; a waiting producer drops from now on. */
void wa_ring_close(struct wa_ring *r);
/* Producer, at the end: report pending drops, waiting up to timeout_ms for room. */
void wa_ring_finish(struct wa_ring *r, int timeout_ms);
/* Consumer: copy whole records into buf; returns bytes copied. */
size_t wa_ring_get(struct wa_ring *r, uint8_t *buf, size_t cap);
int wa_ring_empty(struct wa_ring *r);
#endif
