"""Where the orchestrator forwards alerts: stdout, rotating JSONL files, HTTP (Falco JSON).

Each output takes a batch of records, each already encoded as one line of JSON (the
agent's Falco-format alert plus an "orchestrator" map naming agent_id, instance and
seq; encoded once per batch, whatever the number of outputs). deliver() returns once
they are safe: written to the OS for stdout and files, accepted by the endpoint for
HTTP; the orchestrator acks only after that.
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import http.client
import json
import logging
import os
import sys
import threading
import time
from typing import Iterable

from ..outputs.falco_http import RETRY_STATUS, FalcoHttp
from ..outputs.retry import Backoff, Outage

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

    async def deliver(self, lines: list) -> None:
        """Returns once the records are safe (written, or accepted downstream): only then
        does the orchestrator ack them. Raises when they are not."""
        self.emit(lines)

    # recover() can say what it holds from a previous run (the dedup marks)
    recovers = False

    def recover(self) -> dict:
        """(agent_id, instance) -> highest seq already written, from a previous run."""
        return {}

    def stats(self) -> dict:
        return {}

    def close(self, timeout: float = 5.0) -> None:
        pass

    async def aclose(self, timeout: float = 5.0) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close, timeout)


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
        self._fh = open(path, "ab", buffering=0)

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

    recovers = True
    recover_also: list = []  # sibling workers' files, read for their marks only

    def _files_oldest_first(self, path: str) -> list:
        names = [f"{path}.{i}" for i in range(self.backups, 0, -1)] + [path]
        return [n for n in names if os.path.exists(n)]

    def recover(self) -> dict:
        marks: dict = {}
        for name in [n for p in [*self.recover_also, self.path] for n in self._files_oldest_first(p)]:
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
        data = memoryview(("\n".join(lines) + "\n").encode("utf-8"))
        total = len(data)
        fd = self._fh.fileno()
        start = os.lseek(fd, 0, os.SEEK_END)  # we are the only writer
        try:
            while data:  # a short write (disk full, file size limit) is followed by an error
                data = data[os.write(fd, data):]
            if self.fsync:
                os.fsync(fd)
        except OSError:
            # Cut back to the last complete line: the agent resends the whole batch, and a
            # half line would be one unreadable record plus one duplicate.
            try:
                os.ftruncate(fd, start)
            except OSError as exc:
                log.error("%s: cannot cut a partial write back to %d bytes: %s", self.path, start, exc)
            raise
        if start + total >= self.max_bytes:
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
        self._fh = open(self.path, "ab", buffering=0)

    def close(self, timeout: float = 5.0) -> None:
        self._fh.close()


class _Stopped(Exception):
    """The output closed before this batch was accepted: it was never acked."""


class HttpOutput(Output):
    """POST each record as one Falco JSON document (what falcosidekick's / accepts).

    deliver() returns once every record of the batch was accepted (2xx) or refused for
    good (a 4xx other than 408/425/429: dropped, counted); until then the orchestrator
    does not ack them, so a crash or a stalled endpoint loses nothing the agents do not
    still hold. One worker thread posts the batches in arrival order, retrying with
    backoff; a batch whose waiting connection went away is skipped (its agent resends).
    """

    def __init__(self, url: str, timeout: float = 10.0, max_backoff: float = 5.0,
                 ca_file: str | None = None):
        try:
            self._http = FalcoHttp(url, timeout, ca_file)
        except ValueError as exc:
            raise OutputError(f"--output {exc}") from None
        self.url = url
        self.name = url
        self._timeout = timeout
        self._backoff = Backoff(min(0.2, max_backoff), max_backoff)
        self._outage = Outage(log, f"output {url}",
                              retrying="retrying (alerts are acked once it accepts them)")
        self._cond = threading.Condition()
        self._jobs: collections.deque = collections.deque()  # (bodies, concurrent Future)
        self.queued = 0          # records waiting or being posted
        self.sent = 0
        self.dropped = 0         # refused by the endpoint for good
        self.retries = 0
        self._stop = threading.Event()
        self._deadline = float("inf")
        self._thread = threading.Thread(target=self._run, name=f"http-output {url}", daemon=True)
        self._thread.start()

    def _submit(self, lines: list) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        bodies = [line.encode("utf-8") for line in lines]
        with self._cond:
            if self._stop.is_set():
                fut.set_exception(_Stopped("output closed"))
                return fut
            self._jobs.append((bodies, fut))
            self.queued += len(bodies)
            self._cond.notify()
        return fut

    def emit(self, lines: list) -> None:
        self._submit(lines)  # fire and forget: for callers that cannot wait

    async def deliver(self, lines: list) -> None:
        await asyncio.wrap_future(self._submit(lines))

    def stats(self) -> dict:
        return {"sent": self.sent, "dropped": self.dropped, "retries": self.retries,
                "queued": self.queued}

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stop.is_set():
                    self._cond.wait(0.5)
                if not self._jobs:
                    return
                bodies, fut = self._jobs.popleft()
            try:
                if fut.set_running_or_notify_cancel():  # False: nobody waits for it any more
                    self._post_all(bodies)
                    fut.set_result(None)
            except _Stopped as exc:
                fut.set_exception(exc)
            finally:
                with self._cond:
                    self.queued -= len(bodies)

    def _post_all(self, bodies: list) -> None:
        for body in bodies:
            self._backoff.reset()
            while True:
                try:
                    status = self._http.post(body)
                except (OSError, http.client.HTTPException) as exc:
                    status, reason = None, str(exc)
                else:
                    reason = f"HTTP {status}"
                if status is not None and 200 <= status < 300:
                    self.sent += 1
                    self._outage.over()
                    break
                if status is not None and status not in RETRY_STATUS:
                    log.error("output %s refused an alert (%s); dropped", self.url, reason)
                    self.dropped += 1
                    break
                if self._stop.is_set() and time.monotonic() > self._deadline:
                    raise _Stopped(f"output {self.url} closed while failing: {reason}")
                self.retries += 1
                self._outage.failed(reason)
                # past the deadline by a hair, so that the check above ends it
                self._backoff.wait(self._deadline + 0.01)

    def close(self, timeout: float = 5.0) -> None:
        self._deadline = time.monotonic() + timeout
        with self._cond:
            self._stop.set()
            self._cond.notify()
        self._thread.join(timeout + self._timeout + 1.0)
        self._http.close()
        if self.queued:
            log.error("output %s: %d alerts not accepted at shutdown (not acked: the agents "
                      "resend them)", self.url, self.queued)


def make_output(spec: str, file_max_bytes: int = 100 * 1024 * 1024, file_backups: int = 5,
                ca_file: str | None = None) -> Output:
    """--output value -> Output: stdout | file:PATH | http(s)://... | nats://HOST/STREAM"""
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
    if spec.startswith("nats://"):
        from .nats_output import NatsOutput

        return NatsOutput(spec)
    raise OutputError(f"unknown --output {spec!r}: expected stdout, file:PATH, http(s)://HOST/PATH "
                      "or nats://HOST[:PORT]/STREAM")


def merge_marks(outputs: Iterable[Output]) -> dict:
    """The dedup marks after a restart, when every output can tell them. A file's marks
    would also skip, in an http or NATS output beside it, the alerts that were written to
    the file but never accepted there: with such a mix, resends go to all outputs again
    (at least once: NATS drops them by Nats-Msg-Id, a file or http endpoint may see
    a few twice) rather than be lost for one of them."""
    outputs = list(outputs)
    marks: dict = {}
    if not all(out.recovers for out in outputs):
        return marks
    for out in outputs:
        for key, seq in out.recover().items():
            marks[key] = max(marks.get(key, 0), seq)
    return marks
