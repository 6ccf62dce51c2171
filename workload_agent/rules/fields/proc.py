"""proc.*, thread.*, user.* and group.* fields: the calling thread's process."""
from __future__ import annotations

from operator import attrgetter
from typing import Any, Callable, List, Optional

from . import types as T
from .spec import ARG_INDEX, ARG_INDEX_OR_KEY, ARG_KEY, MULTI_ANY, FieldSpec, inline

# Capability names by bit number (kernel numbering).
CAP_NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)


def cap_text(mask: Optional[int]) -> Optional[str]:
    if mask is None:
        return None
    return " ".join(name for bit, name in enumerate(CAP_NAMES) if mask >> bit & 1)


def _cmdline(p) -> Optional[str]:
    if p.name is None:
        return None
    return " ".join([p.name] + list(p.args))


def _env_value(p, key: str) -> str:
    prefix = key + "="
    for kv in p.env:
        if kv.startswith(prefix):
            return kv[len(prefix):].strip(" ")
    return ""


def _proc(get: Callable[[Any], Any]):
    """Field of the event's process; unavailable without thread info."""
    def f(e):
        p = e.proc
        return None if p is None else get(p)
    return f


def _parent(get: Callable[[Any], Any]):
    def f(e):
        p = e.proc
        if p is None or p.parent is None:
            return None
        return get(p.parent)
    return f


def _proc_attr(attr: str):
    """A process attribute as it is (the rule groups read it inline)."""
    assert attr.isidentifier()
    return inline(_proc(attrgetter(attr)), f"None if (_p := e.proc) is None else _p.{attr}")


def _parent_attr(attr: str):
    assert attr.isidentifier()
    return inline(_parent(attrgetter(attr)),
                  f"None if (_p := e.proc) is None or (_a := _p.parent) is None else _a.{attr}")


def _ancestor(get: Callable[[Any], Any]):
    """proc.aX[N]: Nth ancestor (0 = self); without index the list of all
    ancestors' values, parent first (matched with "any" semantics)."""
    def factory(level):
        if level is None:
            def all_(e):
                p = e.proc
                if p is None:
                    return None
                values = [get(a) for a in p.ancestors()]
                values = [v for v in values if v is not None]
                return values or None
            return all_

        def one(e, n=level):
            p = e.proc
            a = None if p is None else p.ancestor(n)
            return None if a is None else get(a)
        return one
    return factory


def _args(index):
    if index is None:
        return inline(_proc(lambda p: " ".join(p.args)),
                      "None if (_p := e.proc) is None else ' '.join(_p.args)")

    def f(e, i=index):
        p = e.proc
        if p is None:
            return None
        return p.args[i] if i < len(p.args) else ""
    return f


def _env(key):
    if key is None:
        return _proc(lambda p: " ".join(p.env))
    if isinstance(key, int):  # digits are ignored as a name
        return _proc(lambda p: " ".join(p.env))
    return _proc(lambda p, k=key: _env_value(p, k))


def _aenv(arg):
    if arg is None or arg == 0:
        return _proc(lambda p: " ".join(p.env))
    if isinstance(arg, int):
        return _ancestor(lambda a: " ".join(a.env))(arg)

    def f(e, k=arg):
        p = e.proc
        if p is None:
            return None
        for i, a in enumerate(p.ancestors()):
            if i >= 20:
                break
            v = _env_value(a, k)
            if v:
                return v
        return ""
    return f


def _duration(e):
    p = e.proc
    if p is None or not p.start_ts:
        return None
    return e.ts - p.start_ts


def _ctime_since_start(p):
    if not p.exe_ino_ctime or not p.start_ts:
        return None
    return p.start_ts - p.exe_ino_ctime


def _ctime_since_pidns(p):
    if not p.exe_ino_ctime or not p.pidns_init_start_ts:
        return None
    d = p.exe_ino_ctime - p.pidns_init_start_ts
    return d if d > 0 else None


def _leader_attr(which: str, attr: str):
    def get(p):
        leader = getattr(p, which)
        if leader is None:
            return ""
        v = getattr(leader, attr)
        return "" if v is None else v
    return _proc(get)


def _std(fdnum: int, attr: str):
    def get(p):
        fd = p.fds.get(fdnum)
        return None if fd is None else getattr(fd, attr)
    return _proc(get)


def _user(get):
    def f(e):
        p = e.proc
        if p is None or p.user is None:
            return None
        return get(p.user)
    return f


def _group(get):
    def f(e):
        p = e.proc
        if p is None or p.group is None:
            return None
        return get(p.group)
    return f


def _name_or_default(obj, ident: int, attr: str, root_value: str) -> str:
    v = getattr(obj, attr)
    if v is not None:
        return v
    return root_value if ident == 0 else "<NA>"


def _loginname(p):
    u = p.loginuser
    if u is not None and u.name is not None:
        return u.name
    return "root" if p.loginuid == 0 else "<NA>"


def _cgroup(subsys):
    if subsys is None or isinstance(subsys, int):
        raise ValueError("thread.cgroup needs .SUBSYSTEM")

    def get(p, s=subsys):
        for name, path in p.cgroups:
            if name == s:
                return path
        return None
    return _proc(get)


def _f(name, type_, desc, get, **kw):
    return FieldSpec(name, type_, desc, get, **kw)


_ANY = dict(arg=ARG_INDEX, multi=MULTI_ANY, no_transform=True)
#: Memory and fault counters change with every page the process touches; a tracer that
#: stops only on the rules' syscalls reads them at the exec stop.
_AT_EXEC = "read at the process's last exec (or attach), not updated by later activity"

FIELDS: List[FieldSpec] = [
    _f("proc.pid", T.INT64, "Process id (tgid).", _proc_attr("pid")),
    _f("proc.ppid", T.INT64, "Parent process id.", _parent_attr("pid")),
    _f("proc.vpid", T.INT64, "Process id in its own pid namespace.",
       _proc(lambda p: None if p.vpid is None or p.vpid < 0 else p.vpid)),
    _f("proc.pvpid", T.INT64, "Parent's vpid.", _parent_attr("vpid")),
    _f("proc.apid", T.INT64, "pid of the Nth ancestor; without index any ancestor (output: own "
       "pid).", _ancestor(lambda a: a.pid), output_extractor=_proc_attr("pid"), **_ANY),
    _f("proc.name", T.CHARBUF, "Thread comm (at most 15 characters).", _proc_attr("name")),
    _f("proc.pname", T.CHARBUF, "Parent's proc.name.", _parent_attr("name")),
    _f("proc.aname", T.CHARBUF, "proc.name of the Nth ancestor (0 = self); without index any "
       "ancestor (output: all, parent first).", _ancestor(lambda a: a.name), **_ANY),
    _f("proc.exe", T.CHARBUF, "argv[0] as passed to execve.", _proc_attr("exe")),
    _f("proc.pexe", T.CHARBUF, "Parent's proc.exe.", _parent_attr("exe")),
    _f("proc.aexe", T.CHARBUF, "proc.exe of the Nth ancestor; without index any ancestor.",
       _ancestor(lambda a: a.exe), **_ANY),
    _f("proc.exepath", T.CHARBUF, "Full path of the executable file.", _proc_attr("exepath")),
    _f("proc.pexepath", T.CHARBUF, "Parent's proc.exepath.", _parent_attr("exepath")),
    _f("proc.aexepath", T.CHARBUF, "proc.exepath of the Nth ancestor; without index any ancestor.",
       _ancestor(lambda a: a.exepath), **_ANY),
    _f("proc.args", T.CHARBUF, "Arguments (argv[1:]) joined by spaces; [N] one argument.", _args,
       arg=ARG_INDEX),
    _f("proc.aargs", T.CHARBUF, "proc.args of the Nth ancestor; without index any ancestor.",
       _ancestor(lambda a: " ".join(a.args)), **_ANY),
    _f("proc.cmdline", T.CHARBUF, "proc.name followed by the arguments.", _proc(_cmdline)),
    _f("proc.pcmdline", T.CHARBUF, "Parent's proc.cmdline.", _parent(_cmdline)),
    _f("proc.acmdline", T.CHARBUF, "proc.cmdline of the Nth ancestor; without index any ancestor.",
       _ancestor(_cmdline), **_ANY),
    _f("proc.exeline", T.CHARBUF, "proc.exe followed by the arguments.",
       _proc(lambda p: None if p.exe is None else " ".join([p.exe] + list(p.args)) if p.args
             else p.exe + " ")),
    _f("proc.cmdnargs", T.UINT64, "Number of arguments.", _proc(lambda p: len(p.args))),
    _f("proc.cmdlenargs", T.UINT64, "Total length of the arguments.",
       _proc(lambda p: sum(len(a) for a in p.args))),
    _f("proc.env", T.CHARBUF, "Environment K=V entries joined by spaces; [NAME] one value.", _env,
       arg=ARG_KEY),
    _f("proc.aenv", T.CHARBUF, "Environment of the Nth ancestor, or [NAME] searched upward.",
       _aenv, arg=ARG_INDEX_OR_KEY),
    _f("proc.cwd", T.CHARBUF, "Current working directory, with a trailing '/'.",
       _proc_attr("cwd")),
    _f("proc.loginshellid", T.INT64, "pid of the eldest ancestor (or self) whose name ends in 'sh'.",
       _proc(lambda p: next((a.pid for a in reversed([p] + list(p.ancestors()))
                             if a.name and a.name.endswith("sh")), None))),
    _f("proc.tty", T.UINT32, "Controlling terminal device number (0 = none).",
       _proc_attr("tty")),
    _f("proc.sid", T.INT64, "Session id.", _proc_attr("sid")),
    _f("proc.sname", T.CHARBUF, "Name of the session leader.", _leader_attr("session_leader", "name")),
    _f("proc.sid.exe", T.CHARBUF, "exe of the session leader.", _leader_attr("session_leader", "exe")),
    _f("proc.sid.exepath", T.CHARBUF, "exepath of the session leader.",
       _leader_attr("session_leader", "exepath")),
    _f("proc.vpgid", T.INT64, "Process group id in its pid namespace.", _proc_attr("vpgid")),
    _f("proc.vpgid.name", T.CHARBUF, "Name of the process group leader.",
       _leader_attr("vpgid_leader", "name")),
    _f("proc.vpgid.exe", T.CHARBUF, "exe of the process group leader.",
       _leader_attr("vpgid_leader", "exe")),
    _f("proc.vpgid.exepath", T.CHARBUF, "exepath of the process group leader.",
       _leader_attr("vpgid_leader", "exepath")),
    _f("proc.pgid", T.INT64, "Process group id (host namespace).",
       _proc(lambda p: -1 if p.pgid is None else p.pgid)),
    _f("proc.pgid.name", T.CHARBUF, "Name of the process group leader (host namespace).",
       _leader_attr("pgid_leader", "name")),
    _f("proc.pgid.exe", T.CHARBUF, "exe of the process group leader.",
       _leader_attr("pgid_leader", "exe")),
    _f("proc.pgid.exepath", T.CHARBUF, "exepath of the process group leader.",
       _leader_attr("pgid_leader", "exepath")),
    _f("proc.is_sid_leader", T.BOOL, "sid == vpid.",
       _proc(lambda p: None if p.sid is None else p.sid == p.vpid)),
    _f("proc.is_vpgid_leader", T.BOOL, "vpgid == vpid.",
       _proc(lambda p: None if p.vpgid is None else p.vpgid == p.vpid)),
    _f("proc.is_pgid_leader", T.BOOL, "pgid == pid.",
       _proc(lambda p: None if p.pgid is None else p.pgid == p.pid)),
    _f("proc.duration", T.RELTIME, "ns since the process was created.", _duration),
    _f("proc.ppid.duration", T.RELTIME, "ns since the parent was created.",
       lambda e: None if e.proc is None or e.proc.parent is None or not e.proc.parent.start_ts
       else e.ts - e.proc.parent.start_ts),
    _f("proc.pid.ts", T.RELTIME, "Process start time (epoch ns).",
       _proc(lambda p: p.start_ts or None)),
    _f("proc.ppid.ts", T.RELTIME, "Parent start time (epoch ns).",
       _parent(lambda a: a.start_ts or None)),
    _f("proc.is_exe_writable", T.BOOL, "The executable is writable by the process user.",
       _proc_attr("is_exe_writable")),
    _f("proc.is_exe_upper_layer", T.BOOL, "The executable is in the overlayfs upper layer.",
       _proc_attr("is_exe_upper_layer")),
    _f("proc.is_exe_lower_layer", T.BOOL, "The executable is in an overlayfs lower layer.",
       _proc_attr("is_exe_lower_layer")),
    _f("proc.is_exe_from_memfd", T.BOOL, "The executable is a memfd.",
       _proc_attr("is_exe_from_memfd")),
    # Exec sessions (workload-agent's own; Falco tells them apart only by a missing parent,
    # see the container_entrypoint macro): workload_agent/attach/sessions.py.
    _f("proc.is_exec_session", T.BOOL,
       "The process entered the container from outside the workload's process tree (docker "
       "exec, kubectl exec, ECS Exec), or descends from one that did.",
       _proc(lambda p: p.exec_session is not None)),
    _f("proc.exec_session.pid", T.INT64,
       "Pid of the exec session's root: the process that entered the container (or that ECS "
       "Exec's session worker started).",
       _proc(lambda p: p.exec_session.pid if p.exec_session is not None else None)),
    _f("proc.exec_session.cmdline", T.CHARBUF,
       "Command line of the exec session's root when the session was seen to start.",
       _proc(lambda p: p.exec_session.cmdline if p.exec_session is not None else None)),
    _f("proc.exec_session.kind", T.CHARBUF,
       "How the exec session entered: exec (docker/kubectl exec, nsenter) or ecs-exec.",
       _proc(lambda p: p.exec_session.kind if p.exec_session is not None else None)),
    _f("evt.is_exec_session_start", T.BOOL,
       "execve: the event that starts an exec session (the exec of its root, reported when "
       "the agent first sees the process).",
       lambda e: (e.type == "execve" and e.proc is not None and e.proc.exec_session is not None
                  and e.proc.exec_session.start_num == e.num),
       event_types=frozenset({"execve"})),
    _f("proc.exe_ino", T.INT64, "Inode of the executable.", _proc(lambda p: p.exe_ino or None)),
    _f("proc.exe_ino.ctime", T.ABSTIME, "Executable inode change time (epoch ns).",
       _proc(lambda p: p.exe_ino_ctime or None)),
    _f("proc.exe_ino.mtime", T.ABSTIME, "Executable inode modification time (epoch ns).",
       _proc(lambda p: p.exe_ino_mtime or None)),
    _f("proc.exe_ino.ctime_duration_proc_start", T.ABSTIME,
       "Process start minus executable ctime (ns).", _proc(_ctime_since_start)),
    _f("proc.exe_ino.ctime_duration_pidns_start", T.ABSTIME,
       "Executable ctime minus pid-namespace start (ns), when later.", _proc(_ctime_since_pidns)),
    _f("proc.pidns_init_start_ts", T.UINT64, "Start time of the pid namespace's init (epoch ns).",
       _proc(lambda p: p.pidns_init_start_ts or None)),
    _f("proc.fdopencount", T.UINT64, "Open fd count.", _proc(lambda p: len(p.fds))),
    _f("proc.fdlimit", T.INT64, "RLIMIT_NOFILE soft limit.", _proc_attr("fdlimit")),
    _f("proc.vmsize", T.UINT64, "Virtual memory size (kB).", _proc_attr("vmsize"), approx=_AT_EXEC),
    _f("proc.vmrss", T.UINT64, "Resident set size (kB).", _proc_attr("vmrss"), approx=_AT_EXEC),
    _f("proc.vmswap", T.UINT64, "Swapped memory (kB).", _proc_attr("vmswap"), approx=_AT_EXEC),
    _f("proc.fdusage", T.DOUBLE, "Open fds as a percentage of the fd limit.",
       _proc(lambda p: None if not p.fdlimit else len(p.fds) * 100.0 / p.fdlimit)),
    _f("proc.nchilds", T.UINT64, "Alive threads of the process, excluding the leader.",
       _proc(lambda p: None if p.nthreads is None else max(p.nthreads - 1, 0))),
    _f("proc.nthreads", T.UINT64, "Alive threads of the process.", _proc_attr("nthreads")),
    _f("proc.stdin.type", T.CHARBUF, "fd.type of fd 0.", _std(0, "type")),
    _f("proc.stdout.type", T.CHARBUF, "fd.type of fd 1.", _std(1, "type")),
    _f("proc.stderr.type", T.CHARBUF, "fd.type of fd 2.", _std(2, "type")),
    _f("proc.stdin.name", T.CHARBUF, "fd.name of fd 0.", _std(0, "name")),
    _f("proc.stdout.name", T.CHARBUF, "fd.name of fd 1.", _std(1, "name")),
    _f("proc.stderr.name", T.CHARBUF, "fd.name of fd 2.", _std(2, "name")),
    _f("proc.is_container_healthcheck", T.BOOL, "Deprecated; never set.", lambda e: None, live=False),
    _f("proc.is_container_liveness_probe", T.BOOL, "Deprecated; never set.", lambda e: None,
       live=False),
    _f("proc.is_container_readiness_probe", T.BOOL, "Deprecated; never set.", lambda e: None,
       live=False),
    _f("thread.tid", T.INT64, "Thread id.", lambda e: e.tid),
    _f("thread.vtid", T.INT64, "Thread id in its pid namespace.",
       _proc(lambda p: None if p.vtid is None or p.vtid < 0 else p.vtid)),
    _f("thread.ismain", T.BOOL, "tid == pid.", lambda e: None if e.proc is None else e.tid == e.proc.pid),
    _f("thread.cap_effective", T.CHARBUF, "Effective capabilities, names joined by spaces.",
       _proc(lambda p: cap_text(p.cap_effective))),
    _f("thread.cap_permitted", T.CHARBUF, "Permitted capabilities, names joined by spaces.",
       _proc(lambda p: cap_text(p.cap_permitted))),
    _f("thread.cap_inheritable", T.CHARBUF, "Inheritable capabilities, names joined by spaces.",
       _proc(lambda p: cap_text(p.cap_inheritable))),
    _f("thread.cgroups", T.CHARBUF, "subsys=path entries joined by spaces.",
       _proc(lambda p: " ".join(f"{s}={path}" for s, path in p.cgroups) or None)),
    _f("thread.cgroup", T.CHARBUF, "Cgroup path of one subsystem (thread.cgroup.SUBSYS).", _cgroup,
       dotted=True, arg_required=True),
    _f("thread.pfmajor", T.UINT64, "Major page faults.", _proc_attr("pfmajor"), approx=_AT_EXEC),
    _f("thread.pfminor", T.UINT64, "Minor page faults.", _proc_attr("pfminor"), approx=_AT_EXEC),
    _f("thread.vmsize", T.UINT64, "Process kB for the main thread, 0 for others.",
       lambda e: None if e.proc is None else (e.proc.vmsize if e.tid == e.proc.pid else 0), approx=_AT_EXEC),
    _f("thread.vmrss", T.UINT64, "Process kB for the main thread, 0 for others.",
       lambda e: None if e.proc is None else (e.proc.vmrss if e.tid == e.proc.pid else 0), approx=_AT_EXEC),
    _f("thread.nametid", T.CHARBUF, "comm followed by the thread id.",
       _proc(lambda p: None if p.name is None else f"{p.name}{p.tid if p.tid is not None else p.pid}")),
    _f("thread.exectime", T.RELTIME, "CPU time of the last scheduled run (needs scheduler events; 0).",
       lambda e: None if e.proc is None else 0, live=False),
    _f("thread.totexectime", T.RELTIME, "Total CPU time (needs scheduler events; not available).",
       lambda e: None, live=False),
    _f("thread.cpu", T.DOUBLE, "CPU usage (needs procinfo events; not available).", lambda e: None,
       live=False),
    _f("thread.cpu.user", T.DOUBLE, "User CPU usage (not available).", lambda e: None, live=False),
    _f("thread.cpu.system", T.DOUBLE, "System CPU usage (not available).", lambda e: None,
       live=False),
    _f("user.uid", T.UINT32, "Effective user id.", _user(lambda u: u.uid)),
    _f("user.name", T.CHARBUF, "User name ('root' for unknown uid 0, else '<NA>' if unknown).",
       _user(lambda u: _name_or_default(u, u.uid, "name", "root"))),
    _f("user.homedir", T.CHARBUF, "Home directory.",
       _user(lambda u: _name_or_default(u, u.uid, "homedir", "/root"))),
    _f("user.shell", T.CHARBUF, "Login shell.", _user(lambda u: u.shell if u.shell else "<NA>")),
    _f("user.loginuid", T.INT64, "Audit login uid (-1 when unset).",
       _proc(lambda p: -1 if p.loginuid is None or p.loginuid == 4294967295 else p.loginuid)),
    _f("user.loginname", T.CHARBUF, "Name of the login uid.", _proc(_loginname)),
    _f("group.gid", T.UINT32, "Effective group id.", _group(lambda g: g.gid)),
    _f("group.name", T.CHARBUF, "Group name ('root' for unknown gid 0, else '<NA>').",
       _group(lambda g: _name_or_default(g, g.gid, "name", "root"))),
]
