/* Reading tracee memory: page-split process_vm_readv, then /proc/pid/mem, then
 * PTRACE_PEEKDATA, so a string that runs into an unmapped page keeps its readable part. */
#ifndef WA_MEM_H
#define WA_MEM_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Read up to len bytes at addr; returns bytes read (0 if the first byte is unreadable). */
size_t wa_mem_read(pid_t tid, uint64_t addr, void *dst, size_t len);
/* Read a NUL-terminated string of at most max bytes (NUL excluded) into dst (capacity max).
 * Returns its length; *truncated set if no NUL within max. *unreadable (and 0 returned) when
 * the string runs into memory that cannot be read before its NUL: the kernel fails such a
 * call with EFAULT, so the readable part is not what the call saw. */
size_t wa_mem_read_str(pid_t tid, uint64_t addr, char *dst, size_t max, int *truncated, int *unreadable);

/* The first bytes of up to WA_WINDOWS_MAX strings in one system call (an exec's argv and
 * environment are dozens of strings): for string i, the bytes from addrs[i] to the end of
 * its page, at most WA_WINDOW, into win + i * WA_WINDOW; got[i] the bytes read (0: not
 * read here, read it alone with wa_mem_read_str). */
#define WA_WINDOW 256u
#define WA_WINDOWS_MAX 64u
void wa_mem_read_windows(pid_t tid, const uint64_t *addrs, size_t n, uint8_t *win, uint32_t *got);
#endif
