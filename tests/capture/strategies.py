"""Hypothesis strategies for enriched events with the state their fields read."""
from __future__ import annotations

from hypothesis import strategies as st

from workload_agent.events.decode import FsPath
from workload_agent.events.sockaddr import SockAddr, SockTuple
from workload_agent.rules.event import Container, Event, Fd, Group, Mount, Param, Process, User

texts = st.text(max_size=12)  # any code point: paths may hold surrogate escapes too
paths = st.lists(st.sampled_from(["etc", "shadow", "bin", "sh", "tmp", "x y", "\udcff"]),
                 max_size=4).map(lambda parts: "/" + "/".join(parts))
small = st.integers(-5, 70000)
u64 = st.integers(0, (1 << 64) - 1)
opt = st.none().__or__

users = st.builds(User, uid=small, name=opt(texts), homedir=opt(paths), shell=opt(paths))
groups = st.builds(Group, gid=small, name=opt(texts))
mounts = st.builds(Mount, source=paths, dest=paths, mode=texts, rdwr=st.booleans(), propagation=texts)
containers = st.builds(
    Container, id=st.sampled_from(["host", "0123456789ab"]), name=opt(texts), image=opt(texts),
    repository=opt(texts), tag=opt(texts), privileged=opt(st.booleans()),
    mounts=opt(st.lists(mounts, max_size=3)), start_ts=opt(u64),
    labels=opt(st.dictionaries(texts, texts, max_size=3)), k8s_pod_name=opt(texts),
    k8s_pod_labels=opt(st.dictionaries(texts, texts, max_size=2)))
fds = st.builds(
    Fd, num=st.integers(-1, 20), type=opt(st.sampled_from(["file", "directory", "ipv4", "ipv6", "unix", "pipe"])),
    typechar=st.sampled_from("f46upo"), name=opt(paths), nameraw=opt(paths), directory=opt(paths),
    l4proto=opt(st.sampled_from(["tcp", "udp", "<NA>"])), cip=opt(st.sampled_from(["10.0.0.1", "::1"])),
    sip=opt(st.sampled_from(["127.0.0.1", "1.2.3.4"])), cport=opt(st.integers(0, 65535)),
    sport=opt(st.integers(0, 65535)), client_is_local=opt(st.booleans()), is_server=opt(st.booleans()),
    connected=opt(st.booleans()), dev=opt(u64), ino=opt(u64))
ips = st.sampled_from(["127.0.0.1", "::1", "10.1.2.3", None])
ports = st.none() | st.integers(0, 65535)
value_objects = (st.builds(SockAddr, family=st.sampled_from([1, 2, 10]), ip=ips, port=ports, path=opt(paths))
                 | st.builds(SockTuple, family=st.sampled_from([1, 2, 10]), sip=ips, sport=ports, dip=ips,
                             dport=ports, path=opt(paths), src_ptr=u64, dst_ptr=u64)
                 | st.builds(FsPath, paths, st.sampled_from(["", "/abs/x"])))
raw_values = st.recursive(
    st.none() | st.integers(-(1 << 63), (1 << 64) - 1) | texts | st.binary(max_size=8) | st.booleans()
    | value_objects,
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner), max_leaves=6)
params = st.builds(Param, name=st.sampled_from(["fd", "name", "flags", "mode", "res", "exe", "args",
                                                 "dirfd", "data", "path", "tuple", "fds", "uid"]),
                   plain=opt(texts), resolved=opt(texts), raw=raw_values)


@st.composite
def processes(draw, depth=3):
    chain = None
    shared_user = draw(users)
    container = draw(opt(containers))
    for level in range(draw(st.integers(1, depth + 1))):
        p = Process(
            pid=draw(st.integers(1, 5000)), tid=draw(opt(st.integers(1, 5000))), vpid=draw(opt(small)),
            parent=chain, name=draw(opt(texts)), exe=draw(opt(paths)), exepath=draw(opt(paths)),
            args=draw(st.lists(texts, max_size=3)), env=draw(st.lists(texts, max_size=2)),
            cwd=draw(opt(paths)), tty=draw(opt(small)), sid=draw(opt(small)), loginuid=draw(opt(small)),
            user=draw(st.sampled_from([shared_user, None])) or draw(opt(users)), group=draw(opt(groups)),
            cap_effective=draw(opt(u64)), start_ts=draw(opt(u64)), is_exe_writable=draw(opt(st.booleans())),
            pidns_init_start_ts=draw(opt(u64)),
            cgroups=draw(st.lists(st.tuples(texts, paths), max_size=2)),
            fds={f.num: f for f in draw(st.lists(fds, max_size=3))},
            container=container, vmrss=draw(opt(small)))
        if chain is not None and draw(st.booleans()):
            p.session_leader = chain
        chain = p
    return chain


@st.composite
def events(draw):
    proc = draw(opt(processes()))
    fd = None
    if proc is not None and proc.fds and draw(st.booleans()):
        fd = draw(st.sampled_from(sorted(proc.fds.values(), key=lambda f: f.num)))
    elif draw(st.booleans()):
        fd = draw(fds)
    return Event(
        type=draw(st.sampled_from(["openat", "execve", "connect", "open", "procexit", "unlinkat", "read"])),
        ts=draw(u64), num=draw(st.integers(1, 10 ** 6)), tid=draw(st.integers(0, 5000)),
        dir=draw(st.sampled_from("<>")), res=draw(opt(st.integers(-200, 1 << 40))),
        params=draw(st.lists(params, max_size=5)), proc=proc, fd=fd, hostname=draw(texts),
        category=draw(opt(texts)), is_async=draw(st.booleans()), buffer=draw(opt(st.binary(max_size=16))),
        start_ts=draw(u64), prev_ts=draw(opt(u64)))
