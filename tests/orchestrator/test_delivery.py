"""Agent client <-> orchestrator process: TLS, crashes, buffer bounds, rules push, HTTP output."""
from __future__ import annotations

import http.server
import json
import threading
import time

from workload_agent.outputs.orchestrator_client import OrchestratorClient

from orch_harness import (KEY, OrchProcess, RoundRobinProxy, close_when_it_is_up, count_lines,
                          finishes, free_port, make_alert, make_ca_and_server_cert, read_jsonl, wait_for)


def _client(port, **kw):
    kw.setdefault("tls", False)
    kw.setdefault("backoff_initial", 0.05)
    kw.setdefault("backoff_max", 0.5)
    return OrchestratorClient("127.0.0.1", port, KEY, **kw)


def test_tls_with_ca_verified_and_wrong_ca_refused(orch_factory, tmp_path):
    good = make_ca_and_server_cert(tmp_path, "good")
    other = make_ca_and_server_cert(tmp_path, "other")
    orch = orch_factory("--tls-cert", str(good["cert"]), "--tls-key", str(good["key"]),
                        "--output", f"file:{tmp_path}/out.jsonl", plaintext=False)
    assert "(tls)" in orch.log()
    client = _client(orch.port, tls=True, tls_ca=str(good["ca"]), agent_id="tls-agent").start()
    for i in range(50):
        client.send(make_alert(i))
    assert client.close(10).complete

    wrong_ca = _client(orch.port, tls=True, tls_ca=str(other["ca"])).start()
    wrong_ca.send(make_alert(0))
    time.sleep(1.0)
    assert not wrong_ca.connected.is_set()
    assert "CERTIFICATE_VERIFY_FAILED" in wrong_ca.last_error
    assert wrong_ca.close(0.2).undelivered == 1

    plain = _client(orch.port, tls=False).start()
    plain.send(make_alert(0))
    time.sleep(1.0)
    assert plain.close(0.2).undelivered == 1
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 50


def test_orchestrator_killed_and_restarted_mid_stream_exactly_once(tmp_path):
    out = tmp_path / "out.jsonl"
    orch = OrchProcess(tmp_path, "--output", f"file:{out}", "--file-max-bytes", "200000", "--file-backups", "50",
                       port=free_port()).start()
    clients = [_client(orch.port, agent_id=f"agent-{n}", heartbeat_interval=0.5) for n in range(3)]
    for c in clients:
        c.start()
    total = 3000
    done = threading.Event()
    crashed = [threading.Event(), threading.Event()]

    def produce():
        for i in range(total):
            if i in (1000, 2000):
                # Each third waits for the crash in the one before it: on a loaded machine
                # the restarts could otherwise outlast the whole stream.
                crashed[i // 1000 - 1].wait(60)
            for c in clients:
                c.send(make_alert(i))
            if i % 20 == 0:
                time.sleep(0.02)  # about 3 s of alerts
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        for crash in (1, 2):
            wait_for(lambda: count_lines(*_rotated(out)) >= crash * 1500, what="alerts flowing")
            assert not done.is_set(), "the crash must come in the middle of the stream"
            orch.kill()  # SIGKILL: no goodbye, no flush
            crashed[crash - 1].set()   # the next third is produced while it is down
            time.sleep(0.3)
            orch.start()
        producer.join()
        reports = [c.close(20) for c in clients]
    finally:
        orch.stop()
    assert all(r.complete for r in reports), reports
    records = read_jsonl(*_rotated(out))
    seen = {}
    for r in records:
        key = (r["orchestrator"]["agent_id"], r["orchestrator"]["seq"])
        assert key not in seen, f"duplicate {key}"
        seen[key] = r["output_fields"]["i"]
    for n in range(3):
        assert [seen[(f"agent-{n}", s)] for s in range(1, total + 1)] == list(range(total))
    assert len(records) == 3 * total
    assert all(c.stats()["connects"] >= 2 for c in clients)  # every agent had to come back
    assert (tmp_path / "out.jsonl.1").exists(), "rotation expected with the small size limit"


def _rotated(out):
    return [out.with_name(out.name + f".{i}") for i in range(50, 0, -1)] + [out]


def test_buffer_bound_drops_oldest_and_never_blocks(tmp_path):
    port = free_port()
    client = _client(port, buffer_size=100, agent_id="bounded").start()
    for i in range(5000):   # a stalled peer: test_close_is_bounded_when_the_orchestrator_stops_reading
        client.send(make_alert(i))
    stats = client.stats()
    assert stats["buffered"] == 100 and stats["buffer_dropped"] == 4900
    report, records = close_when_it_is_up(client, tmp_path, port, 10)
    assert report.undelivered == 0 and report.buffer_dropped == 4900
    assert [r["output_fields"]["i"] for r in records] == list(range(4900, 5000))


def test_shutdown_flush_is_bounded_and_reports_losses():
    client = _client(free_port(), agent_id="lonely").start()
    for i in range(10):
        client.send(make_alert(i))
    report = finishes(lambda: client.close(0.5), "close() with nothing listening")
    assert report.undelivered == 10 and report.last_seq == 10 and report.acked == 0


def test_spill_file_keeps_order_beyond_memory(tmp_path):
    port = free_port()
    spill = tmp_path / "spill.bin"
    client = _client(port, buffer_size=2000, memory_items=50, spill_file=str(spill)).start()
    for i in range(1500):
        client.send(make_alert(i))
    assert spill.stat().st_size > 0
    assert client.stats()["buffered"] == 1500
    report, records = close_when_it_is_up(client, tmp_path, port, 10)
    assert report.complete
    assert [r["output_fields"]["i"] for r in records] == list(range(1500))


RULE_V1 = "- rule: r1\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: WARNING\n"
RULE_V2 = RULE_V1.replace("r1", "r2")


def test_rules_pushed_to_connected_agent_and_broken_bundle_refused(orch_factory, tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yaml").write_text(RULE_V1)
    orch = orch_factory("--rules-dir", str(rules))
    received = []

    def on_rules(files, digest):
        if "boom" in "".join(files.values()):
            raise ValueError("rule boom needs syscall ptrace, not traced at start")
        received.append((digest, files))

    client = _client(orch.port, on_rules=on_rules, heartbeat_interval=0.2).start()
    wait_for(lambda: received, what="initial bundle")
    assert received[0][1] == {"a.yaml": RULE_V1}
    first_hash = received[0][0]
    wait_for(lambda: orch.metric("agent_bundle_info",
                                 f'{{agent_id="{client.agent_id}",instance="{client.instance}",hash="{first_hash}"}}') == 1,
             what="bundle version in metrics")

    (rules / "b.yaml").write_text(RULE_V2)
    wait_for(lambda: len(received) == 2, what="pushed bundle")
    assert received[1][1] == {"a.yaml": RULE_V1, "b.yaml": RULE_V2}

    (rules / "c.yaml").write_text("- rule: [unclosed\n")
    wait_for(lambda: "refused" in orch.log(), what="broken bundle refused")
    assert "c.yaml:" in orch.log()
    assert json.loads(orch.http("/healthz")[1])["bundle_problems"]
    assert orch.metric("bundle_errors_total") == 1
    time.sleep(0.5)
    assert len(received) == 2

    (rules / "c.yaml").write_text(RULE_V1.replace("r1", "boom"))  # valid, but the agent refuses
    wait_for(lambda: "could not apply" in orch.log(), what="agent's refusal reported")
    assert client.bundle_hash == received[1][0]
    assert client.close().complete


class _Collector(http.server.BaseHTTPRequestHandler):
    fail_first = 2
    bodies: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        if cls.fail_first > 0:
            cls.fail_first -= 1
            self.send_response(503)
        else:
            cls.bodies.append(json.loads(body))
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def test_http_output_posts_falco_json_with_retries(orch_factory):
    _Collector.bodies = []
    _Collector.fail_first = 2
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        orch = orch_factory("--output", f"http://127.0.0.1:{httpd.server_address[1]}/falco")
        client = _client(orch.port, agent_id="h").start()
        for i in range(20):
            client.send(make_alert(i))
        assert client.close().complete
        wait_for(lambda: len(_Collector.bodies) == 20, what="HTTP deliveries")
        assert [b["output_fields"]["i"] for b in _Collector.bodies] == list(range(20))
        assert {"time", "rule", "priority", "output", "output_fields", "source"} <= set(_Collector.bodies[0])
        assert "retrying" in orch.log()
    finally:
        httpd.shutdown()


def test_two_orchestrators_behind_a_load_balancer_share_agents(tmp_path):
    """Scale-out: no shared state but the rules bundle. A failover may resend alerts to the
    other orchestrator; each is then recognisable downstream by (agent_id, instance, seq)."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yaml").write_text(RULE_V1)
    outs = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    orchs = []
    for n, out in enumerate(outs):
        d = tmp_path / f"o{n}"
        d.mkdir()
        orchs.append(OrchProcess(d, "--output", f"file:{out}", "--rules-dir", str(rules)).start())
    proxy = RoundRobinProxy([o.port for o in orchs])
    bundles: dict = {}
    clients = [_client(proxy.port, agent_id=f"agent-{n}", heartbeat_interval=0.3,
                       on_rules=lambda files, h, n=n: bundles.__setitem__(n, h)) for n in range(4)]
    total = 2000
    try:
        for c in clients:
            c.start()
        wait_for(lambda: all(c.connected.is_set() for c in clients), what="all connected")
        assert sorted(set(proxy.placed)) == [0, 1], "both orchestrators must get agents"
        wait_for(lambda: len(bundles) == 4, what="bundles")
        assert len(set(bundles.values())) == 1, "every orchestrator serves the same bundle"
        for i in range(total):
            for c in clients:
                c.send(make_alert(i))
            if i == total // 2:
                wait_for(lambda: count_lines(*outs) >= 2000, what="alerts flowing")
                orchs[0].kill()
            if i % 20 == 0:
                time.sleep(0.005)
        reports = [c.close(20) for c in clients]
    finally:
        proxy.close()
        for o in orchs:
            o.stop()
    assert all(r.complete for r in reports), reports
    # the agents of the killed one (half of them) failed over to the other
    assert sum(c.stats()["connects"] for c in clients) >= 6
    assert proxy.placed[4:] and set(proxy.placed[4:]) == {1}
    per_output = [read_jsonl(out) for out in outs]
    union = {}
    for records in per_output:
        keys = [(r["orchestrator"]["agent_id"], r["orchestrator"]["instance"], r["orchestrator"]["seq"])
                for r in records]
        assert len(keys) == len(set(keys)), "one orchestrator never forwards an alert twice"
        for k, r in zip(keys, records):
            union[k] = r["output_fields"]["i"]
    for c in clients:
        assert [union[(c.agent_id, c.instance, s)] for s in range(1, total + 1)] == list(range(total))


def test_client_from_config_delivers_over_tls(orch_factory, tmp_path):
    from workload_agent.configuration import load_config
    from workload_agent.outputs.orchestrator_client import client_from_config

    assert client_from_config(load_config({}, environ={})) is None
    certs = make_ca_and_server_cert(tmp_path, "cfg")
    orch = orch_factory("--tls-cert", str(certs["cert"]), "--tls-key", str(certs["key"]),
                        "--output", f"file:{tmp_path}/out.jsonl", plaintext=False)
    env = {"SYSDIG_ORCHESTRATOR": "127.0.0.1", "SYSDIG_ORCHESTRATOR_PORT": str(orch.port),
           "WORKLOAD_AGENT_TLS_CA": str(certs["ca"]), "WORKLOAD_AGENT_AGENT_ID": "cfg-agent"}
    try:
        client_from_config(load_config({}, environ=env))
        raise AssertionError("a missing access key must be an error")
    except ValueError as exc:
        assert "SYSDIG_ACCESS_KEY" in str(exc)
    client = client_from_config(load_config({}, environ=dict(env, SYSDIG_ACCESS_KEY=KEY))).start()
    client.send(make_alert(1))
    assert client.close(10).complete
    (record,) = read_jsonl(tmp_path / "out.jsonl")
    assert record["orchestrator"]["agent_id"] == "cfg-agent"


def test_close_is_bounded_when_the_orchestrator_stops_reading():
    """A peer that welcomes and then never reads: send() stays instant, close() bounded."""
    import socket

    from workload_agent.orchestrator import protocol

    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    held = []

    def serve():
        conn, _ = lsock.accept()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        held.append(conn)
        conn.recv(4096)  # the hello; nothing is read after it
        conn.sendall(protocol.encode(protocol.welcome("fake", 0, protocol.DEFAULT_MAX_FRAME)))

    threading.Thread(target=serve, daemon=True).start()
    client = _client(lsock.getsockname()[1], io_timeout=60).start()
    wait_for(lambda: client.connected.is_set(), what="welcomed")
    big = {"output": "x" * 4000}
    # The peer reads nothing: a send() or close() that waited on it would wait for the
    # io_timeout (60 s) at least.
    finishes(lambda: [client.send(big) for _ in range(3000)], "3000 send()s to a stalled peer")
    time.sleep(0.5)
    report = finishes(lambda: client.close(0.5), "close() against a stalled peer")
    # 12 MB of alerts against the 8 MiB default bound: the oldest went, counted
    assert report.undelivered + report.buffer_dropped == 3000 and report.acked == 0
    assert report.buffer_dropped > 0
    for c in held:
        c.close()
    lsock.close()
