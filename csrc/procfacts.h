/* Context captured while a tracee is stopped: what a later reader of /proc or the
 * filesystem could get wrong (the process exits, the file is removed, the fd reused). */
#ifndef WA_PROCFACTS_H
#define WA_PROCFACTS_H
#include "recbuf.h"
#include "record.h"

#include <sys/types.h>

/* Reads a whole file into buf (at most cap bytes); -1 when it cannot be opened, *truncated
 * when more was left. */
ssize_t wa_slurp(const char *path, void *buf, size_t cap, int *truncated);
/* What of a process's facts to read, beside the exe's stat and link and the cwd link:
 * /proc/PID/stat (ids, terminal, start); the rest (status: credentials, capabilities,
 * namespace ids; the loginuid; the fd limit). */
enum { WA_FACTS_STAT = 1u, WA_FACTS_REST = 2u, WA_FACTS_ALL = 3u };
/* Appends the process facts (WA_SLOT_PROC), exe and cwd links to the record in b; returns
 * the facts' offset in b (-1: no room). A caller that reads less completes them later
 * with wa_proc_facts_more. */
long wa_capture_proc_facts(pid_t tid, struct wa_buf *b, unsigned what);
/* Reads what into f (the stat facts only if f lacks them). */
void wa_proc_facts_more(pid_t tid, struct wa_proc_facts *f, unsigned what);
/* Appends the facts of a file a path names, seen from the tracee (relative to its cwd),
 * at slot; returns 0 when it could be stat'ed. Only used when it is not the exe. */
int wa_capture_file_facts(pid_t tid, const char *path, uint16_t slot, struct wa_buf *b,
                          const struct wa_file_facts *unless);
/* Appends the target of /proc/TID/<what> (e.g. "cwd", "fd/3") at slot; 0 on success. */
int wa_capture_link(pid_t tid, const char *what, uint16_t slot, struct wa_buf *b);
/* Appends the link of fd and, for a socket, its two ends (slots +i). */
void wa_capture_fd(pid_t tgid, pid_t tid, int fd, int i, struct wa_buf *b);
/* Appends /proc/TID/comm at WA_SLOT_COMM. */
void wa_capture_comm(pid_t tid, struct wa_buf *b);
#endif
