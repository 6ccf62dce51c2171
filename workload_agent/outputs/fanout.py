"""Several alert senders behind the one client slot of the alert writer."""
from __future__ import annotations

import threading

from .orchestrator_client import DeliveryReport


class Fanout:
    def __init__(self, clients: list):
        self.clients = clients

    def start(self) -> "Fanout":
        for c in self.clients:
            c.start()
        return self

    def send(self, alert: dict) -> None:
        for c in self.clients:
            c.send(alert)

    def stats(self) -> dict:
        return {getattr(c, "name", type(c).__name__): c.stats() for c in self.clients}

    def close(self, timeout: float | None = None) -> DeliveryReport:
        """Flush all at once: the exit flush time is shared, not added up."""
        reports: list = [None] * len(self.clients)

        def close_one(i, c):
            reports[i] = c.close(timeout)

        threads = [threading.Thread(target=close_one, args=(i, c), daemon=True)
                   for i, c in enumerate(self.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return DeliveryReport(max(r.last_seq for r in reports), min(r.acked for r in reports),
                              sum(r.undelivered for r in reports),
                              sum(r.buffer_dropped for r in reports))
