"""Test helpers: a real orchestrator process, raw protocol sockets, output readers."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from workload_agent.orchestrator import protocol

REPO = Path(__file__).resolve().parents[2]
KEY = "test-access-key-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class OrchProcess:
    """`python -m workload_agent orchestrator ...` as a real child process."""

    def __init__(self, workdir: Path, *extra: str, port: int = 0, key: str = KEY,
                 plaintext: bool = True):
        self.workdir = workdir
        self.extra = list(extra)
        self.port = port
        self.key = key
        self.plaintext = plaintext
        self.proc = None
        self.starts = 0
        self.preexec = None   # run in the child before exec (resource limits)

    def start(self) -> "OrchProcess":
        self.starts += 1
        self.stderr_path = self.workdir / f"orch-{self.starts}.log"
        argv = [sys.executable, "-m", "workload_agent", "orchestrator",
                "--listen", f"127.0.0.1:{self.port}", "--metrics-listen", "127.0.0.1:0"]
        if self.plaintext:
            argv.append("--plaintext")
        argv += self.extra
        env = dict(os.environ, PYTHONPATH=str(REPO), WORKLOAD_AGENT_ACCESS_KEY=self.key)
        self.stdout = open(self.workdir / f"orch-{self.starts}.out", "wb")
        self.proc = subprocess.Popen(argv, cwd=self.workdir, env=env, stdout=self.stdout,
                                     stderr=open(self.stderr_path, "wb"), preexec_fn=self.preexec)
        text = wait_for(lambda: self._ready(), timeout=15, what="orchestrator start")
        self.port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", text).group(1))
        self.metrics_port = int(re.search(r"metrics on 127\.0\.0\.1:(\d+)", text).group(1))
        return self

    def _ready(self):
        text = self.log()
        if self.proc.poll() is not None:
            raise AssertionError(f"orchestrator exited {self.proc.returncode}:\n{text}")
        return text if "metrics on" in text else None

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def all_logs(self) -> str:
        return "".join((self.workdir / f"orch-{i}.log").read_text(errors="replace")
                       for i in range(1, self.starts + 1))

    def http(self, path: str) -> tuple:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=5) as r:
            return r.status, r.read().decode()

    def metric(self, name: str, labels: str = "") -> float:
        _, text = self.http("/metrics")
        full = f"workload_agent_orchestrator_{name}{labels}"
        for line in text.splitlines():
            if line.startswith(full + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def kill(self, sig=signal.SIGKILL) -> None:
        self.proc.send_signal(sig)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def finishes(fn, what: str, within: float = 30.0):
    """fn()'s result, run in a thread; a failure if it has not returned after `within`
    seconds. For calls that must not wait on a network that never answers: a liveness
    bound far above their own timeouts, not a speed check."""
    import threading

    box: list = []

    def call():
        try:
            box.append((True, fn()))
        except BaseException as exc:  # handed to the test's thread
            box.append((False, exc))

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(within)
    assert box, f"{what} had not returned after {within:.0f}s"
    ok, value = box[0]
    if not ok:
        raise value
    return value


def close_when_it_is_up(client, workdir: Path, port: int, timeout: float) -> tuple:
    """Start an orchestrator (file output) on `port`, which `client` has been failing to
    reach, and close the client against it: (its delivery report, the records written)."""
    orch = OrchProcess(workdir, "--output", f"file:{workdir}/out.jsonl", port=port).start()
    try:
        report = client.close(timeout)
    finally:
        orch.stop()
    return report, read_jsonl(workdir / "out.jsonl")


class RawAgent:
    """A hand-driven protocol peer, for what a well-behaved client never does."""

    def __init__(self, port: int, timeout: float = 5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.dec = protocol.FrameDecoder()
        self.frames: list = []

    def send(self, frame: dict) -> None:
        self.sock.sendall(protocol.encode(frame))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def hello(self, agent_id="raw", instance="i1", key=KEY, **kw) -> dict:
        self.send(protocol.hello(agent_id, instance, "test", key, **kw))
        return self.recv()

    def recv(self) -> dict:
        while not self.frames:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("closed")
            self.frames.extend(self.dec.feed(data))
        return self.frames.pop(0)

    def recv_until_closed(self) -> list:
        out = []
        try:
            while True:
                out.append(self.recv())
        except (EOFError, ConnectionResetError):
            return out

    def close(self):
        self.sock.close()


def read_jsonl(*paths) -> list:
    out = []
    for p in paths:
        p = Path(p)
        if p.exists():
            out.extend(json.loads(line) for line in p.read_text().splitlines() if line)
    return out


def make_alert(i: int) -> dict:
    return {"time": "2026-11-26T12:00:00.000000000Z", "rule": "Test rule",
            "priority": "Warning", "output": f"test alert {i}", "source": "syscall",
            "output_fields": {"i": i}, "tags": ["test"], "hostname": "h"}


def make_ca_and_server_cert(directory: Path, name: str = "ca") -> dict:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost signed by it."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"test {name}")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "orchestrator")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {"ca": directory / f"{name}.pem", "cert": directory / f"{name}-server.pem",
             "key": directory / f"{name}-server.key"}
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return paths


def count_lines(*paths) -> int:
    """Complete lines so far (safe while a writer is appending)."""
    return sum(Path(p).read_bytes().count(b"\n") for p in paths if Path(p).exists())


class RoundRobinProxy:
    """A minimal TCP load balancer: each new connection goes to the next live backend."""

    def __init__(self, backends: list):
        import threading
        self.backends = backends
        self._next = 0
        self.placed: list = []  # backend index per accepted connection
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading
        while not self._closed:
            try:
                client, _ = self.lsock.accept()
            except OSError:
                return
            upstream = None
            for _ in range(len(self.backends)):
                idx = self._next % len(self.backends)
                self._next += 1
                try:
                    upstream = socket.create_connection(("127.0.0.1", self.backends[idx]), timeout=2)
                    upstream.settimeout(None)
                    self.placed.append(idx)
                    break
                except OSError:
                    continue
            if upstream is None:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self._closed = True
        self.lsock.close()


# --- a Falco http_output receiver that applies falcosidekick's input rules -----------------

SIDEKICK_PRIORITIES = {"emergency", "alert", "critical", "error", "warning", "notice",
                       "informational", "debug"}
_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def sidekick_problems(method: str, path: str, ctype: str, body: bytes) -> list:
    """Why falcosidekick would refuse this request (empty: accepted). Its rules: POST to
    /, a JSON object whose priority is a Falco priority (any case), rule non-empty, time
    RFC 3339 and not the zero time, output_fields a non-empty object; we also want the
    fields it forwards (source, tags, hostname, output) carried, and our Content-Type."""
    problems = []
    if method != "POST" or path != "/":
        return [f"{method} {path}: falcosidekick takes alerts as POST /"]
    if ctype.split(";")[0].strip().lower() != "application/json":
        problems.append(f"Content-Type {ctype!r}")
    try:
        doc = json.loads(body)
    except ValueError as exc:
        return problems + [f"not JSON: {exc}"]
    if not isinstance(doc, dict):
        return problems + ["not a JSON object"]
    if str(doc.get("priority", "")).lower() not in SIDEKICK_PRIORITIES:
        problems.append(f"priority {doc.get('priority')!r}")
    if not isinstance(doc.get("rule"), str) or not doc["rule"]:
        problems.append("rule empty")
    m = _RFC3339.match(str(doc.get("time", "")))
    if not m or m.group(1) == "0001" and m.group(2) == "01" and m.group(3) == "01":
        problems.append(f"time {doc.get('time')!r}")
    if not isinstance(doc.get("output_fields"), dict) or not doc["output_fields"]:
        problems.append("output_fields empty")
    for name, kind in (("source", str), ("tags", list), ("hostname", str), ("output", str)):
        if not isinstance(doc.get(name), kind):
            problems.append(f"{name} missing")
    return problems


class SidekickReceiver:
    """A loopback HTTP server: 200 for what falcosidekick accepts, 400 (kept) otherwise.
    fail_next: answer that many requests 503 first; stall: seconds to sit on each request."""

    def __init__(self):
        import http.server
        import threading

        receiver = self
        self.accepted: list = []
        self.rejected: list = []
        self.fail_next = 0
        self.stall = 0.0
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._answer(body)

            def do_GET(self):
                self._answer(b"")

            def _answer(self, body):
                if receiver.stall:
                    time.sleep(receiver.stall)
                with receiver.lock:
                    if receiver.fail_next > 0:
                        receiver.fail_next -= 1
                        status = 503
                    else:
                        problems = sidekick_problems(self.command, self.path,
                                                     self.headers.get("Content-Type", ""), body)
                        if problems:
                            receiver.rejected.append((problems, body))
                            status = 400
                        else:
                            receiver.accepted.append(json.loads(body))
                            status = 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def need(ok: bool, why: str) -> None:
    """Skip with the reason locally; under CI=true a missing component is a failure."""
    import pytest

    if ok:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why} (CI installs it: .ci/run)")
    pytest.skip(why)


class NatsServer:
    """nats-server with JetStream, on loopback, its store under `workdir`."""

    def __init__(self, workdir: Path):
        import shutil

        self.binary = shutil.which("nats-server") or (
            "/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None)
        need(self.binary is not None, "nats-server not installed (Debian package nats-server)")
        try:
            import nats  # noqa: F401
        except ImportError:
            need(False, "nats-py not installed (pip install nats-py)")
        self.port = free_port()
        self.workdir = workdir
        self.url = f"nats://127.0.0.1:{self.port}"
        self.log = open(workdir / "nats.log", "wb")
        self.proc = subprocess.Popen([self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port),
                                      "-sd", str(workdir / "jetstream")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", self.port)) == 0,
                 what="nats-server listening")

    def stream_messages(self, stream: str) -> list:
        """[(subject, headers, JSON body)] of every message in the stream, in order."""
        import asyncio

        import nats

        async def read():
            nc = await nats.connect(self.url)
            try:
                js = nc.jetstream()
                info = await js.stream_info(stream)
                out = []
                for seq in range(info.state.first_seq, info.state.last_seq + 1):
                    msg = await js.get_msg(stream, seq)
                    out.append((msg.subject, msg.headers or {}, json.loads(msg.data)))
                return out
            finally:
                await nc.close()

        return asyncio.run(read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
