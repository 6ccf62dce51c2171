"""Agent side of the orchestrator protocol: at-least-once alert delivery from a thread.

send() is what the alert path calls: it numbers the alert, appends it to a bounded
buffer and returns; it never touches the network and never waits on it. A background
thread connects (TLS unless the operator turned it off), says hello, and sends what is
buffered in order; the orchestrator acks cumulatively and acked alerts leave the
buffer. On any failure the thread reconnects, to the next address when several are
configured, with exponential backoff and jitter (bounded, reset by a welcome, cut short
by close()) and resends everything unacked. When the buffer is full the oldest alert is
dropped and counted. close() keeps delivering for a bounded time and reports what did
not make it. An outage is logged once when it starts and once, with a count, when it
ends: the log is the workload's stderr.
"""
from __future__ import annotations

import json
import logging
import os
import select
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from .. import __version__
from ..orchestrator import protocol
from .buffer import AlertBuffer, unpack_alert
from .retry import Backoff, Outage

log = logging.getLogger("workload_agent.orchestrator_client")

class AuthRefused(Exception):
    pass


class _Closed(Exception):
    pass


@dataclass
class DeliveryReport:
    last_seq: int          # highest seq handed to send()
    acked: int             # highest seq the orchestrator confirmed
    undelivered: int       # alerts still buffered at shutdown (lost)
    buffer_dropped: int    # alerts dropped earlier at the buffer bound (lost)

    @property
    def complete(self) -> bool:
        return self.undelivered == 0 and self.buffer_dropped == 0


class OrchestratorClient:
    def __init__(self, host: str, port: int, access_key: str, *, agent_id: str | None = None,
                 metadata: dict | None = None, tls: bool = True, tls_ca: str | None = None,
                 failover: list | tuple = (),
                 buffer_size: int = 10000, buffer_bytes: int = 8 << 20, spill_file: str | None = None,
                 memory_items: int = 1024, heartbeat_interval: float = 10.0,
                 flush_timeout: float = 5.0,
                 on_rules: Callable[[dict, str], None] | None = None,
                 counters: Callable[[], dict] | None = None,
                 batch_max: int = 500, window: int = 4096,
                 connect_timeout: float = 5.0, io_timeout: float = 30.0,
                 backoff_initial: float = 0.2, backoff_max: float = 5.0):
        # host:port first, then the failover addresses, tried in turn
        self.addresses = [(host, port)] + [tuple(a) for a in failover]
        self._addr_index = 0
        self.host, self.port = host, port
        self._key = access_key
        self.agent_id = agent_id or default_agent_id()
        self.instance = uuid.uuid4().hex
        self.metadata = dict(metadata or {})
        self._ssl = None
        if tls:
            self._ssl = ssl.create_default_context(cafile=tls_ca)
            self._ssl.minimum_version = ssl.TLSVersion.TLSv1_2
        self._buf = AlertBuffer(buffer_size, buffer_bytes, spill_file, memory_items)
        self.heartbeat_interval = heartbeat_interval
        self.flush_timeout = flush_timeout
        self._on_rules = on_rules
        self._counters = counters
        self._batch_max = batch_max
        self._window = window
        self._connect_timeout = connect_timeout
        self._io_timeout = io_timeout
        self._backoff = Backoff(backoff_initial, backoff_max)   # close() sets its cut
        self._max_frame = protocol.DEFAULT_MAX_FRAME

        self._lock = threading.Lock()
        self._sent_upto = 0      # highest seq written on the current connection
        self._resend_upto = 0    # seqs <= this were sent on an earlier connection
        self.n_alerts = 0
        self.n_resent = 0
        self.n_connects = 0
        self.bundle_hash = ""
        self.bundle_error = ""
        self.connected = threading.Event()

        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._wake_pending = False
        self._closing = False
        self._stop_now = threading.Event()
        self._thread = threading.Thread(target=self._run, name="orchestrator-client", daemon=True)
        self._outage = Outage(log, f"orchestrator {host}:{port}", back="connected")
        self.refused = False     # the orchestrator refused our key
        self._welcomed = False
        self._last_rx = 0.0

    # --- the alert path: called by the agent, must never block ---------------------------

    def start(self) -> "OrchestratorClient":
        self._thread.start()
        return self

    def send(self, alert: dict) -> int:
        """Queue one Falco-format alert; returns its seq. Never blocks on the network."""
        with self._lock:
            seq = self._buf.push(alert)
            self.n_alerts += 1
            self._poke()
        return seq

    def _poke(self) -> None:
        if not self._wake_pending:
            self._wake_pending = True
            try:
                self._wake_w.send(b"x")
            except (BlockingIOError, OSError):
                pass

    def _buffered(self) -> int:
        return len(self._buf)

    @property
    def n_buffer_dropped(self) -> int:
        return self._buf.dropped

    @property
    def last_error(self) -> str:
        """Why the last connection attempt failed ('' once connected)."""
        return self._outage.last_error

    def stats(self) -> dict:
        with self._lock:
            return {"alerts": self.n_alerts, "buffered": self._buffered(), "resent": self.n_resent,
                    "buffer_dropped": self._buf.dropped, "acked": self._buf.acked,
                    "buffered_bytes": self._buf.memory_bytes, "spilled": self._buf.spilled,
                    "connects": self.n_connects,
                    # written to the orchestrator, not acked yet: resent if it goes away
                    "in_flight": max(0, self._sent_upto - self._buf.acked)}

    def close(self, timeout: float | None = None) -> DeliveryReport:
        """Deliver what is buffered for up to `timeout` seconds (flush_timeout), then stop."""
        timeout = self.flush_timeout if timeout is None else timeout
        with self._lock:
            self._closing = True
            self._backoff.cut.set()
            self._poke()
        if self._thread.is_alive():
            self._thread.join(timeout)
            self._stop_now.set()
            with self._lock:
                self._poke()
            self._thread.join(1.0)
        stuck = self._thread.is_alive()  # blocked in a send; it is a daemon, leave it be
        with self._lock:
            report = DeliveryReport(self._buf.last_seq, self._buf.acked, self._buffered(),
                                    self._buf.dropped)
            if not stuck:
                self._buf.close()
        if report.undelivered or report.buffer_dropped:
            log.warning("orchestrator %s:%d: %d alerts not delivered at shutdown (seq %d..%d), "
                        "%d dropped earlier at the buffer bound", self.host, self.port,
                        report.undelivered, report.acked + 1, report.last_seq, report.buffer_dropped)
        elif self._outage.failures:
            log.info("orchestrator %s:%d: all alerts delivered at shutdown after %d failed attempts",
                     self.host, self.port, self._outage.failures)
        if not stuck:
            self._wake_r.close()
            self._wake_w.close()
        return report

    # --- the sender thread -------------------------------------------------------------

    def _done(self) -> bool:
        with self._lock:
            return self._stop_now.is_set() or (self._closing and self._buffered() == 0)

    def _run(self) -> None:
        tried = 0     # addresses tried in this round
        while not self._done():
            sock = None
            self._welcomed = False
            self.host, self.port = self.addresses[self._addr_index]
            self._outage.name = f"orchestrator {self.host}:{self.port}"
            try:
                sock = self._connect()
                self._session(sock)
            except AuthRefused as exc:
                self.refused = True
                self._outage.failed(f"refused by the orchestrator: {exc}", logging.ERROR)
                self._backoff.at_least(4)  # a wrong key will not fix itself quickly
            except (OSError, protocol.ProtocolError, _Closed, ssl.SSLError) as exc:
                self._outage.failed(f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # a bug here must not end delivery for good
                log.exception("orchestrator client: unexpected error")
                self._outage.failed(f"{type(exc).__name__}: {exc}")
            finally:
                self.connected.clear()
                if sock is not None:
                    try:
                        sock.close()
                    except OSError:
                        pass
            if self._done():
                break
            if self._welcomed:  # a working session ended: the same address, soon
                tried = 0
                self._backoff.reset()
            else:  # the next address right away; back off once every address failed
                self._addr_index = (self._addr_index + 1) % len(self.addresses)
                tried += 1
                if tried < len(self.addresses):
                    continue
                tried = 0
            if self._closing:  # the exit flush has seconds, not minutes: keep trying
                self._backoff.flush_pause(self._stop_now)
            else:
                self._backoff.wait()

    def _connect(self) -> socket.socket:
        # a failed address must not eat the exit flush: cap the attempt then
        timeout = min(self._connect_timeout, 1.0) if self._closing else self._connect_timeout
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl is not None:
                sock = self._ssl.wrap_socket(sock, server_hostname=self.host)
            sock.settimeout(self._io_timeout)
        except BaseException:
            sock.close()
            raise
        return sock

    def _send_frame(self, sock: socket.socket, frame: dict) -> None:
        sock.sendall(protocol.encode(frame, self._max_frame))

    def _hello(self, sock: socket.socket, decoder: protocol.FrameDecoder) -> list:
        with self._lock:
            acked = self._buf.acked
        self._send_frame(sock, protocol.hello(self.agent_id, self.instance, __version__, self._key,
                                              self.metadata, acked, self.bundle_hash or None))
        deadline = time.monotonic() + self._io_timeout
        while True:
            frames = self._recv(sock, decoder, deadline - time.monotonic())
            while frames:
                frame = frames.pop(0)
                if frame["type"] == "welcome":
                    self._max_frame = min(frame["max_frame"], protocol.DEFAULT_MAX_FRAME) \
                        if frame["max_frame"] > 0 else protocol.DEFAULT_MAX_FRAME
                    with self._lock:
                        self._ack(frame["acked"])
                        self._resend_upto = max(self._resend_upto, self._sent_upto)
                        self._sent_upto = self._buf.acked
                    return frames  # what came in the same read (a rules push) is next
                self._handle(sock, frame)
            if time.monotonic() > deadline:
                raise _Closed("no welcome from the orchestrator")

    def _recv(self, sock, decoder: protocol.FrameDecoder, timeout: float) -> list:
        pending = isinstance(sock, ssl.SSLSocket) and sock.pending()
        if not pending:
            ready, _, _ = select.select([sock, self._wake_r], [], [], max(0.0, timeout))
            if self._wake_r in ready:
                with self._lock:
                    self._wake_pending = False
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except (BlockingIOError, OSError):
                        pass
            if sock not in ready:
                return []
        data = sock.recv(65536)
        if not data:
            raise _Closed("connection closed by the orchestrator")
        self._last_rx = time.monotonic()
        return list(decoder.feed(data))

    def _session(self, sock: socket.socket) -> None:
        decoder = protocol.FrameDecoder()
        self._last_rx = time.monotonic()
        early = self._hello(sock, decoder)
        self.n_connects += 1
        self._welcomed = True
        self.connected.set()
        self._outage.over()
        for frame in early:
            self._handle(sock, frame)
        next_hb = time.monotonic()
        while True:
            now = time.monotonic()
            if self._stop_now.is_set():
                return
            if now >= next_hb:
                self._send_frame(sock, self._heartbeat_frame())
                next_hb = now + self.heartbeat_interval
            while self._send_batch(sock):
                pass
            if self._done():
                return
            # the orchestrator answers every frame; a long silence means a dead peer
            silence = max(self._io_timeout, 3 * self.heartbeat_interval)
            if now - self._last_rx > silence:
                raise _Closed(f"no answer from the orchestrator for {silence:.0f}s")
            for frame in self._recv(sock, decoder, min(next_hb - now, 1.0)):
                self._handle(sock, frame)

    def _heartbeat_frame(self) -> dict:
        counters = {}
        if self._counters is not None:
            try:
                counters.update({k: int(v) for k, v in self._counters().items()})
            except Exception as exc:  # a broken counter source must not stop delivery
                log.debug("counters callback failed: %s", exc)
        with self._lock:
            counters.update(alerts=self.n_alerts, buffered=self._buffered(), resent=self.n_resent,
                            buffer_dropped=self._buf.dropped)
        return protocol.heartbeat(counters, self.bundle_hash or None, self.bundle_error or None)

    def _send_batch(self, sock: socket.socket) -> bool:
        with self._lock:
            in_flight = self._sent_upto - self._buf.acked
            if in_flight >= self._window:
                return False
            packed = self._buf.after(max(self._sent_upto, self._buf.acked),
                                     min(self._batch_max, self._window - in_flight))
        if not packed:
            return False
        batch = [(seq, unpack_alert(data)) for seq, data in packed]
        data = self._encode_batch(batch)
        sock.sendall(data)
        last = batch[-1][0]
        with self._lock:
            self.n_resent += sum(1 for seq, _ in batch if seq <= self._resend_upto)
            self._sent_upto = max(self._sent_upto, last)
        return True

    def _encode_batch(self, batch: list) -> bytes:
        """Encode, shrinking the batch to fit the frame limit; sanitise odd alert values."""
        while True:
            try:
                return protocol.encode(protocol.alerts(batch[0][0], [a for _, a in batch]),
                                       self._max_frame)
            except TypeError:
                batch[:] = [(s, json.loads(json.dumps(a, default=str))) for s, a in batch]
            except protocol.ProtocolError as exc:
                if exc.code != protocol.ERR_TOO_LARGE:
                    raise
                if len(batch) > 1:
                    del batch[len(batch) // 2:]
                    continue
                seq, alert = batch[0]
                log.error("alert seq %d is larger than the frame limit; sending a stub", seq)
                batch[0] = (seq, {k: alert.get(k) for k in ("time", "rule", "priority", "source")
                                  if isinstance(alert.get(k), str)}
                            | {"output": "alert too large to send", "output_fields": {}})

    def _ack(self, seq: int) -> None:
        """Caller holds the lock."""
        self._buf.ack(seq)

    def _handle(self, sock: socket.socket, frame: dict) -> None:
        ftype = frame["type"]
        if ftype == "ack":
            with self._lock:
                self._ack(frame["seq"])
        elif ftype == "rules":
            self._apply_rules(frame)
            self._send_frame(sock, self._heartbeat_frame())
        elif ftype == "error":
            if frame["code"] == protocol.ERR_AUTH:
                raise AuthRefused(frame["message"])
            raise _Closed(f"orchestrator error {frame['code']}: {frame['message']}")
        else:
            raise protocol.ProtocolError(f"unexpected {ftype} frame from the orchestrator")

    def _apply_rules(self, frame: dict) -> None:
        try:
            files = protocol.frame_files(frame)
        except protocol.ProtocolError as exc:
            self.bundle_error = str(exc)
            return
        if self._on_rules is None:
            self.bundle_error = "this agent does not accept rules updates"
            return
        try:
            self._on_rules(files, frame["hash"])
        except Exception as exc:  # the old rules stay; the orchestrator hears why
            self.bundle_error = f"{frame['hash']}: {exc}"
            log.error("rules bundle %s not applied: %s", frame["hash"], exc)
            return
        self.bundle_hash = frame["hash"]
        self.bundle_error = ""
        log.info("rules bundle %s applied (%d files)", frame["hash"], len(files))


def default_agent_id() -> str:
    """The ECS container id from the task metadata endpoint's URI, else the hostname
    (which Docker sets to the container id)."""
    uri = os.environ.get("ECS_CONTAINER_METADATA_URI_V4") or os.environ.get("ECS_CONTAINER_METADATA_URI")
    if uri:
        return uri.rstrip("/").rsplit("/", 1)[-1]
    return socket.gethostname()


def client_from_config(config, *, on_rules: Callable[[dict, str], None] | None = None,
                       counters: Callable[[], dict] | None = None,
                       metadata: dict | None = None) -> OrchestratorClient | None:
    """The client a workload_agent.configuration.Config asks for (None: no orchestrator).

    Raises ValueError naming the setting when an orchestrator is configured without the
    access key it needs.
    """
    addresses = config.orchestrator_addresses()
    if not addresses:
        return None
    if not config.access_key:
        raise ValueError(f"orchestrator {config.orchestrator} is configured ({config.source('orchestrator')}) "
                         "but no access key: set WORKLOAD_AGENT_ACCESS_KEY or SYSDIG_ACCESS_KEY")
    meta = {"hostname": socket.gethostname()}
    # What ECS/Fargate puts in every container's environment; the task ARN and image
    # need the task metadata endpoint, which the caller may query and pass in `metadata`.
    for key, var in (("execution_env", "AWS_EXECUTION_ENV"), ("region", "AWS_REGION")):
        if os.environ.get(var):
            meta[key] = os.environ[var]
    meta.update(metadata or {})
    return OrchestratorClient(
        addresses[0][0], addresses[0][1], config.access_key, agent_id=config.agent_id,
        metadata=meta, failover=addresses[1:], tls=config.tls, tls_ca=config.tls_ca,
        buffer_size=config.buffer_size, buffer_bytes=config.buffer_bytes,
        spill_file=config.spill_file, heartbeat_interval=config.heartbeat_interval,
        flush_timeout=config.flush_timeout, on_rules=on_rules, counters=counters)
