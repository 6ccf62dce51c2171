"""Detection: traced records -> process/fd state -> Falco events -> rules -> alerts.

The pieces are elsewhere (tracer, events, state, rules); this module wires them and
decides what the tracer must stop on: the union of the enabled rules' event types,
plus what the process state needs to stay true.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Iterable

from .events import records as R
from .events.params import DEFAULT_SYSCALLS, SPECS, equivalents
from .events.syscall_table import SYSCALLS

# Traced whatever the rules say: exec gives process identity, chdir the cwd that relative
# paths resolve against, the setuid family user.*.
STATE_SYSCALLS = frozenset({
    "execve", "execveat", "chdir", "fchdir", "setuid", "setgid", "setreuid", "setregid",
    "setresuid", "setresgid",
})

# Events that look an existing fd up in the table (rather than carrying its path or
# address themselves): rules on them need the fd table kept true, so the calls that
# create and retire fds are traced too. close is the costliest: only when needed.
FD_LOOKUP_TYPES = frozenset({"dup", "dup2", "dup3", "fcntl", "read", "write", "readv", "writev",
                             "sendto", "sendmsg", "recvfrom", "recvmsg", "listen", "accept",
                             "accept4", "fchmod", "fchdir", "close"})
FD_STATE_SYSCALLS = frozenset({"close", "socket", "socketpair", "pipe", "pipe2", "accept", "accept4",
                               "dup", "dup2", "dup3", "memfd_create", "open", "openat", "openat2",
                               "creat"})

DROP_RULE = "Syscall event drop"


class RulesError(Exception):
    """The rules could not be loaded; .text holds every message."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


def default_rules_paths() -> list:
    """Where the shipped ruleset is: the checkout, the self-contained bundle, or the install."""
    here = os.path.dirname(os.path.abspath(__file__))
    for candidate in (os.path.join(os.path.dirname(here), "rules"), "/opt/draios/rules",
                      os.path.join(sys.prefix, "share", "workload-agent", "rules")):
        if os.path.isdir(candidate) and any(f.endswith((".yaml", ".yml")) for f in os.listdir(candidate)):
            return [candidate]
    return []


def load_ruleset(paths: Iterable[str], *, min_priority=None, enable=(), disable=()):
    from .rules.loader import load_rules

    paths = list(paths) or default_rules_paths()
    if not paths:
        raise RulesError("no rules given and no default rules found (use -r FILE_OR_DIR)")
    result = load_rules(paths, min_priority=min_priority, enable=enable, disable=disable,
                        compile_each=False)
    if not result.ok:
        raise RulesError("\n".join(m.as_text() for m in result.errors))
    return result.ruleset, [m.as_text() for m in result.warnings]


def traced_syscalls(ruleset, arch: str) -> tuple:
    """(syscall names to trace, note). The note says when a rule forced the default set."""
    types = ruleset.event_types()
    table = SYSCALLS[arch]
    note = ""
    if types is None:
        wanted = set(DEFAULT_SYSCALLS)
        note = ("a rule applies to every event type: tracing the default syscall set "
                "(give that rule an evt.type condition to trace less)")
    else:
        # Types that are not syscalls (procexit, clone...) come with every run; a syscall
        # no spec decodes can never fire here.
        wanted = {t for t in types if t in SPECS}
        if "execve" in types:
            wanted.add("execveat")  # a successful execveat is an execve event
        if types & FD_LOOKUP_TYPES:
            wanted |= FD_STATE_SYSCALLS
    wanted |= STATE_SYSCALLS
    for old, new in equivalents(arch).items():  # aarch64: open arrives as openat
        if old in wanted:
            wanted.update(name for name, _ in new)
    return sorted(n for n in wanted if n in table and n in SPECS), note


class AlertWriter:
    """Alert lines to stdout, stderr or a file, and/or (as Falco JSON) to the orchestrator."""

    def __init__(self, target: str | None = "stdout", json_lines: bool = False, client=None):
        self.json = json_lines
        self.target = target
        self.client = client
        if target is None:
            self.out = None
        elif target == "stdout":
            self.out = sys.stdout
        elif target == "stderr":
            self.out = sys.stderr
        else:
            self.out = open(target, "a", buffering=1, encoding="utf-8")
        self.count = 0

    def write(self, ts: int, priority: int, rule: str, message: str, fields: dict, tags) -> None:
        import json

        from .rules.output import alert_json, alert_text

        self.count += 1
        doc = None
        if self.json or self.client is not None:
            doc = alert_json(ts, priority, message, rule, fields, tags)
        if self.client is not None:
            self.client.send(json.loads(doc))  # never blocks: buffered for the sender thread
        if self.out is None:
            return
        self.out.write((doc if self.json else alert_text(ts, priority, message)) + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.client is not None:
            report = self.client.close()
            lost = report.undelivered + report.buffer_dropped
            if lost:
                sys.stderr.write(f"workload-agent: {lost} alerts were not delivered to the orchestrator "
                                 f"({report.undelivered} still buffered at exit, "
                                 f"{report.buffer_dropped} dropped at the buffer bound)\n")
        if self.out is not None and self.out not in (sys.stdout, sys.stderr):
            self.out.close()


# Falco appends the container context to every rule's output (its append_output default).
CONTAINER_SUFFIX = ("container_id=%container.id container_name=%container.name "
                    "container_image_repository=%container.image.repository "
                    "container_image_tag=%container.image.tag")


class Detector:
    """The tracer's sink: every record updates state, every event visits its rules."""

    def __init__(self, ruleset, tracker, writer: AlertWriter, *, mode: str = "first",
                 append_container: bool = True):
        from .rules.output import compile_output

        self.ruleset = ruleset
        self.tracker = tracker
        self.writer = writer
        self.mode = mode
        self.suffix = compile_output(CONTAINER_SUFFIX) if append_container else None
        self.events = 0
        self.drops = 0
        self._next_ruleset = None
        self.traced = frozenset()  # what the tracer stops on; new rules cannot widen it

    def counters(self) -> dict:
        return {"events": self.events, "drops": self.drops, "alerts": self.writer.count}

    def swap_rules(self, ruleset) -> list:
        """Take a new ruleset at the next batch (called from another thread). Returns the
        syscalls it needs that the running tracer does not stop on."""
        from .tracer.seccomp import native_arch

        wanted, _ = traced_syscalls(ruleset, native_arch())
        self._next_ruleset = ruleset
        return sorted(set(wanted) - set(self.traced))

    def handle(self, batch) -> None:
        if self._next_ruleset is not None:
            self.ruleset, self._next_ruleset = self._next_ruleset, None
            self.tracker.wanted = self.ruleset.event_types()
        process = self.tracker.process
        match = self.ruleset.match
        for rec in batch:
            if rec.kind == R.K_DROP:
                self._drop(rec)
                continue
            ev = process(rec)
            if ev is None:
                continue
            self.events += 1
            for rule in match(ev, self.mode):
                self._alert(rule, ev)

    def _alert(self, rule, ev) -> None:
        message = rule.output.render(ev)
        fields = rule.output.fields(ev)
        if self.suffix is not None:
            message = f"{message} {self.suffix.render(ev)}"
            fields.update(self.suffix.fields(ev))
        self.writer.write(ev.ts, rule.priority, rule.name, message, fields, rule.tags)

    def _drop(self, rec) -> None:
        from .rules.priority import Priority

        self.drops += rec.extra
        self.writer.write(rec.ts_enter or time.time_ns(), Priority.CRITICAL, DROP_RULE,
                          f"Workload agent internal: {rec.extra} syscall events dropped: the event "
                          f"consumer fell behind, detection may have missed activity "
                          f"(dropped in total: {self.drops})",
                          {"n_drops": rec.extra, "n_drops_total": self.drops}, ("internal",))

    def close(self, stats: dict) -> None:
        self.writer.close()


def rules_bundle_handler(detector, warn):
    """The orchestrator client's on_rules callback: validate, then swap at the next batch.
    Raising tells the orchestrator why the bundle was refused; the old rules stay."""
    def on_rules(files: dict, content_hash: str) -> None:
        from .rules.loader import load_rules

        names = sorted(files)
        result = load_rules(names, contents=files)
        if not result.ok:
            raise ValueError("\n".join(m.as_text() for m in result.errors))
        missing = detector.swap_rules(result.ruleset)
        warn(f"rules bundle {content_hash} loaded ({len(result.ruleset.enabled_rules)} rules enabled)")
        if missing:
            warn(f"WARNING: the new rules need syscalls this run does not trace: {', '.join(missing)}; "
                 f"rules on them will not fire until the workload restarts")
    return on_rules


class Tee:
    def __init__(self, *sinks):
        self.sinks = [s for s in sinks if s is not None]

    def handle(self, batch) -> None:
        for s in self.sinks:
            s.handle(batch)

    def close(self, stats) -> None:
        for s in self.sinks:
            s.close(stats)
