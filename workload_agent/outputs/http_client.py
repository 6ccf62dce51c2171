"""The agent's own Falco http_output: alerts straight to falcosidekick or any Falco endpoint.

Same contract as the orchestrator client: send() numbers and buffers the alert and
returns (never the network, never a wait); a thread POSTs the buffer in order, one alert
per request, and forgets an alert once the endpoint answered 2xx. Failures back off
(bounded, cut short by close()); an answer that will not change (4xx other than
408/425/429) drops that alert, counted. close() keeps delivering for a bounded time and
reports what did not make it.
"""
from __future__ import annotations

import http.client
import json
import logging
import threading

from .buffer import AlertBuffer, unpack_alert
from .falco_http import RETRY_STATUS, FalcoHttp
from .orchestrator_client import DeliveryReport
from .retry import Backoff, Outage

log = logging.getLogger("workload_agent.http_output")

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


class HttpAlertClient:
    def __init__(self, url: str, *, tls_ca: str | None = None, buffer_size: int = 10000,
                 buffer_bytes: int = 8 << 20, spill_file: str | None = None,
                 memory_items: int = 1024, flush_timeout: float = 5.0, timeout: float = 10.0,
                 backoff_initial: float = 0.2, backoff_max: float = 5.0):
        self.url = url
        self.name = url
        self._http = FalcoHttp(url, timeout, tls_ca)
        self._timeout = timeout
        self._buf = AlertBuffer(buffer_size, buffer_bytes, spill_file, memory_items)
        self.flush_timeout = flush_timeout
        self._lock = threading.Lock()
        self._work = threading.Event()       # something was buffered, or close() began
        self._stop_now = threading.Event()   # the flush time is over
        self._backoff = Backoff(backoff_initial, backoff_max)   # close() sets its cut
        self._outage = Outage(log, url)
        self._closing = False
        self.n_alerts = 0
        self.n_sent = 0
        self.n_refused = 0
        self.n_retries = 0
        self._thread = threading.Thread(target=self._run, name="http-output", daemon=True)

    def start(self) -> "HttpAlertClient":
        self._thread.start()
        return self

    def send(self, alert: dict) -> int:
        with self._lock:
            seq = self._buf.push(alert)
            self.n_alerts += 1
        self._work.set()
        return seq

    def stats(self) -> dict:
        with self._lock:
            return {"alerts": self.n_alerts, "buffered": len(self._buf), "sent": self.n_sent,
                    "refused": self.n_refused, "retries": self.n_retries,
                    "buffer_dropped": self._buf.dropped, "buffered_bytes": self._buf.memory_bytes}

    def close(self, timeout: float | None = None) -> DeliveryReport:
        timeout = self.flush_timeout if timeout is None else timeout
        with self._lock:
            self._closing = True
        self._backoff.cut.set()
        self._work.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
            self._stop_now.set()
            self._thread.join(1.0)  # stuck in a POST: a daemon thread, left to its timeout
        stuck = self._thread.is_alive()
        with self._lock:
            report = DeliveryReport(self._buf.last_seq, self._buf.acked, len(self._buf),
                                    self._buf.dropped + self.n_refused)
            if not stuck:
                self._buf.close()
                self._http.close()
        if report.undelivered or report.buffer_dropped:
            log.warning("%s: %d alerts not delivered at shutdown, %d dropped earlier (buffer bound "
                        "or refused by the endpoint)", self.url, report.undelivered, report.buffer_dropped)
        return report

    # --- the sender thread -------------------------------------------------------------

    def _next(self):
        with self._lock:
            nxt = self._buf.after(self._buf.acked, 1)
            if nxt:
                return nxt[0]
            self._work.clear()
            return None

    def _run(self) -> None:
        while not self._stop_now.is_set():
            item = self._next()
            if item is None:
                if self._closing:
                    return
                self._work.wait(1.0)
                continue
            seq, data = item
            body = _encode(unpack_alert(data)).encode("utf-8")
            try:
                status = self._http.post(body)
                reason = f"HTTP {status}"
            except (OSError, http.client.HTTPException) as exc:
                status, reason = None, f"{type(exc).__name__}: {exc}"
            if status is not None and (200 <= status < 300 or status not in RETRY_STATUS):
                with self._lock:
                    self._buf.ack(seq)
                    if 200 <= status < 300:
                        self.n_sent += 1
                    else:
                        self.n_refused += 1
                if status >= 300:
                    log.error("%s refused alert seq %d (%s); dropped", self.url, seq, reason)
                self._outage.over()
                self._backoff.reset()
                continue
            self.n_retries += 1
            self._outage.failed(reason)
            if self._closing:
                self._backoff.flush_pause(self._stop_now)
            else:
                self._backoff.wait()


def http_client_from_config(config, url: str) -> HttpAlertClient:
    """The http sender for --alerts-to URL, with the buffer settings the orchestrator
    client uses (a spill file gets its own name: two FIFOs cannot share one file)."""
    spill = f"{config.spill_file}.http" if config.spill_file else None
    return HttpAlertClient(url, tls_ca=config.tls_ca, buffer_size=config.buffer_size,
                           buffer_bytes=config.buffer_bytes, spill_file=spill,
                           flush_timeout=config.flush_timeout)
