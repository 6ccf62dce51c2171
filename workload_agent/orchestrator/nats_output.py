"""NATS JetStream output: many orchestrators, one stream, each alert once.

Each record is published to falco.<priority>.<rule>, the subject falcosidekick's NATS
output uses (priority lowercased; the rule lowercased, every run of characters outside
a-z0-9 turned into one "_", "_" trimmed from both ends), with the header Nats-Msg-Id =
agent_id/instance/seq. JetStream drops a message whose id it saw within the stream's
duplicate window, so the resends that reconnects and failover between orchestrator
replicas produce are stored once. deliver() returns when JetStream acknowledged every
record (stored or recognised as a duplicate): only then does the orchestrator ack.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import urllib.parse

from .outputs import Output, OutputError

log = logging.getLogger("workload_agent.orchestrator")

_SLUG = re.compile(r"[^a-z0-9]+")
SUBJECT_ROOT = "falco"
DUPLICATE_WINDOW = 120.0  # seconds; covers an orchestrator restart and the agents' backoff


def _token(text) -> str:
    # what falcosidekick does to the rule; applied to the priority too, which comes from
    # the agent: a space, dot or wildcard there must not change the subject's shape
    return _SLUG.sub("_", str(text).lower()).strip("_") or "unknown"


def subject(priority: str, rule: str) -> str:
    return f"{SUBJECT_ROOT}.{_token(priority)}.{_token(rule)}"


def msg_id(meta: dict) -> str:
    return f"{meta['agent_id']}/{meta['instance']}/{meta['seq']}"


class NatsOutput(Output):
    """--output nats://HOST[:PORT]/STREAM; the stream is created (subjects falco.>) when
    it does not exist, and used as it is when it does."""

    def __init__(self, spec: str, publish_timeout: float = 10.0, connect_timeout: float = 5.0):
        try:
            import nats  # noqa: F401
        except ImportError:
            raise OutputError(f"--output {spec}: needs the nats-py package "
                              "(pip install 'workload-agent[nats]')") from None
        try:
            parts = urllib.parse.urlsplit(spec)
            port = parts.port or 4222
        except ValueError as exc:
            raise OutputError(f"bad --output {spec!r}: {exc}; expected nats://HOST[:PORT]/STREAM") from None
        stream = parts.path.strip("/")
        if parts.scheme not in ("nats", "tls") or not parts.hostname or not stream or "/" in stream \
                or not re.fullmatch(r"[A-Za-z0-9_-]+", stream):
            raise OutputError(f"bad --output {spec!r}: expected nats://HOST[:PORT]/STREAM "
                              "(stream name: letters, digits, - and _)")
        self.name = spec
        self.server = f"{parts.scheme}://{parts.hostname}:{port}"
        self.stream = stream
        self._publish_timeout = publish_timeout
        self._connect_timeout = connect_timeout
        self._nc = None
        self._js = None
        self._connecting: asyncio.Lock | None = None
        self.sent = 0
        self.duplicates = 0   # JetStream already had it: a resend
        self.errors = 0
        self.queued = 0

    async def _jetstream(self):
        if self._js is not None and self._nc.is_connected:
            return self._js
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._js is not None and self._nc.is_connected:
                return self._js
            import nats
            from nats.js.errors import NotFoundError

            if self._nc is None or self._nc.is_closed:
                self._nc = await nats.connect(
                    servers=[self.server], connect_timeout=self._connect_timeout,
                    allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                    error_cb=self._on_error, disconnected_cb=self._on_disconnect,
                    reconnected_cb=self._on_reconnect)
            js = self._nc.jetstream(timeout=self._publish_timeout)
            try:
                await js.stream_info(self.stream)
            except NotFoundError:
                await js.add_stream(name=self.stream, subjects=[f"{SUBJECT_ROOT}.>"],
                                    duplicate_window=DUPLICATE_WINDOW)
                log.info("created JetStream stream %s (subjects %s.>)", self.stream, SUBJECT_ROOT)
            self._js = js
            return js

    async def _on_error(self, exc) -> None:
        log.debug("nats %s: %s", self.server, exc)

    async def _on_disconnect(self) -> None:
        log.warning("nats %s: disconnected; alerts wait (unacked) until it is back", self.server)

    async def _on_reconnect(self) -> None:
        log.info("nats %s: reconnected", self.server)

    def emit(self, lines: list) -> None:
        raise OutputError("the NATS output is asynchronous: use deliver()")

    async def deliver(self, lines: list) -> None:
        self.queued += len(lines)
        try:
            js = await self._jetstream()
            pending = []
            for line in lines:
                record = json.loads(line)
                pending.append(js.publish(
                    subject(record.get("priority", ""), record.get("rule", "")), line.encode("utf-8"),
                    stream=self.stream,
                    headers={"Nats-Msg-Id": msg_id(record["orchestrator"])}))
            # published back to back, acknowledged together: one round trip per batch
            acks = await asyncio.gather(*pending)
        except Exception:
            self.errors += 1
            raise
        finally:
            self.queued -= len(lines)
        dup = sum(1 for a in acks if getattr(a, "duplicate", False))
        self.duplicates += dup
        self.sent += len(acks) - dup

    def stats(self) -> dict:
        return {"sent": self.sent, "duplicates": self.duplicates, "errors": self.errors,
                "queued": self.queued}

    async def aclose(self, timeout: float = 5.0) -> None:
        if self._nc is not None and not self._nc.is_closed:
            try:
                await asyncio.wait_for(self._nc.drain(), timeout)
            except Exception as exc:  # closing anyway
                log.debug("nats %s: drain: %s", self.server, exc)
                await self._nc.close()
