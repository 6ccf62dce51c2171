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
/* Appends the process facts (WA_SLOT_PROC), exe and cwd links to the record in b; returns
 * the facts' offset in b (-1: no room). Without rest, the facts lack what
 * wa_proc_facts_rest reads (status, loginuid, fd limit): a caller that defers them. */
long wa_capture_proc_facts(pid_t tid, struct wa_buf *b, int rest);
/* Reads what wa_capture_proc_facts(.., 0) left out into f. */
void wa_proc_facts_rest(pid_t tid, struct wa_proc_facts *f);
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
