"""`workload-agent run` and `instrument`: start the workload under the tracer.

The workload's contract: same argv, environment, stdio and TTY; signals sent to the
agent reach it; its exit status becomes ours (a signal death is 128+N). When tracing
cannot start, `--priority availability` runs it untraced with a loud warning and
`--priority security` refuses.
"""
from __future__ import annotations

import _signal as signal   # signal's own numbers: the signal module's enums cost ~3 ms a start
import _thread
import errno
import gc
import os
import sys
import time

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGWINCH)
SI_KERNEL = 0x80  # si_code of a signal the kernel raised itself (e.g. from the TTY)

# The consumer wakes at least this often; the tracer wakes it sooner only when the ring
# fills up, so that a busy workload does not pay a context switch per event.
POLL_SECONDS = 0.05

EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126
EXIT_REFUSED = 125


def pause_gc() -> None:
    """No cyclic garbage collection while the agent starts: nearly everything it makes
    then (modules, rules, the detector) lives as long as it does, and each collection
    would walk all of it again (some 40 of them before the first event is judged)."""
    global _gc_paused, _gc_managed
    if gc.isenabled():
        gc.disable()
        _gc_paused = _gc_managed = True


def settle_gc() -> None:
    """Detection is built: what exists now is kept out of every later collection
    (gc.freeze) and collection resumes, for the consumer's short-lived objects only."""
    global _gc_paused
    if _gc_paused:
        _gc_paused = False
        gc.freeze()
        gc.enable()


_gc_paused = False
_gc_managed = False   # an entry point paused it: the detector made later is kept out too


def _warn(msg: str) -> None:
    sys.stderr.write(f"workload-agent: {msg}\n")
    sys.stderr.flush()


def register(subparsers) -> None:
    from .configuration import add_arguments

    p = subparsers.add_parser(
        "run", help="run a command under the tracer",
        description="Run CMD with its whole process tree traced. The command keeps its stdio, "
                    "TTY, environment, signals and exit status.",
        usage="workload-agent run [options] -- CMD [ARGS...]")
    p.add_argument("-r", "--rules", action="append", default=[], metavar="FILE_OR_DIR",
                   help="rules file or directory (repeatable; default: the shipped ruleset)")
    p.add_argument("--json", action="store_true", help="alerts as Falco JSON lines")
    p.add_argument("--rule-matching", choices=("first", "all"), default="first",
                   help="stop at the first matching rule for an event (default), or alert for all")
    p.add_argument("--min-priority", metavar="PRIORITY",
                   help="load rules less severe than this but leave them disabled")
    p.add_argument("--container-id", metavar="ID", help="container id to report (overrides detection)")
    p.add_argument("--container-image", metavar="IMAGE", help="container image to report")
    p.add_argument("--container-privileged", action="store_true", default=None,
                   help="report the container as privileged")
    p.add_argument("--no-rules", action="store_true",
                   help="trace without detection (the default syscall set, or --syscalls): "
                        "for --events debugging and for measuring the tracer alone")
    p.add_argument("--print-syscalls", action="store_true",
                   help="print the syscalls the loaded rules make the tracer stop on, and exit")
    p.add_argument("--events", action="store_true",
                   help="print every decoded event, one line each (to stderr or --events-file)")
    p.add_argument("--events-file", metavar="PATH", help="write the --events lines to PATH")
    p.add_argument("--no-seccomp", dest="seccomp", action="store_false",
                   help="full-ptrace mode: stop on every syscall, no seccomp filter and no "
                        "NO_NEW_PRIVS (setuid binaries keep working; about twice the cost)")
    p.add_argument("--syscalls", metavar="LIST",
                   help="comma-separated syscalls to trace instead of what the rules need")
    p.add_argument("--no-prefilter", dest="prefilter", action="store_false",
                   help="record every traced syscall, also those no rule can match (implied by "
                        "--events; --print-syscalls shows what the prefilter drops)")
    p.add_argument("--stats", action="store_true",
                   help="at exit, print the tracer's counters (stops, records, prefiltered, drops) "
                        "and the consumer's time per record to stderr")
    p.add_argument("--ring-size", type=int, default=8 << 20, metavar="BYTES",
                   help="event ring size (default 8 MiB); a full ring drops events and reports it")
    add_arguments(p, names=["config", "priority", "orchestrator", "access_key", "tls", "tls_ca",
                            "agent_id", "stdout", "metrics_file", "self_protect", "foreign_arch",
                            "alerts_to", "logging", "attach_foreign", "tracer_cpu"])
    p.add_argument("command", nargs="*", metavar="CMD", help="the workload and its arguments")
    p.set_defaults(func=_run_command)


class SetupFailed(Exception):
    """Setting a run up failed; the reason was printed. .code is the exit status."""

    def __init__(self, code: int = 2):
        super().__init__(code)
        self.code = code


class FailurePolicy:
    """What a failure of the agent's own does, by --priority: availability starts the
    workload anyway (with what did load, or untraced), loudly, and keeps the reasons for
    a CRITICAL alert once an output exists; security refuses to start it."""

    def __init__(self, priority: str = "availability", strict: bool = False):
        self.priority = priority
        self.strict = strict          # no workload to protect (--print-syscalls): plain errors
        self.reasons: list = []       # (what, why) for the degraded alerts

    def fail(self, what: str, why: str, summary: str | None = None) -> None:
        """summary: one line for the alert (default: why's first line)."""
        if self.strict:
            _warn(f"{what}:\n{why}" if "\n" in why else f"{what}: {why}")
            raise SetupFailed(2)
        if self.priority == "security":
            _warn(f"{what}:\n{why}" if "\n" in why else f"{what}: {why}")
            _warn("refusing to start the workload (priority: security)")
            raise SetupFailed(EXIT_REFUSED)
        _warn("!" * 70)
        _warn(f"WARNING: {what}:\n{why}" if "\n" in why else f"WARNING: {what}: {why}")
        _warn("WARNING: starting the workload anyway; detection is DEGRADED (priority: availability)")
        _warn("!" * 70)
        self.reasons.append((what, summary or (why.splitlines()[0] if why else "")))


# How long security mode waits for the orchestrator's welcome before refusing.
SECURITY_CONNECT_SECONDS = 5.0


class DetectionPlan:
    """What a run settles before its workload starts: the rules (loaded, failures gone
    through the policy), the syscalls they need, the outputs (open), the container and
    the instant after which files count as drift. ``build()`` makes the detector from
    it: the state tracker, the rules engine's sink and the prefilter.

    `run` and `instrument` build it after the workload's exec when no orchestrator waits
    for it: the tracer is attached before the workload's first syscall and keeps every
    record in the ring until the consumer reads it, the rules are loaded before the first
    event is judged, and a prefilter installed late only keeps more records, so nothing
    is missed and the workload does not wait for work that can run beside it. The
    prefilter itself is made before the exec (``prefilter()``): a workload does most of its
    opens as it starts (the dynamic loader, imports), and each one the prefilter would
    have dropped costs a stop more and a trip through Python without it."""

    _prefilter = None
    _container = None
    _capture = None

    def __init__(self, *, ruleset, names, writer, container, start_ns, matching,
                 metrics_file=None, heartbeat_interval=None, warm=None, notes=(),
                 min_priority=None, remember=False):
        """container: the Container, or a function that detects it (called once, when
        first needed). warm: a WarmStart (warm_start.py), whose rules are loaded only when
        first asked for (ruleset is None then); remember: keep what this start derives
        for the next one (its rules all loaded)."""
        self._ruleset = ruleset
        self.warm = warm
        self.notes = list(notes)
        self.min_priority = min_priority
        self.remember = remember and warm is None
        self.names = names
        self.writer = writer
        self._find_container = container if callable(container) else (lambda: container)
        self.start_ns = start_ns
        self.matching = matching
        self.metrics_file = metrics_file
        self.heartbeat_interval = heartbeat_interval

    @property
    def container(self):
        if self._container is None:
            self._container = self._find_container()
        return self._container

    @property
    def ruleset(self):
        if self._ruleset is None:
            self._ruleset = self.warm.ruleset()
        return self._ruleset

    def capture(self) -> dict:
        """The tracer's capture specs for ``names``."""
        if self._capture is None:
            self._capture = (self.warm.capture_specs() if self.warm is not None
                             else default_capture(self.names))
        return self._capture

    def prefilter(self):
        """What the tracer drops at the stop: a Prefilter, or on a warm start its image."""
        if self._prefilter is None:
            if self.warm is not None:
                self._prefilter = self.warm.image.with_start(self.start_ns)
            else:
                from . import detect

                self._prefilter = detect.prefilter_for(self.ruleset, self.names, self.start_ns)
                if self.remember:
                    from . import warm_start
                    from .events.arch import native_arch

                    warm_start.remember(self.ruleset, self.min_priority, native_arch(), self.names,
                                        self.notes, self.capture(), self._prefilter.image())
        return self._prefilter

    def build(self):
        return self.complete(self.detector())

    def detector(self):
        """The detector with its outputs and counters, without state or rules yet: what a
        run needs until its first record (complete() adds them)."""
        from . import detect

        detector = detect.Detector(None, None, self.writer, mode=self.matching)
        detector.traced = frozenset(self.names)
        detector.prefilter = self.prefilter()
        if self.metrics_file is not None:
            detector.metrics_file = self.metrics_file
        if self.heartbeat_interval is not None:
            detector.heartbeat_interval = self.heartbeat_interval
        return detector

    def complete(self, detector):
        """``detector`` with its state tracker and rules."""
        from .state import StateTracker

        tracker = StateTracker(self.container, start_ns=self.start_ns)
        tracker.wanted = self.ruleset.event_types()  # events no rule can match are not built
        detector.ruleset, detector.tracker = self.ruleset, tracker
        return detector


def plan_detection(*, rules=(), json_lines=False, alerts_to=None, matching="first", min_priority=None,
                   container_id=None, container_image=None, container_privileged=None,
                   plan_only=False, config=None, policy=None):
    """(DetectionPlan or None for plan_only, syscall names, notes): what must hold before a
    run's workload starts, but for the orchestrator client (prepare_detection). Every
    failure goes through policy (a FailurePolicy): it raises SetupFailed, or notes the
    reason and this goes on with what did load."""
    from . import detect
    from .events.arch import native_arch

    policy = policy or FailurePolicy()
    warm = None if plan_only else _warm_start(rules, min_priority, native_arch())
    failures = ()
    if warm is not None:
        ruleset, names, notes = None, list(warm.names), list(warm.notes)
    else:
        ruleset, notes, failures = detect.load_ruleset_leniently(rules, min_priority=min_priority)
        if failures:
            policy.fail("some rules did not load" if ruleset.enabled_rules else "no rules loaded",
                        "\n".join(failures), "; ".join(f.splitlines()[0] for f in failures))
        names, note = detect.traced_syscalls(ruleset, native_arch())
        if note:
            notes.append(note)
    if plan_only:
        return None, names, notes
    if config is not None:
        alerts_to = alerts_to or config.alerts_to
    url = alerts_to if alerts_to and alerts_to.startswith(("http://", "https://")) else None
    # What logs: the network outputs and the ECS metadata lookup (the logging package is
    # not even imported otherwise).
    if config is not None and (config.orchestrator or url):
        _agent_logging(config)

    def find_container():
        """The container, detected when first asked for: by the orchestrator client before
        the workload starts, else once it runs (on ECS a metadata request, ~30 ms)."""
        from .state.container import ECS_ENV, detect_container

        if config is not None and os.environ.get(ECS_ENV):
            _agent_logging(config)
        return detect_container(container_id=container_id, image=container_image,
                                privileged=container_privileged)

    # Files changed after this instant count as drift (proc.is_exe_upper_layer).
    start_ns = time.time_ns()
    to_stdout = True
    if config is not None and config.orchestrator:
        to_stdout = config.stdout
    local = None if url else ((alerts_to or "stdout") if to_stdout or alerts_to else None)
    writer = detect.AlertWriter(local, json_lines)
    if url:
        from .outputs.http_client import HttpAlertClient, http_client_from_config

        writer.client = (http_client_from_config(config, url) if config is not None
                         else HttpAlertClient(url)).start()
    plan = DetectionPlan(ruleset=ruleset, names=names, writer=writer, container=find_container,
                         start_ns=start_ns, matching=matching,
                         metrics_file=config.metrics_file if config is not None else None,
                         heartbeat_interval=config.heartbeat_interval if config is not None else None,
                         warm=warm, notes=notes, min_priority=min_priority, remember=not failures)
    return plan, names, notes


def _warm_start(rules, min_priority, arch):
    """The WarmStart (warm_start.py) for these rules, or None: a full load then."""
    from . import warm_start
    from .detect import default_rules_paths

    paths = list(rules) or default_rules_paths()
    return warm_start.find(paths, min_priority, arch) if paths else None


def prepare_detection(*, config=None, policy=None, defer=False, **kw):
    """(detector sink, syscall names, notes) for a run; plan_only (in kw): load the rules
    and derive the syscalls, build no detector. defer: give the DetectionPlan instead of
    the detector when nothing needs the detector before the workload starts (no
    orchestrator: its client reports the detector's counters and takes rules pushes).
    The degraded alerts for what failed are written here, once every output is set and
    before the workload's own output."""
    policy = policy or FailurePolicy()
    plan, names, notes = plan_detection(config=config, policy=policy, **kw)
    if plan is None:
        return None, names, notes
    orchestrator = config is not None and config.orchestrator
    detector = None if defer and not orchestrator else plan.build()
    writer = plan.writer
    if orchestrator:
        http = writer.client
        writer.client = None
        client = _start_client(config, detector, plan.container, writer, policy)
        clients = [c for c in (client, http) if c is not None]
        if len(clients) > 1:
            from .outputs.fanout import Fanout

            writer.client = Fanout(clients)
        else:
            writer.client = clients[0] if clients else None
    if policy.reasons:
        from .detect import Detector

        sink = detector or Detector(None, None, writer)
        for what, why in policy.reasons:
            sink.degraded(what, why)
    return (plan if detector is None else detector), names, notes


def _agent_logging(config) -> None:
    """The `logging` setting for the agent's own messages (they share the workload's stderr)."""
    import logging

    class ToStderr(logging.StreamHandler):
        # whatever sys.stderr is when a message is written, not when this was set up
        stream = property(lambda self: sys.stderr, lambda self, value: None)

    logger = logging.getLogger("workload_agent")
    if not logger.handlers:
        handler = ToStderr()
        handler.setFormatter(logging.Formatter("workload-agent: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(config.log_level())


def _start_client(config, detector, container, writer, policy):
    """The orchestrator client, started; None (alerts stay local) when it cannot be."""
    from . import detect
    from .outputs.orchestrator_client import client_from_config

    try:
        client = client_from_config(
            config, counters=detector.counters, on_rules=detect.rules_bundle_handler(detector, _warn),
            metadata={"container_id": container.id, "container_image": container.image})
    except (ValueError, OSError) as exc:
        if writer.out is None:  # the orchestrator was to be the only output
            writer.target, writer.out = "stdout", sys.stdout
        policy.fail("the orchestrator output cannot be used", str(exc))
        return None
    writer.client = client.start()
    detector.output_watch = client
    if policy.priority == "security" and not policy.strict:
        deadline = time.monotonic() + min(SECURITY_CONNECT_SECONDS, config.flush_timeout)
        while not client.connected.wait(0.05):
            if time.monotonic() > deadline or client.refused:
                why = client.last_error or "no answer"
                client.close(0)
                policy.fail(f"the orchestrator {config.orchestrator} is not reachable", why)
                return None
    return client


def setup_from_args(args, *, config_overrides=None, defer=False):
    """(config, detector, rules-derived syscalls, notes, --syscalls list or None, policy)
    for the options `run` and `record` share; raises SetupFailed after saying why.
    defer: the detector may come as a DetectionPlan to build once the workload runs."""
    from .configuration import load_config, overrides_from_args

    strict = bool(getattr(args, "print_syscalls", False))
    config = load_config(overrides_from_args(args) if config_overrides is None else config_overrides,
                         lenient=True)
    policy = FailurePolicy(config.priority, strict=strict)
    for err in config.errors:
        policy.fail("bad configuration value (its default is used)", err)
    given = [s.strip() for s in args.syscalls.split(",") if s.strip()] if args.syscalls else None
    if args.no_rules:
        return config, None, [], [], given, policy
    try:
        detector, names, notes = prepare_detection(
            rules=args.rules or config.rules, json_lines=args.json or config.output_format == "json",
            # the validated setting (flag, env or file): a bad value was reported, its default used
            alerts_to=config.alerts_to, matching=args.rule_matching, min_priority=args.min_priority,
            container_id=args.container_id, container_image=args.container_image,
            container_privileged=args.container_privileged, plan_only=args.print_syscalls,
            config=config, policy=policy, defer=defer)
    except SetupFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - a bug of ours: the workload still starts (availability)
        import traceback

        traceback.print_exc(file=sys.stderr)
        policy.fail("internal error while setting detection up", f"{type(exc).__name__}: {exc}")
        return config, None, [], [], given, policy
    return config, detector, names, notes, given, policy


def event_printer(args):
    """The `--events` debugging view, or None."""
    if not (args.events or args.events_file):
        return None
    from .events.display import EventPrinter

    return EventPrinter(open(args.events_file, "w", buffering=1) if args.events_file else sys.stderr)


def _run_command(args) -> int:
    from .detect import Tee

    pause_gc()
    try:
        config, detector, names, notes, given, policy = setup_from_args(args, defer=True)
    except SetupFailed as exc:
        return exc.code
    for note in notes:
        _warn(note)
    if args.print_syscalls:
        print(" ".join(given or names))
        if not given and not args.no_rules:
            from . import detect
            for line in detect.prefilter_for(detect.load_ruleset(args.rules or config.rules)[0],
                                             names, time.time_ns()).describe():
                _warn(f"prefilter: {line}")
        return 0
    if not args.command:
        _warn("no command given: workload-agent run [options] -- CMD [ARGS...]")
        return 2
    if detector is None and not args.no_rules:
        _announce_untraced(config, config.alerts_to, args.json, policy.reasons)
        return _exec_untraced(args.command)
    if args.no_rules and not given:
        from .events.params import DEFAULT_SYSCALLS

        names = sorted(DEFAULT_SYSCALLS)
    names = given or names
    printer = event_printer(args)
    # --events shows every traced syscall: it is for seeing what rules could be written on.
    use_pf = detector is not None and not given and args.prefilter and printer is None
    if isinstance(detector, DetectionPlan):
        return run(args.command, priority=config.priority, use_seccomp=args.seccomp,
                   syscalls=names, ring_bytes=args.ring_size, self_protect=config.self_protect,
                   foreign_arch=config.foreign_arch, attach_foreign=config.attach_foreign,
                   tracer_cpu=config.tracer_cpu, prefilter=detector.prefilter() if use_pf else None,
                   capture=None if given else detector.capture(),
                   build=_late_detector(detector, config.priority, printer=printer,
                                        use_prefilter=use_pf, print_stats=args.stats))
    if detector is not None:
        detector.print_stats = args.stats
    return run(args.command, priority=config.priority, use_seccomp=args.seccomp,
               sink=Tee(detector, printer), syscalls=names, ring_bytes=args.ring_size,
               self_protect=config.self_protect, foreign_arch=config.foreign_arch,
               prefilter=detector.prefilter if use_pf else None,
               on_tracer=detector.attach_tracer if use_pf else None,
               attach_foreign=config.attach_foreign, tracer_cpu=config.tracer_cpu)


class _InstrumentArgs:
    """`instrument` takes no options: the `run` options at their defaults."""
    rules = ()
    json = False
    alerts_to = None
    rule_matching = "first"
    min_priority = None
    container_id = container_image = container_privileged = None
    no_rules = False
    print_syscalls = False
    syscalls = None


def instrument(argv: list[str]) -> int:
    """The entrypoint prefix: `instrument CMD ARGS...`, configured from the environment."""
    if not argv or argv[0] in ("-h", "--help"):
        sys.stderr.write("usage: instrument CMD [ARGS...]\n"
                         "Runs CMD traced by workload-agent; configured from WORKLOAD_AGENT_* "
                         "(and SYSDIG_*) environment variables. See `workload-agent run --help`.\n")
        return 2 if not argv else 0
    pause_gc()
    try:
        config, detector, names, notes, _given, policy = setup_from_args(
            _InstrumentArgs(), config_overrides={}, defer=True)
    except SetupFailed as exc:
        return exc.code
    for note in notes:
        _warn(note)
    if detector is None:
        _announce_untraced(config, None, config.output_format == "json", policy.reasons)
        return _exec_untraced(argv)
    if isinstance(detector, DetectionPlan):
        return run(argv, priority=config.priority, syscalls=names, self_protect=config.self_protect,
                   foreign_arch=config.foreign_arch, attach_foreign=config.attach_foreign,
                   tracer_cpu=config.tracer_cpu, prefilter=detector.prefilter(),
                   capture=detector.capture(), build=_late_detector(detector, config.priority))
    return run(argv, priority=config.priority, sink=detector, syscalls=names,
               self_protect=config.self_protect, foreign_arch=config.foreign_arch,
               prefilter=detector.prefilter, on_tracer=detector.attach_tracer,
               attach_foreign=config.attach_foreign, tracer_cpu=config.tracer_cpu)


class _OutputsOnly:
    """The sink of a run whose detector could not be built: the alert outputs are closed
    at the end (the degraded alert must get out), the records are only drained."""

    def __init__(self, writer) -> None:
        self.writer = writer

    def handle(self, batch) -> None:
        pass

    def close(self, stats) -> None:
        self.writer.close()


def _late_detector(plan, priority: str, *, printer=None, use_prefilter=True, print_stats=False):
    """The ``build`` of `run` for a DetectionPlan: the detector, its state and rules made
    once the first records arrive (_FirstRecord), and its prefilter handed to the tracer.
    A failure to make them is a bug of ours met after the workload started: availability
    goes on without detection, with the degraded alert; security stops the workload
    (SetupFailed) as it would have refused to start it."""
    from .detect import Tee

    def build(tracer):
        """tracer: the running tracer, or None when tracing could not start (the sink is
        then only there for the degraded alerts)."""
        try:
            detector = plan.detector()
        except Exception as exc:  # noqa: BLE001 - reported, then the policy decides
            return Tee(_setup_failed(plan, priority, exc), printer)
        detector.print_stats = print_stats
        if tracer is None:
            return Tee(detector, printer) if printer is not None else detector
        detector.tracer_stats = tracer.stats
        detector.guard_labels = tracer.guard_labels
        if use_prefilter:
            detector.attach_tracer(tracer)   # it started with the plan's prefilter
        sink = _FirstRecord(plan, detector, priority)
        return Tee(sink, printer) if printer is not None else sink

    return build


def _setup_failed(plan, priority: str, exc: Exception):
    """The sink once making the detector failed: SetupFailed in security, else the outputs
    alone, with the degraded alerts written."""
    import traceback

    from .detect import Detector

    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    why = f"{type(exc).__name__}: {exc}"
    if priority == "security":
        _warn(f"internal error while setting detection up: {why}")
        _warn("stopping the workload: it must not run undetected (priority: security)")
        raise SetupFailed(EXIT_REFUSED) from None
    policy = FailurePolicy(priority)
    policy.fail("internal error while setting detection up", why)
    sink = Detector(None, None, plan.writer, append_container=False)
    for what, reason in policy.reasons:
        sink.degraded(what, reason)
    sink.degraded("running the workload without detection", "no detection at all for this run")
    return _OutputsOnly(plan.writer)


class _FirstRecord:
    """A run's sink until its first records: the detector without state or rules, which
    are made for the first batch. In security mode the records wait in the ring meanwhile,
    in availability mode the ring holds megabytes of them: nothing is lost. A workload
    that never does anything a rule could judge sends no record, and then neither the
    rules nor the state are ever loaded."""

    def __init__(self, plan, detector, priority: str) -> None:
        self.plan = plan
        self.detector = detector
        self.priority = priority
        self.sink = None

    def handle(self, batch) -> None:
        if self.sink is None:
            self.sink = self._complete()
        self.sink.handle(batch)

    def _complete(self):
        if _gc_managed:
            pause_gc()   # what is made now lives as long as the agent: frozen after
        try:
            return self.plan.complete(self.detector)
        except Exception as exc:  # noqa: BLE001 - reported, then the policy decides
            return _setup_failed(self.plan, self.priority, exc)
        finally:
            settle_gc()

    def tick(self) -> None:
        tick = getattr(self.sink or self.detector, "tick", None)
        if tick is not None:
            tick()

    def close(self, stats) -> None:
        (self.sink or self.detector).close(stats)


def _announce_untraced(config, alerts_to, json_lines, reasons) -> None:
    """The CRITICAL alerts of a run that goes on untraced, where an output can take them."""
    from .detect import AlertWriter, Detector

    try:
        writer = AlertWriter(alerts_to or "stdout", json_lines or config.output_format == "json")
        if config.orchestrator and config.access_key:
            from .outputs.orchestrator_client import client_from_config

            client = client_from_config(config)
            client.flush_timeout = min(2.0, config.flush_timeout)  # the workload waits for this
            writer.client = client.start()
        sink = Detector(None, None, writer, append_container=False)
        for what, why in reasons:
            sink.degraded(what, why)
        sink.degraded("running the workload untraced", "no detection at all for this run")
        writer.close()
    except Exception as exc:  # noqa: BLE001 - stderr has said it already; start the workload
        _warn(f"could not send the degraded-detection alert: {exc}")


def _exec_untraced(argv) -> int:
    env = original_environment()
    path = resolve_command(argv[0], env)
    if path is None:
        _warn(f"{argv[0]}: command not found")
        return EXIT_NOT_FOUND
    return _run_untraced(path, argv, env, signal.pthread_sigmask(signal.SIG_BLOCK, []))


def resolve_command(cmd: str, env) -> str | None:
    if "/" in cmd:
        return cmd
    # shutil.which's lookup, without importing shutil (and its compressors) at start-up
    for d in env.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(d, cmd)
        if os.access(path, os.F_OK | os.X_OK) and not os.path.isdir(path):
            return path
    return None


def original_environment() -> dict:
    """The environment this process was started with.

    os.environ is not it: CPython's C-locale coercion (PEP 538) adds LC_CTYPE at
    start-up. /proc/self/environ still holds the block execve gave us.
    """
    try:
        with open("/proc/self/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return dict(os.environ)
    env = {}
    for item in raw.split(b"\0"):
        if b"=" in item:
            k, v = item.split(b"=", 1)
            env.setdefault(os.fsdecode(k), os.fsdecode(v))
    return env


def _mask_bits(mask) -> int:
    bits = 0
    for s in mask:
        if 1 <= int(s) <= 64:
            bits |= 1 << (int(s) - 1)
    return bits


def _run_untraced(path: str, argv: list[str], env, old_mask) -> int:
    signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    for s in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(s, signal.SIG_DFL)  # Python ignores these; the workload must not inherit that
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(path, argv, env)
    return EXIT_NOT_EXECUTABLE  # not reached


class _SignalForwarder:
    """Relays the signals sent to the agent to the workload (they are blocked in every
    agent thread and taken here with sigtimedwait, so nothing runs in a handler). A bare
    _thread thread: the threading module costs every start some 4 ms of imports, and
    this thread needs none of it (it is joined by its lock, and never outlives the run)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.stopping = False
        self.ident = None
        self._running = _thread.allocate_lock()   # held while the thread runs

    def start(self) -> None:
        self._running.acquire()
        self.ident = _thread.start_new_thread(self.run, ())

    def run(self) -> None:
        try:
            while not self.stopping:
                info = signal.sigtimedwait(FORWARDED, 1.0)
                if info is None or self.stopping:
                    continue
                if info.si_code == SI_KERNEL:
                    continue  # from our terminal: the kernel already sent it to the workload's group
                try:
                    os.kill(self.pid, info.si_signo)
                except ProcessLookupError:
                    return
        finally:
            self._running.release()

    def stop(self) -> None:
        self.stopping = True
        try:
            signal.pthread_kill(self.ident, signal.SIGWINCH)  # wakes sigtimedwait; not forwarded
        except (ProcessLookupError, TypeError):
            pass  # already gone
        with self._running:   # joined
            pass


def default_capture(names=None):
    from .events.params import DEFAULT_SYSCALLS, SPECS, capture_table
    from .tracer.core import CaptureSpec

    table = capture_table()
    wanted = DEFAULT_SYSCALLS if names is None else names
    unknown = [n for n in wanted if n not in table]
    if unknown:
        raise ValueError(f"no capture spec for: {', '.join(sorted(unknown))}")
    return {n: CaptureSpec(exit_needed=table[n][1], args=table[n][0], when=SPECS[n].capture_when)
            for n in wanted}


def _write_stats(stats: dict) -> None:
    """The tracer's counters (stops, records, drops) as JSON to $WORKLOAD_AGENT_STATS_FILE,
    for benchmarks: a figure means nothing without the stops that produced it."""
    path = os.environ.get("WORKLOAD_AGENT_STATS_FILE")
    if not path:
        return
    import json

    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(stats, f)
    except OSError as exc:
        _warn(f"cannot write the tracer stats to {path}: {exc.strerror}")


def _foreign_scanner(tracer, mode: str):
    """The scanner for processes that enter from outside (attach/scanner.py), started; None
    when the mode is never or the agent is not the container's init."""
    if mode == "never":
        return None
    from .attach.scope import scope

    active, why, skip = scope()
    if not active:
        if mode != "trace":   # asked for explicitly: say why it does nothing
            _warn(f"--attach-foreign {mode} has no effect: {why}")
        return None
    from .attach.scanner import ForeignScanner

    scanner = ForeignScanner(tracer, mode, skip=skip, warn=_warn)
    scanner.start()
    return scanner


def _attach_summary(tracer, scanner) -> None:
    s = tracer.attach_stats()
    if not (s["requested"] or scanner.counts["noticed"]):
        return
    if scanner.mode == "alert":
        _warn(f"foreign processes: {scanner.counts['noticed']} reported (not traced)")
        return
    parts = [f"{s['attached']} attached"]
    for key, text in (("gone", "gone before they could be stopped"), ("denied", "not permitted"),
                      ("busy", "traced by another tracer"), ("overflow", "refused (queue full)")):
        if s[key]:
            parts.append(f"{s[key]} {text}")
    _warn("foreign processes: " + ", ".join(parts))


class _Pump:
    """Moves record batches from the tracer to the sink. Nothing that goes wrong here may
    take the workload down or stop detection: a failure is reported once per kind,
    counted, and the next batch is handled as usual."""

    def __init__(self, tracer, sink, scanner=None) -> None:
        self.tracer = tracer
        self.sink = sink
        self.scanner = scanner   # attach/scanner.py: alert-mode notices, ATTACH order
        self.failures: dict = {}
        self.refused = None      # the exit status when the sink refused to go on

    def _failed(self, where: str, exc: BaseException) -> None:
        key = f"{where}: {type(exc).__name__}"
        self.failures[key] = self.failures.get(key, 0) + 1
        if self.failures[key] == 1:
            import traceback

            _warn(f"{where} failed ({exc!r}); the batch was skipped and detection goes on")
            traceback.print_exc(file=sys.stderr)

    def once(self) -> bool:
        """One batch; False when the ring was empty."""
        try:
            batch = self.tracer.read()
        except Exception as exc:  # noqa: BLE001 - a decoding bug: skip the batch, count it
            self._failed("decoding a batch of events", exc)
            return True
        if self.scanner is not None:
            from .attach.scanner import attaches_parents_first

            notices = self.scanner.take()
            if notices or batch:
                batch = attaches_parents_first(notices + batch)
        if not batch:
            return False
        if self.sink is not None:
            try:
                self.sink.handle(batch)
            except SetupFailed as exc:   # detection could not be made (security): stop it
                self.refused, self.sink = exc.code, None
                try:
                    os.kill(self.tracer.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            except Exception as exc:  # noqa: BLE001 - isolated to this batch
                self._failed("event processing", exc)
        # Handled, alerts written: a tracee held at a guarded stop may go on.
        self.tracer.ack()
        return True

    def tick(self) -> None:
        tick = getattr(self.sink, "tick", None)
        if tick is not None:
            try:
                tick()
            except Exception as exc:  # noqa: BLE001
                self._failed("periodic agent work", exc)


def run(argv: list[str], *, priority: str = "availability", use_seccomp: bool = True, sink=None,
        syscalls=None, ring_bytes: int = 8 << 20, env=None, self_protect: str = "deny",
        foreign_arch: str = "decode", prefilter=None, on_tracer=None,
        attach_foreign: str = "never", tracer_cpu: str = "follow", build=None, capture=None) -> int:
    """Runs argv traced; its exit status. build: called with the started tracer, gives the
    sink (instead of ``sink``): work the workload need not wait for (_late_detector);
    raising SetupFailed there, or in the sink's handle, stops the workload and gives that
    status. capture: the capture specs of ``syscalls`` when the caller has them."""
    env = original_environment() if env is None else dict(env)
    path = resolve_command(argv[0], env)
    if path is None:
        _warn(f"{argv[0]}: command not found")
        return EXIT_NOT_FOUND
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)

    from .tracer.core import TraceStartError, Tracer, WorkloadExecError, available, exit_code

    try:
        ok, why = available()
        if not ok:
            raise TraceStartError(why)
        try:
            if capture is None:
                capture = default_capture(syscalls)
        except ValueError as exc:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            _warn(str(exc))
            return 2
        tracer = Tracer(argv, path=path, env=env, syscalls=capture, use_seccomp=use_seccomp,
                        ring_bytes=ring_bytes, sigmask=_mask_bits(old_mask),
                        never_drop=priority == "security", self_protect=self_protect,
                        foreign_arch=foreign_arch, prefilter=prefilter,
                        follow_cpu=tracer_cpu == "follow")
        pid = tracer.start()
        if on_tracer is not None:
            on_tracer(tracer)
    except WorkloadExecError as exc:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        _warn(str(exc))
        return EXIT_NOT_FOUND if exc.errno == errno.ENOENT else EXIT_NOT_EXECUTABLE
    except TraceStartError as exc:
        if priority == "security":
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            _warn(f"tracing could not start: {exc}\nworkload-agent: refusing to start the workload "
                  f"untraced (priority: security)")
            return EXIT_REFUSED
        _warn("!" * 70)
        _warn(f"WARNING: tracing could not start: {exc}")
        _warn("WARNING: running the workload UNTRACED: no detection (priority: availability)")
        _warn("!" * 70)
        if build is not None:
            try:
                sink = build(None)
            except SetupFailed:
                sink = None
        for s in getattr(sink, "sinks", [sink]):
            if hasattr(s, "degraded"):
                try:
                    s.degraded("tracing could not start, the workload runs untraced", str(exc))
                    s.close({})
                except Exception as err:  # noqa: BLE001 - the warning above stands
                    _warn(f"could not send the degraded-detection alert: {err}")
        return _run_untraced(path, argv, env, old_mask)

    forwarder = _SignalForwarder(pid)
    forwarder.start()
    refused = None
    if build is not None:
        try:
            sink = build(tracer)
        except SetupFailed as exc:
            refused, sink = exc.code, None
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    settle_gc()
    for s in getattr(sink, "sinks", [sink]):
        if s is not None and hasattr(s, "tracer_stats"):
            s.tracer_stats = tracer.stats
            s.guard_labels = tracer.guard_labels
    scanner = _foreign_scanner(tracer, attach_foreign)
    pump = _Pump(tracer, sink, scanner)
    status = None
    try:
        while status is None:
            tracer.wait(POLL_SECONDS)
            status = tracer.done()
            pump.once()
            pump.tick()
        while pump.once():
            pass
        if scanner is not None:
            scanner.stop()
            _attach_summary(tracer, scanner)
            scanner = None
        stats = tracer.stats()
        _write_stats(stats)
        if pump.refused is not None:
            refused = pump.refused
        elif sink is not None:
            try:
                sink.close(stats)
            except Exception as exc:  # noqa: BLE001 - the workload's status still counts
                pump._failed("closing the outputs", exc)
        if stats["drops"]:
            _warn(f"{stats['drops']} events were dropped: the ring was full (raise --ring-size)")
        if stats.get("ring_waits"):
            _warn(f"the workload waited {stats['ring_waits']} times for room in the event ring "
                  f"(priority: security never drops; raise --ring-size)")
        if stats.get("ack_timeouts"):
            _warn(f"{stats['ack_timeouts']} guarded calls went on before their alert was handled "
                  f"(the consumer did not answer within 2 s)")
        if pump.failures:
            _warn("agent failures during the run (each skipped, detection went on): " +
                  ", ".join(f"{n} x {k}" for k, n in sorted(pump.failures.items())))
    finally:
        if scanner is not None:
            scanner.stop()
        forwarder.stop()
        tracer.close()
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    return refused if refused is not None else exit_code(status)
