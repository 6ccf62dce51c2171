"""What the C tracer reads from tracee memory for one syscall argument.

The numbers are part of the C <-> Python contract: csrc/ mirrors them, so they
never change meaning once released. A capture spec is ``(kind, len_arg)``:
``len_arg`` is the index of the syscall argument that gives the length (or,
for SOCKADDR_OUT, points at the socklen_t holding it); -1 when unused.
"""
from __future__ import annotations

NONE = 0
#: NUL-terminated path at the pointer (up to PATH_MAX bytes), read at entry.
PATH = 1
#: NUL-terminated string (up to 4096 bytes), read at entry.
STR = 2
#: sockaddr at the pointer, ``len_arg`` holds its length; read at entry.
SOCKADDR = 3
#: NULL-terminated char* array (argv/envp); blob = strings, each NUL-terminated.
ARGV = 4
#: raw bytes at the pointer, length from ``len_arg``, capped to BUF_CAP.
BUF = 5
#: sockaddr written by the kernel, read at EXIT; ``len_arg`` points at a socklen_t.
SOCKADDR_OUT = 6
#: struct msghdr at the pointer; blob = msg_name (msg_namelen bytes).
MSGHDR_NAME = 7
#: struct open_how of the size in ``len_arg``; blob = its raw bytes.
OPEN_HOW = 8
#: two ints at the pointer, read at EXIT (pipe/pipe2/socketpair fds).
INT_PAIR_OUT = 9
#: at EXIT: the local address (getsockname) of the socket whose fd is this argument, read
#: by the tracer through pidfd_getfd while the thread is stopped (a process that exits or
#: execs right after connect would otherwise take the address with it).
SOCKNAME_OUT = 10
#: at EXIT: the local address of the socket the syscall returned (accept); the slot's own
#: argument is unused.
SOCKNAME_RET = 11

#: Context read by the tracer at the stop (not argument memory); blob slots below.
PROC_FACTS = 12
FILE_FACTS = 13
LINK = 14
#: spec kind for an fd argument: its /proc link and, for a socket, both ends, read at entry
#: (the fd may be closed and its number reused before anyone else could look).
FD_ORIGIN = 15
SOCK_LOCAL = 16
SOCK_PEER = 17
#: spec kind (exit): the thread's comm after the call (prctl PR_SET_NAME).
COMM_OUT = 18
#: spec kind (entry): capset's two struct __user_cap_data_struct.
CAPDATA = 19

# Blob slots beyond the six arguments (csrc/record.h enum wa_slot).
SLOT_PROC = 8
SLOT_EXE = 9
SLOT_CWD = 10
SLOT_SCRIPT = 11
SLOT_COMM = 12
SLOT_CMDLINE = 13    # ARGV: /proc/TGID/cmdline at an attach
SLOT_ENVIRON = 14    # ARGV: /proc/TGID/environ at an attach
SLOT_CGROUP = 15     # STR: /proc/TGID/cgroup at an attach
SLOT_BASE = 16       # + argument index of a relative path: its base directory
SLOT_FD = 24         # + argument index of an fd: its /proc link
SLOT_FD_LOCAL = 32   # + argument index: the socket's own address
SLOT_FD_PEER = 40    # + argument index: the socket's peer

#: For PATH: ``len_arg`` names the dirfd argument a relative path resolves against
#: (-1: the cwd); the tracer then sends that directory in slot SLOT_BASE + i.

PATH_MAX = 4096
STR_MAX = 4096
BUF_CAP = 256

NAMES = {
    NONE: "NONE",
    PATH: "PATH",
    STR: "STR",
    SOCKADDR: "SOCKADDR",
    ARGV: "ARGV",
    BUF: "BUF",
    SOCKADDR_OUT: "SOCKADDR_OUT",
    MSGHDR_NAME: "MSGHDR_NAME",
    OPEN_HOW: "OPEN_HOW",
    INT_PAIR_OUT: "INT_PAIR_OUT",
    SOCKNAME_OUT: "SOCKNAME_OUT",
    SOCKNAME_RET: "SOCKNAME_RET",
    PROC_FACTS: "PROC_FACTS",
    FILE_FACTS: "FILE_FACTS",
    LINK: "LINK",
    FD_ORIGIN: "FD_ORIGIN",
    SOCK_LOCAL: "SOCK_LOCAL",
    SOCK_PEER: "SOCK_PEER",
    COMM_OUT: "COMM_OUT",
    CAPDATA: "CAPDATA",
}

#: Kinds whose memory only has a meaning after the syscall ran.
AT_EXIT = frozenset({SOCKADDR_OUT, INT_PAIR_OUT, SOCKNAME_OUT, SOCKNAME_RET, COMM_OUT})
#: Kinds whose length comes from another argument.
NEEDS_LEN_ARG = frozenset({SOCKADDR, BUF, SOCKADDR_OUT, OPEN_HOW})
