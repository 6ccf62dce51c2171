"""Where the orchestrator forwards alerts: stdout, rotating JSONL files, HTTP (Falco JSON).

Each output takes a batch of records, each already encoded as one line of JSON (the
agent's Falco-format alert plus an "orchestrator" map naming agent_id, instance and
seq; encoded once per batch, whatever the number of outputs). emit() returns once they
are handed over: written to the OS for stdout and files (the orchestrator acks after
that), queued for HTTP, whose worker thread retries with backoff and drops the oldest
when its queue is full (counted).
"""
from __future__ import annotations

import http.client
import json
import logging
import os
import queue
import random
import ssl
import sys
import threading
import time
import urllib.parse
from typing import Iterable

log = logging.getLogger("workload_agent.orchestrator")


class OutputError(ValueError):
    pass


# default=str: alert maps come from agents and may carry bytes or other odd values.
# One encoder for all: json.dumps with options builds a new one per call.
encode_record = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


class Output:
    name = "output"

    def emit(self, lines: list) -> None:
        """lines: JSON texts, one record each, without newlines."""
        raise NotImplementedError

    def recover(self) -> dict:
        """(agent_id, instance) -> highest seq already written, from a previous run."""
        return {}

    def stats(self) -> dict:
        return {}

    def close(self, timeout: float = 5.0) -> None:
        pass


class StdoutOutput(Output):
    name = "stdout"

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def emit(self, lines: list) -> None:
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()


class FileOutput(Output):
    """JSONL appended to PATH; at max_bytes PATH becomes PATH.1 (PATH.1 -> PATH.2, ...)."""

    def __init__(self, path: str, max_bytes: int = 100 * 1024 * 1024, backups: int = 5,
                 fsync: bool = False):
        self.path = path
        self.name = f"file:{path}"
        self.max_bytes = max_bytes
        self.backups = backups
        self.fsync = fsync
        self._repair_tail()
        self._fh = open(path, "ab")

    def _repair_tail(self) -> None:
        """Cut a half-written last line left by a crash: its alert was never acked."""
        try:
            with open(self.path, "rb+") as fh:
                size = fh.seek(0, os.SEEK_END)
                if size == 0:
                    return
                fh.seek(size - 1)
                if fh.read(1) == b"\n":
                    return
                pos = size
                while pos > 0:
                    step = min(65536, pos)
                    fh.seek(pos - step)
                    chunk = fh.read(step)
                    idx = chunk.rfind(b"\n")
                    if idx >= 0:
                        fh.truncate(pos - step + idx + 1)
                        return
                    pos -= step
                fh.truncate(0)
        except FileNotFoundError:
            pass

    def _files_oldest_first(self) -> list:
        names = [f"{self.path}.{i}" for i in range(self.backups, 0, -1)] + [self.path]
        return [n for n in names if os.path.exists(n)]

    def recover(self) -> dict:
        marks: dict = {}
        for name in self._files_oldest_first():
            with open(name, "rb") as fh:
                for line in fh:
                    try:
                        meta = json.loads(line)["orchestrator"]
                        key = (meta["agent_id"], meta["instance"])
                        marks[key] = max(marks.get(key, 0), int(meta["seq"]))
                    except (ValueError, KeyError, TypeError):
                        continue
        return marks

    def emit(self, lines: list) -> None:
        data = ("\n".join(lines) + "\n").encode("utf-8")
        self._fh.write(data)
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())
        if self._fh.tell() >= self.max_bytes:
            self._rotate()

    def _rotate(self) -> None:
        self._fh.close()
        if self.backups > 0:
            for i in range(self.backups - 1, 0, -1):
                src = f"{self.path}.{i}"
                if os.path.exists(src):
                    os.replace(src, f"{self.path}.{i + 1}")
            os.replace(self.path, f"{self.path}.1")
        else:
            os.truncate(self.path, 0)
        self._fh = open(self.path, "ab")

    def close(self, timeout: float = 5.0) -> None:
        self._fh.close()


class HttpOutput(Output):
    """POST each record as one Falco JSON document (what falcosidekick's / accepts)."""

    RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}

    def __init__(self, url: str, queue_size: int = 10000, timeout: float = 10.0,
                 max_backoff: float = 30.0, ca_file: str | None = None):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OutputError(f"bad output URL {url!r}: expected http(s)://HOST[:PORT]/PATH")
        self.url = url
        self.name = url
        self._parts = parts
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout = timeout
        self._max_backoff = max_backoff
        self._ca_file = ca_file
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self.sent = 0
        self.dropped = 0
        self.retries = 0
        self._conn: http.client.HTTPConnection | None = None
        self._stop = threading.Event()
        self._deadline = float("inf")
        self._thread = threading.Thread(target=self._run, name=f"http-output {parts.netloc}",
                                        daemon=True)
        self._thread.start()

    def emit(self, lines: list) -> None:
        for line in lines:
            body = line.encode("utf-8")
            while True:
                try:
                    self._queue.put_nowait(body)
                    break
                except queue.Full:
                    try:
                        self._queue.get_nowait()
                        with self._lock:
                            self.dropped += 1
                    except queue.Empty:
                        pass

    def stats(self) -> dict:
        return {"sent": self.sent, "dropped": self.dropped, "retries": self.retries,
                "queued": self._queue.qsize()}

    def _connect(self) -> http.client.HTTPConnection:
        port = self._parts.port
        if self._parts.scheme == "https":
            ctx = ssl.create_default_context(cafile=self._ca_file)
            return http.client.HTTPSConnection(self._parts.hostname, port, timeout=self._timeout,
                                               context=ctx)
        return http.client.HTTPConnection(self._parts.hostname, port, timeout=self._timeout)

    def _post(self, body: bytes) -> int:
        if self._conn is None:
            self._conn = self._connect()
        try:
            self._conn.request("POST", self._path, body=body,
                               headers={"Content-Type": "application/json"})
            resp = self._conn.getresponse()
            resp.read()
            if resp.will_close:
                self._conn.close()
                self._conn = None
            return resp.status
        except (OSError, http.client.HTTPException):
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            raise

    def _run(self) -> None:
        while True:
            try:
                body = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            delay = 0.2
            while True:
                try:
                    status = self._post(body)
                except (OSError, http.client.HTTPException) as exc:
                    status, reason = None, str(exc)
                else:
                    reason = f"HTTP {status}"
                if status is not None and 200 <= status < 300:
                    self.sent += 1
                    break
                if status is not None and status not in self.RETRY_STATUS:
                    log.error("output %s refused an alert (%s); dropped", self.url, reason)
                    with self._lock:
                        self.dropped += 1
                    break
                if self._stop.is_set() and time.monotonic() > self._deadline:
                    with self._lock:
                        self.dropped += 1 + self._queue.qsize()
                    return
                self.retries += 1
                log.warning("output %s: %s; retrying in %.1fs", self.url, reason, delay)
                time.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self._max_backoff)

    def close(self, timeout: float = 5.0) -> None:
        self._deadline = time.monotonic() + timeout
        self._stop.set()
        self._thread.join(timeout + self._timeout)
        if self._queue.qsize():
            log.error("output %s: %d alerts not delivered at shutdown", self.url, self._queue.qsize())


def make_output(spec: str, file_max_bytes: int = 100 * 1024 * 1024, file_backups: int = 5,
                ca_file: str | None = None) -> Output:
    """--output value -> Output: stdout | file:PATH | http(s)://..."""
    if spec == "stdout":
        return StdoutOutput()
    if spec.startswith("file:"):
        path = spec[len("file:"):]
        if not path:
            raise OutputError("--output file: needs a path, as file:/var/log/alerts.jsonl")
        try:
            return FileOutput(path, file_max_bytes, file_backups)
        except OSError as exc:
            raise OutputError(f"--output {spec}: {exc.strerror}") from None
    if spec.startswith(("http://", "https://")):
        return HttpOutput(spec, ca_file=ca_file)
    raise OutputError(f"unknown --output {spec!r}: expected stdout, file:PATH or http(s)://HOST/PATH")


def merge_marks(outputs: Iterable[Output]) -> dict:
    marks: dict = {}
    for out in outputs:
        for key, seq in out.recover().items():
            marks[key] = max(marks.get(key, 0), seq)
    return marks
