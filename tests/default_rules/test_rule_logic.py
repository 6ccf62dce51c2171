"""What the default rules tell apart: attack shapes against the benign look-alikes
they are tuned to ignore. Synthetic events (the end-to-end scenarios in
tests/scenarios/ run real workloads)."""
from __future__ import annotations

from pathlib import Path

import pytest

from workload_agent.rules.event import Container, Event, Fd, Param, Process, User
from workload_agent.rules.loader import load_rules

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
CTR = Container(id="0badc0ffee42", repository="registry.example.com/app", tag="1")
HOST = Container(id="host")

# PPM open flags (falco-fields.md §2.2.1)
RD, WR, CREAT, TRUNC = 1, 2, 4, 256


@pytest.fixture(scope="module")
def rs():
    result = load_rules([str(RULES_DIR)])
    assert result.ok
    return result.ruleset


def fired(rs, event):
    return {r.name for r in rs.match(event, mode="all")}


def proc(name, args=(), parent=None, container=CTR, exepath=None, **kw):
    base = dict(pid=200, user=User(0, "root"), tty=0, cwd="/app/", start_ts=1)
    base.update(kw)
    exepath = exepath or f"/usr/bin/{name}"
    return Process(name=name, exe=exepath, exepath=exepath, args=list(args), parent=parent,
                   container=container, **base)


def execve(p):
    return Event("execve", res=0, proc=p, params=[Param("res", "0", None, 0)])


def openat(p, path, flags, res=3):
    names = [n for n, v in (("O_TRUNC", TRUNC), ("O_CREAT", CREAT)) if flags & v]
    names.append({RD: "O_RDONLY", WR: "O_WRONLY", RD | WR: "O_RDWR"}[flags & 3])
    fd = Fd(res if res >= 0 else -1, type="file" if res >= 0 else None, typechar="f", name=path,
            directory=path.rsplit("/", 1)[0] or "/")
    return Event("openat", res=res, proc=p, fd=fd,
                 params=[Param("fd", str(res)), Param("dirfd", "-100", "AT_FDCWD", -100),
                         Param("name", path), Param("flags", str(flags), "|".join(names), flags)])


def connect(p, ip, port):
    fd = Fd(5, type="ipv4", typechar="4", name=f"10.0.0.5:40000->{ip}:{port}", cip="10.0.0.5",
            sip=ip, cport=40000, sport=port, l4proto="tcp", client_is_local=True)
    return Event("connect", res=0, proc=p, fd=fd, params=[Param("res", "0", None, 0)])


SH = "Shell with terminal in container"
PKG = "Package manager run in container"
LANG = "Language package installed in container"
HIST = "Shell history tampered"
POOL = "Connection to crypto mining pool port"
IMDS = "Cloud metadata service contacted from container"
SHADOW = "Read of password or sudoers file"
ETC = "File written below /etc"
TMP = "Execution from temporary directory"


def test_shell_needs_a_terminal_and_a_container(rs):
    assert SH in fired(rs, execve(proc("bash", tty=34816)))
    assert SH not in fired(rs, execve(proc("sh", args=["/entrypoint.sh"])))
    assert SH not in fired(rs, execve(proc("bash", tty=34816, container=HOST)))


def test_package_managers(rs):
    assert PKG in fired(rs, execve(proc("apt-get", ["install", "-y", "curl"])))
    # language package managers: a notice of their own (plugins, development images)
    for name, args in (("pip3", ["install", "requests"]), ("npm", ["i"]),
                       ("python3", ["-m", "pip", "install", "x"])):
        assert fired(rs, execve(proc(name, args))) & {PKG, LANG} == {LANG}
    assert LANG not in fired(rs, execve(proc("npm", ["run", "build"])))
    assert LANG not in fired(rs, execve(proc("pip3", ["list"])))
    assert PKG not in fired(rs, execve(proc("dpkg", ["--print-architecture"])))
    # apt-get running dpkg reports once, for apt-get
    apt = proc("apt-get", ["install", "curl"], pid=100)
    assert PKG not in fired(rs, execve(proc("dpkg", ["-i", "x.deb"], parent=apt)))
    assert PKG not in fired(rs, execve(proc("apt-get", ["install", "x"], container=HOST)))


def test_shell_history(rs):
    assert HIST in fired(rs, openat(proc("sh"), "/root/.bash_history", WR | CREAT | TRUNC))
    # an interactive bash saving its own history
    assert HIST not in fired(rs, openat(proc("bash", tty=34816), "/root/.bash_history",
                                        WR | CREAT | TRUNC))
    assert HIST not in fired(rs, openat(proc("bash"), "/root/.bash_history", WR | 8))  # append
    unlink = Event("unlinkat", res=0, proc=proc("rm"),
                   params=[Param("res", "0"), Param("dirfd", "-100", "AT_FDCWD", -100),
                           Param("name", ".zsh_history", "/root/.zsh_history"),
                           Param("flags", "0", None, 0)])
    assert HIST in fired(rs, unlink)


def test_mining_pool_port_ignores_loopback(rs):
    assert POOL in fired(rs, connect(proc("python3"), "203.0.113.9", 3333))
    assert POOL not in fired(rs, connect(proc("python3"), "127.0.0.1", 3333))
    assert POOL not in fired(rs, connect(proc("python3"), "203.0.113.9", 443))


def test_metadata_service(rs):
    assert IMDS in fired(rs, connect(proc("python3"), "169.254.169.254", 80))
    assert IMDS not in fired(rs, connect(proc("cloud-init"), "169.254.169.254", 80))
    assert IMDS not in fired(rs, connect(proc("python3", container=HOST), "169.254.169.254", 80))
    # the ECS task endpoint is where SDKs get task-role credentials
    assert IMDS not in fired(rs, connect(proc("python3"), "169.254.170.2", 80))


def test_password_database(rs):
    assert SHADOW in fired(rs, openat(proc("cat"), "/etc/shadow", RD))
    assert SHADOW in fired(rs, openat(proc("cat", user=User(65534, "nobody")), "/etc/shadow", RD,
                                      res=-13))  # refused attempts count
    assert SHADOW not in fired(rs, openat(proc("unix_chkpwd"), "/etc/shadow", RD))
    assert SHADOW not in fired(rs, openat(proc("cat"), "/etc/passwd", RD))
    dpkg = proc("dpkg", pid=90)
    assert SHADOW not in fired(rs, openat(proc("sh", parent=dpkg), "/etc/shadow", RD))


def test_writes_below_etc(rs):
    assert ETC in fired(rs, openat(proc("sh"), "/etc/passwd", WR | TRUNC))
    assert ETC not in fired(rs, openat(proc("sh"), "/etc/resolv.conf", WR | TRUNC))
    assert ETC not in fired(rs, openat(proc("cat"), "/etc/passwd", RD))
    assert ETC not in fired(rs, openat(proc("ldconfig"), "/etc/ld.so.cache~", WR | CREAT))


def test_temporary_directories(rs):
    assert TMP in fired(rs, execve(proc("x", exepath="/dev/shm/x")))
    assert TMP in fired(rs, execve(proc("sh", ["/tmp/stage2.sh"])))
    assert TMP not in fired(rs, execve(proc("x.test", exepath="/tmp/go-build123/b001/x.test")))
    assert TMP not in fired(rs, execve(proc("as", ["-o", "x.o", "/tmp/ccAbC.s"])))


def test_reverse_shell_needs_a_network_socket(rs):
    rule = "Standard stream redirected to network socket"
    sock = Fd(1, type="ipv4", typechar="4", name="127.0.0.1:40000->127.0.0.1:4444")
    pipe = Fd(1, type="pipe", typechar="p", name="")
    for fd, expected in ((sock, True), (pipe, False)):
        ev = Event("dup2", res=1, proc=proc("python3"), fd=fd,
                   params=[Param("res", "1", None, 1), Param("oldfd", "3"), Param("newfd", "1")])
        assert (rule in fired(rs, ev)) is expected


def test_kernel_modules_and_namespaces(rs):
    def call(etype, p):
        return Event(etype, res=-1, proc=p, params=[Param("res", "-1", "EPERM", -1)])

    assert "Kernel module load attempted" in fired(rs, call("init_module", proc("python3")))
    assert "Kernel module load attempted" not in fired(rs, call("finit_module",
                                                               proc("modprobe", container=HOST)))
    assert "Namespace changed in container" in fired(rs, call("unshare", proc("unshare")))
    assert "Namespace changed in container" not in fired(rs, call("unshare", proc("bwrap")))


# --- issue #12 rules: the benign look-alikes they are tuned to ignore -----------------

NOBODY = User(65534, "nobody")


def test_setuid_to_root_only_from_unprivileged_callers(rs):
    rule = "Unprivileged process switched to root"

    def setuid(p, uid):
        return Event("setuid", res=-1, proc=p,
                     params=[Param("res", "-1", "EPERM", -1), Param("uid", str(uid), None, uid)])

    assert rule in fired(rs, setuid(proc("python3", user=NOBODY), 0))
    assert rule not in fired(rs, setuid(proc("python3"), 0))                  # root already
    assert rule not in fired(rs, setuid(proc("python3", user=NOBODY), 65534))  # not to root
    assert rule not in fired(rs, setuid(proc("sudo", user=NOBODY), 0))


def test_timestomping_needs_explicit_times_in_a_watched_directory(rs):
    rule = "File timestamps altered"

    def utimensat(path, times):
        return Event("utimensat", res=0, proc=proc("touch"), fd=Fd(-100, typechar="o", name=""),
                     params=[Param("res", "0", None, 0), Param("fd", "-100", "AT_FDCWD", -100),
                             Param("path", path), Param("times", hex(times), None, times),
                             Param("flags", "0", None, 0)])

    assert rule in fired(rs, utimensat("/usr/bin/ls", 0x7FFC0000))
    assert rule not in fired(rs, utimensat("/usr/bin/ls", 0))        # plain touch: now
    assert rule not in fired(rs, utimensat("/app/build/out.o", 0x7FFC0000))


def test_environ_reads_of_others_not_of_self(rs):
    rule = "Process environment read"
    assert rule in fired(rs, openat(proc("cat"), "/proc/1/environ", RD))
    assert rule not in fired(rs, openat(proc("gunicorn"), "/proc/self/environ", RD))
    assert rule not in fired(rs, openat(proc("ps"), "/proc/1/environ", RD))


def test_files_below_dev_not_output_devices(rs):
    rule = "File created below /dev"
    assert rule in fired(rs, openat(proc("sh"), "/dev/.hidden", WR | CREAT))
    assert rule not in fired(rs, openat(proc("sh"), "/dev/null", WR | CREAT | TRUNC))
    assert rule not in fired(rs, openat(proc("python3"), "/dev/shm/sem.x", RD | WR | CREAT))


def test_python_hooks_not_from_pip(rs):
    rule = "Python startup hook written"
    pth = "/usr/local/lib/python3.11/site-packages/evil.pth"
    assert rule in fired(rs, openat(proc("python3"), pth, WR | CREAT))
    assert rule not in fired(rs, openat(proc("python3", ["-m", "pip", "install", "x"]), pth,
                                        WR | CREAT))
    assert rule not in fired(rs, openat(proc("pip3", ["install", "x"]), pth, WR | CREAT))
    assert rule not in fired(rs, openat(proc("python3"), "/app/notes.pth", WR | CREAT))


def test_program_rules_match_the_executed_file(rs):
    rule = "Data destruction tool run"
    assert rule in fired(rs, execve(proc("cleanup", exepath="/usr/bin/shred")))
    assert rule not in fired(rs, execve(proc("cleanup", exepath="/usr/bin/rm")))


def test_io_uring_only_in_containers(rs):
    rule = "io_uring used in container"
    ev = Event("io_uring_setup", res=3, proc=proc("python3"),
               params=[Param("fd", "3", None, 3), Param("entries", "4", None, 4)])
    assert rule in fired(rs, ev)
    ev.proc = proc("python3", container=HOST)
    assert rule not in fired(rs, ev)
