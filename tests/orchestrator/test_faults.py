"""Faults from issue #14: what an outage, a full disk or a hostile peer must not cost."""
from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time

import pytest

from workload_agent.orchestrator import protocol

from orch_harness import (KEY, OrchProcess, RawAgent, close_when_it_is_up, free_port, make_alert,
                          read_jsonl, wait_for)
from test_delivery import _client


def test_preauth_limits_frame_deadline_and_cap(orch_factory):
    orch = orch_factory("--hello-timeout", "1", "--max-unauthenticated", "5")
    # an announced 4 MiB frame before the key: refused at the header
    big = socket.create_connection(("127.0.0.1", orch.port))
    big.sendall(protocol.HEADER.pack(4 * 1024 * 1024) + b"\x80" * 100)
    big.settimeout(5)
    frames = list(protocol.FrameDecoder().feed(big.recv(65536)))
    assert frames and frames[0]["type"] == "error" and frames[0]["code"] == protocol.ERR_TOO_LARGE
    big.close()
    # trickling a small hello byte by byte does not extend the deadline
    hello = protocol.encode(protocol.hello("slow", "i", "t", KEY))
    slow = socket.create_connection(("127.0.0.1", orch.port))
    slow.settimeout(5)
    closed = False
    for b in hello[:-1]:
        try:
            slow.sendall(bytes([b]))
        except OSError:
            closed = True
            break
        time.sleep(0.05)
        if b"" == _peek_closed(slow):
            closed = True
            break
    assert closed, "a hello trickled past the deadline must be cut"
    slow.close()
    # the cap on connections that have not authenticated: the 6th is closed at once
    idle = [socket.create_connection(("127.0.0.1", orch.port)) for _ in range(5)]
    wait_for(lambda: orch.metric("unauthenticated_connections") == 5, what="5 waiting")
    extra = socket.create_connection(("127.0.0.1", orch.port))
    extra.settimeout(5)
    assert extra.recv(10) == b""
    assert orch.metric("connections_refused_total", '{reason="max_unauthenticated"}') >= 1
    assert orch.metric("connections_refused_total", '{reason="preauth_frame"}') == 1
    assert orch.metric("connections_refused_total", '{reason="auth_timeout"}') >= 1
    for s in idle + [extra]:
        s.close()
    # a well-behaved agent still gets in once the idle ones are gone
    wait_for(lambda: orch.metric("unauthenticated_connections") == 0, what="idle ones gone")
    agent = RawAgent(orch.port)
    assert agent.hello()["type"] == "welcome"
    agent.close()


def _peek_closed(sock):
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return None
    except OSError:
        return b""
    finally:
        sock.setblocking(True)


def test_full_disk_never_leaves_a_torn_line(tmp_path):
    """The orchestrator's file may not grow past 20 kB (RLIMIT_FSIZE: the kernel cuts the
    write short, then fails it, as on a full disk). Every line stays whole; once there is
    room again every alert is there exactly once."""
    out = tmp_path / "out.jsonl"
    limit = 20_000
    orch = OrchProcess(tmp_path, "--output", f"file:{out}")
    orch.preexec = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    orch.start()
    client = _client(orch.port, agent_id="disk", batch_max=7)
    client.start()
    try:
        for i in range(300):
            client.send(make_alert(i))
        wait_for(lambda: orch.metric("output_errors_total") >= 2, what="write failures")
        size = out.stat().st_size
        assert size <= limit and out.read_bytes().endswith(b"\n")
        assert all(json.loads(line) for line in out.read_text().splitlines())
        resource.prlimit(orch.proc.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        report = client.close(15)
    finally:
        orch.stop()
    assert report.complete
    seqs = [r["orchestrator"]["seq"] for r in read_jsonl(out)]
    assert seqs == list(range(1, 301))


def test_agent_fails_over_between_orchestrators(tmp_path):
    """Two addresses: the first is down from the start; the second takes the alerts;
    then the second dies and the first comes up: the rest go there, none lost."""
    port_a = free_port()
    b = OrchProcess(tmp_path, "--output", f"file:{tmp_path}/b.jsonl").start()
    client = _client(port_a, failover=[("127.0.0.1", b.port)], agent_id="fo").start()
    try:
        for i in range(50):
            client.send(make_alert(i))
        wait_for(lambda: client.stats()["acked"] == 50, what="acked by b")
        b.kill()
        a = OrchProcess(tmp_path, "--output", f"file:{tmp_path}/a.jsonl", port=port_a).start()
        for i in range(50, 100):
            client.send(make_alert(i))
        report = client.close(10)
        a.stop()
    finally:
        b.stop()
    assert report.complete
    got = [r["output_fields"]["i"] for r in read_jsonl(tmp_path / "b.jsonl", tmp_path / "a.jsonl")]
    assert sorted(set(got)) == list(range(100))


def test_exit_flush_is_not_lost_in_a_backoff_sleep(tmp_path):
    """The orchestrator comes back while the agent sleeps a long backoff: close() cuts
    the sleep short and the flush delivers."""
    port = free_port()
    client = _client(port, backoff_initial=30, backoff_max=30, agent_id="sleepy").start()
    for i in range(10):
        client.send(make_alert(i))
    wait_for(lambda: client.stats()["connects"] == 0 and client.last_error,
             what="the first failure")
    report, records = close_when_it_is_up(client, tmp_path, port, 5)
    assert report.complete
    assert len(records) == 10


WORKLOAD = "for i in $(seq 30); do cat /etc/hostname >/dev/null; sleep 0.05; done; echo done >&2"
RULE = """
- rule: Hostname read
  desc: test
  condition: evt.type in (open, openat) and fd.name = /etc/hostname
  output: "hostname read by %proc.name"
  priority: WARNING
"""


@pytest.mark.parametrize("level, expected", [("info", 1), ("error", 0)])
def test_outage_writes_one_line_to_the_workload_stderr(tmp_path, level, expected):
    rules = tmp_path / "r.yaml"
    rules.write_text(RULE)
    env = dict(os.environ, WORKLOAD_AGENT_ORCHESTRATOR=f"127.0.0.1:{free_port()}",
               WORKLOAD_AGENT_ACCESS_KEY=KEY, WORKLOAD_AGENT_TLS="false",
               WORKLOAD_AGENT_FLUSH_TIMEOUT="1", WORKLOAD_AGENT_STDOUT="false")
    proc = subprocess.run([sys.executable, "-m", "workload_agent", "run", "-r", str(rules),
                           "--logging", level, "--", "sh", "-c", WORKLOAD],
                          env=env, capture_output=True, text=True, timeout=60)
    if "tracing could not start" in proc.stderr:
        pytest.skip(f"no ptrace here: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0 and "done" in proc.stderr
    assert proc.stderr.count("will retry") == expected, proc.stderr
    # what was lost is always said, whatever the log level
    assert "30 alerts were not delivered" in proc.stderr, proc.stderr
