"""Detection: traced records -> process/fd state -> Falco events -> rules -> alerts.

The pieces are elsewhere (tracer, events, state, rules); this module wires them and
decides what the tracer must stop on: the union of the enabled rules' event types,
plus what the process state needs to stay true.
"""
from __future__ import annotations

import os
import sys
import time

from .events import records as R

TYPE_CHECKING = False  # typing costs milliseconds at every container start
if TYPE_CHECKING:
    from typing import Iterable

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
# Alerts about the agent itself: what it could not do, and since when.
DEGRADED_RULE = "Workload agent detection degraded"
INTERNAL_ERROR_RULE = "Workload agent internal error"
FOREIGN_ARCH_RULE = "Foreign ABI syscall refused"
_GUARD_FLAGS = R.F_GUARD | R.F_DENIED
_K_SYSCALL, _K_DROP = R.K_SYSCALL, R.K_DROP
_KIND_NAMES = {R.K_CLONE: "clone", R.K_EXEC: "execve", R.K_EXIT: "procexit", R.K_SIGNAL: "signal"}


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


def load_ruleset_leniently(paths: Iterable[str], *, min_priority=None):
    """(ruleset, warnings, failures): the rules that load, leaving out every file that
    fails (and the files that then fail without it). failures holds one text per file left
    out, with the loader's messages; an empty ruleset when nothing loads. For
    --priority availability: a typo in one rules file must not keep the workload down."""
    from .rules.cache import load_rules_cached
    from .rules.paths import expand_paths

    given = list(paths)
    roots = given or default_rules_paths()
    if not roots:
        from .rules.loader import load_rules

        return load_rules([]).ruleset, [], ["no rules given and no default rules found"]
    files = []
    failures = []
    for p in roots:
        if os.path.isdir(p) and not os.access(p, os.R_OK | os.X_OK):
            failures.append(f"{p}: rules directory not readable")
        elif not os.path.exists(p):
            failures.append(f"{p}: no such rules file or directory")
        else:
            try:
                files.extend(expand_paths([p]))
            except OSError as exc:
                failures.append(f"{p}: {exc.strerror}")
    # The first try goes through the compiled-rules cache: a start with unchanged files
    # reads no YAML. Only a failed load (never cached) narrows the files down.
    load = load_rules_cached
    while True:
        result = load(files, min_priority=min_priority)
        if result.ok:
            return result.ruleset, [m.as_text() for m in result.warnings], failures
        # The files the errors point into; compile errors are filed under the last file
        # read but their locations name the file of the rule or macro at fault.
        bad = {loc.file for msg in result.errors for loc in msg.locations if loc.file in files}
        if not bad:
            bad = {f.name for f in result.files if f.errors}
        for name in files:
            if name in bad:
                msgs = [msg for f in result.files for msg in f.errors
                        if name in {loc.file for loc in msg.locations} or f.name == name]
                head = msgs[0].as_text().splitlines()[0] if msgs else "it needs a file left out"
                text = "".join("\n" + msg.as_text() for msg in msgs)
                failures.append(f"{name} left out ({head}){text}")
        files = [f for f in files if f not in bad]
        from .rules.loader import load_rules

        import functools

        load = functools.partial(load_rules, compile_each=False)


def traced_syscalls(ruleset, arch: str) -> tuple:
    """(syscall names to trace, note). The note says when a rule forced the default set."""
    # here, not at the top: a start with a warm rules cache takes the names from it
    from .events.params import DEFAULT_SYSCALLS, SPECS, equivalents
    from .events.syscall_table import SYSCALLS

    types = ruleset.event_types()
    if types is not None:
        # Rules on the agent's guard (tagged "agent": rules/05-agent-defense.yaml) match only
        # calls the guard stops anyway: their event types must not make the tracer stop on
        # every such call (clone would cost two more stops per fork).
        types = frozenset().union(*(r.event_types for r in ruleset.enabled_rules
                                    if r.event_types and "agent" not in r.tags))
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
    for old, new in equivalents(arch).items():  # aarch64: open arrives as openat
        if old in wanted:
            wanted.update(name for name, _ in new)
    return sorted(n for n in wanted if n in table and n in SPECS), note


def prefilter_for(ruleset, names, start_ns=None):
    """What the tracer may drop at the entry stop for these rules (tracer/prefilter.py);
    start_ns: the state's start, for the exec program's drift test. Kept in the
    compiled-rules cache beside rules that came from it (compiling it is on the workload's
    start path): compiled for a stand-in start, then given this run's (with_start)."""
    from .events.arch import native_arch
    from .rules.cache import derived
    from .tracer.prefilter import START_STAND_IN, compile_prefilter

    names = tuple(names)
    keep = tuple(sorted(IDENTITY_SYSCALLS))
    stand_in = START_STAND_IN if start_ns else None   # no start (None, 0): nothing to give
    compiled = derived(ruleset, "prefilter", (native_arch(), names, keep, stand_in),
                       lambda: compile_prefilter(ruleset, names, keep=keep, start_ns=stand_in))
    return compiled.with_start(start_ns) if start_ns else compiled


class AlertWriter:
    """Alert lines to stdout, stderr or a file, and/or (as Falco JSON) to the orchestrator.
    Text lines escape control characters: a file name or argument with a newline in it
    must not read as a second alert (JSON escapes them already)."""

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

        from .escape import escape_controls
        from .rules.output import alert_json, alert_text

        self.count += 1
        doc = None
        if self.json or self.client is not None:
            doc = alert_json(ts, priority, message, rule, fields, tags)
        if self.client is not None:
            self.client.send(json.loads(doc))  # never blocks: buffered for the sender thread
        if self.out is None:
            return
        self.out.write((doc if self.json else escape_controls(alert_text(ts, priority, message))) + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.client is not None:
            report = self.client.close()
            lost = report.undelivered + report.buffer_dropped
            if lost:
                sys.stderr.write(f"workload-agent: {lost} alerts were not delivered "
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
        self.ruleset = ruleset
        self.tracker = tracker
        self.writer = writer
        self.mode = mode
        self.append_container = append_container
        self._suffix = None  # compiled at the first alert: not on the way to the workload's exec
        self.events = 0
        self.drops = 0
        self.records = 0
        self.consumer_ns = 0   # state + rules + output, wall time (includes being preempted)
        # The same work in this thread's CPU time: what Python costs per event, apart
        # from the workload and the tracer taking the CPU from it (pinned runs share one).
        self.consumer_cpu_ns = 0
        self.print_stats = False
        self._next_ruleset = None
        self.traced = frozenset()  # what the tracer stops on; new rules cannot widen it
        self.failures: dict = {}   # event type -> events whose processing raised
        self.live: set = set()     # thread groups traced and not yet exited
        self.tracer_stats = None   # the running tracer's stats(), for heartbeats
        self.guard_labels: list = []  # the running tracer's guard rules, by index
        self.output_watch = None   # the orchestrator client, watched for outages
        self.metrics_file = None   # a JSON line of counters() every heartbeat_interval
        self.heartbeat_interval = 10.0
        self._started = time.monotonic()
        self._next_check = 0.0
        self._next_metrics = 0.0
        self._output_down = False

        self.prefilter = None      # what the tracer drops at the stop
        self._tracer = None

    def counters(self) -> dict:
        """What a heartbeat carries: enough to tell a silent agent from a quiet workload."""
        out = {"events": self.events, "drops": self.drops, "alerts": self.writer.count,
               "processes": len(self.live), "event_failures": sum(self.failures.values()),
               "records": self.records, "consumer_ns": self.consumer_ns,
               "consumer_cpu_ns": self.consumer_cpu_ns}
        stats = self.tracer_stats
        if stats is not None:
            try:
                s = stats()
            except Exception:  # noqa: BLE001 - the tracer is gone: the counters above still hold
                s = {}
            for key in ("stops", "tasks", "prefiltered", "quiet_dropped", "ring_waits", "ring_wait_ns",
                        "guard_hits", "denied", "ack_timeouts"):
                if key in s:
                    out[key] = s[key]
            out["drops"] = max(out["drops"], s.get("drops", 0))
        return out

    def tick(self) -> None:
        """Periodic work, from the consumer loop: output health and the metrics line."""
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + 1.0
        self._watch_output(now)
        if self.metrics_file and now >= self._next_metrics:
            self._next_metrics = now + self.heartbeat_interval
            self.write_metrics()

    def write_metrics(self, final: bool = False) -> None:
        import json

        line = dict(time=time.time_ns(), **self.counters())
        if final:
            line["final"] = True
        try:
            with open(self.metrics_file, "a", encoding="utf-8") as f:
                f.write(json.dumps(line, separators=(",", ":")) + "\n")
        except OSError as exc:
            if not getattr(self, "_metrics_warned", False):
                self._metrics_warned = True
                sys.stderr.write(f"workload-agent: cannot write the metrics file {self.metrics_file}: "
                                 f"{exc.strerror}\n")

    # An orchestrator that has not welcomed us this long after start (or since it went
    # away), or a heartbeat interval if shorter, is an outage worth an alert; shorter
    # blips are ordinary reconnects.
    OUTPUT_GRACE_SECONDS = 5.0

    def _watch_output(self, now: float) -> None:
        client = self.output_watch
        if client is None:
            return
        if client.connected.is_set():
            if self._output_down:
                self._output_down = False
                sys.stderr.write(f"workload-agent: the orchestrator {client.host}:{client.port} "
                                 f"is reachable again; buffered alerts are being delivered\n")
            self._down_since = None
            return
        if self._output_down:
            return
        since = getattr(self, "_down_since", None) or self._started
        if getattr(self, "_down_since", None) is None and client.n_connects:
            self._down_since = since = now
        grace = min(self.OUTPUT_GRACE_SECONDS, self.heartbeat_interval)
        if now - since < grace or not (client.last_error or client.refused):
            return
        self._output_down = True
        why = client.last_error or "no answer"
        sys.stderr.write(f"workload-agent: WARNING: the orchestrator {client.host}:{client.port} is not "
                         f"reachable ({why}): alerts are buffered, detection output is degraded\n")
        self.degraded(f"the orchestrator {client.host}:{client.port} is not reachable",
                      f"{why}; alerts are buffered and resent when it is back")

    def degraded(self, what: str, why: str) -> None:
        """A CRITICAL alert saying detection is not what it should be, and why."""
        from .rules.priority import Priority

        self.writer.write(time.time_ns(), Priority.CRITICAL, DEGRADED_RULE,
                          f"Workload agent detection degraded: {what}: {why}",
                          {"agent.degraded": what, "agent.reason": why}, ("internal",))

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
                self.prefilter = prefilter_for(self.ruleset, sorted(self.traced),
                                               self.tracker.start_ns)
                self._tracer.set_prefilter(self.prefilter)
        process = self.tracker.process
        match = self.ruleset.matcher(self.mode)
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        self.records += len(batch)
        try:
            self._handle(batch, process, match)
        finally:
            self.consumer_ns += time.perf_counter_ns() - t0
            self.consumer_cpu_ns += time.thread_time_ns() - c0

    def _handle(self, batch, process, match) -> None:
        live = self.live
        events = 0
        for rec in batch:
            # One failure is one event: a bug met on one record must not stop detection.
            try:
                kind = rec.kind
                if kind != _K_SYSCALL:  # processes traced, for heartbeats
                    if kind == _K_DROP:
                        self._drop(rec)
                        continue
                    if kind == R.K_EXIT:
                        if rec.tid == rec.tgid:
                            live.discard(rec.tgid)
                    elif kind == R.K_EXEC:
                        live.add(rec.tgid)
                    elif kind == R.K_CLONE and not rec.flags & R.F_THREAD:
                        live.add(rec.extra)
                guarded = getattr(rec, "flags", 0) & _GUARD_FLAGS
                if guarded and rec.flags & R.F_FOREIGN_ARCH:
                    self._foreign(rec)
                ev = process(rec)
                if ev is None:
                    continue
                if guarded:
                    self._guarded(rec, ev)
                events += 1
                hits = match(ev)
                if hits:
                    for rule in hits:
                        self._alert(rule, ev)
            except Exception as exc:  # noqa: BLE001 - isolated to this event, counted, reported
                self._failed(rec, exc)
        self.events += events

    def _guarded(self, rec, ev) -> None:
        """What the tracer's guard did to this call, for the agent.* fields."""
        from .tracer.guard import label_of

        ev.agent_guard = label_of(self.guard_labels, rec.extra) if rec.flags & R.F_GUARD else ""
        ev.agent_denied = bool(rec.flags & R.F_DENIED)

    def _foreign(self, rec) -> None:
        """A syscall through another ABI, refused (--foreign-arch deny). Any syscall can come
        this way, so no evt.type-indexed rule can catch them all: the agent reports them
        itself, once per process and syscall."""
        from .events.display import syscall_name
        from .rules.priority import Priority

        key = (rec.tgid, rec.arch, rec.nr)
        seen = self.__dict__.setdefault("_foreign_seen", set())
        if key in seen:
            return
        seen.add(key)
        name = syscall_name(rec.arch, rec.nr)
        proc = self.tracker.procs.get(rec.tgid) if hasattr(self.tracker, "procs") else None
        comm = getattr(proc, "name", None) or "?"
        self.writer.write(rec.ts_enter, Priority.CRITICAL, FOREIGN_ARCH_RULE,
                          f"Syscall through a foreign ABI refused (syscall={name} nr={rec.nr} "
                          f"arch={rec.arch:#x} result=ENOSYS process={comm} pid={rec.tgid} tid={rec.tid}): "
                          f"32-bit syscalls on a 64-bit workload are a known way around tracing",
                          {"evt.type": name, "syscall.nr": rec.nr, "proc.pid": rec.tgid, "thread.tid": rec.tid,
                           "agent.guard": "foreign-arch", "agent.denied": True},
                          ("agent", "mitre_defense_evasion", "T1562.001"))

    def _failed(self, rec, exc: BaseException) -> None:
        from .events.display import syscall_name
        from .rules.priority import Priority

        event = getattr(rec, "event", None)  # replayed records carry their event
        if event is not None:
            etype = getattr(event, "type", "?")
        elif rec.kind == R.K_SYSCALL:
            etype = syscall_name(rec.arch, rec.nr)
        else:
            etype = _KIND_NAMES.get(rec.kind, f"record kind {rec.kind}")
        n = self.failures.get(etype, 0) + 1
        self.failures[etype] = n
        if n > 1:
            return  # reported once per event type; the total is in the summary and heartbeats
        import traceback

        where = traceback.extract_tb(exc.__traceback__)[-1]
        why = f"{type(exc).__name__}: {exc} (at {os.path.basename(where.filename)}:{where.lineno})"
        sys.stderr.write(f"workload-agent: processing a {etype} event failed, the event was skipped "
                         f"and detection goes on: {why}\n")
        try:
            self.writer.write(rec.ts_enter or time.time_ns(), Priority.CRITICAL, INTERNAL_ERROR_RULE,
                              f"Workload agent internal error: processing a {etype} event failed "
                              f"({why}); that event was skipped, detection goes on "
                              f"(further {etype} failures are counted, not reported)",
                              {"evt.type": etype, "agent.error": why}, ("internal",))
        except Exception:  # noqa: BLE001 - the output itself failing: stderr has said it
            pass

    def _alert(self, rule, ev) -> None:
        message = rule.output.render(ev)
        fields = rule.output.fields(ev)
        if self.append_container:
            if self._suffix is None:
                from .rules.output import compile_output

                self._suffix = compile_output(CONTAINER_SUFFIX)
            message = f"{message} {self._suffix.render(ev)}"
            fields.update(self._suffix.fields(ev))
        self.writer.write(ev.ts, rule.priority, rule.name, message, fields, rule.tags)

    def _drop(self, rec) -> None:
        from .rules.output import iso8601_utc
        from .rules.priority import Priority

        self.drops += rec.extra
        start = rec.ts_enter or time.time_ns()
        end = getattr(rec, "ts_exit", 0) or start  # replayed drops carry one instant
        window = (f"between {iso8601_utc(start, zulu=True)} and {iso8601_utc(end, zulu=True)}"
                  if end > start else f"at {iso8601_utc(start, zulu=True)}")
        self.writer.write(start, Priority.CRITICAL, DROP_RULE,
                          f"Workload agent internal: {rec.extra} syscall events dropped {window}: the event "
                          f"consumer fell behind, detection may have missed activity in that window "
                          f"(dropped in total: {self.drops})",
                          {"n_drops": rec.extra, "n_drops_total": self.drops, "drop.start": start,
                           "drop.end": end}, ("internal",))

    def close(self, stats: dict) -> None:
        late = stats.get("drops", 0) - self.drops
        if late > 0:  # dropped after the tracer's last record: no DROP record carries them
            from .events.records import Record

            now = time.time_ns()
            self._drop(Record(R.K_DROP, 0, now, now, 0, 0, 0, 0, 0, (0,) * 6, late, {}))
        if self.failures:
            detail = ", ".join(f"{n} {t}" for t, n in sorted(self.failures.items()))
            sys.stderr.write(f"workload-agent: {sum(self.failures.values())} events could not be "
                             f"processed and were skipped ({detail})\n")
        if self.metrics_file:
            self.write_metrics(final=True)
        self.writer.close()
        if self.print_stats:
            n = self.records or 1
            sys.stderr.write("workload-agent: " + " ".join(f"{k}={v}" for k, v in stats.items())
                             + f" events={self.events} alerts={self.writer.count}"
                             f" consumer_us_per_record={self.consumer_ns / n / 1000:.1f}"
                             f" consumer_cpu_us_per_record={self.consumer_cpu_ns / n / 1000:.1f}\n")
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

    def tick(self) -> None:
        for s in self.sinks:
            if hasattr(s, "tick"):
                s.tick()

    def close(self, stats) -> None:
        for s in self.sinks:
            s.close(stats)
