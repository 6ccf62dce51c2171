#include "placement.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void wa_placement_init(struct wa_placement *p, int enabled, uint32_t every)
{
    memset(p, 0, sizeof *p);
    p->cpu = -1;
    p->every = every ? every : 64;
    if (!enabled || sched_getaffinity(0, sizeof p->allowed, &p->allowed) != 0)
        return;
    p->enabled = CPU_COUNT(&p->allowed) > 1;
}

/* Field 39 of /proc/TID/stat: the CPU the task last ran on (it is stopped: it stays). */
static int last_cpu(pid_t tid)
{
    char path[40], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *s = strrchr(buf, ')');   /* the comm before it may hold spaces and parentheses */
    if (!s)
        return -1;
    int field = 2;
    for (; *s && field < 39; s++)
        if (*s == ' ')
            field++;
    return *s ? atoi(s) : -1;
}

int wa_placement_follow(struct wa_placement *p, pid_t tid)
{
    if (!p->enabled || ++p->count < p->every)
        return 0;
    p->count = 0;
    int cpu = last_cpu(tid);
    if (cpu < 0 || cpu == p->cpu || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &p->allowed))
        return 0;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0)
        return 0;
    p->cpu = cpu;
    return 1;
}
