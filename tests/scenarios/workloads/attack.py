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
}

if __name__ == "__main__":
    ACTIONS[sys.argv[1]](*sys.argv[2:])
