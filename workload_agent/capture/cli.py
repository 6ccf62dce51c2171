"""`workload-agent record`, `replay` and `capture info|events`.

One ``register(subparsers)`` adds all three commands (and does nothing the second
time), so each of them may map to this module in the command table.
Module-level imports stay light: the work is imported when a command runs.
"""
from __future__ import annotations

import os
import sys

COMMANDS = ("record", "replay", "capture")


def _warn(msg: str) -> None:
    sys.stderr.write(f"workload-agent: {msg}\n")
    sys.stderr.flush()


def register(subparsers) -> None:
    if any(c in getattr(subparsers, "choices", {}) for c in COMMANDS):
        return
    _register_record(subparsers)
    _register_replay(subparsers)
    _register_capture(subparsers)


# -- record -------------------------------------------------------------------------------


class _Renamed:
    """Hands `run`'s parser builder a subparsers object that names its parser otherwise,
    so that `record` takes exactly the options of `run`."""

    def __init__(self, subparsers, name: str, **kw) -> None:
        self.subparsers = subparsers
        self.name = name
        self.kw = kw
        self.parser = None

    def add_parser(self, _name, **kw):
        kw.update(self.kw)
        self.parser = self.subparsers.add_parser(self.name, **kw)
        return self.parser


def _register_record(subparsers) -> None:
    from ..runner import register as register_run

    shim = _Renamed(
        subparsers, "record", help="run a command under the tracer and record its events to a capture file",
        description="Like `run` (same workload contract, same options), and every enriched event is "
                    "written to a capture file that `replay` evaluates rules on later. Unless --syscalls "
                    "is given, the default syscall set is traced on top of what the rules need, so the "
                    "capture serves changed rules too.",
        usage="workload-agent record -o FILE [run options] -- CMD [ARGS...]")
    register_run(shim)
    p = shim.parser
    p.add_argument("-o", "--output", metavar="FILE", help="the capture file to write (required)")
    p.add_argument("--capture-format", type=int, metavar="N", default=None,
                   help="capture format version to write (default: the newest; 2: replayable by "
                        "workload-agents before format 3)")
    p.set_defaults(func=cmd_record)


def recorded_syscalls(rules_needed, arch: str) -> list:
    """What `record` traces: the rules' syscalls plus the default set and what keeps the
    process and fd state true, so that other rules replay on the capture too."""
    from ..detect import FD_LIFECYCLE_SYSCALLS, IDENTITY_SYSCALLS
    from ..events.params import DEFAULT_SYSCALLS, SPECS
    from ..events.syscall_table import SYSCALLS

    table = SYSCALLS[arch]
    wanted = set(rules_needed) | DEFAULT_SYSCALLS | IDENTITY_SYSCALLS | FD_LIFECYCLE_SYSCALLS
    return sorted(n for n in wanted if n in table and n in SPECS)


def capture_header(argv, syscalls, rules) -> dict:
    from .. import __version__
    from ..rules.output import default_hostname
    from ..events.arch import native_arch

    return {"hostname": default_hostname(), "agent_version": __version__, "command": list(argv),
            "arch": native_arch(), "syscalls": list(syscalls), "rules": [os.path.abspath(r) for r in rules]}


def cmd_record(args) -> int:
    from ..detect import Tee
    from ..runner import SetupFailed, event_printer, run, setup_from_args
    from ..events.arch import native_arch
    from .format import CaptureWriter
    from .record import Recorder

    try:
        config, detector, names, notes, given, _policy = setup_from_args(args)
    except SetupFailed as exc:
        return exc.code
    rules = args.rules or config.rules
    names = given or recorded_syscalls(names, native_arch())
    for note in notes:
        _warn(note)
    if args.print_syscalls:
        print(" ".join(names))
        return 0
    if not args.command or not args.output:
        _warn(f"no {'command' if args.output else 'capture file'} given: "
              f"workload-agent record -o FILE [options] -- CMD [ARGS...]")
        return 2
    if detector is not None:
        tracker = detector.tracker
    else:
        from ..state import StateTracker, detect_container

        tracker = StateTracker(detect_container(container_id=args.container_id, image=args.container_image,
                                                privileged=args.container_privileged))
    from .format import FORMAT_VERSION, WRITABLE_VERSIONS

    version = FORMAT_VERSION if args.capture_format is None else args.capture_format
    if version not in WRITABLE_VERSIONS:
        _warn(f"--capture-format {version}: this workload-agent writes format "
              f"{' or '.join(map(str, WRITABLE_VERSIONS))}")
        return 2
    try:
        writer = CaptureWriter(args.output, capture_header(args.command, names, rules), version=version)
    except OSError as exc:
        _warn(f"cannot write {args.output}: {exc.strerror}")
        return 2
    sink = Tee(Recorder(tracker, writer, detector), event_printer(args))
    try:
        return run(args.command, priority=config.priority, use_seccomp=args.seccomp, sink=sink,
                   syscalls=names, ring_bytes=args.ring_size)
    finally:
        writer.close()  # no-op after a normal end; keeps what was recorded if the sink died


# -- replay -------------------------------------------------------------------------------


def _add_rules_options(p) -> None:
    p.add_argument("-r", "--rules", action="append", default=[], metavar="FILE_OR_DIR",
                   help="rules file or directory (repeatable; default: the shipped ruleset)")
    p.add_argument("--min-priority", metavar="PRIORITY",
                   help="load rules less severe than this but leave them disabled")


def _register_replay(subparsers) -> None:
    p = subparsers.add_parser(
        "replay", help="evaluate rules on a recorded capture, printing the alerts a live run would have",
        description="Replay a capture written by `record` through the rules: the alerts are the lines a "
                    "live `run` with these rules would have printed, in the same order (JSON alerts "
                    "identical, times and host included).",
        usage="workload-agent replay FILE [-r RULES]... [--json] [--watch]")
    p.add_argument("capture", metavar="FILE", help="capture file")
    _add_rules_options(p)
    p.add_argument("--json", action="store_true", help="alerts as Falco JSON lines")
    p.add_argument("--alerts-to", default="stdout", metavar="stdout|stderr|PATH", help="where alerts go")
    p.add_argument("--rule-matching", choices=("first", "all"), default="first",
                   help="stop at the first matching rule for an event (default), or alert for all")
    p.add_argument("--watch", action="store_true",
                   help="replay again whenever a rules file (or the capture) changes")
    p.set_defaults(func=cmd_replay)


def _open_capture(path: str):
    from .format import CaptureError, CaptureReader

    try:
        return CaptureReader(path)
    except CaptureError as exc:
        _warn(str(exc))
        return None


def _report_truncation(reader) -> None:
    if reader.truncated:
        _warn(f"{reader.path}: the capture is incomplete (the recording was cut short): "
              f"{reader.truncated}; replayed the {reader.events_read} events before the break")


def replay_once(args) -> int:
    from ..detect import RulesError, load_ruleset
    from .format import CaptureError
    from .replay import replay, unrecorded_types

    reader = _open_capture(args.capture)
    if reader is None:
        return 2
    try:
        ruleset, notes = load_ruleset(args.rules, min_priority=args.min_priority)
    except RulesError as exc:
        _warn(f"cannot load the rules:\n{exc.text}")
        return 2
    for note in notes:
        _warn(note)
    missing = unrecorded_types(reader, ruleset)
    if missing:
        _warn(f"the rules need syscalls this capture did not record ({', '.join(missing)}): "
              f"rules on them cannot fire here (record with --syscalls to include them)")
    try:
        replay(reader, ruleset, json_lines=args.json, alerts_to=args.alerts_to, matching=args.rule_matching)
    except CaptureError as exc:
        _warn(str(exc))
        return 2
    except OSError as exc:
        _warn(f"cannot write alerts to {exc.filename}: {exc.strerror}")
        return 2
    _report_truncation(reader)
    return 0


def cmd_replay(args) -> int:
    if not args.watch:
        return replay_once(args)
    from ..detect import default_rules_paths
    from .watch import watch

    return watch(lambda: (args.rules or default_rules_paths()) + [args.capture], lambda: replay_once(args))


# -- capture info / events ----------------------------------------------------------------


def _register_capture(subparsers) -> None:
    p = subparsers.add_parser("capture", help="look into a capture file: summary, events",
                              description="Explore what a capture recorded.")
    sub = p.add_subparsers(dest="capture_command", metavar="SUBCOMMAND")
    info = sub.add_parser("info", help="events, processes, time span and event types of a capture")
    info.add_argument("capture", metavar="FILE")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_info)
    ev = sub.add_parser("events", help="print the recorded events, one line each",
                        description="Print the recorded events, optionally only those matching a Falco "
                                    "condition (like sysdig's filter).")
    ev.add_argument("capture", metavar="FILE")
    ev.add_argument("--filter", "-f", metavar="CONDITION", help='a Falco condition, e.g. "evt.type=openat '
                                                                 'and fd.name startswith /etc"')
    ev.add_argument("--json", action="store_true", help="one JSON object per event")
    ev.set_defaults(func=cmd_events)

    def usage(_args) -> int:
        p.print_help(sys.stderr)
        return 2

    p.set_defaults(func=usage)


def cmd_info(args) -> int:
    import json

    from .explore import summarize

    reader = _open_capture(args.capture)
    if reader is None:
        return 2
    from .format import CaptureError

    try:
        info = summarize(reader)
    except CaptureError as exc:
        _warn(str(exc))
        return 2
    from .explore import info_text

    try:
        print(json.dumps(info, indent=2, sort_keys=True) if args.json else info_text(info), flush=True)
    except BrokenPipeError:
        return 0
    _report_truncation(reader)
    return 0


def cmd_events(args) -> int:
    from ..rules.errors import ConditionError
    from .explore import EventLines, compile_filter
    from .format import CaptureError

    predicate = None
    if args.filter:
        try:
            predicate = compile_filter(args.filter)
        except ConditionError as exc:
            col = exc.offset + 1 if exc.offset is not None and exc.offset >= 0 else None
            where = f" at column {col}" if col else ""
            _warn(f"--filter: {exc.message}{where}\n  {args.filter}" + (f"\n  {' ' * (col - 1)}^" if col else ""))
            return 2
    reader = _open_capture(args.capture)
    if reader is None:
        return 2
    lines = EventLines(json_lines=args.json)
    out = sys.stdout
    try:
        for item in reader.records():
            if hasattr(item, "count"):  # a drop
                if predicate is None:
                    out.write(lines.drop(item) + "\n")
                continue
            if predicate is None or predicate(item):
                out.write(lines.event(item) + "\n")
    except CaptureError as exc:
        out.flush()
        _warn(str(exc))
        return 2
    except BrokenPipeError:
        return 0
    out.flush()
    _report_truncation(reader)
    return 0
