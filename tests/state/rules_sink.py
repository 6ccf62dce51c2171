"""A runner sink that does what the agent's consumer does with each batch: every record
through the state tracker, every event through the rules (all that match). Tests that
trace real workloads read what fired; `delay` holds the first batch back, a consumer that
looks only after the workload is gone."""
from __future__ import annotations

import time

from workload_agent.state import StateTracker


class RulesSink:
    def __init__(self, ruleset, container, delay: float = 0.0, on_event=None):
        self.tracker = StateTracker(container, start_ns=time.time_ns())
        self.ruleset = ruleset
        self.delay = delay
        self.on_event = on_event   # (tracker, event), after the rules saw the event
        self.fired = []            # (rule name, proc.name, its parent's proc.name)
        self.stats = None

    def handle(self, batch) -> None:
        if self.delay:
            time.sleep(self.delay)
            self.delay = 0
        for r in batch:
            ev = self.tracker.process(r)
            if ev is None:
                continue
            for rule in self.ruleset.match(ev, "all"):
                parent = ev.proc.parent.name if ev.proc is not None and ev.proc.parent else None
                self.fired.append((rule.name, ev.proc.name if ev.proc is not None else None, parent))
            if self.on_event is not None:
                self.on_event(self.tracker, ev)

    def close(self, stats) -> None:
        self.stats = stats

    def rules_fired(self) -> list:
        return [name for name, _, _ in self.fired]
