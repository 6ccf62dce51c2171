"""The prefilter as the C core takes it (struct wa_pf), kept as plain tuples.

A Prefilter (prefilter.py) is made from the rules' condition trees; what the tracer
needs of it is only these arrays. Kept apart, they can be stored as plain data and
handed to a starting tracer without importing the condition classes or the analysis:
a start with a warm rules cache (runner.py, rules/cache.py) loads an image and never
the rules themselves before the workload's exec.
"""
from __future__ import annotations

NO_ARG = 255   # csrc/prefilter.h: no path/flags argument, or the program's own path


class PrefilterImage:
    """progs: (syscall name, path argument, flags argument, first clause, clause count) per
    filtered syscall; hold: syscalls a quiet process stays quiet through; exec_prog: (path
    argument, argv argument, first clause, clause count) of the exec program, or None;
    clauses: (first atom, atom count); atoms: (op, string count, first string, value,
    argument); strings: the pool's strings; start_atoms: the atoms whose value is the
    state's start (the exec program's drift test), which ``with_start`` replaces."""

    __slots__ = ("progs", "hold", "exec_prog", "quiet_failed_exec", "clauses", "atoms", "strings",
                 "start_atoms")

    def __init__(self, progs=(), hold=(), exec_prog=None, quiet_failed_exec=False, clauses=(),
                 atoms=(), strings=(), start_atoms=()):
        self.progs = tuple(progs)
        self.hold = tuple(hold)
        self.exec_prog = exec_prog
        self.quiet_failed_exec = bool(quiet_failed_exec)
        self.clauses = tuple(clauses)
        self.atoms = tuple(atoms)
        self.strings = tuple(strings)
        self.start_atoms = tuple(start_atoms)

    def __bool__(self) -> bool:
        return bool(self.progs) or self.exec_prog is not None

    def __eq__(self, other) -> bool:
        return isinstance(other, PrefilterImage) and self.as_data() == other.as_data()

    __hash__ = None

    def as_data(self) -> tuple:
        """Plain values only (tuples, ints, str, bytes, None): what marshal stores."""
        return (self.progs, self.hold, self.exec_prog, self.quiet_failed_exec, self.clauses,
                self.atoms, self.strings, self.start_atoms)

    @classmethod
    def from_data(cls, data) -> "PrefilterImage":
        return cls(*data)

    def with_start(self, start_ns: int) -> "PrefilterImage":
        """This image for a state started at ``start_ns`` (see Prefilter.with_start)."""
        if not self.start_atoms:
            return self
        atoms = list(self.atoms)
        for i in self.start_atoms:
            op, nstr, first, _, arg = atoms[i]
            atoms[i] = (op, nstr, first, int(start_ns), arg)
        return PrefilterImage(self.progs, self.hold, self.exec_prog, self.quiet_failed_exec,
                              self.clauses, atoms, self.strings, self.start_atoms)

    def to_c(self, ffi, lib, table):
        """cffi objects for struct wa_pf (kept alive by the returned holder); table: the
        syscall numbers of the traced ABI by name."""
        progs = ffi.new("struct wa_pf_prog[]", lib.WA_MAX_NR)
        pf = ffi.new("struct wa_pf *")
        for name, path_arg, flags_arg, first, n in self.progs:
            nr = table.get(name)
            if nr is None or nr >= lib.WA_MAX_NR:
                continue
            p = progs[nr]
            p.path_arg, p.flags_arg = path_arg, flags_arg
            p.active, p.first_clause, p.nclauses = 1, first, n
        for name in self.hold:
            nr = table.get(name)
            if nr is not None and nr < lib.WA_MAX_NR:
                progs[nr].quiet_hold = 1
        if self.exec_prog is not None and "execve" in table:
            e = pf.exec
            e.path_arg, e.flags_arg, e.first_clause, e.nclauses = self.exec_prog
            e.active = 1
            pf.quiet_failed_exec = 1 if self.quiet_failed_exec else 0
        c_clauses = ffi.new("struct wa_pf_clause[]", max(len(self.clauses), 1))
        for i, (first, n) in enumerate(self.clauses):
            c_clauses[i].first_atom, c_clauses[i].natoms = first, n
        c_atoms = ffi.new("struct wa_pf_atom[]", max(len(self.atoms), 1))
        for i, (op, nstr, first, value, arg) in enumerate(self.atoms):
            a = c_atoms[i]
            a.op, a.nstr, a.first_str, a.value, a.arg = op, nstr, first, value, arg
        pool = ffi.new("char[]", b"".join(self.strings) or b"\0")
        lengths = [len(s) for s in self.strings] or [0]
        starts, off = [], 0
        for n in lengths:
            starts.append(off)
            off += n
        offs = ffi.new("uint32_t[]", starts)
        lens = ffi.new("uint32_t[]", lengths)
        pf.progs, pf.clauses, pf.atoms = progs, c_clauses, c_atoms
        pf.str_off, pf.str_len, pf.pool = offs, lens, pool
        return pf, [progs, c_clauses, c_atoms, pool, offs, lens]
