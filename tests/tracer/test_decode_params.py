"""decode_params: registers + return value + blobs -> Falco's exit-event params."""
from __future__ import annotations

import errno
import os
import signal
import socket
import struct

import pytest

from workload_agent.events import capture_kinds as K
from workload_agent.events.decode import Blob, FsPath, arg_text, decode_params, render_params
from workload_agent.events.flags import CLONE_LINUX, FILE_FLAGS, PTRACE_LINUX
from workload_agent.events.params import event_type
from workload_agent.events.sockaddr import SockAddr

AT_FDCWD_64 = (1 << 64) - 100       # -100 sign-extended in a 64-bit register
AT_FDCWD_32 = (1 << 32) - 100       # -100 as an int with garbage-free upper half
PPM = dict(FILE_FLAGS)


class Ctx:
    def __init__(self, cwd="/home/user/", fds=None, local=None, peer=None, proc=None):
        self._cwd, self._fds = cwd, fds or {}
        self._local, self._peer, self._proc = local or {}, peer or {}, proc or {}
        self.calls = []

    def cwd(self, tid):
        self.calls.append(("cwd", tid))
        return self._cwd

    def fd_path(self, tid, fd):
        self.calls.append(("fd_path", tid, fd))
        return self._fds.get(fd)

    def sock_local(self, tid, fd):
        return self._local.get(fd)

    def sock_peer(self, tid, fd):
        return self._peer.get(fd)

    def proc_params(self, tid, name, ret):
        return self._proc


def path_blob(s: str) -> Blob:
    return Blob(K.PATH, s.encode() + b"\0")


def args6(*a):
    return tuple(a) + (0,) * (6 - len(a))


def sin(ip, port):
    return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton(ip) + bytes(8)


# --- paths ---------------------------------------------------------------------------

@pytest.mark.parametrize("dirfd_reg", [AT_FDCWD_64, AT_FDCWD_32])
def test_openat_relative_to_cwd(dirfd_reg):
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    p = decode_params("openat", args6(dirfd_reg, 0x7000, flags, 0o640), 3,
                      {1: path_blob("notes/a.txt")}, Ctx(), tid=7)
    assert list(p) == ["fd", "dirfd", "name", "flags", "mode", "dev", "ino"]
    assert p["fd"] == 3 and p["dirfd"] == -100
    assert p["name"] == "/home/user/notes/a.txt"
    assert p["name"].raw == "notes/a.txt"
    assert p["flags"] == PPM["O_TRUNC"] | PPM["O_CREAT"] | PPM["O_WRONLY"]
    assert p["mode"] == 0o640
    assert p["dev"] is None and p["ino"] is None
    assert arg_text("openat", "flags", p["flags"]) == "O_TRUNC|O_CREAT|O_WRONLY"
    assert "O_TRUNC" in arg_text("openat", "flags", p["flags"])


def test_openat_absolute_path_is_kept_verbatim():
    p = decode_params("openat", args6(AT_FDCWD_64, 0, os.O_RDONLY, 0), 4,
                      {1: path_blob("//etc/../etc/shadow")}, Ctx())
    assert p["name"] == "//etc/../etc/shadow"
    assert p["name"].resolved == ""
    assert p["mode"] == 0  # no O_CREAT: mode is not reported


def test_openat_dotdot_and_dot_against_cwd():
    p = decode_params("openat", args6(AT_FDCWD_64, 0, 0, 0), 4,
                      {1: path_blob("../../../../etc/./passwd")}, Ctx(cwd="/srv/app/"))
    assert p["name"] == "/etc/passwd"
    assert p["name"].raw == "../../../../etc/./passwd"


def test_openat_relative_to_known_dirfd():
    ctx = Ctx(fds={5: "/var/lib"})
    p = decode_params("openat", args6(5, 0, 0, 0), 6, {1: path_blob("docker/x")}, ctx, tid=99)
    assert p["dirfd"] == 5
    assert p["name"] == "/var/lib/docker/x"
    assert ("fd_path", 99, 5) in ctx.calls


def test_openat_unknown_dirfd_falls_back_to_proc_fd_link():
    p = decode_params("openat", args6(9, 0, 0, 0), -errno.ENOENT, {1: path_blob("f")}, Ctx(), tid=42)
    assert p["name"] == "/proc/42/fd/9/f"
    assert p["fd"] == -errno.ENOENT


def test_openat_unknown_dirfd_and_no_tid_stays_unresolved():
    p = decode_params("openat", args6(9, 0, 0, 0), 3, {1: path_blob("f")}, Ctx())
    assert p["name"] == "f" and p["name"].resolved == ""


def test_open_relative_to_cwd_and_without_ctx():
    p = decode_params("open", args6(0, os.O_RDONLY), 3, {0: path_blob("x/../y")}, Ctx(cwd="/w/"))
    assert p["name"] == "/w/y"
    q = decode_params("open", args6(0, os.O_RDONLY), 3, {0: path_blob("y")}, None)
    assert q["name"] == "y" and q["name"].resolved == ""


def test_unreadable_and_missing_path_are_unavailable():
    bad = {1: Blob(K.PATH, b"", unreadable=True)}
    p = decode_params("openat", args6(AT_FDCWD_64, 0xdead, 0, 0), -errno.EFAULT, bad, Ctx())
    assert p["name"] is None
    assert "name=<NA>" in render_params("openat", p)
    assert decode_params("openat", args6(AT_FDCWD_64, 0, 0, 0), 3, {}, Ctx())["name"] is None


def test_truncated_path_keeps_what_was_read():
    data = b"/" + b"a" * 4095
    p = decode_params("open", args6(1, 0), -errno.ENAMETOOLONG,
                      {0: Blob(K.PATH, data, truncated=True)}, Ctx())
    assert p["name"] == data.decode()


def test_renameat2_each_path_uses_its_own_dirfd():
    ctx = Ctx(fds={3: "/old", 4: "/new/"})
    p = decode_params("renameat2", args6(3, 0, 4, 0, 1), 0,
                      {1: path_blob("a"), 3: path_blob("b")}, ctx, tid=1)
    assert list(p) == ["res", "olddirfd", "oldpath", "newdirfd", "newpath", "flags"]
    assert (p["oldpath"], p["newpath"]) == ("/old/a", "/new/b")
    assert arg_text("renameat2", "flags", p["flags"]) == "RENAME_NOREPLACE"


def test_unlinkat_flags_and_linkat_and_symlinkat():
    p = decode_params("unlinkat", args6(AT_FDCWD_64, 0, 0x200), 0, {1: path_blob("d")}, Ctx(cwd="/"))
    assert p["name"] == "/d" and arg_text("unlinkat", "flags", p["flags"]) == "AT_REMOVEDIR"
    p = decode_params("linkat", args6(AT_FDCWD_64, 0, AT_FDCWD_64, 0, 0x400), 0,
                      {1: path_blob("/etc/shadow"), 3: path_blob("s")}, Ctx(cwd="/tmp"))
    assert (p["oldpath"], p["newpath"]) == ("/etc/shadow", "/tmp/s")
    assert arg_text("linkat", "flags", p["flags"]) == "AT_SYMLINK_FOLLOW"
    p = decode_params("symlinkat", args6(0, AT_FDCWD_64, 0), 0,
                      {0: Blob(K.STR, b"/etc\0"), 2: path_blob("l")}, Ctx(cwd="/tmp/"))
    assert list(p) == ["res", "target", "linkdirfd", "linkpath"]
    assert p["target"] == "/etc" and p["linkpath"] == "/tmp/l"


def test_mkdir_mode_is_hex_and_chmod_mode_is_named():
    p = decode_params("mkdir", args6(0, 0o755), 0, {0: path_blob("/x")}, Ctx())
    assert "mode=1ED" in render_params("mkdir", p)
    p = decode_params("fchmodat", args6(AT_FDCWD_64, 0, 0o4755), 0, {1: path_blob("b")}, Ctx(cwd="/"))
    assert p["filename"] == "/b"
    text = arg_text("fchmodat", "mode", p["mode"])
    assert "S_ISUID" in text and "S_IXUSR" in text
    assert "mode=04755(" in render_params("fchmodat", p)


# --- process ----------------------------------------------------------------------------

ARGV = b"/bin/sh\0-c\0echo hi\0"
ENV = b"PATH=/bin\0HOME=/root\0"


def test_execve_success():
    ctx = Ctx(cwd="/root/", proc={"pid": 100, "tid": 100, "comm": "ignored-when-known"})
    blobs = {0: path_blob("bin/sh"), 1: Blob(K.ARGV, ARGV), 2: Blob(K.ARGV, ENV)}
    p = decode_params("execve", args6(1, 2, 3), 0, blobs, ctx)
    assert len(p) == 31 and list(p)[:3] == ["res", "exe", "args"] and list(p)[-1] == "filename"
    assert p["exe"] == "/bin/sh"
    assert p["args"] == b"-c\0echo hi\0"
    assert p["env"] == ENV
    assert p["comm"] == "sh"
    assert p["filename"] == "/root/bin/sh"
    assert p["pid"] == 100 and p["tid"] == 100
    assert p["ptid"] is None
    assert "args=-c.echo hi." in render_params("execve", p)
    assert event_type("execve", 0) == "execve"


def test_execve_failure_keeps_attempted_argv_and_no_new_comm():
    blobs = {0: path_blob("/nope"), 1: Blob(K.ARGV, b"nope\0x\0"), 2: Blob(K.ARGV, b"")}
    p = decode_params("execve", args6(1, 2, 3), -errno.ENOENT, blobs, Ctx())
    assert p["res"] == -errno.ENOENT and p["exe"] == "nope" and p["args"] == b"x\0"
    assert p["comm"] is None
    assert render_params("execve", p).startswith("res=-2(ENOENT) exe=nope args=x.")


def test_execve_comm_truncated_to_15():
    blobs = {0: path_blob("/usr/bin/a-very-long-program-name"), 1: Blob(K.ARGV, b"a\0")}
    p = decode_params("execve", args6(1, 2, 3), 0, blobs, None)
    assert p["comm"] == "a-very-long-pro"


def test_execveat_success_is_an_execve_with_dirfd_resolved_filename():
    blobs = {1: path_blob("tool"), 2: Blob(K.ARGV, b"tool\0-v\0"), 3: Blob(K.ARGV, ENV)}
    p = decode_params("execveat", args6(7, 0, 0, 0, 0), 0, blobs, Ctx(fds={7: "/opt/bin"}), tid=5)
    assert event_type("execveat", 0) == "execve"
    assert len(p) == 31
    assert p["filename"] == "/opt/bin/tool" and p["args"] == b"-v\0" and p["comm"] == "tool"
    failed = decode_params("execveat", args6(7, 0, 0, 0, 0), -errno.EACCES, blobs, Ctx())
    assert event_type("execveat", -errno.EACCES) == "execveat"
    assert len(failed) == 30 and "filename" not in failed


def test_execve_unreadable_argv():
    blobs = {0: path_blob("/bin/true"), 1: Blob(K.ARGV, b"", unreadable=True)}
    p = decode_params("execve", args6(1, 2, 3), -errno.EFAULT, blobs, None)
    assert p["exe"] is None and p["args"] is None and p["env"] is None
    assert "args=NULL" in render_params("execve", p)


def test_clone_fork_vfork_flags():
    f = CLONE_LINUX
    p = decode_params("clone", args6(f["CLONE_NEWNS"] | f["CLONE_NEWPID"] | signal.SIGCHLD), 1234, {}, None)
    assert p["res"] == 1234
    assert arg_text("clone", "flags", p["flags"]) == "CLONE_NEWNS|CLONE_NEWPID"
    assert arg_text("vfork", "flags", decode_params("vfork", args6(), 9, {}, None)["flags"]) == (
        "CLONE_VM|CLONE_VFORK")
    assert decode_params("fork", args6(), 0, {}, None)["flags"] == 0


def test_ptrace():
    p = decode_params("ptrace", args6(PTRACE_LINUX["PTRACE_POKEDATA"], 321, 0x7ffd0000, 0xCAFE),
                      0, {}, None)
    assert list(p) == ["res", "addr", "data", "request", "pid"]
    assert arg_text("ptrace", "request", p["request"]) == "PTRACE_POKEDATA"
    assert p["pid"] == 321
    assert "addr=7FFD0000 data=CAFE" in render_params("ptrace", p)
    p = decode_params("ptrace", args6(PTRACE_LINUX["PTRACE_TRACEME"]), None, {}, None)
    assert p["res"] is None and arg_text("ptrace", "request", p["request"]) == "PTRACE_TRACEME"
    assert "res=<NA>" in render_params("ptrace", p)


def test_kill_family():
    p = decode_params("kill", args6(55, signal.SIGKILL), 0, {}, None)
    assert render_params("kill", p) == "res=0 pid=55 sig=9(SIGKILL)"
    p = decode_params("tgkill", args6(10, 11, signal.SIGTERM), -errno.ESRCH, {}, None)
    assert render_params("tgkill", p) == "res=-3(ESRCH) pid=10 tid=11 sig=15(SIGTERM)"
    # pid -1 in a register is a negative pid, not 4294967295
    assert decode_params("kill", args6((1 << 64) - 1, 0), 0, {}, None)["pid"] == -1


def test_setuid_family_renders_minus_one():
    p = decode_params("setresuid", args6((1 << 32) - 1, 0, (1 << 64) - 1), 0, {}, None)
    assert render_params("setresuid", p) == "res=0 ruid=-1(<NONE>) euid=0 suid=-1(<NONE>)"

    class Names:
        def user_name(self, uid):
            return {65534: "nobody"}.get(uid, "<NA>")
    p = decode_params("setuid", args6(65534), 0, {}, None)
    assert arg_text("setuid", "uid", p["uid"], Names()) == "nobody"
    assert arg_text("setuid", "uid", p["uid"]) == "65534"


def test_unshare_setns():
    p = decode_params("unshare", args6(CLONE_LINUX["CLONE_NEWUSER"] | CLONE_LINUX["CLONE_NEWNS"]), 0, {}, None)
    assert arg_text("unshare", "flags", p["flags"]) == "CLONE_NEWNS|CLONE_NEWUSER"
    p = decode_params("setns", args6(3, 0), 0, {}, None)
    assert arg_text("setns", "nstype", p["nstype"]) == "0"


def test_prctl_set_name_and_other_options():
    p = decode_params("prctl", args6(15, 0x1000), 0, {1: Blob(K.STR, b"evil\0")}, None)
    assert p["arg2_str"] == "evil" and p["arg2_int"] is None
    assert arg_text("prctl", "option", p["option"]) == "PR_SET_NAME"
    p = decode_params("prctl", args6(36, 1), 0, {1: Blob(K.STR, b"", unreadable=True)}, None)
    assert p["arg2_str"] is None and p["arg2_int"] == 1
    assert arg_text("prctl", "option", p["option"]) == "PR_SET_CHILD_SUBREAPER"


def test_mount_memfd_init_module_bpf():
    p = decode_params("mount", args6(0, 0, 0, 0xC0ED0000 | 4096 | 16384),
                      0, {0: Blob(K.STR, b"/host\0"), 1: path_blob("mnt"), 2: Blob(K.STR, b"none\0")},
                      Ctx(cwd="/"))
    assert (p["dev"], p["dir"], p["type"]) == ("/host", "/mnt", "none")
    assert arg_text("mount", "flags", p["flags"]) == "BIND|REC"
    p = decode_params("memfd_create", args6(0, os.MFD_CLOEXEC), 5, {0: Blob(K.STR, b"x\0")}, None)
    assert p == {"fd": 5, "name": "x", "flags": os.MFD_CLOEXEC}
    img = bytes(range(200))
    p = decode_params("init_module", args6(0, 200, 0), 0,
                      {0: Blob(K.BUF, img), 2: Blob(K.STR, b"debug=1\0")}, None)
    assert p["img"] == img[:80] and p["length"] == 200 and p["uargs"] == "debug=1"
    p = decode_params("bpf", args6(5, 0, 0x90), 7, {}, None)
    assert p == {"fd": 7, "cmd": 5} and arg_text("bpf", "cmd", 5) == "BPF_PROG_LOAD"


# --- fds and sockets ----------------------------------------------------------------------

def test_socket():
    t = socket.SOCK_STREAM | socket.SOCK_CLOEXEC
    p = decode_params("socket", args6(socket.AF_PACKET, t, 0x300), 3, {}, None)
    assert "AF_PACKET" in arg_text("socket", "domain", p["domain"])
    assert p["type"] == t and p["proto"] == 0x300
    assert arg_text("socket", "flags", p["flags"]) == "O_CLOEXEC"
    p = decode_params("socket", args6(socket.AF_UNIX, socket.SOCK_DGRAM, 0), 3, {}, None)
    assert arg_text("socket", "domain", p["domain"]) == "AF_LOCAL|AF_UNIX"
    assert arg_text("socket", "flags", p["flags"]) == "O_NONE"


def test_connect_tuple_uses_local_address_from_state():
    ctx = Ctx(local={4: sin("10.0.0.2", 41000)})
    p = decode_params("connect", args6(4, 0, 16), 0, {1: Blob(K.SOCKADDR, sin("93.184.216.34", 443))}, ctx)
    assert list(p) == ["res", "tuple", "fd", "addr"]
    assert render_params("connect", p) == (
        "res=0 tuple=10.0.0.2:41000->93.184.216.34:443 fd=4 addr=93.184.216.34:443")


def test_connect_failed_has_no_tuple_but_einprogress_has():
    blobs = {1: Blob(K.SOCKADDR, sin("1.1.1.1", 80))}
    p = decode_params("connect", args6(4, 0, 16), -errno.ECONNREFUSED, blobs, Ctx())
    assert p["tuple"] is None and p["addr"] == SockAddr(socket.AF_INET, "1.1.1.1", 80)
    p = decode_params("connect", args6(4, 0, 16), -errno.EINPROGRESS, blobs, Ctx())
    assert p["tuple"] is not None and p["tuple"].dport == 80
    assert arg_text("connect", "res", p["res"]) == "EINPROGRESS"


def test_connect_unix_socket():
    raw = struct.pack("=H", socket.AF_UNIX) + b"/var/run/docker.sock\0"
    p = decode_params("connect", args6(3, 0, len(raw)), 0, {1: Blob(K.SOCKADDR, raw)}, None)
    assert p["addr"].path == "/var/run/docker.sock"
    assert "tuple=0->0 /var/run/docker.sock" in render_params("connect", p)


def test_accept4_peer_from_blob_local_from_state():
    ctx = Ctx(local={3: sin("0.0.0.0", 8080)})
    p = decode_params("accept4", args6(3, 0, 0, socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK), 9,
                      {1: Blob(K.SOCKADDR_OUT, sin("192.168.1.7", 51000))}, ctx)
    assert list(p) == ["fd", "tuple", "queuepct", "queuelen", "queuemax", "flags"]
    assert p["fd"] == 9
    assert "tuple=192.168.1.7:51000->0.0.0.0:8080" in render_params("accept4", p)
    assert p["flags"] == 0x1040 and "flags=1040" in render_params("accept4", p)


def test_accept_without_addr_uses_state_peer():
    ctx = Ctx(local={3: sin("10.0.0.1", 22)}, peer={5: sin("10.0.0.9", 60000)})
    p = decode_params("accept", args6(3, 0, 0), 5, {}, ctx)
    assert (p["tuple"].sip, p["tuple"].sport, p["tuple"].dport) == ("10.0.0.9", 60000, 22)


def test_sendto_data_snaplen_and_tuple():
    payload = bytes(range(256))
    ctx = Ctx(local={6: sin("10.0.0.3", 5353)})
    p = decode_params("sendto", args6(6, 0, 256, 0, 0, 16), 256,
                      {1: Blob(K.BUF, payload), 4: Blob(K.SOCKADDR, sin("8.8.4.4", 53))}, ctx)
    assert list(p) == ["res", "data", "fd", "size", "tuple"]
    assert p["data"] == payload[:80] and p["size"] == 256
    assert "tuple=10.0.0.3:5353->8.8.4.4:53" in render_params("sendto", p)
    # connected socket, no destination argument: destination from state
    p = decode_params("sendto", args6(6, 0, 3), 3, {1: Blob(K.BUF, b"abc")},
                      Ctx(peer={6: SockAddr(socket.AF_INET, "1.2.3.4", 9)}))
    assert p["tuple"].dip == "1.2.3.4" and "data=abc" in render_params("sendto", p)


def test_sendmsg_destination_from_msghdr_name():
    p = decode_params("sendmsg", args6(3, 0, 0), 10, {1: Blob(K.MSGHDR_NAME, sin("9.9.9.9", 123))}, None)
    assert p["tuple"].dip == "9.9.9.9" and p["data"] is None and p["size"] is None


def test_bind_listen():
    p = decode_params("bind", args6(3, 0, 16), 0, {1: Blob(K.SOCKADDR, sin("0.0.0.0", 4444))}, None)
    assert render_params("bind", p) == "res=0 addr=0.0.0.0:4444 fd=3"
    p = decode_params("listen", args6(3, 128), None, {}, None)
    assert p == {"res": None, "fd": 3, "backlog": 128}


def test_pipe2_and_socketpair_pairs():
    pair = struct.pack("=ii", 5, 6)
    p = decode_params("pipe2", args6(0, os.O_CLOEXEC), 0, {0: Blob(K.INT_PAIR_OUT, pair)}, None)
    assert (p["fd1"], p["fd2"]) == (5, 6)
    assert arg_text("pipe2", "flags", p["flags"]) == "O_CLOEXEC"
    failed = decode_params("pipe", args6(0), -errno.EMFILE, {}, None)
    assert failed["fd1"] is None and failed["fd2"] is None
    p = decode_params("socketpair", args6(1, 1, 0, 0), 0, {3: Blob(K.INT_PAIR_OUT, pair)}, None)
    assert (p["fd1"], p["fd2"]) == (5, 6)
    short = decode_params("pipe", args6(0), 0, {0: Blob(K.INT_PAIR_OUT, b"\1\0")}, None)
    assert short["fd1"] is None


def test_dup_family():
    assert decode_params("dup2", args6(3, 1), 1, {}, None) == {"res": 1, "oldfd": 3, "newfd": 1}
    p = decode_params("dup3", args6(3, 0, os.O_CLOEXEC), 0, {}, None)
    assert arg_text("dup3", "flags", p["flags"]) == "O_CLOEXEC"
    assert arg_text("dup", "res", -errno.EBADF) == "EBADF"


def test_fcntl_dupfd():
    import fcntl
    p = decode_params("fcntl", args6(3, fcntl.F_DUPFD_CLOEXEC, 10), 10, {}, None)
    assert arg_text("fcntl", "cmd", p["cmd"]) == "F_DUPFD_CLOEXEC" and p["res"] == 10


def test_openat2_open_how():
    how = struct.pack("=QQQ", os.O_CREAT | os.O_WRONLY, 0o600, 0x08)  # RESOLVE_BENEATH
    p = decode_params("openat2", args6(AT_FDCWD_64, 0, 0, 24), 3,
                      {1: path_blob("f"), 2: Blob(K.OPEN_HOW, how)}, Ctx(cwd="/d"))
    assert list(p) == ["fd", "dirfd", "name", "flags", "mode", "resolve", "dev", "ino"]
    assert p["name"] == "/d/f" and p["mode"] == 0o600
    assert arg_text("openat2", "flags", p["flags"]) == "O_CREAT|O_WRONLY"
    assert arg_text("openat2", "resolve", p["resolve"]) == "RESOLVE_BENEATH"
    short = decode_params("openat2", args6(AT_FDCWD_64, 0, 0, 8), 3,
                          {1: path_blob("f"), 2: Blob(K.OPEN_HOW, how[:8])}, None)
    assert short["flags"] is None and short["mode"] is None


def test_creat_and_chdir():
    p = decode_params("creat", args6(0, 0o100644), 3, {0: path_blob("/tmp/x")}, None)
    assert list(p) == ["fd", "name", "mode", "dev", "ino", "creat_flags"]
    assert "mode=0644" in render_params("creat", p)
    p = decode_params("chdir", args6(0), 0, {0: path_blob("sub/dir")}, Ctx())
    assert p["path"] == "sub/dir"  # chdir's path is a plain CHARBUF


def test_proc_params_only_fill_missing_values():
    ctx = Ctx(proc={"cap_effective": 0x3FF, "exe": "should-not-win", "nonexistent": 1})
    blobs = {0: path_blob("/bin/ls"), 1: Blob(K.ARGV, b"ls\0")}
    p = decode_params("execve", args6(1, 2, 3), 0, blobs, ctx)
    assert p["cap_effective"] == 0x3FF and p["exe"] == "ls" and "nonexistent" not in p
    assert "cap_effective=3FF" in render_params("execve", p)


def test_unknown_syscall_gives_result_only():
    assert decode_params("getpid", args6(), 77, {}, None) == {"res": 77}


def test_tid_from_ctx_attribute():
    ctx = Ctx()
    ctx.tid = 31
    p = decode_params("openat", args6(8, 0, 0, 0), 3, {1: path_blob("z")}, ctx)
    assert p["name"] == "/proc/31/fd/8/z"


def test_fd_param_rendering_with_resolver():
    class R:
        def fd_name(self, fd):
            return {3: "<f>/etc/passwd"}.get(fd)
    p = decode_params("close", args6(3), 0, {}, None)
    assert render_params("close", p, R()) == "res=0 fd=3(<f>/etc/passwd)"
    assert render_params("close", {"res": None, "fd": 4}, R()) == "res=<NA> fd=4"


def test_fs_path_is_a_plain_string_for_comparisons():
    p = decode_params("unlink", args6(0), 0, {0: path_blob("h/.bash_history")}, Ctx(cwd="/root/"))
    assert isinstance(p["path"], str) and p["path"].endswith("ash_history")
    assert p["path"].startswith("/root/h")
    assert isinstance(p["path"], FsPath)
    import pickle
    again = pickle.loads(pickle.dumps(p["path"]))
    assert (again, again.raw) == (p["path"], p["path"].raw)


def test_non_utf8_path_bytes_survive_and_render_safely():
    raw = b"/tmp/caf\xe9\xff"
    p = decode_params("unlink", args6(0), 0, {0: Blob(K.PATH, raw + b"\0")}, None)
    assert os.fsencode(p["path"]) == raw  # lossless for state and rules
    line = render_params("unlink", p)
    line.encode("utf-8")  # writable to any UTF-8 stream
    assert "path=/tmp/caf\\xe9\\xff" in line


def test_render_tolerates_values_of_unexpected_types():
    params = {"res": "0", "addr": "x", "data": "y", "request": "z", "pid": 1.5}
    assert render_params("ptrace", params) == "res=0 addr=x data=y request=z pid=1.5"
