"""The prefilter: what the C core may drop at a syscall's entry stop, derived from the
enabled rules.

For each traced syscall the prefilter is a disjunction of clauses, each a conjunction of
tests the tracer can make on values it has at the stop (a path argument, resolved
against the base directory it read; the open flags). Path tests come from fd.* fields
on the open family and from ``evt.arg.<path param>`` on any syscall with path params
(unlink, mkdir, rename, symlink, chmod, truncate...). It is compiled from each rule's
condition as a *necessary* condition for that event type: an event that satisfies none
of the clauses can match no enabled rule. Anything the analysis does not understand
(a field the C side cannot see, a negation, a transformer) becomes "true", so the
prefilter only ever gets weaker, never wrong. Syscalls whose records change state the
rules read (process identity, cwd, the windowed rates) are never prefiltered; an fd's
state is not among them, since every event on an fd carries its origin from the stop.

The exec program is the same analysis for a successful execve, on the facts the tracer
has at the exec stop (the new name, argv, environment, exe link, tty, the parent's name).
It decides whether a process born under the tracer stays *quiet*: its clone, exec and exit
records are held in C, and dropped if it ends without doing anything else a rule or the
state needs (csrc/tracer.c). Only run when no rule reads clone or procexit events.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, List, Optional, Tuple

from ..events.flags import FILE_FLAGS, TABLES, open_flag_kernel_bits, open_flags_to_ppm, render_flags
from ..events.params import SPECS, STATEFUL_SYSCALLS
from ..state.rates import RATED_SYSCALLS
from ..rules.condition.ast import And, Check, Field, ListLit, Literal, Node, Not, Or, Transform
from .prefilter_image import NO_ARG, PrefilterImage

# C operations (csrc/prefilter.h enum wa_pf_op).
PATH_IN, PATH_PREFIX, PATH_SUFFIX, PATH_CONTAINS = 1, 2, 3, 4
DIR_IN, BASE_IN, BASE_PREFIX, ACCMODE_IN, FLAGS_ANY = 5, 6, 7, 8, 9
STR_IN, STR_PREFIX, STR_SUFFIX, STR_CONTAINS, STR_ICONTAINS, STR_PMATCH = 10, 11, 12, 13, 14, 15
TTY, EXE_NEW, MEMFD = 16, 17, 18
OP_NAMES = {PATH_IN: "path in", PATH_PREFIX: "path startswith", PATH_SUFFIX: "path endswith",
            PATH_CONTAINS: "path contains", DIR_IN: "directory in", BASE_IN: "filename in",
            BASE_PREFIX: "filename startswith", ACCMODE_IN: "access mode in", FLAGS_ANY: "flags any",
            STR_IN: "in", STR_PREFIX: "startswith", STR_SUFFIX: "endswith", STR_CONTAINS: "contains",
            STR_ICONTAINS: "icontains", STR_PMATCH: "pmatch", TTY: "has a terminal",
            EXE_NEW: "executable changed after", MEMFD: "may be a memfd"}
# The exec program's subjects (csrc/prefilter.h enum wa_pf_subject), as an atom's argument.
S_NAME, S_EXE, S_EXEPATH, S_EXEPATH_BASE, S_ARGS, S_ENV, S_PNAME = range(200, 207)
#: proc.args[N] is the subject S_ARG0 + N, for N below ARGN_MAX
S_ARG0, ARGN_MAX = 210, 32
SUBJECT_NAMES = {S_NAME: "proc.name", S_EXE: "proc.exe", S_EXEPATH: "proc.exepath",
                 S_EXEPATH_BASE: "basename(proc.exepath)", S_ARGS: "proc.args", S_ENV: "proc.env",
                 S_PNAME: "proc.pname", **{S_ARG0 + n: f"proc.args[{n}]" for n in range(ARGN_MAX)}}

#: (op, frozenset of strings | int mask, argument whose path it tests: -1 the program's)
Atom = Tuple[int, object, int]
DEFAULT_PATH = -1
Clause = FrozenSet[Atom]               # all hold
Dnf = Tuple[Clause, ...]               # some clause holds; () is false, (frozenset(),) true
TRUE: Dnf = (frozenset(),)
FALSE: Dnf = ()
#: Past this many clauses a conjunction keeps its smaller side (still necessary).
MAX_CLAUSES = 64

_PPM_O_RDONLY, _PPM_O_WRONLY = 1, 2   # what evt.is_open_read / is_open_write test


def _accmodes(ppm_bit: int, want: bool) -> int:
    """The access modes (flags & O_ACCMODE) for which the field has the value ``want``,
    as bits, computed with the decoder's own flag conversion."""
    mask = 0
    for mode in range(4):
        if bool(open_flags_to_ppm(mode) & ppm_bit) == want:
            mask |= 1 << mode
    return mask


@dataclass(frozen=True)
class PathEvent:
    """Where a syscall's paths and open flags are, for the fields derived from them."""
    path_arg: Optional[int]
    flags_arg: Optional[int]
    #: fd.* describe the path (the open family: the new fd is that file)
    fd_is_path: bool
    #: path params (FSPATH/FSRELPATH read from an argument) -> that argument: what
    #: ``evt.arg.<name>`` gives is the path resolved as the C side resolves it
    paths: Dict[str, int]
    #: mode params (chmod's) -> (argument, flag table name): ``contains NAME`` tests bits
    modes: Dict[str, Tuple[int, str]]
    #: every param name the event can have (all its layouts): ``evt.arg.X`` of any other
    #: name has no value, and every comparison with no value is false
    params: FrozenSet[str] = frozenset()


def path_events() -> Dict[str, PathEvent]:
    """From the param table: syscalls with path arguments, and whether their fd.* fields
    are their path (the open family)."""
    out = {}
    for name, spec in SPECS.items():
        params = {p.name: p for p in spec.params}
        paths = {p.name: p.src[1] for p in spec.params
                 if p.type in ("FSPATH", "FSRELPATH") and p.src[0] == "path"}
        modes = {p.name: (p.src[1], p.table) for p in spec.params
                 if p.type == "MODE" and p.src[0] == "umode" and p.table}
        if not paths and not modes:
            continue
        name_p = params.get("name")
        flags_p = params.get("flags")
        fd_is_path = name_p is not None and name_p.src[0] == "path" and spec.params[0].name == "fd"
        flags_arg = flags_p.src[1] if flags_p is not None and flags_p.src[0] == "open_flags" else None
        out[name] = PathEvent(name_p.src[1] if fd_is_path else None, flags_arg if fd_is_path else None,
                              fd_is_path, paths, modes,
                              frozenset(p.name for p in spec.params + (spec.success_params or ())))
    return out


_PATH_EVENTS = path_events()


def _and(a: Dnf, b: Dnf) -> Dnf:
    if not a or not b:
        return FALSE
    if a == TRUE:
        return b
    if b == TRUE:
        return a
    if len(a) * len(b) > MAX_CLAUSES:
        return a if len(a) <= len(b) else b
    return _dedupe(x | y for x in a for y in b)


def _or(a: Dnf, b: Dnf) -> Dnf:
    if a == TRUE or b == TRUE:
        return TRUE
    out = _dedupe(list(a) + list(b))
    return TRUE if len(out) > MAX_CLAUSES else out


def _dedupe(clauses: Iterable[Clause]) -> Dnf:
    """The clauses, each once, without those another clause absorbs (A or (A and B) is A):
    on aarch64 a rule on `creat` adds `openat and O_CREAT and ...` beside the rules' own
    open-for-writing clauses, and without absorption the DNF outgrew MAX_CLAUSES."""
    seen: List[Clause] = []
    for c in clauses:
        if not c:
            return TRUE
        if c not in seen:
            seen.append(c)
    kept = [c for c in seen if not any(o < c for o in seen)]
    return tuple(_merge_alike(kept)) if len(kept) > 1 else tuple(kept)


def _merge_alike(clauses: List[Clause]) -> List[Clause]:
    """(startswith /a and write) or (startswith /b and write) is (startswith (/a, /b) and
    write): clauses that differ in one string atom of the same test on the same argument
    are one clause whose atom holds any of both sets (exact, and fewer clauses to run)."""
    out = list(clauses)
    merged = True
    while merged:
        merged = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                only_a, only_b = a - b, b - a
                if len(a) != len(b) or len(only_a) != 1 or len(only_b) != 1:
                    continue
                (x,), (y,) = only_a, only_b
                if x[0] != y[0] or x[2] != y[2] or not isinstance(x[1], frozenset) \
                        or not isinstance(y[1], frozenset):
                    continue
                out[i] = (a - {x}) | {(x[0], x[1] | y[1], x[2])}
                del out[j]
                merged = True
                break
            if merged:
                break
    return out


def _strings(rhs) -> Optional[FrozenSet[str]]:
    if isinstance(rhs, Literal):
        return frozenset({rhs.value})
    if isinstance(rhs, ListLit):
        return frozenset(rhs.values)
    return None


def _fold_type(node: Node, etype: str) -> Optional[bool]:
    """The truth of an evt.type check for this event type, None for any other node."""
    if not (isinstance(node, Check) and isinstance(node.lhs, Field) and node.lhs.name == "evt.type"
            and node.lhs.arg is None and node.modifier is None):
        return None
    values = _strings(node.rhs)
    if values is None:
        return None
    if node.op in ("=", "in"):
        return etype in values
    if node.op == "!=":
        return etype not in values
    return None


#: Fields whose value is fixed on every record the prefilter sees: the agent's guard
#: takes its records before the prefilter, and only those carry agent.* values.
_KNOWN_AT_PREFILTER = {"agent.targeted": "false", "agent.denied": "false", "agent.guard": ""}


def _fold_fixed(node: Node, fixed: Dict[str, str]) -> Optional[bool]:
    """The truth of an equality test of a field whose value is fixed (``fixed``: field ->
    its value) wherever the program runs; None for any other node."""
    if not (isinstance(node, Check) and isinstance(node.lhs, Field) and node.lhs.arg is None
            and node.lhs.name in fixed and node.modifier is None):
        return None
    values = _strings(node.rhs)
    if values is None:
        return None
    value = fixed[node.lhs.name]
    if node.op in ("=", "in"):
        return value in values
    if node.op == "!=":
        return value not in values
    return None


def _fold_known(node: Node) -> Optional[bool]:
    return _fold_fixed(node, _KNOWN_AT_PREFILTER)


def _fold(node: Node, etype: str, known=None) -> Optional[bool]:
    """Whether the node is decided by the event type alone (True/False), else None.
    ``known``: a further check -> Optional[bool] for facts fixed where the program runs."""
    t = _fold_type(node, etype)
    if t is None:
        t = _fold_known(node)
    if t is None and known is not None:
        t = known(node)
    if t is not None:
        return t
    if isinstance(node, Not):
        c = _fold(node.child, etype, known)
        return None if c is None else not c
    if isinstance(node, And):
        vals = [_fold(c, etype, known) for c in node.children]
        if False in vals:
            return False
        return True if all(v is True for v in vals) else None
    if isinstance(node, Or):
        vals = [_fold(c, etype, known) for c in node.children]
        if True in vals:
            return True
        return False if all(v is False for v in vals) else None
    return None


def _check(node: Check, ev: PathEvent) -> Dnf:
    lhs = node.lhs
    if not isinstance(lhs, Field) or lhs.arg is not None or node.modifier is not None:
        return TRUE
    name, op = lhs.name, node.op
    if name in ("evt.is_open_write", "evt.is_open_read") and ev.flags_arg is not None and op == "=" \
            and isinstance(node.rhs, Literal) and node.rhs.value in ("true", "false"):
        bit = _PPM_O_WRONLY if name == "evt.is_open_write" else _PPM_O_RDONLY
        return (frozenset({(ACCMODE_IN, _accmodes(bit, node.rhs.value == "true"), DEFAULT_PATH)}),)
    if name.startswith("evt.arg.") and ev.params and name[len("evt.arg."):] not in ev.params:
        return FALSE   # e.g. a rule on unlink widened to unlinkat on aarch64 reads evt.arg.path
    if name == "evt.arg.flags" and ev.flags_arg is not None:
        return _open_flags_contain(node)
    if name.startswith("evt.arg.") and name[len("evt.arg."):] in ev.modes:
        return _mode_contains(node, *ev.modes[name[len("evt.arg."):]])
    arg = DEFAULT_PATH
    if name.startswith("evt.arg."):
        arg = ev.paths.get(name[len("evt.arg."):], DEFAULT_PATH)
        if arg == DEFAULT_PATH:
            return TRUE   # not a path param of this event
        name = "fd.name"   # the whole resolved path, tested like fd.name
    elif not ev.fd_is_path or ev.path_arg is None:
        return TRUE
    values = _strings(node.rhs)
    if values is None or not values:
        return TRUE
    if name == "fd.name" and op == "glob":
        return _glob(values, arg)
    if op == "pmatch":
        # a prefix match on whole components: "/host/" matches "/host" itself too
        values = frozenset(v.rstrip("/") or "/" for v in values)
    op_for = {
        "fd.name": {"=": PATH_IN, "in": PATH_IN, "startswith": PATH_PREFIX, "pmatch": PATH_PREFIX,
                    "endswith": PATH_SUFFIX, "contains": PATH_CONTAINS},
        "fd.directory": {"=": DIR_IN, "in": DIR_IN, "startswith": PATH_PREFIX, "pmatch": PATH_PREFIX},
        "fd.filename": {"=": BASE_IN, "in": BASE_IN, "startswith": BASE_PREFIX,
                        "endswith": PATH_SUFFIX},
    }.get(name, {})
    code = op_for.get(op)
    if code is None:
        return TRUE
    return (frozenset({(code, values, arg)}),)


_ACCESS_NAMES = ("O_RDONLY", "O_WRONLY", "O_RDWR")


def _unambiguous(want: str, names) -> bool:
    """A flag name of the table that no other name contains: `contains` on the rendering
    then finds it only where that flag itself was rendered."""
    return want in names and not any(want in other for other in names if other != want)


def _open_flags_contain(node: Check) -> Dnf:
    """``evt.arg.flags contains O_TRUNC`` on an open: the rendering (render_flags of the PPM
    flags) names O_TRUNC only when the kernel's O_TRUNC bit is set; an access mode name is
    an access-mode test, computed by rendering each mode. Rules on arm64 need this: there a
    rule on `creat` means openat with O_CREAT, O_TRUNC and O_WRONLY."""
    if node.op != "contains" or not isinstance(node.rhs, Literal):
        return TRUE
    want = node.rhs.value
    names = [n for n, _ in FILE_FLAGS]
    if not _unambiguous(want, names):
        return TRUE   # O_DIRECT is also in O_DIRECTORY's name
    if want in _ACCESS_NAMES:
        mask = 0
        for mode in range(4):
            for extra in (0, *(bits for bits in map(open_flag_kernel_bits, names) if bits)):
                if want in render_flags(open_flags_to_ppm(mode | extra), FILE_FLAGS).split("|"):
                    mask |= 1 << mode
        return (frozenset({(ACCMODE_IN, mask, DEFAULT_PATH)}),)
    bits = open_flag_kernel_bits(want)
    if not bits:
        return TRUE   # set by the state (O_F_CREATED...), not by the caller
    return (frozenset({(FLAGS_ANY, bits, DEFAULT_PATH)}),)


def _mode_contains(node: Check, arg: int, table: str) -> Dnf:
    """``evt.arg.mode contains S_ISUID``: the rendering names a flag only when its bits are
    set (events/flags.py render_flags), so the argument must have one of them. Only for a
    name no other name of the table contains, or the substring could come from that one."""
    if node.op != "contains" or not isinstance(node.rhs, Literal):
        return TRUE
    names = dict(TABLES[table])
    want = node.rhs.value
    if not _unambiguous(want, names) or not names[want]:
        return TRUE
    return (frozenset({(FLAGS_ANY, names[want], arg)}),)


_GLOB_META = "*?["


def _glob(patterns, arg: int = DEFAULT_PATH, ops=(PATH_IN, PATH_PREFIX, PATH_SUFFIX)) -> Dnf:
    """A path a glob matches starts with the pattern's text before its first wildcard and
    ends with the text after its last one. ops: the (equal, prefix, suffix) tests to use."""
    eq_op, prefix_op, suffix_op = ops
    out = FALSE
    for pat in patterns:
        cuts = [i for i, ch in enumerate(pat) if ch in _GLOB_META]
        if not cuts:
            clause = frozenset({(eq_op, frozenset({pat}), arg)})
        else:
            head, tail = pat[:cuts[0]], pat[cuts[-1] + 1:]
            if "]" in tail:   # the last wildcard is inside a [...] class: no literal tail
                tail = ""
            atoms = set()
            if head:
                atoms.add((prefix_op, frozenset({head}), arg))
            if tail:
                atoms.add((suffix_op, frozenset({tail}), arg))
            clause = frozenset(atoms)
        out = _or(out, (clause,))
    return out


def _dnf_of(node: Node, fold, leaf) -> Dnf:
    """The DNF of a condition: ``fold`` decides a node outright (True/False/None), ``leaf``
    gives a check's necessary condition; And and Or combine them."""
    folded = fold(node)
    if folded is not None:
        return TRUE if folded else FALSE
    if isinstance(node, And):
        out = TRUE
        for c in node.children:
            out = _and(out, _dnf_of(c, fold, leaf))
        return out
    if isinstance(node, Or):
        out = FALSE
        for c in node.children:
            out = _or(out, _dnf_of(c, fold, leaf))
        return out
    return leaf(node)


def necessary(node: Node, etype: str) -> Dnf:
    """A condition on the stop's raw values that holds whenever ``node`` holds on an
    event of type ``etype`` (TRUE when nothing useful can be said: a negation, a macro
    left unresolved, a field the tracer cannot see)."""
    ev = _PATH_EVENTS.get(etype)
    return _dnf_of(node, lambda n: _fold(n, etype),
                   lambda n: _check(n, ev) if isinstance(n, Check) and ev is not None else TRUE)


# ---- the exec program ------------------------------------------------------------------

#: Calls whose records change only the calling process's state (cwd, name, credentials,
#: session): a quiet process's are held with its others when no rule can match them. Not
#: setpgid, which can join another process's group.
QUIET_LOCAL = frozenset({"chdir", "fchdir", "prctl", "setsid", "capset", "setuid", "setgid",
                         "setreuid", "setregid", "setresuid", "setresgid"})
#: Event types made from the records a quiet process's are held and maybe dropped with.
LIFECYCLE_TYPES = frozenset({"clone", "clone3", "fork", "vfork", "procexit"})
_EXEC_STRINGS = {"proc.name": S_NAME, "proc.exe": S_EXE, "proc.exepath": S_EXEPATH,
                 "proc.args": S_ARGS, "proc.env": S_ENV, "proc.pname": S_PNAME}
_EXEC_STR_OPS = {"=": STR_IN, "in": STR_IN, "startswith": STR_PREFIX, "endswith": STR_SUFFIX,
                 "contains": STR_CONTAINS, "icontains": STR_ICONTAINS, "pmatch": STR_PMATCH}
#: What holds at every exec the program judges: a successful execve (the exit side) of a
#: process born under the tracer from the workload, never one that entered from outside.
_EXEC_FIXED = {"evt.res": "SUCCESS", "evt.dir": "<", "evt.rawres": "0", "evt.arg.res": "0",
               "evt.is_exec_session_start": "false", "proc.is_exec_session": "false"}


def _fold_exec(node: Node) -> Optional[bool]:
    return _fold_fixed(node, _EXEC_FIXED)


def _exec_check(node: Check, start_ns: Optional[int]) -> Dnf:
    lhs = node.lhs
    if node.modifier is not None:
        return TRUE
    if isinstance(lhs, Field) and lhs.arg is None:
        name = lhs.name
        subject = _EXEC_STRINGS.get(name)
    elif (isinstance(lhs, Field) and lhs.name == "proc.args" and lhs.arg.isdigit()
          and int(lhs.arg) < ARGN_MAX):
        name, subject = lhs.text, S_ARG0 + int(lhs.arg)
    elif (isinstance(lhs, Transform) and lhs.name == "basename" and len(lhs.args) == 1
          and isinstance(lhs.args[0], Field) and lhs.args[0].name == "proc.exepath"
          and lhs.args[0].arg is None):
        name, subject = "basename(proc.exepath)", S_EXEPATH_BASE
    else:
        return TRUE
    values = _strings(node.rhs)
    if values is None:
        return TRUE
    if name == "proc.tty" and node.op == "!=" and values == {"0"}:
        return (frozenset({(TTY, 0, 0)}),)
    if name == "proc.is_exe_upper_layer" and node.op == "=" and values == {"true"} and start_ns:
        return (frozenset({(EXE_NEW, int(start_ns), 0)}),)
    if name == "proc.is_exe_from_memfd" and node.op == "=" and values == {"true"}:
        return (frozenset({(MEMFD, 0, 0)}),)
    if subject is not None and node.op == "glob" and values:
        return _glob(values, subject, (STR_IN, STR_PREFIX, STR_SUFFIX))
    op = _EXEC_STR_OPS.get(node.op)
    if subject is None or op is None or not values:
        return TRUE
    if op == STR_ICONTAINS:
        if not all(v.isascii() for v in values):
            return TRUE   # the rules lower every character's case, the C side only ASCII's
        values = frozenset(v.lower() for v in values)
    if op == STR_PMATCH and any(ch in v for v in values for ch in "?*["):
        return TRUE   # a glob component
    return (frozenset({(op, frozenset(values), subject)}),)


def _exec_necessary(node: Node, start_ns: Optional[int]) -> Dnf:
    return _dnf_of(node, lambda n: _fold(n, "execve", _fold_exec),
                   lambda n: _exec_check(n, start_ns) if isinstance(n, Check) else TRUE)


_FAILED = {"evt.dir": "<", "evt.is_exec_session_start": "false"}
_SUCCESS = {"evt.res": "SUCCESS", "evt.rawres": "0", "evt.arg.res": "0"}


def _fold_failed(node: Node) -> Optional[bool]:
    """At a failed exec: only a comparison of the result with success is known (any error
    could be the one), the direction, and that no exec session starts."""
    if (isinstance(node, Check) and isinstance(node.lhs, Field) and node.lhs.arg is None
            and node.lhs.name in _SUCCESS and node.modifier is None):
        if node.op in ("=", "in", "!=") and _strings(node.rhs) == {_SUCCESS[node.lhs.name]}:
            return node.op == "!="
        return None   # a comparison with one error: that error may be the one
    return _fold_fixed(node, _FAILED)


def failed_exec_quiet(rules) -> bool:
    """True when no rule can match a failed execve or execveat: such a record of a quiet
    process is held with the others (it changes no state)."""
    for rule, condition in rules:
        types = rule.event_types
        if types is None:
            return False
        for t in types & {"execve", "execveat"}:
            if _fold(condition, t, _fold_failed) is not False:
                return False
    return True


def exec_program(rules, start_ns: Optional[int]) -> Optional[Dnf]:
    """The exec program for (rule, widened condition) pairs; None: no process may be quiet
    (a rule reads clone or exit events, or some exec cannot be told from the stop)."""
    dnf: Dnf = FALSE
    for rule, condition in rules:
        types = rule.event_types
        if types is None:
            return None
        if any(_fold(condition, t) is not False for t in types & LIFECYCLE_TYPES):
            return None   # e.g. the guard's clone rule folds to false: only guarded calls match
        if "execve" not in types:
            continue
        dnf = _or(dnf, _exec_necessary(condition, start_ns))
        if dnf == TRUE:
            return None
    return dnf


def _exec_args() -> Tuple[int, int]:
    """(filename, argv) argument indexes of execve, from the param table; envp follows argv."""
    params = {p.name: p for p in SPECS["execve"].params}
    path, argv, env = params["filename"].src[1], params["exe"].src[1], params["env"].src[1]
    assert env == argv + 1, "csrc/prefilter.c reads envp right after argv"
    return path, argv


#: A start compiled into a cached prefilter in place of the run's (with_start replaces it).
START_STAND_IN = 1


class Prefilter:
    """Per syscall name: the DNF the tracer evaluates (syscalls absent: not filtered); and
    the exec program (None: no quiet processes)."""

    def __init__(self, programs: Dict[str, Dnf], exec_program: Optional[Dnf] = None,
                 quiet_failed_exec: bool = False, quiet_hold: Iterable[str] = ()):
        self.programs = programs
        self.exec_program = exec_program
        self.quiet_failed_exec = quiet_failed_exec and exec_program is not None
        #: syscalls whose records a quiet process keeps quiet through
        self.quiet_hold = frozenset(quiet_hold) if exec_program is not None else frozenset()

    def with_start(self, start_ns: int) -> "Prefilter":
        """This prefilter for a state started at ``start_ns``, when it was compiled for
        another start (the rules cache keeps one compiled for START_STAND_IN): the start
        is only ever the value of EXE_NEW atoms, and no DNF step looks at it."""
        if self.exec_program is None:
            return self
        exec_program = tuple(frozenset((op, int(start_ns) if op == EXE_NEW else value, arg)
                                       for op, value, arg in clause)
                             for clause in self.exec_program)
        return Prefilter(self.programs, exec_program, self.quiet_failed_exec, self.quiet_hold)

    def __bool__(self) -> bool:
        return bool(self.programs) or self.exec_program is not None

    def describe(self) -> List[str]:
        lines = []
        if self.exec_program is not None:
            alts = [" and ".join(_atom_text(a, SUBJECT_NAMES) for a in sorted(c, key=_atom_key))
                    for c in self.exec_program]
            lines.append("execve (a process born under the tracer stays quiet unless): "
                         + (" | ".join(f"({a})" for a in alts) or "never"))
            if self.quiet_failed_exec:
                lines.append("execve, execveat failed: no rule can match (a quiet process stays quiet)")
            if self.quiet_hold:
                lines.append(f"{', '.join(sorted(self.quiet_hold))}: no rule can match "
                             "(a quiet process stays quiet)")
        for name, dnf in sorted(self.programs.items()):
            if not dnf:
                lines.append(f"{name}: dropped (no enabled rule can match it)")
                continue
            ev = _PATH_EVENTS.get(name)
            names = {} if ev is None else {**{i: n for n, i in ev.paths.items()},
                                           **{i: n for n, (i, _) in ev.modes.items()}}
            alts = [" and ".join(_atom_text(a, names) for a in sorted(c, key=_atom_key)) for c in dnf]
            lines.append(f"{name}: kept when " + " | ".join(f"({a})" for a in alts))
        return lines

    def image(self) -> PrefilterImage:
        """The arrays the C core takes, as plain data (prefilter_image.py)."""
        progs, clauses, atoms, strings, start_atoms = [], [], [], [], []

        def add(dnf) -> tuple:
            first = len(clauses)
            for clause in dnf:
                clauses.append((len(atoms), len(clause)))
                for op, value, arg in sorted(clause, key=_atom_key):
                    c_arg = arg if arg >= 0 else NO_ARG
                    if isinstance(value, frozenset):
                        atoms.append((op, len(value), len(strings), 0, c_arg))
                        strings.extend(s.encode("utf-8", "surrogateescape") for s in sorted(value))
                    else:
                        if op == EXE_NEW:
                            start_atoms.append(len(atoms))
                        atoms.append((op, 0, 0, value, c_arg))
            return first, len(dnf)

        for name, dnf in self.programs.items():
            ev = _PATH_EVENTS.get(name)
            path_arg = ev.path_arg if ev is not None and ev.path_arg is not None else NO_ARG
            flags_arg = ev.flags_arg if ev is not None and ev.flags_arg is not None else NO_ARG
            progs.append((name, path_arg, flags_arg) + add(dnf))
        exec_prog = None
        if self.exec_program is not None:
            exec_prog = _exec_args() + add(self.exec_program)
        return PrefilterImage(progs, sorted(self.quiet_hold), exec_prog, self.quiet_failed_exec,
                              clauses, atoms, strings, start_atoms)

    def to_c(self, ffi, lib, table: Dict[str, int]):
        """cffi objects for struct wa_pf (kept alive by the returned holder)."""
        return self.image().to_c(ffi, lib, table)


def _atom_key(a: Atom):
    op, value, arg = a
    return (arg, op, sorted(value) if isinstance(value, frozenset) else [value])


def _atom_text(a: Atom, names: Dict[int, str]) -> str:
    op, value, arg = a
    text = OP_NAMES[op]
    if op in (TTY, MEMFD):
        return text
    if arg >= 0 and op != EXE_NEW:
        text = f"{names.get(arg, f'arg {arg}')}: " + text
    if isinstance(value, frozenset):
        shown = sorted(value)
        more = f", ... {len(shown) - 4} more" if len(shown) > 4 else ""
        return f"{text} ({', '.join(shown[:4])}{more})"
    return f"{text} {value:#x}"


def compile_prefilter(ruleset, syscalls: Iterable[str], *, keep: Iterable[str] = (),
                      start_ns: Optional[int] = None) -> Prefilter:
    """The prefilter for the enabled rules of ``ruleset`` over the traced ``syscalls``.
    ``keep``: syscalls never filtered (their records change state the rules read).
    ``start_ns``: the state's start (what proc.is_exe_upper_layer compares with); without
    it the exec program cannot decide that field."""
    from ..rules.compiler import _widen_legacy

    keep = frozenset(keep)
    syscalls = list(syscalls)
    programs: Dict[str, Dnf] = {}
    # each condition as the rules engine evaluates it (on aarch64 a rule on `open` also
    # means `openat`: rules/compiler.py widens it)
    rules = [(r, _widen_legacy(r.condition)) for r in ruleset.rules if r.enabled]
    for name in syscalls:
        ev = _PATH_EVENTS.get(name)
        if name in keep or ev is None or name in RATED_SYSCALLS:
            continue
        if not ev.fd_is_path and name in STATEFUL_SYSCALLS:
            continue   # its record changes state (cwd, namespaces...) whatever the rules say
        dnf: Dnf = FALSE
        for rule, condition in rules:
            if rule.event_types is not None and name not in rule.event_types:
                continue
            dnf = _or(dnf, necessary(condition, name))
            if dnf == TRUE:
                break
        if dnf != TRUE:
            programs[name] = dnf
    quiet = exec_program(rules, start_ns) if "execve" in syscalls else None
    hold = [name for name in syscalls if name in QUIET_LOCAL and _no_rule_matches(rules, name)]
    return Prefilter(programs, quiet, failed_exec_quiet(rules), hold)


def _no_rule_matches(rules, name: str) -> bool:
    dnf: Dnf = FALSE
    for rule, condition in rules:
        if rule.event_types is not None and name not in rule.event_types:
            continue
        dnf = _or(dnf, necessary(condition, name))
        if dnf != FALSE:
            return False
    return True
