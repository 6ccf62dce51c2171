"""Replay: a capture's events through the same Detector a live run uses.

The Detector takes tracer records and asks its tracker for the event of each; here
the "records" carry the recorded events and the tracker hands them back, so the
matching, output rendering and alert writing are the live code, not a copy.
"""
from __future__ import annotations

from typing import Iterable, Iterator, Optional

from ..events import records as R
from .format import CaptureReader, Drop


class _Replayed:
    __slots__ = ("kind", "event", "ts_enter", "extra")

    def __init__(self, kind, event=None, ts_enter=0, extra=0) -> None:
        self.kind = kind
        self.event = event
        self.ts_enter = ts_enter
        self.extra = extra


class ReplayTracker:
    """Stands in for the state tracker: the state was recorded with each event."""

    @staticmethod
    def process(rec):
        return rec.event


def as_records(items: Iterable) -> Iterator[_Replayed]:
    for item in items:
        if isinstance(item, Drop):
            yield _Replayed(R.K_DROP, ts_enter=item.ts, extra=item.count)
        else:
            yield _Replayed(R.K_SYSCALL, event=item)


def hostname_writer(target: str, json_lines: bool, hostname: Optional[str]):
    """An AlertWriter whose JSON alerts name the recording host, as the live run's did."""
    from ..detect import AlertWriter

    class _Writer(AlertWriter):
        def write(self, ts, priority, rule, message, fields, tags) -> None:
            if not self.json or hostname is None:
                return super().write(ts, priority, rule, message, fields, tags)
            from ..rules.output import alert_json

            self.out.write(alert_json(ts, priority, message, rule, fields, tags, hostname=hostname) + "\n")
            self.out.flush()
            self.count += 1

    return _Writer(target, json_lines)


# Replay allocates several objects per event and keeps almost none: the collector's
# default young-generation threshold (700) would walk each batch's events many times.
REPLAY_GC_THRESHOLD = 20_000


def replay(reader: CaptureReader, ruleset, *, json_lines: bool = False, alerts_to: str = "stdout",
           matching: str = "first", batch: int = 64):
    """Evaluate ``ruleset`` on every recorded event; returns the Detector (counts).
    Events of types no rule can match are skipped by the reader before decoding; a small
    batch keeps the events being judged in the CPU's caches."""
    import gc

    from ..detect import Detector

    writer = hostname_writer(alerts_to, json_lines, reader.header.get("hostname"))
    detector = Detector(ruleset, ReplayTracker(), writer, mode=matching)
    pending = []
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], REPLAY_GC_THRESHOLD), *threshold[1:])
    try:
        for rec in as_records(reader.records(ruleset.event_types())):
            pending.append(rec)
            if len(pending) >= batch:
                detector.handle(pending)
                pending = []
        if pending:
            detector.handle(pending)
    finally:
        gc.set_threshold(*threshold)
    detector.close({})
    return detector


def unrecorded_types(reader: CaptureReader, ruleset) -> list:
    """Syscalls a live run with these rules would trace that the recording did not:
    rules on them cannot fire, or see state (fds) the recording did not keep."""
    from ..detect import traced_syscalls
    from ..events.syscall_table import SYSCALLS
    from ..events.arch import native_arch

    traced = reader.header.get("syscalls")
    arch = reader.header.get("arch") or native_arch()
    if traced is None or arch not in SYSCALLS:
        return []
    needed, _ = traced_syscalls(ruleset, arch)
    return sorted(set(needed) - set(traced))
