"""Evaluation semantics of compiled conditions: every operator on every value type,
missing fields, multi-valued fields, modifiers, transformers, field comparisons."""
from __future__ import annotations

import base64

import pytest

from workload_agent.rules.compiler import compile_condition
from workload_agent.rules.condition import parse_condition
from workload_agent.rules.event import Container, Event, Fd, Group, Mount, Param, Process, User


def make_event(**over):
    init = Process(pid=1, vpid=1, name="init", exe="/sbin/init", exepath="/sbin/init")
    sshd = Process(pid=100, name="sshd", exe="/usr/sbin/sshd", exepath="/usr/sbin/sshd",
                   args=["-D"], parent=init)
    ctr = Container(id="abcdef012345", name="web", repository="docker.io/library/nginx", tag="1.25",
                    privileged=False, mounts=[Mount("/var/run/docker.sock", "/run/docker.sock"),
                                              Mount("/proc", "/host/proc", rdwr=False)],
                    k8s_ns_name="default", k8s_pod_name="web-0")
    proc = Process(pid=200, tid=200, vpid=7, name="bash", exe="/bin/bash", exepath="/usr/bin/bash",
                   args=["-c", "cat /etc/shadow"], env=["PATH=/usr/bin:/bin", "HOME=/root",
                                                         "B64=aGVsbG8="],
                   cwd="/root/", tty=34816, sid=200, vpgid=7, loginuid=1000,
                   user=User(0), group=Group(0, "root"), loginuser=User(1000, "alice"),
                   cap_effective=(1 << 21) | 1, cap_permitted=(1 << 21) | (1 << 19) | 1,
                   start_ts=1_000_000_000, parent=sshd, container=ctr,
                   fds={0: Fd(0, type="file", name="/dev/null"), 3: Fd(3, type="ipv4")})
    fd = Fd(3, type="ipv4", typechar="4", name="10.0.0.5:40000->93.184.216.34:443", l4proto="tcp",
            cip="10.0.0.5", sip="93.184.216.34", cport=40000, sport=443, client_is_local=True,
            connected=True)
    proc.session_leader = proc
    kw = dict(type="connect", ts=3_000_000_000, num=42, tid=200, res=0, proc=proc, fd=fd,
              params=[Param("res", "0"), Param("tuple", fd.name), Param("fd", "3", "<4t>" + fd.name, 3),
                      Param("flags", "4097", "O_RDONLY|O_CLOEXEC", 4097)],
              buffer=b"\xca\xfe\xba\xbe\x00\x01rest")
    kw.update(over)
    return Event(**kw)


EV = make_event()
NOPROC = make_event(proc=None, fd=None)


def ev(cond, event=EV):
    return compile_condition(parse_condition(cond))(event)


TRUE = [
    # strings
    "proc.name = bash", "proc.name == bash", "proc.name != sh", "proc.name in (sh, bash)",
    "proc.name intersects (bash)", "proc.cmdline contains 'cat /etc'", "proc.name icontains BAS",
    "proc.name startswith ba", "proc.name endswith sh", "proc.exepath glob '/usr/*'",
    "proc.exepath glob '*bash'", "proc.exepath glob '/usr/bi?/ba[st]h'",
    "proc.exepath iglob '/USR/*'", "proc.name regex 'b.*'", "proc.name regex '[a-z]+'",
    "proc.cwd pmatch (/root)", "proc.exepath pmatch (/usr)", "proc.exepath pmatch (/)",
    "proc.exepath pmatch (/opt, /usr/bin/bash)", "proc.name > 1", "proc.name > 99",
    "proc.name bcontains 6173", "proc.name bstartswith 6261",
    # numbers
    "proc.pid = 200", "proc.pid != 1", "proc.pid > 199", "proc.pid >= 200", "proc.pid < 0x100",
    "proc.pid <= 200", "proc.pid in (1, 200)", "proc.pid intersects (200)", "evt.num = 42",
    "evt.rawres >= 0", "proc.tty != 0", "proc.vpid = 7", "user.loginuid = 1000",
    # booleans
    "container.privileged = false", "container.privileged != true", "fd.connected = true",
    "fd.connected in (true)", "evt.is_open_read = false",
    # addresses, networks, ports
    "fd.sip = 93.184.216.34", "fd.cip != 10.0.0.6", "fd.sip in (1.1.1.1, 93.184.216.34)",
    "fd.ip = 10.0.0.5", "fd.ip = 93.184.216.34", "fd.ip != 1.2.3.4",
    "fd.net = 10.0.0.0/8", "fd.net != 192.168.0.0/16", "fd.snet in (93.184.0.0/16)",
    "fd.cnet = 10.0.0.0/24", "fd.rnet = 93.184.216.0/24", "fd.lip = 10.0.0.5",
    "fd.sport = 443", "fd.sport = https", "fd.sport in (80, 443)", "fd.port = 40000",
    "fd.port in (443)", "fd.port != 22", "fd.sport > 100", "fd.lport = 40000", "fd.rport = 443",
    # bytes
    "evt.buffer bcontains cafebabe", "evt.buffer bcontains CAFEBABE", "evt.buffer bstartswith ca",
    "evt.buffer contains rest", "evt.buffer startswith ''",
    # params
    "evt.arg.flags contains O_RDONLY", "evt.arg.fd startswith '<4t>'", "evt.arg[0] = 0",
    "evt.rawarg.flags = 4097", "evt.rawarg.flags > 4000", "evt.res = SUCCESS",
    "evt.arg.res = 0",
    # state
    "user.name = root", "user.uid = 0", "user.loginname = alice", "group.name = root",
    "container.id = abcdef012345", "container.image.repository endswith nginx",
    "k8s.ns.name = default", "container.mount.dest[/var/run/docker.sock] = /run/docker.sock",
    "container.mount.dest[/proc*] exists", "container.mount[1] contains false",
    "container.mounts contains /host/proc", "thread.cap_effective contains CAP_SYS_ADMIN",
    "thread.cap_permitted contains CAP_SYS_PTRACE", "proc.env[HOME] = /root",
    "proc.env contains 'PATH='", "proc.args = '-c cat /etc/shadow'", "proc.args[0] = -c",
    "proc.args[5] = ''", "proc.duration = 2000000000", "proc.sname = bash", "fd.typechar = 4",
    "fd.l4proto = tcp", "fd.sockfamily = ip", "fd.types in (file, ipv4)",
    "fd.types intersects (ipv4)", "fd.types[3] = ipv4",
    # ancestors
    "proc.pname = sshd", "proc.aname = sshd", "proc.aname = init", "proc.aname[0] = bash",
    "proc.aname[1] = sshd", "proc.aname[2] = init", "proc.aname in (init)",
    "proc.aname != sshd", "proc.aexe endswith init", "proc.apid = 1",
    # exists / not
    "proc.name exists", "fd.num exists and not fd.directory exists",
    "not proc.name = sh", "not (proc.name = sh or proc.pid = 1)",
    # modifiers
    "proc.name startswith oneof (x, ba)", "proc.name startswith anyof (b)",
    "proc.cmdline contains allof (cat, shadow)", "proc.name = oneof (bash)",
    "proc.aname startswith oneof (ini)",
    # transformers
    "toupper(proc.name) = BASH", "tolower(toupper(proc.name)) = bash", "basename(proc.exe) = bash",
    "len(proc.name) = 4", "len(proc.args) > 10", "len(fd.types) = 2",
    "b64(proc.env[B64]) = hello", "join(',', fd.types) contains 'file,'",
    "concat(proc.name, '@', proc.pname) = bash@sshd", "getopt(proc.args, -c) = 'cat /etc/shadow'",
    "tolower(proc.name) in (bash)", "proc.name = tolower(proc.name)",
    # field comparisons
    "proc.name != val(proc.pname)", "proc.pid > val(proc.ppid)", "proc.exepath endswith val(proc.name)",
    "proc.name in val(proc.name)", "proc.pname = val(proc.aname[1])",
]


FALSE = [
    "proc.name = sh", "proc.name != bash", "proc.name in (sh)", "proc.name contains x",
    "proc.name icontains Z", "proc.exepath glob '/usr'", "proc.name regex 'ba'",
    "proc.exepath pmatch (/usr/bi)", "proc.exepath pmatch (/opt)", "proc.name startswith sh",
    "proc.pid < 200", "proc.pid in (1)", "container.privileged = true", "fd.sip = 10.0.0.5",
    "fd.ip != 10.0.0.5", "fd.ip = 1.2.3.4", "fd.net != 10.0.0.0/8", "fd.net = 172.16.0.0/12",
    "fd.port != 443", "fd.sport = 80", "evt.buffer bcontains deadbeef",
    "evt.buffer bstartswith fe", "fd.types in (file)", "proc.aname = bash", "proc.aname[3] = init",
    "proc.aname in (bash)", "proc.cmdline contains allof (cat, passwd)",
    "proc.name startswith oneof (x, y)", "proc.name = val(proc.pname)",
    "evt.arg.nosuchparam exists", "evt.arg[9] exists", "fd.cip.name = localhost",
    "b64(proc.exe) exists", "getopt(proc.args, -x) exists", "proc.env[NOPE] != ''",
    "user.name = '<NA>'",
]


@pytest.mark.parametrize("cond", TRUE)
def test_true(cond):
    assert ev(cond) is True


@pytest.mark.parametrize("cond", FALSE)
def test_false(cond):
    assert ev(cond) is False


MISSING = ["proc.name = bash", "proc.name != bash", "proc.name contains a", "proc.pid > 0",
           "proc.pid != 0", "fd.name = x", "fd.name != x", "fd.num in (3)", "fd.sip = 1.1.1.1",
           "fd.net != 10.0.0.0/8", "proc.aname = init", "proc.aname != init",
           "container.id != host", "user.name != root", "tolower(proc.name) != x",
           "proc.name = val(proc.pname)", "proc.name startswith oneof (a)", "fd.types in (file)",
           "proc.name pmatch (/)", "proc.name glob '*'", "proc.name regex '.*'"]


@pytest.mark.parametrize("cond", MISSING)
def test_missing_field_makes_every_check_false_and_not_flips_it(cond):
    assert ev(cond, NOPROC) is False
    assert ev(f"not {cond}", NOPROC) is True
    field = cond.split()[0]
    if "(" not in field:
        assert ev(f"{field} exists", NOPROC) is False


def test_thread_tid_and_event_fields_survive_missing_thread():
    assert ev("thread.tid = 200 and evt.type = connect and evt.num = 42", NOPROC)


def test_host_process_container_fields():
    host = make_event()
    host.proc.container = None
    assert ev("container.id = host and container.name = host and container.privileged = false", host)
    assert ev("container.image.repository = ''", host)
    assert not ev("k8s.ns.name exists", host)


def test_unknown_user_name_and_root_default():
    e = make_event()
    e.proc.user = User(1234)
    assert ev("user.name = '<NA>' and user.name in ('', '<NA>', 'N/A')", e)
    e.proc.user = User(1234, "bob")
    assert ev("user.name = bob", e)


def test_evt_res_errno_names():
    assert ev("evt.res = ENOENT and evt.rawres = -2 and evt.failed = true", make_event(res=-2))
    assert ev("evt.res = EINPROGRESS", make_event(res=-115))
    assert ev("evt.res = EAGAIN", make_event(res=-11))
    assert ev("evt.res = -126", make_event(res=-126))
    assert ev("evt.res startswith E", make_event(res=-13))
    assert not ev("evt.res exists", make_event(res=None))


def test_open_flag_fields():
    e = make_event(type="openat", params=[Param("fd", "3"), Param("flags", "6", "O_CREAT|O_WRONLY", 2 | 4),
                                         Param("mode", "0755", None, 0o755)])
    assert ev("evt.is_open_write = true and evt.is_open_read = false and evt.is_open_exec = true", e)
    e = make_event(type="openat", params=[Param("flags", "3", "O_RDWR", 3), Param("mode", "0", None, 0)])
    assert ev("evt.is_open_write = true and evt.is_open_read = true and evt.is_open_exec = false", e)
    assert ev("evt.is_open_read = false", make_event(type="execve"))


def test_fd_directory_and_filename():
    e = make_event(type="openat", fd=Fd(5, type="file", typechar="f", name="/etc/shadow"))
    assert ev("fd.directory = /etc and fd.filename = shadow and fd.name pmatch (/etc)", e)
    failed = make_event(type="openat", fd=Fd(-1, typechar="f", name="/etc/x"))
    assert ev("fd.num = -1 and fd.directory = /etc and not fd.filename exists", failed)
    assert ev("fd.l4proto exists", e) and ev("fd.l4proto = '<NA>'", e)


def test_glob_crosses_slashes_and_iglob_ignores_case():
    e = make_event(fd=Fd(5, type="file", name="/home/u/.ssh/id_rsa"))
    assert ev("fd.name glob '/home/*/id_rsa'", e)
    assert ev("fd.name glob '/home/*'", e)
    assert ev("fd.name iglob '/HOME/*/ID_*'", e)
    assert not ev("fd.name glob '/home/*/ID_*'", e)


def test_regex_is_whole_string():
    assert ev("proc.exepath regex '/usr/bin/.*'")
    assert not ev("proc.exepath regex 'bin'")


def test_b64_of_bytes_and_invalid_b64():
    e = make_event(buffer=base64.b64encode(b"\x00secret"))
    assert ev("b64(evt.buffer) bcontains 00736563726574", e)
    assert not ev("b64(proc.name) = x")


def test_ipv6_addresses_and_networks():
    fd = Fd(4, type="ipv6", typechar="6", cip="fe80::1", sip="2001:db8::5", cport=1, sport=80,
            client_is_local=True)
    e = make_event(fd=fd)
    assert ev("fd.sip = 2001:db8::5 and fd.snet = 2001:db8::/32 and fd.net != 10.0.0.0/8", e)
    assert not ev("fd.sip = 93.184.216.34", e)


def test_dynamic_rawarg_mismatched_types_are_false():
    assert not ev("evt.rawarg.fd = abc")
    assert ev("evt.rawarg.fd = 3")


def test_many_checks_and_deep_trees_compile():
    cond = " or ".join(f"proc.pid = {i}" for i in range(2000))
    assert ev(cond)  # 200 is among them
    deep = "proc.name = bash"
    for _ in range(90):
        deep = f"not ({deep})"
    assert ev(deep) is True  # an even number of negations


@pytest.mark.parametrize("pattern,path,expected", [
    ("/home/*/.ssh/*", "/home/u/.ssh/id_rsa", True),
    ("*../*../*", "/a/../b/../etc", True),
    ("/proc/*/environ", "/proc/1/task/2/environ", True),  # * crosses '/'
    ("/a/?", "/a/b", True),
    ("/a/?", "/a/bc", False),
    ("/a/[bc]", "/a/c", True),
    ("/a/[!bc]", "/a/c", False),
    ("/a/[!bc]", "/a/d", True),
    ("/a\\*", "/a*", True),
    ("/a\\*", "/ab", False),
    ("/a.b", "/axb", False),
    ("/x[", "/x[", True),
])
def test_glob_patterns(pattern, path, expected):
    e = make_event(fd=Fd(5, type="file", name=path))
    quoted = pattern.replace("\\", "\\\\")
    assert ev(f'fd.name glob "{quoted}"', e) is expected


@pytest.mark.parametrize("prefixes,path,expected", [
    ("/var", "/var", True),
    ("/var", "/var/lib/x", True),
    ("/var", "/variable", False),
    ("/var/run", "/var", False),
    ("/var/run/", "/var//run/docker.sock", True),
    ("/", "/anything/at/all", True),
    ("/etc, /usr/lib", "/usr/lib64", False),
    ("/etc, /usr/lib", "/usr/lib/x", True),
    ("/home/*/.ssh", "/home/alice/.ssh/id_rsa", True),
    ("/home/*/.ssh", "/home/alice/x/.ssh", False),
    ("/proc/[0-9]*/environ", "/proc/42/environ", True),
    ("etc", "/etc/passwd", True),  # components only: leading '/' does not matter
])
def test_pmatch(prefixes, path, expected):
    e = make_event(fd=Fd(5, type="file", name=path))
    items = ", ".join(f'"{p.strip()}"' for p in prefixes.split(","))
    assert ev(f"fd.name pmatch ({items})", e) is expected
