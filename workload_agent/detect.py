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
from .events.params import DEFAULT_SYSCALLS, SPECS
from .events.syscall_table import SYSCALLS

# Traced whatever the rules say: exec gives process identity, chdir the cwd that relative
# paths resolve against, the setuid family user.*, setsid/setpgid the session and group,
# capset the capabilities, prctl the comm (PR_SET_NAME): each keeps a field event-true.
IDENTITY_SYSCALLS = frozenset({
    "execve", "execveat", "chdir", "fchdir", "setuid", "setgid", "setreuid", "setregid",
    "setresuid", "setresgid", "setsid", "setpgid", "capset", "prctl",
})

# What `record` adds so a capture carries every fd's history (replayed rules may look at
# events live rules did not). A live run needs none of them: an event on an fd carries
# the fd's origin, read by the tracer at the stop.
FD_LIFECYCLE_SYSCALLS = frozenset({"close", "socket", "socketpair", "pipe", "pipe2", "accept", "accept4",
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
    from .rules.cache import load_rules_cached

    paths = list(paths) or default_rules_paths()
    if not paths:
        raise RulesError("no rules given and no default rules found (use -r FILE_OR_DIR)")
    result = load_rules_cached(paths, min_priority=min_priority, enable=enable, disable=disable)
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
    wanted |= IDENTITY_SYSCALLS
    return sorted(n for n in wanted if n in table and n in SPECS), note


def prefilter_for(ruleset, names):
    """What the tracer may drop at the entry stop for these rules (tracer/prefilter.py)."""
    from .tracer.prefilter import compile_prefilter

    return compile_prefilter(ruleset, names, keep=IDENTITY_SYSCALLS)


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
        self.records = 0
        self.consumer_ns = 0   # state + rules + output, the consumer's own time
        self.print_stats = False
        self._next_ruleset = None
        self.traced = frozenset()  # what the tracer stops on; new rules cannot widen it
        self.prefilter = None      # what the tracer drops at the stop
        self._tracer = None

    def counters(self) -> dict:
        return {"events": self.events, "drops": self.drops, "alerts": self.writer.count,
                "records": self.records, "consumer_ns": self.consumer_ns}

    def swap_rules(self, ruleset) -> list:
        """Take a new ruleset at the next batch (called from another thread). Returns the
        syscalls it needs that the running tracer does not stop on."""
        from .events.arch import native_arch

        wanted, _ = traced_syscalls(ruleset, native_arch())
        self._next_ruleset = ruleset
        if self._tracer is not None:
            # Until the new rules take over (next batch), keep what either set could match.
            self._tracer.set_prefilter(None)
        return sorted(set(wanted) - set(self.traced))

    def attach_tracer(self, tracer) -> None:
        """The running tracer, whose prefilter follows rules swapped in later."""
        self._tracer = tracer

    def handle(self, batch) -> None:
        if self._next_ruleset is not None:
            self.ruleset, self._next_ruleset = self._next_ruleset, None
            self.tracker.wanted = self.ruleset.event_types()
            if self._tracer is not None:
                self.prefilter = prefilter_for(self.ruleset, sorted(self.traced))
                self._tracer.set_prefilter(self.prefilter)
        process = self.tracker.process
        match = self.ruleset.match
        t0 = time.perf_counter_ns()
        self.records += len(batch)
        try:
            self._handle(batch, process, match)
        finally:
            self.consumer_ns += time.perf_counter_ns() - t0

    def _handle(self, batch, process, match) -> None:
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
        if self.print_stats:
            per = self.consumer_ns / self.records / 1000 if self.records else 0.0
            sys.stderr.write("workload-agent: " + " ".join(f"{k}={v}" for k, v in stats.items())
                             + f" events={self.events} alerts={self.writer.count}"
                             f" consumer_us_per_record={per:.1f}\n")
        reads = getattr(self.tracker, "proc_reads", None)
        if reads:
            # Each is a field judged by what /proc said later, not at the syscall.
            detail = ", ".join(f"{k}: {v}" for k, v in sorted(reads.items()))
            sys.stderr.write(f"workload-agent: {sum(reads.values())} state look-ups fell back to "
                             f"/proc after the event ({detail})\n")


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
