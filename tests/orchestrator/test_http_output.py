"""Falco's http_output, from the agent itself and from the orchestrator, as falcosidekick
takes it: a loopback receiver applies falcosidekick's input rules to every request."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from workload_agent.outputs.http_client import HttpAlertClient

from orch_harness import (OrchProcess, SidekickReceiver, finishes, free_port, make_alert,
                          sidekick_problems, wait_for)
from test_delivery import _client

GOOD = {"time": "2026-11-26T12:00:00.123456789Z", "rule": "r", "priority": "Warning",
        "output": "o", "output_fields": {"a": 1}, "source": "syscall", "tags": [], "hostname": "h"}


@pytest.mark.parametrize("change, problem", [
    ({}, None),
    ({"priority": "WARNING"}, None),
    ({"priority": "informational"}, None),
    ({"priority": "loud"}, "priority"),
    ({"rule": ""}, "rule"),
    ({"time": "0001-01-01T00:00:00Z"}, "time"),
    ({"time": "26 Nov 2026 12:00"}, "time"),
    ({"output_fields": {}}, "output_fields"),
    ({"hostname": None}, "hostname"),
])
def test_receiver_applies_falcosidekick_rules(change, problem):
    body = json.dumps(dict(GOOD, **change)).encode()
    problems = sidekick_problems("POST", "/", "application/json", body)
    if problem is None:
        assert problems == []
    else:
        assert any(p.startswith(problem) for p in problems), problems
    assert sidekick_problems("POST", "/falco", "application/json", json.dumps(GOOD).encode())
    assert sidekick_problems("POST", "/", "text/plain", json.dumps(GOOD).encode())


def test_agent_http_client_buffers_while_down_then_delivers_in_order_once():
    port = free_port()
    client = HttpAlertClient(f"http://127.0.0.1:{port}/", backoff_initial=0.05,
                             backoff_max=0.3).start()
    for i in range(200):
        client.send(make_alert(i))
    wait_for(lambda: client.stats()["retries"] >= 1, what="a refused attempt")
    assert client.stats()["buffered"] == 200
    receiver = _receiver_on(port)
    try:
        receiver.fail_next = 3  # 503s are retried
        wait_for(lambda: len(receiver.accepted) == 200, timeout=20, what="deliveries")
        report = client.close()
    finally:
        receiver.close()
    assert report.complete and report.acked == 200
    assert receiver.rejected == []
    assert [a["output_fields"]["i"] for a in receiver.accepted] == list(range(200))


def _receiver_on(port):
    """A SidekickReceiver on a given port (the client was built before it existed)."""
    import http.server

    orig = http.server.ThreadingHTTPServer.__init__

    def bind_there(self, addr, handler, *a, **kw):
        orig(self, ("127.0.0.1", port), handler, *a, **kw)

    http.server.ThreadingHTTPServer.__init__ = bind_there
    try:
        return SidekickReceiver()
    finally:
        http.server.ThreadingHTTPServer.__init__ = orig


def test_agent_http_client_counts_refused_alerts_and_close_is_bounded():
    receiver = SidekickReceiver()
    try:
        client = HttpAlertClient(receiver.url).start()
        client.send(dict(make_alert(1), priority="loud"))   # falcosidekick answers 400
        client.send(make_alert(2))
        wait_for(lambda: len(receiver.accepted) == 1, what="the good alert")
        report = client.close()
        assert report.undelivered == 0 and report.buffer_dropped == 1
        assert client.stats()["refused"] == 1 and client.stats()["retries"] == 0
    finally:
        receiver.close()
    # nothing listens any more: the exit flush keeps trying for its time, then reports
    client = HttpAlertClient(receiver.url, backoff_initial=5, backoff_max=5).start()
    client.send(make_alert(3))
    # After its first failure it sleeps 2.5-5 s: only a close() that cuts that sleep short
    # leaves time in its 1 s flush for the retries counted below.
    wait_for(lambda: client.stats()["retries"] >= 1, what="the first failure")
    report = finishes(lambda: client.close(1.0), "close()")
    assert report.undelivered == 1 and client.stats()["retries"] >= 3, client.stats()


RULE = """
- rule: Hostname read
  desc: test
  condition: evt.type in (open, openat) and fd.name = /etc/hostname
  output: "hostname read by %proc.name (file=%fd.name)"
  priority: WARNING
  tags: [test]
"""


def test_run_alerts_to_url_posts_falco_json_that_sidekick_accepts(tmp_path):
    rules = tmp_path / "r.yaml"
    rules.write_text(RULE)
    receiver = SidekickReceiver()
    receiver.fail_next = 2
    try:
        env = dict(os.environ, WORKLOAD_AGENT_ALERTS_TO=receiver.url)
        proc = subprocess.run(
            [sys.executable, "-m", "workload_agent", "run", "-r", str(rules), "--",
             "sh", "-c", "cat /etc/hostname >/dev/null; cat /etc/hostname >/dev/null; exit 3"],
            env=env, capture_output=True, text=True, timeout=60)
    finally:
        receiver.close()
    if "tracing could not start" in proc.stderr:
        pytest.skip(f"no ptrace here: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "", "a URL target replaces stdout"
    assert receiver.rejected == []
    assert len(receiver.accepted) == 2, proc.stderr
    alert = receiver.accepted[0]
    assert alert["rule"] == "Hostname read" and alert["priority"] == "Warning"
    assert alert["output_fields"]["fd.name"] == "/etc/hostname" and alert["tags"] == ["test"]
    # the two 503s: one line for the outage, one when it is over; nothing else
    assert proc.stderr.count("will retry") == 1, proc.stderr


def test_bad_alerts_to_url_is_a_clear_error(tmp_path):
    """Availability: named, its default used, the workload runs; security: refused."""
    from workload_agent import runner

    for priority, code in (("availability", 0), ("security", runner.EXIT_REFUSED)):
        proc = subprocess.run([sys.executable, "-m", "workload_agent", "run", "--priority", priority,
                               "--alerts-to", "http://127.0.0.1:99999/", "--", "true"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == code, proc.stderr
        assert "alerts_to" in proc.stderr and "port" in proc.stderr and "Traceback" not in proc.stderr


def test_orchestrator_http_output_is_accepted_by_sidekick(tmp_path):
    receiver = SidekickReceiver()
    orch = OrchProcess(tmp_path, "--output", receiver.url).start()
    try:
        client = _client(orch.port, agent_id="h").start()
        for i in range(20):
            client.send(make_alert(i))
        assert client.close(10).complete
    finally:
        orch.stop()
        receiver.close()
    assert receiver.rejected == []
    assert [a["output_fields"]["i"] for a in receiver.accepted] == list(range(20))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_orchestrator_acks_http_alerts_only_once_accepted(tmp_path, sig):
    """The endpoint is down; the orchestrator is killed or stopped: nothing was acked,
    so nothing is lost. Restarted with the endpoint back, every alert arrives."""
    receiver = SidekickReceiver()
    receiver.fail_next = 10 ** 9
    orch = OrchProcess(tmp_path, "--output", receiver.url).start()
    client = _client(orch.port, agent_id="acked").start()
    try:
        for i in range(50):
            client.send(make_alert(i))
        wait_for(lambda: orch.metric("alerts_in_flight") > 0, what="alerts waiting in the output")
        assert orch.metric("output_queue_depth", f'{{output="{receiver.url}"}}') > 0
        time.sleep(0.5)
        assert client.stats()["acked"] == 0
        orch.kill(sig)
        assert client.stats()["acked"] == 0
        receiver.fail_next = 0
        orch.start()
        wait_for(lambda: len({a["output_fields"]["i"] for a in receiver.accepted}) == 50,
                 timeout=30, what="all alerts after the restart")
        assert client.close(10).complete
    finally:
        orch.stop()
        receiver.close()
    assert receiver.rejected == []
    seen = [a["output_fields"]["i"] for a in receiver.accepted]
    assert sorted(set(seen)) == list(range(50))
