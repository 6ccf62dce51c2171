#define _GNU_SOURCE
#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <unistd.h>

#define PAGE 4096u
#define MAX_IOV 64

static size_t read_vm(pid_t tid, uint64_t addr, uint8_t *dst, size_t len)
{
    struct iovec local, remote[MAX_IOV];
    size_t total = 0;
    while (total < len) {
        int n = 0;
        size_t chunk = 0;
        uint64_t a = addr + total;
        while (n < MAX_IOV && total + chunk < len) {
            size_t in_page = PAGE - (size_t)((a + chunk) & (PAGE - 1));
            size_t take = len - total - chunk < in_page ? len - total - chunk : in_page;
            remote[n].iov_base = (void *)(uintptr_t)(a + chunk);
            remote[n].iov_len = take;
            chunk += take;
            n++;
        }
        local.iov_base = dst + total;
        local.iov_len = chunk;
        ssize_t got = process_vm_readv(tid, &local, 1, remote, (unsigned long)n, 0);
        if (got <= 0)
            return total;
        total += (size_t)got;
        if ((size_t)got < chunk)
            return total;   /* stopped at an unreadable page */
    }
    return total;
}

static size_t read_procmem(pid_t tid, uint64_t addr, uint8_t *dst, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t total = 0;
    while (total < len) {
        ssize_t got = pread(fd, dst + total, len - total, (off_t)(addr + total));
        if (got <= 0)
            break;
        total += (size_t)got;
    }
    close(fd);
    return total;
}

static size_t read_peek(pid_t tid, uint64_t addr, uint8_t *dst, size_t len)
{
    size_t total = 0;
    while (total < len) {
        uint64_t a = (addr + total) & ~(uint64_t)7;
        size_t skip = (size_t)((addr + total) - a);
        errno = 0;
        long word = ptrace(PTRACE_PEEKDATA, tid, (void *)(uintptr_t)a, NULL);
        if (errno)
            break;
        size_t take = sizeof word - skip;
        if (take > len - total)
            take = len - total;
        memcpy(dst + total, (uint8_t *)&word + skip, take);
        total += take;
    }
    return total;
}

static int vm_broken;  /* process_vm_readv unavailable (ENOSYS/EPERM): skip it */

size_t wa_mem_read(pid_t tid, uint64_t addr, void *dst, size_t len)
{
    if (!addr || !len)
        return 0;
    size_t got = 0;
    if (!vm_broken) {
        errno = 0;
        got = read_vm(tid, addr, dst, len);
        if (got == 0 && (errno == ENOSYS || errno == EPERM))
            vm_broken = 1;
        else
            return got;
    }
    got = read_procmem(tid, addr, dst, len);
    if (got)
        return got;
    return read_peek(tid, addr, dst, len);
}

void wa_mem_read_windows(pid_t tid, const uint64_t *addrs, size_t n, uint8_t *win, uint32_t *got)
{
    if (n > WA_WINDOWS_MAX)
        n = WA_WINDOWS_MAX;
    size_t w[WA_WINDOWS_MAX];
    uint8_t ord[WA_WINDOWS_MAX], rix[WA_WINDOWS_MAX];
    for (size_t i = 0; i < n; i++) {
        size_t in_page = PAGE - (size_t)(addrs[i] & (PAGE - 1));
        w[i] = in_page < WA_WINDOW ? in_page : WA_WINDOW;
        got[i] = 0;
        ord[i] = (uint8_t)i;
    }
    if (!n || vm_broken)
        return;
    /* The windows merged where they overlap or touch: an exec's strings lie side by side,
     * and the kernel pins each remote iovec's pages anew, so 40 windows on one page cost
     * 40 pins where one range costs one. Read in address order, split at page ends, so a
     * read that stops at an unmapped page has read exactly the ranges before it. */
    for (size_t i = 1; i < n; i++) {
        uint8_t k = ord[i];
        size_t j = i;
        for (; j > 0 && addrs[ord[j - 1]] > addrs[k]; j--)
            ord[j] = ord[j - 1];
        ord[j] = k;
    }
    struct { uint64_t a, e; size_t off; } rg[WA_WINDOWS_MAX];
    size_t nr = 0, staged = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = ord[k];
        uint64_t a = addrs[i], e = a + w[i];
        if (nr && a <= rg[nr - 1].e) {
            if (e > rg[nr - 1].e)
                rg[nr - 1].e = e;
        } else {
            rg[nr].a = a;
            rg[nr].e = e;
            nr++;
        }
        rix[i] = (uint8_t)(nr - 1);
    }
    struct iovec local, remote[WA_WINDOWS_MAX];
    size_t nrem = 0;
    for (size_t r = 0; r < nr; r++) {
        rg[r].off = staged;
        for (uint64_t a = rg[r].a; a < rg[r].e && nrem < WA_WINDOWS_MAX;) {
            uint64_t page_end = (a | (PAGE - 1)) + 1;
            uint64_t e = rg[r].e < page_end ? rg[r].e : page_end;
            remote[nrem].iov_base = (void *)(uintptr_t)a;
            remote[nrem].iov_len = (size_t)(e - a);
            nrem++;
            a = e;
        }
        staged += (size_t)(rg[r].e - rg[r].a);
    }
    /* The union of the windows is no larger than their sum: it fits. */
    uint8_t stage[WA_WINDOWS_MAX * WA_WINDOW];
    local.iov_base = stage;
    local.iov_len = staged;
    ssize_t r = process_vm_readv(tid, &local, 1, remote, (unsigned long)nrem, 0);
    if (r <= 0)
        return;
    for (size_t i = 0; i < n; i++) {
        size_t pos = rg[rix[i]].off + (size_t)(addrs[i] - rg[rix[i]].a);
        if (pos + w[i] <= (size_t)r) {
            memcpy(win + i * WA_WINDOW, stage + pos, w[i]);
            got[i] = (uint32_t)w[i];
        }
    }
}

size_t wa_mem_read_str(pid_t tid, uint64_t addr, char *dst, size_t max, int *truncated, int *unreadable)
{
    size_t total = 0;
    *truncated = 0;
    *unreadable = 0;
    if (!addr) {
        *unreadable = 1;
        return 0;
    }
    /* Most strings are short: read a small first chunk, then the rest page by page. */
    size_t first = 256;
    while (total < max) {
        size_t in_page = PAGE - (size_t)((addr + total) & (PAGE - 1));
        size_t want = max - total < in_page ? max - total : in_page;
        if (total == 0 && want > first)
            want = first;
        size_t got = wa_mem_read(tid, addr + total, dst + total, want);
        void *nul = got ? memchr(dst + total, 0, got) : NULL;
        if (nul)
            return (size_t)((char *)nul - dst);
        total += got;
        if (got < want) {
            *unreadable = 1;
            return 0;
        }
    }
    *truncated = 1;
    return total;
}
