/* Where the tracer thread runs. A stop wakes the tracer and a resume wakes the tracee:
 * when the two sit on different CPUs each wake-up is an inter-processor interrupt, which
 * costs several times a same-CPU switch (bench/stop_mechanisms.py). Following the tracee
 * keeps the ping-pong on one CPU without touching the workload's own affinity. */
#ifndef WA_PLACEMENT_H
#define WA_PLACEMENT_H
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <sys/types.h>

struct wa_placement {
    int enabled;
    int cpu;                 /* where the tracer is pinned now; -1: nowhere */
    uint32_t every;          /* stops between two looks */
    uint32_t count;
    cpu_set_t allowed;       /* the tracer's own mask at start: never leave it */
};

/* Enabled only when the tracer may run on more than one CPU. */
void wa_placement_init(struct wa_placement *p, int enabled, uint32_t every);
/* Called at a stop of tid: now and then, move the tracer to the CPU tid last ran on.
 * Returns 1 when it moved. */
int wa_placement_follow(struct wa_placement *p, pid_t tid);
#endif
