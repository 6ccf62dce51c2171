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
    struct iovec local[WA_WINDOWS_MAX], remote[WA_WINDOWS_MAX];
    if (n > WA_WINDOWS_MAX)
        n = WA_WINDOWS_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t in_page = PAGE - (size_t)(addrs[i] & (PAGE - 1));
        size_t w = in_page < WA_WINDOW ? in_page : WA_WINDOW;
        remote[i].iov_base = (void *)(uintptr_t)addrs[i];
        remote[i].iov_len = w;
        local[i].iov_base = win + i * WA_WINDOW;
        local[i].iov_len = w;
        got[i] = 0;
    }
    if (!n || vm_broken)
        return;
    ssize_t r = process_vm_readv(tid, local, (unsigned long)n, remote, (unsigned long)n, 0);
    if (r <= 0)
        return;
    /* A read stops at the first window it cannot read; each window is inside one page. */
    size_t left = (size_t)r;
    for (size_t i = 0; i < n && left >= remote[i].iov_len; i++) {
        got[i] = (uint32_t)remote[i].iov_len;
        left -= remote[i].iov_len;
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
