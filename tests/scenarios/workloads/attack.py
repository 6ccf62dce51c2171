"""Attack-like actions for the scenario tests: each does the real system calls an
attacker would, in a way that leaves nothing behind and contacts no other machine.

    python3 attack.py ACTION [ARGS...]

Many actions need privileges; run without them they fail with EPERM/EACCES after
having made the call, which is what the rules look at (attempts count).
"""
from __future__ import annotations

import ctypes
import os
import socket
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)

PTRACE_TRACEME = 0
PTRACE_ATTACH = 16
CLONE_NEWUTS = 0x04000000


def _report(what: str, ret: int) -> None:
    err = ctypes.get_errno() if ret < 0 else 0
    print(f"{what}: ret={ret} errno={os.strerror(err) if err else 0}", flush=True)


def ptrace_attach() -> None:
    """Attach to a child process, as an injector would."""
    pid = os.fork()
    if pid == 0:
        time.sleep(2)
        os._exit(0)
    _report("PTRACE_ATTACH", libc.ptrace(PTRACE_ATTACH, pid, None, None))
    os.kill(pid, 9)
    os.waitpid(pid, 0)


def ptrace_traceme() -> None:
    """The anti-debugging probe: fails when a tracer is already attached."""
    _report("PTRACE_TRACEME", libc.ptrace(PTRACE_TRACEME, 0, None, None))


def kernel_module() -> None:
    """Offer the kernel a module image (not a valid ELF: it is refused)."""
    image = ctypes.create_string_buffer(b"\x7fELF-not-a-real-module" + b"\0" * 64)
    _report("init_module", libc.init_module(image, ctypes.sizeof(image), b""))


def unshare_uts() -> None:
    _report("unshare(CLONE_NEWUTS)", libc.unshare(CLONE_NEWUTS))


def setns_self() -> None:
    """nsenter-style: join a namespace by fd (our own UTS namespace: a no-op)."""
    fd = os.open("/proc/self/ns/uts", os.O_RDONLY)
    _report("setns", libc.setns(fd, CLONE_NEWUTS))
    os.close(fd)


def mount_host_disk(target: str) -> None:
    """Try to mount a block device of the host (a device that does not exist)."""
    os.makedirs(target, exist_ok=True)
    _report("mount", libc.mount(b"/dev/wa-scenario-no-such-disk", target.encode(), b"ext4", 0, None))


def packet_socket() -> None:
    try:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        s.close()
        print("AF_PACKET socket: ok")
    except OSError as exc:
        print(f"AF_PACKET socket: {exc}")


def udp_connect(host: str, port: str) -> None:
    """connect() a UDP socket: sets the destination without sending any packet."""
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect((host, int(port)))
        print(f"connected to {host}:{port}")
    except OSError as exc:
        print(f"connect {host}:{port}: {exc}")
    finally:
        s.close()


def memfd_exec(program: str = "/bin/sleep", *args: str) -> None:
    """Copy a binary into an anonymous memory file and execute it from there
    (by default a payload that stays a moment, like a real implant)."""
    with open(program, "rb") as fh:
        code = fh.read()
    fd = os.memfd_create("payload", 0)
    os.write(fd, code)
    os.execv(f"/proc/self/fd/{fd}", ["payload", *(args or (("1",) if program == "/bin/sleep" else ()))])


def memfd_fexecve(program: str = "/bin/true") -> None:
    """The same through fexecve(): execveat(fd, "", AT_EMPTY_PATH), no path at all."""
    with open(program, "rb") as fh:
        code = fh.read()
    fd = os.memfd_create("payload", 0)
    os.write(fd, code)
    os.execve(fd, ["payload"], dict(os.environ))


def reverse_shell() -> None:
    """Wire a shell's stdio to a TCP connection (the listener is ours, on loopback)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    conn = socket.create_connection(listener.getsockname())
    peer, _ = listener.accept()
    pid = os.fork()
    if pid == 0:
        for std in (0, 1, 2):
            os.dup2(conn.fileno(), std)
        os.execv("/bin/sh", ["sh", "-c", "echo reverse-shell-ok"])
    conn.close()
    os.waitpid(pid, 0)
    print(peer.recv(100).decode().strip())


def pty_shell() -> None:
    """An interactive shell on a terminal, as `docker exec -it` gives: commands are
    typed into the terminal and the session lasts a moment, like a person's would."""
    pid, master = os.forkpty()
    if pid == 0:
        os.execv("/bin/sh", ["sh", "-i"])
    os.write(master, b"id; echo interactive; sleep 1; exit\n")
    out = b""
    while True:
        try:
            chunk = os.read(master, 100)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    print(out.decode(errors="replace").strip())


def write_new(path_dir: str, flags: str = "create") -> None:
    """Create a unique file in a protected directory and remove it again."""
    path = os.path.join(path_dir, f".wa-scenario-{os.getpid()}")
    mode = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    if flags == "truncate":
        mode = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    try:
        fd = os.open(path, mode, 0o644)
    except OSError as exc:
        print(f"open {path}: {exc}")
        return
    os.close(fd)
    os.unlink(path)
    print(f"wrote and removed {path}")


def release_agent(workdir: str) -> None:
    """Write a cgroup release_agent file (a copy in the work directory: the kernel's
    own is not touched)."""
    cg = os.path.join(workdir, "cgrp")
    os.makedirs(cg, exist_ok=True)
    with open(os.path.join(cg, "release_agent"), "w") as fh:
        fh.write("/cmd\n")
    print("release_agent written")


NOBODY = 65534
SYS_USERFAULTFD = 323
SYS_IO_URING_SETUP = 425
SYS_IO_URING_ENTER = 426
SYS_IO_URING_REGISTER = 427
SYS_BPF = 321
SYS_PIDFD_OPEN = 434
SYS_PIDFD_GETFD = 438
SYS_PROCESS_VM_WRITEV = 311
BPF_PROG_LOAD = 5


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def _drop_root() -> None:
    """Act as an unprivileged user (root first becomes nobody, as an exploited daemon
    would be): the rules are about what unprivileged processes try."""
    if os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)


def setuid_root() -> None:
    """Ask for root with each call of the family; the kernel refuses them all."""
    _drop_root()
    _report("setuid(0)", libc.setuid(0))
    _report("setreuid(0, 0)", libc.setreuid(0, 0))
    _report("setresuid(0, 0, 0)", libc.setresuid(0, 0, 0))
    _report("setgid(0)", libc.setgid(0))


def userfaultfd() -> None:
    """The syscall and the /dev/userfaultfd device, as an unprivileged process."""
    _drop_root()
    fd = libc.syscall(SYS_USERFAULTFD, 0)
    _report("userfaultfd", fd)
    if fd >= 0:
        os.close(fd)
    try:
        os.close(os.open("/dev/userfaultfd", os.O_RDWR))
        print("/dev/userfaultfd opened")
    except OSError as exc:
        print(f"/dev/userfaultfd: {exc}")


def io_uring() -> None:
    """Set up a ring and try to register a file table with it (nothing is submitted)."""
    params = ctypes.create_string_buffer(120)
    fd = libc.syscall(SYS_IO_URING_SETUP, 4, params)
    _report("io_uring_setup", fd)
    if fd >= 0:
        files = (ctypes.c_int * 1)(0)
        _report("io_uring_register", libc.syscall(SYS_IO_URING_REGISTER, fd, 2, files, 1))
        os.close(fd)


def bpf_prog_load() -> None:
    """BPF_PROG_LOAD with an empty program: refused (EINVAL or EPERM)."""
    attr = ctypes.create_string_buffer(128)
    _report("bpf(BPF_PROG_LOAD)", libc.syscall(SYS_BPF, BPF_PROG_LOAD, attr, 128))


def _child_that_waits():
    marker = ctypes.create_string_buffer(b"original", 16)
    pid = os.fork()
    if pid == 0:
        time.sleep(2)
        os._exit(0)
    return pid, marker


def process_vm_write() -> None:
    """Overwrite a buffer in a child's memory (the same address after fork)."""
    pid, marker = _child_that_waits()
    local = ctypes.create_string_buffer(b"injected", 16)
    liov = _IoVec(ctypes.cast(local, ctypes.c_void_p), 8)
    riov = _IoVec(ctypes.cast(marker, ctypes.c_void_p), 8)
    _report("process_vm_writev", libc.syscall(SYS_PROCESS_VM_WRITEV, pid, ctypes.byref(liov), 1,
                                               ctypes.byref(riov), 1, 0))
    os.kill(pid, 9)
    os.waitpid(pid, 0)


def proc_mem_write() -> None:
    """Open a child's /proc/PID/mem for writing (nothing is written)."""
    pid, _ = _child_that_waits()
    try:
        os.close(os.open(f"/proc/{pid}/mem", os.O_RDWR))
        print("/proc/PID/mem opened for writing")
    except OSError as exc:
        print(f"/proc/PID/mem: {exc}")
    os.kill(pid, 9)
    os.waitpid(pid, 0)


def pidfd_getfd() -> None:
    """Copy a child's standard input descriptor into this process."""
    pid, _ = _child_that_waits()
    pidfd = libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    _report("pidfd_open", pidfd)
    if pidfd >= 0:
        fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, 0, 0)
        _report("pidfd_getfd", fd)
        if fd >= 0:
            os.close(fd)
        os.close(pidfd)
    os.kill(pid, 9)
    os.waitpid(pid, 0)


def open_path(path: str, how: str = "read") -> None:
    """Open a path (read, write or append-without-create) and close it again."""
    flags = {"read": os.O_RDONLY, "write": os.O_WRONLY,
             "append": os.O_WRONLY | os.O_APPEND}[how]
    try:
        os.close(os.open(path, flags))
        print(f"opened {path} for {how}")
    except OSError as exc:
        print(f"open {path}: {exc}")


def pkexec_no_args(workdir: str) -> None:
    """PwnKit's first step: run pkexec with argv == NULL (a copy of /bin/true named
    pkexec; the kernel turns the empty argv into [""])."""
    target = os.path.join(workdir, "pkexec")
    with open("/bin/true", "rb") as src, open(target, "wb") as dst:
        dst.write(src.read())
    os.chmod(target, 0o755)
    pid = os.fork()
    if pid == 0:
        envp = (ctypes.c_char_p * 2)(b"PATH=/usr/bin:/bin", None)
        libc.execve(target.encode(), None, envp)
        os._exit(127)
    _, status = os.waitpid(pid, 0)
    print(f"pkexec with no argv: status {status}")


def log_tamper(path_dir: str) -> None:
    """The other calls of the log-clearing family: truncate, ftruncate, and moving a
    log out of /var/log."""
    path = os.path.join(path_dir, f".wa-scenario-{os.getpid()}")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as exc:
        print(f"open {path}: {exc}")
        for call in (lambda: os.truncate(path, 0), lambda: os.rename(path, path + ".gone")):
            try:
                call()
            except OSError as exc2:
                print(f"  {exc2}")
        return
    os.write(fd, b"evidence\n")
    os.ftruncate(fd, 0)
    os.close(fd)
    os.truncate(path, 0)
    moved = f"/tmp/.wa-scenario-moved-{os.getpid()}"
    try:
        os.rename(path, moved)  # EXDEV when /tmp is another filesystem: still an attempt
        os.unlink(moved)
    except OSError:
        os.unlink(path)
    print(f"truncated and removed {path}")


def timestomp(path_dir: str) -> None:
    """Rewind a file's times: utimensat by path, then futimens by descriptor."""
    path = os.path.join(path_dir, f".wa-scenario-{os.getpid()}")
    old = (978307200, 978307200)  # 2001-01-01
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as exc:
        print(f"open {path}: {exc}")
        try:
            os.utime(path, old)
        except OSError as exc2:
            print(f"utime {path}: {exc2}")
        return
    try:
        os.utime(path, old)
        os.utime(fd, old)
    finally:
        os.close(fd)
        os.unlink(path)
    print(f"timestomped and removed {path}")


def bin_dir_changes(path_dir: str) -> None:
    """The rest of the binary-directory family: mkdir, rename within, unlink."""
    base = os.path.join(path_dir, f".wa-scenario-{os.getpid()}")
    try:
        os.mkdir(base + ".d")
        os.rmdir(base + ".d")
    except OSError as exc:
        print(f"mkdir: {exc}")
    for call in (lambda: os.rename(base + ".a", base + ".b"), lambda: os.unlink(base + ".b")):
        try:
            call()
        except OSError as exc:
            print(f"  {exc}")
    print("binary directory calls made")


def io_uring_open(path: str) -> None:
    """Open a file through an io_uring submission (IORING_OP_OPENAT) instead of the
    openat system call: the kernel performs the open for the ring, no syscall names
    the file."""
    import mmap
    import struct

    params = ctypes.create_string_buffer(120)
    ring = libc.syscall(SYS_IO_URING_SETUP, 4, params)
    if ring < 0:
        _report("io_uring_setup", ring)
        return
    sq_entries, cq_entries = struct.unpack_from("II", params, 0)
    sq_off = struct.unpack_from("IIIIIIII", params, 40)  # head tail mask entries flags dropped array
    cq_off = struct.unpack_from("IIIIII", params, 80)    # head tail mask entries overflow cqes
    sq = mmap.mmap(ring, sq_off[6] + sq_entries * 4, offset=0)
    cq = mmap.mmap(ring, cq_off[5] + cq_entries * 16, offset=0x8000000)
    sqes = mmap.mmap(ring, sq_entries * 64, offset=0x10000000)
    name = ctypes.create_string_buffer(path.encode())
    sqe = struct.pack("<BBHiQQIIQ", 18, 0, 0, -100, 0, ctypes.addressof(name), 0, os.O_RDONLY, 7)
    sqes[0:64] = sqe.ljust(64, b"\0")
    tail = struct.unpack_from("I", sq, sq_off[1])[0]
    mask = struct.unpack_from("I", sq, sq_off[2])[0]
    struct.pack_into("I", sq, sq_off[6] + 4 * (tail & mask), 0)
    struct.pack_into("I", sq, sq_off[1], tail + 1)
    _report("io_uring_enter", libc.syscall(SYS_IO_URING_ENTER, ring, 1, 1, 1, None, 0))
    head = struct.unpack_from("I", cq, cq_off[0])[0]
    cmask = struct.unpack_from("I", cq, cq_off[2])[0]
    _, res, _ = struct.unpack_from("<QiI", cq, cq_off[5] + 16 * (head & cmask))
    print(f"io_uring openat {path}: res={res}")
    if res >= 0:
        os.close(res)
    for m in (sq, cq, sqes):
        m.close()
    os.close(ring)


def decode_in_process(script: str) -> None:
    """Decode a payload inside a script file (no decoder program, nothing on the command
    line) and run it."""
    import base64

    with open(script) as fh:
        blob = fh.read().strip()
    os.system(base64.b64decode(blob).decode())


def overwrite_and_delete(path: str) -> None:
    """Destroy a file's content without a wiping tool: overwrite it, then unlink it."""
    size = os.path.getsize(path)
    with open(path, "r+b") as fh:
        fh.write(os.urandom(size))
        fh.flush()
        os.fsync(fh.fileno())
    os.unlink(path)
    print(f"overwrote and removed {path}")


def port_scan(host: str, count: str) -> None:
    """connect() to many ports of a host; closed ports answer with a refusal at once."""
    refused = 0
    listener = socket.socket()
    listener.bind((host, 0))
    base = listener.getsockname()[1]
    listener.close()
    for i in range(int(count)):
        s = socket.socket()
        s.settimeout(1)
        try:
            s.connect((host, (base + 1 + i) % 65536 or 1))
        except OSError:
            refused += 1
        finally:
            s.close()
    print(f"scanned {count} ports of {host}: {refused} closed")


def mass_rename(directory: str, count: str, mode: str = "rename") -> None:
    """Ransomware-like: "encrypt" files in place and rename each with an added
    extension, or (mode "rewrite") write an encrypted copy and delete the original."""
    os.makedirs(directory, exist_ok=True)
    for i in range(int(count)):
        path = os.path.join(directory, f"doc{i}.txt")
        with open(path, "w") as fh:
            fh.write("quarterly figures\n")
    for i in range(int(count)):
        path = os.path.join(directory, f"doc{i}.txt")
        with open(path, "rb") as fh:
            data = bytes(b ^ 0x5A for b in fh.read())
        if mode == "rename":
            with open(path, "wb") as fh:
                fh.write(data)
            os.rename(path, path + ".locked")
        else:
            with open(path + ".locked", "wb") as fh:
                fh.write(data)
            os.unlink(path)
    print(f"{count} files locked ({mode})")


ACTIONS = {
    "ptrace-attach": ptrace_attach,
    "ptrace-traceme": ptrace_traceme,
    "kernel-module": kernel_module,
    "unshare": unshare_uts,
    "setns": setns_self,
    "mount": mount_host_disk,
    "packet-socket": packet_socket,
    "udp-connect": udp_connect,
    "memfd-exec": memfd_exec,
    "memfd-fexecve": memfd_fexecve,
    "reverse-shell": reverse_shell,
    "pty-shell": pty_shell,
    "write-new": write_new,
    "release-agent": release_agent,
    "setuid-root": setuid_root,
    "userfaultfd": userfaultfd,
    "io-uring": io_uring,
    "bpf-prog-load": bpf_prog_load,
    "process-vm-write": process_vm_write,
    "proc-mem-write": proc_mem_write,
    "pidfd-getfd": pidfd_getfd,
    "open": open_path,
    "pkexec-no-args": pkexec_no_args,
    "log-tamper": log_tamper,
    "timestomp": timestomp,
    "bin-dir-changes": bin_dir_changes,
    "io-uring-open": io_uring_open,
    "decode-in-process": decode_in_process,
    "overwrite-and-delete": overwrite_and_delete,
    "port-scan": port_scan,
    "mass-rename": mass_rename,
}

if __name__ == "__main__":
    ACTIONS[sys.argv[1]](*sys.argv[2:])
