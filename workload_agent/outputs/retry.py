"""Retrying a delivery that failed: when to try again, and what the log says meanwhile.

The agent's orchestrator client and http output, and the orchestrator's own http output,
retry the same way. The wait doubles from `initial` up to `maximum` and is drawn from
[step/2, step]: agents that lost the same orchestrator must not all come back in the
same instant. A success resets it. close() can cut a wait short, and the exit flush
bounds it by its deadline.

An outage is logged as one line when it starts and one, with a count, when it ends:
the agent's log is the workload's stderr, which a retry every few seconds would flood.
"""
from __future__ import annotations

import logging
import random
import threading
import time

#: While the exit flush runs, the senders retry at this pace (seconds, jittered): the
#: flush has seconds, not minutes, so backing off further would only waste them.
FLUSH_PAUSE = (0.05, 0.2)

_MAX_DOUBLINGS = 32   # 2**32 * any sane initial is far past any maximum


class Backoff:
    """The waits between failed attempts. `failures` counts those since the last reset."""

    def __init__(self, initial: float = 0.2, maximum: float = 5.0, *,
                 cut: threading.Event | None = None):
        if not 0 < initial <= maximum:
            raise ValueError(f"backoff: need 0 < initial ({initial}) <= maximum ({maximum})")
        self.initial = initial
        self.maximum = maximum
        self.cut = cut if cut is not None else threading.Event()
        self.failures = 0

    def step(self) -> float:
        """The ceiling of the next wait."""
        return min(self.maximum, self.initial * 2 ** min(self.failures, _MAX_DOUBLINGS))

    def next_delay(self) -> float:
        """The next wait, jittered; counts one more failure."""
        ceiling = self.step()
        self.failures += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0

    def at_least(self, failures: int) -> None:
        """Skip ahead: a failure that will not fix itself soon (a refused key) waits longer."""
        self.failures = max(self.failures, failures)

    def wait(self, deadline: float | None = None) -> bool:
        """Sleep the next delay, not past `deadline` (time.monotonic()). False when `cut`
        ended it (or was already set)."""
        delay = self.next_delay()
        if deadline is not None:
            delay = min(delay, max(0.0, deadline - time.monotonic()))
        return not self.cut.wait(delay)

    @staticmethod
    def flush_pause(stop: threading.Event) -> bool:
        """The short wait between attempts of the exit flush; False when `stop` ended it."""
        return not stop.wait(random.uniform(*FLUSH_PAUSE))


class Outage:
    """Logs an outage once when it starts and once when it ends. `name` prefixes each
    line (a sender that fails over between addresses updates it); `retrying` ends the
    first line, `back` starts the last one."""

    def __init__(self, log: logging.Logger, name: str, *,
                 retrying: str = "will retry (quietly until it is back)",
                 back: str = "delivering again"):
        self.log = log
        self.name = name
        self.retrying = retrying
        self.back = back
        self.failures = 0        # failed attempts in this outage (0: none going on)
        self.started = 0.0       # time.monotonic() of its first failure
        self.last_error = ""

    def failed(self, reason: str, level: int = logging.WARNING) -> None:
        """One failed attempt. An error-level reason (a refused key) is logged again
        whenever it changes: the operator must see the new one."""
        self.failures += 1
        if self.failures == 1:
            self.started = time.monotonic()
            self.log.log(level, "%s: %s; %s", self.name, reason, self.retrying)
        elif level >= logging.ERROR and reason != self.last_error:
            self.log.log(level, "%s: %s", self.name, reason)
        else:
            self.log.debug("%s: %s", self.name, reason)
        self.last_error = reason

    def over(self) -> None:
        """An attempt worked: the end of the outage, if one was going on."""
        if self.failures:
            self.log.info("%s: %s after %d failed attempts in %.1fs", self.name, self.back,
                          self.failures, time.monotonic() - self.started)
            self.failures = 0
        self.last_error = ""
