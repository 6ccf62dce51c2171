"""The orchestrator: an asyncio server collecting alerts from many agents.

One coroutine per agent connection reads frames, forwards new alerts to the outputs and
acks cumulatively. Its only memory is, per stream (agent_id, instance), the highest seq
already forwarded, which turns the agents' at-least-once resends into exactly-once
output; outputs that can (JSONL files) give that memory back after a restart. Rules
are served from a watched directory; a separate small HTTP server gives /healthz and
/metrics (Prometheus text format).
"""
from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import json
import logging
import ssl
import time
from dataclasses import dataclass, field

from .. import __version__
from . import bundle as bundles
from . import protocol
from .outputs import encode_record, merge_marks

log = logging.getLogger("workload_agent.orchestrator")

MAX_STREAMS = 1_000_000  # dedup marks kept for disconnected streams, oldest forgotten first


@dataclass
class Limits:
    max_frame: int = protocol.DEFAULT_MAX_FRAME
    # Before the key is checked a peer costs what it sends: a hello is a few hundred
    # bytes, so a small frame limit, one deadline for the whole hello, and caps.
    preauth_max_frame: int = 64 * 1024
    hello_timeout: float = 10.0      # connect -> complete hello
    max_connections: int = 20000
    max_unauthenticated: int = 256
    idle_timeout: float = 120.0      # no frame at all (agents heartbeat every ~10 s)
    write_timeout: float = 30.0      # a peer that stops reading is dropped after this
    tls_handshake_timeout: float = 10.0
    rules_poll: float = 1.0


@dataclass
class Session:
    peer: str
    writer: asyncio.StreamWriter
    agent_id: str = ""
    instance: str = ""
    version: str = ""
    metadata: dict = field(default_factory=dict)
    counters: dict = field(default_factory=dict)
    bundle_hash: str = ""
    bundle_error: str = ""
    connected_at: float = field(default_factory=time.time)
    unauthenticated: bool = False
    drain_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def key(self) -> tuple:
        return (self.agent_id, self.instance)


class Stats:
    def __init__(self):
        self.alerts = 0
        self.duplicates = 0
        self.auth_failures = 0
        self.protocol_errors = 0
        self.bundle_errors = 0
        self.output_errors = 0
        self.connections = 0
        self.refused: collections.Counter = collections.Counter()  # reason -> connections


def _key_digest(key: str) -> bytes:
    # Comparing fixed-size digests keeps compare_digest from leaking the key length.
    return hashlib.sha256(key.encode("utf-8")).digest()


class Orchestrator:
    def __init__(self, access_key: str, outputs: list, rules_dir: str | None = None,
                 limits: Limits | None = None):
        if not access_key:
            raise ValueError("an access key is required")
        self._key_digest = _key_digest(access_key)
        self.outputs: list = outputs
        self.rules_dir = rules_dir
        self.limits = limits or Limits()
        self.stats = Stats()
        self.sessions: dict = {}                       # key -> Session (latest connection)
        self.marks: collections.OrderedDict = collections.OrderedDict()
        # Streams whose forwarded alerts are not all safe yet (an http output still
        # posting): key -> highest seq safe. Acks say this, dedup uses marks.
        self.safe: dict = {}
        self.bundle: bundles.Bundle | None = None
        self.bundle_problems: list = []
        self._servers: list = []
        self._tasks: list = []
        self._conn_tasks: set = set()
        self.started = time.time()
        self.in_flight = 0   # alerts handed to the outputs, not yet safe (not acked)
        self.n_unauthenticated = 0

    # --- lifecycle -------------------------------------------------------------------

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None = None,
                    metrics_host: str | None = None, metrics_port: int | None = None,
                    reuse_port: bool = False) -> dict:
        """Bind the listeners; returns the bound {'port', 'metrics_port'} (0 = any free)."""
        for key, seq in merge_marks(self.outputs).items():
            self.marks[key] = seq
        if self.marks:
            log.info("recovered delivery marks for %d agent streams from the outputs", len(self.marks))
        if self.rules_dir:
            self.bundle, self.bundle_problems = await asyncio.get_running_loop().run_in_executor(
                None, bundles.load_bundle, self.rules_dir)
            if self.bundle is None:
                raise ValueError(f"rules bundle {self.rules_dir} is not valid:\n  "
                                 + "\n  ".join(self.bundle_problems))
            log.info("serving rules bundle %s (%d files) from %s", self.bundle.hash,
                     len(self.bundle.files), self.rules_dir)
            self._tasks.append(asyncio.ensure_future(self._watch_rules()))
        server = await asyncio.start_server(
            self._on_connection, host, port, ssl=ssl_context, reuse_port=reuse_port or None,
            ssl_handshake_timeout=self.limits.tls_handshake_timeout if ssl_context else None)
        self._servers.append(server)
        bound = {"port": server.sockets[0].getsockname()[1], "metrics_port": None}
        if metrics_port is not None:
            mserver = await asyncio.start_server(self._on_http, metrics_host or "0.0.0.0", metrics_port)
            self._servers.append(mserver)
            bound["metrics_port"] = mserver.sockets[0].getsockname()[1]
        return bound

    async def stop(self, flush_timeout: float = 5.0) -> None:
        for server in self._servers:
            server.close()
        for task in self._tasks:
            task.cancel()
        goodbye = protocol.encode(protocol.error(protocol.ERR_SHUTDOWN, "orchestrator stopping"))
        for sess in list(self.sessions.values()):
            # no drain: a peer that stopped reading must not delay the shutdown
            try:
                sess.writer.write(goodbye)
            except Exception:
                pass
            sess.writer.close()
        for task in list(self._conn_tasks):
            task.cancel()
        await asyncio.gather(*self._conn_tasks, return_exceptions=True)
        for out in self.outputs:
            await out.aclose(flush_timeout)

    # --- agent connections -----------------------------------------------------------

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        task = asyncio.current_task()
        self._conn_tasks.add(task)
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if peername else "?"
        sess = Session(peer=peer, writer=writer)
        self.stats.connections += 1
        limits = self.limits
        if len(self._conn_tasks) > limits.max_connections:
            return self._refuse(sess, "max_connections")
        if self.n_unauthenticated >= limits.max_unauthenticated:
            return self._refuse(sess, "max_unauthenticated")
        self.n_unauthenticated += 1
        sess.unauthenticated = True
        try:
            await self._serve(sess, reader)
        except protocol.ProtocolError as exc:
            self.stats.protocol_errors += 1
            log.warning("agent %s (%s): protocol error: %s; closing", sess.agent_id or "?", peer, exc)
            await self._try_send(sess, protocol.error(exc.code, str(exc)))
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                self.stats.protocol_errors += 1
                log.warning("agent %s (%s): connection closed inside a frame", sess.agent_id or "?", peer)
        except asyncio.TimeoutError:
            log.warning("agent %s (%s): timed out; closing", sess.agent_id or "?", peer)
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            log.info("agent %s (%s): connection lost: %s", sess.agent_id or "?", peer, exc)
        except asyncio.CancelledError:
            pass
        finally:
            self._authenticated(sess)
            self._conn_tasks.discard(task)
            if self.sessions.get(sess.key) is sess:
                del self.sessions[sess.key]
                log.info("agent %s (%s) disconnected", sess.agent_id, peer)
            writer.close()

    def _refuse(self, sess: Session, reason: str) -> None:
        self.stats.refused[reason] += 1
        if self.stats.refused[reason] in (1, 10, 100, 1000) or self.stats.refused[reason] % 10000 == 0:
            log.warning("connection from %s refused: %s reached (%d refused so far)", sess.peer,
                        reason, self.stats.refused[reason])
        sess.writer.close()
        self._conn_tasks.discard(asyncio.current_task())

    def _authenticated(self, sess: Session) -> None:
        if sess.unauthenticated:
            sess.unauthenticated = False
            self.n_unauthenticated -= 1

    async def _read_frame(self, reader: asyncio.StreamReader, timeout: float,
                          max_frame: int | None = None) -> dict:
        header = await asyncio.wait_for(reader.readexactly(protocol.HEADER.size), timeout)
        (length,) = protocol.HEADER.unpack(header)
        protocol.check_length(length, max_frame or self.limits.max_frame)
        payload = await asyncio.wait_for(reader.readexactly(length), self.limits.write_timeout)
        return protocol.decode_payload(payload)

    async def _serve(self, sess: Session, reader: asyncio.StreamReader) -> None:
        try:
            # the whole hello within one deadline: a trickled frame does not reset it
            hello = await asyncio.wait_for(
                self._read_frame(reader, self.limits.hello_timeout, self.limits.preauth_max_frame),
                self.limits.hello_timeout)
        except asyncio.TimeoutError:
            self.stats.refused["auth_timeout"] += 1
            raise
        except protocol.ProtocolError as exc:
            if exc.code == protocol.ERR_TOO_LARGE:
                self.stats.refused["preauth_frame"] += 1
            raise
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                return  # connected and left: a TCP health check
            raise
        if hello["type"] != "hello":
            raise protocol.ProtocolError(f"expected hello, got {hello['type']}")
        sess.agent_id = hello["agent_id"]
        sess.instance = hello["instance"]
        if hello["protocol"] != protocol.PROTOCOL_VERSION:
            raise protocol.ProtocolError(
                f"protocol version {hello['protocol']} not supported (this orchestrator speaks "
                f"{protocol.PROTOCOL_VERSION})", protocol.ERR_VERSION)
        if not hmac.compare_digest(_key_digest(hello["access_key"]), self._key_digest):
            self.stats.auth_failures += 1
            log.warning("agent %s (%s): wrong access key; refused", sess.agent_id, sess.peer)
            await self._try_send(sess, protocol.error(protocol.ERR_AUTH, "wrong access key"))
            return
        self._authenticated(sess)
        sess.version = hello["version"]
        sess.metadata = hello.get("metadata", {})
        sess.bundle_hash = hello.get("bundle_hash", "")
        old = self.sessions.get(sess.key)
        if old is not None:
            log.info("agent %s reconnected from %s; dropping its old connection from %s",
                     sess.agent_id, sess.peer, old.peer)
            old.writer.close()
        self.sessions[sess.key] = sess
        mark = self.acked(sess.key)
        if sess.key in self.marks:
            self.marks.move_to_end(sess.key)
        log.info("agent %s (%s) connected: version %s, instance %s, acked %d", sess.agent_id,
                 sess.peer, sess.version, sess.instance, mark)
        await self._send(sess, protocol.welcome(__version__, mark, self.limits.max_frame))
        if self.bundle is not None and sess.bundle_hash != self.bundle.hash:
            await self._send(sess, self.bundle.frame)

        while True:
            try:
                frame = await self._read_frame(reader, self.limits.idle_timeout)
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    return
                raise
            ftype = frame["type"]
            if ftype == "alerts":
                await self._on_alerts(sess, frame)
            elif ftype == "heartbeat":
                sess.counters = frame["counters"]
                sess.bundle_hash = frame.get("bundle_hash", sess.bundle_hash)
                error = frame.get("bundle_error", "")
                if error and error != sess.bundle_error:
                    log.warning("agent %s could not apply the rules bundle: %s", sess.agent_id, error)
                sess.bundle_error = error
                await self._send(sess, protocol.ack(self.acked(sess.key)))
            elif ftype == "error":
                log.warning("agent %s reported an error: %s: %s", sess.agent_id, frame["code"],
                            frame["message"])
                return
            else:
                raise protocol.ProtocolError(f"unexpected {ftype} frame from an agent")

    async def _on_alerts(self, sess: Session, frame: dict) -> None:
        mark = self.marks.get(sess.key, 0)
        first = frame["first_seq"]
        records = []
        orch_meta = None
        for i, alert in enumerate(frame["alerts"]):
            seq = first + i
            if seq <= mark:
                self.stats.duplicates += 1
                continue
            if orch_meta is None:
                orch_meta = {"agent_id": sess.agent_id, "instance": sess.instance,
                             "metadata": sess.metadata}
            record = dict(alert)
            record["orchestrator"] = dict(orch_meta, seq=seq)
            records.append(record)
            mark = seq
        if records:
            key = sess.key
            before = self.marks.get(key, 0)
            lines = [encode_record(r) for r in records]
            # Marked forwarded first: a resend on a newer connection of this stream, while
            # we wait for the outputs, is a duplicate and must not be forwarded again.
            self.safe.setdefault(key, self.acked(key))
            self.marks[key] = mark
            self.marks.move_to_end(key)
            self.in_flight += len(records)
            try:
                for out in self.outputs:
                    await out.deliver(lines)
            except Exception as exc:  # disk full, endpoint gone: no ack, the agent resends
                if self.marks.get(key) == mark:
                    self.marks[key] = before
                if key in self.safe and self.safe[key] >= self.marks.get(key, 0):
                    self.safe.pop(key, None)
                if not isinstance(exc, asyncio.CancelledError):
                    self.stats.output_errors += 1
                    raise ConnectionError(f"output {out.name} failed: {exc}") from exc
                raise
            finally:
                self.in_flight -= len(records)
            if mark >= self.marks.get(key, 0):
                self.safe.pop(key, None)
            elif key in self.safe:
                self.safe[key] = max(self.safe[key], mark)
            self.stats.alerts += len(records)
            while len(self.marks) > MAX_STREAMS:
                self.marks.popitem(last=False)
        await self._send(sess, protocol.ack(self.acked(sess.key)))

    def acked(self, key: tuple) -> int:
        """The highest seq of this stream that the outputs hold safely."""
        return self.safe.get(key, self.marks.get(key, 0))

    async def _send(self, sess: Session, frame: dict) -> None:
        sess.writer.write(protocol.encode(frame, max(self.limits.max_frame, protocol.DEFAULT_MAX_FRAME)))
        async with sess.drain_lock:
            await asyncio.wait_for(sess.writer.drain(), self.limits.write_timeout)

    async def _try_send(self, sess: Session, frame: dict) -> None:
        try:
            await self._send(sess, frame)
        except Exception:
            pass

    # --- rules -----------------------------------------------------------------------

    async def _watch_rules(self) -> None:
        loop = asyncio.get_running_loop()
        seen = bundles.dir_signature(self.rules_dir)
        while True:
            await asyncio.sleep(self.limits.rules_poll)
            sig = bundles.dir_signature(self.rules_dir)
            if sig == seen:
                continue
            # let an editor or `cp` finish: act once the directory holds still
            await asyncio.sleep(self.limits.rules_poll / 2)
            if bundles.dir_signature(self.rules_dir) != sig:
                continue
            seen = sig
            new, problems = await loop.run_in_executor(None, bundles.load_bundle, self.rules_dir)
            if new is None:
                self.stats.bundle_errors += 1
                self.bundle_problems = problems
                log.error("rules bundle in %s refused, keeping %s:\n  %s", self.rules_dir,
                          self.bundle.hash if self.bundle else "none", "\n  ".join(problems))
                continue
            self.bundle_problems = []
            if self.bundle is not None and new.hash == self.bundle.hash:
                continue
            self.bundle = new
            log.info("new rules bundle %s (%d files); pushing to %d agents", new.hash,
                     len(new.files), len(self.sessions))
            await self.push_bundle()

    async def push_bundle(self) -> None:
        if self.bundle is None:
            return
        frame = self.bundle.frame
        targets = [s for s in self.sessions.values() if s.bundle_hash != self.bundle.hash]
        # one slow agent must not hold up the others
        results = await asyncio.gather(*(self._send(s, frame) for s in targets), return_exceptions=True)
        for sess, result in zip(targets, results):
            if isinstance(result, Exception):
                log.warning("agent %s: rules push failed: %s", sess.agent_id, result)
                sess.writer.close()

    # --- health and metrics ----------------------------------------------------------

    async def _on_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            parts = head.split(b"\r\n", 1)[0].split()
            path = parts[1].decode("ascii", "replace") if len(parts) >= 2 else ""
            if path == "/healthz":
                body = json.dumps({"status": "ok", "agents": len(self.sessions),
                                   "bundle": self.bundle.hash if self.bundle else None,
                                   "bundle_problems": self.bundle_problems}).encode()
                status, ctype = "200 OK", "application/json"
            elif path == "/metrics":
                body = self.metrics_text().encode()
                status, ctype = "200 OK", "text/plain; version=0.0.4"
            else:
                body, status, ctype = b"not found\n", "404 Not Found", "text/plain"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: "
                         f"{len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            await asyncio.wait_for(writer.drain(), 5.0)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            pass
        finally:
            writer.close()

    def metrics_text(self) -> str:
        p = "workload_agent_orchestrator_"
        out: list = []

        def metric(name, kind, help_, samples):
            out.append(f"# HELP {p}{name} {help_}")
            out.append(f"# TYPE {p}{name} {kind}")
            for labels, value in samples:
                lab = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
                out.append(f"{p}{name}{{{lab}}} {value}" if lab else f"{p}{name} {value}")

        s = self.stats
        metric("connected_agents", "gauge", "Agents connected now.", [({}, len(self.sessions))])
        metric("alerts_total", "counter", "Alerts forwarded to the outputs.", [({}, s.alerts)])
        metric("alerts_duplicate_total", "counter", "Resent alerts dropped as already forwarded.",
               [({}, s.duplicates)])
        metric("auth_failures_total", "counter", "Connections refused for a wrong access key.",
               [({}, s.auth_failures)])
        metric("connections_refused_total", "counter",
               "Connections closed before authentication by a limit (max_connections, "
               "max_unauthenticated, preauth_frame, auth_timeout).",
               [({"reason": r}, n) for r, n in sorted(s.refused.items())])
        metric("unauthenticated_connections", "gauge", "Connections that have not presented the key yet.",
               [({}, self.n_unauthenticated)])
        metric("protocol_errors_total", "counter", "Connections closed for a protocol error.",
               [({}, s.protocol_errors)])
        metric("output_errors_total", "counter", "Failed output writes.", [({}, s.output_errors)])
        metric("bundle_errors_total", "counter", "Rules bundle changes refused as invalid.",
               [({}, s.bundle_errors)])
        metric("bundle_info", "gauge", "The rules bundle being served.",
               [({"hash": self.bundle.hash}, 1)] if self.bundle else [])
        metric("output_dropped_total", "counter", "Alerts an output dropped (refused by the endpoint).",
               [({"output": o.name}, o.stats().get("dropped", 0)) for o in self.outputs])
        metric("output_queue_depth", "gauge", "Alerts waiting in an output (not acked yet).",
               [({"output": o.name}, o.stats().get("queued", 0)) for o in self.outputs])
        metric("alerts_in_flight", "gauge", "Alerts handed to the outputs and not yet safe (not acked).",
               [({}, self.in_flight)])
        sessions = list(self.sessions.values())
        metric("agent_bundle_info", "gauge", "Rules bundle each connected agent runs.",
               [({"agent_id": a.agent_id, "instance": a.instance, "hash": a.bundle_hash}, 1)
                for a in sessions])
        metric("agent_counter", "gauge", "Counters from each connected agent's last heartbeat.",
               [({"agent_id": a.agent_id, "instance": a.instance, "counter": k}, v)
                for a in sessions for k, v in sorted(a.counters.items())])
        return "\n".join(out) + "\n"


def _label(value) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def server_ssl_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx
