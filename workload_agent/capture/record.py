"""Recording: the run's sink writes every enriched event to a capture as it goes.

The events are the ones the state tracker hands the rules, taken right after the
tracker made them and before any rule looks at them, so that a replay evaluates
rules on exactly what the live detector saw. Drops are recorded in their place in
the stream: the live run alerts on them and so must the replay.
"""
from __future__ import annotations

import time

from ..events import records as R


class RecordingTracker:
    """Wraps the state tracker: every event it produces is also written to the capture."""

    def __init__(self, tracker, writer) -> None:
        self.tracker = tracker
        self.writer = writer

    def process(self, rec):
        ev = self.tracker.process(rec)
        if ev is not None:
            self.writer.write_event(ev)
        return ev

    def __getattr__(self, name):
        return getattr(self.tracker, name)


class Recorder:
    """The tracer's sink for `record`: state -> capture, and alerts when a detector is given.

    With a detector, its own handle() does the work (so alerts are exactly a `run`'s)
    and its tracker is wrapped to record; without one, records only update state.
    """

    def __init__(self, tracker, writer, detector=None) -> None:
        self.writer = writer
        self.detector = detector
        self.tracker = RecordingTracker(tracker, writer)
        if detector is not None:
            detector.tracker = self.tracker

    def handle(self, batch) -> None:
        start = 0
        for i, rec in enumerate(batch):
            if rec.kind != R.K_DROP:
                continue
            self._events(batch[start:i])
            # The live detector stamps the drop alert the same way.
            self.writer.write_drop(rec.ts_enter or time.time_ns(), rec.extra)
            if self.detector is not None:
                self.detector.handle([rec])
            start = i + 1
        self._events(batch[start:] if start else batch)
        # A chunk per batch: the runner hands over a batch at most every poll interval,
        # and nothing waits in memory while the workload is idle (or the agent is killed).
        self.writer.flush()

    def _events(self, recs) -> None:
        if not recs:
            return
        if self.detector is not None:
            self.detector.handle(recs)
            return
        process = self.tracker.process
        for rec in recs:
            process(rec)

    def close(self, stats: dict) -> None:
        self.writer.close({"tracer": dict(stats or {})})
        if self.detector is not None:
            self.detector.close(stats)
