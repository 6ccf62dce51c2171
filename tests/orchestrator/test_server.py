"""The orchestrator as a real process, spoken to over real sockets."""
from __future__ import annotations

import json
import socket
import struct
import time

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from workload_agent.orchestrator import protocol
from workload_agent.outputs.orchestrator_client import OrchestratorClient

from orch_harness import KEY, OrchProcess, RawAgent, make_alert, read_jsonl, wait_for


def test_wrong_key_refused_logged_and_counted(orch_factory, tmp_path):
    orch = orch_factory("--output", f"file:{tmp_path}/out.jsonl")
    raw = RawAgent(orch.port)
    reply = raw.hello(agent_id="intruder", key="wrong-key")
    assert reply["type"] == "error" and reply["code"] == protocol.ERR_AUTH
    assert raw.recv_until_closed() == []
    # refused agents cannot send alerts either
    assert "intruder" in orch.log() and "wrong access key" in orch.log()
    assert orch.metric("auth_failures_total") == 1
    assert KEY not in orch.log() and "wrong-key" not in orch.log()

    client = OrchestratorClient("127.0.0.1", orch.port, "also-wrong", tls=False,
                                backoff_initial=0.05, backoff_max=0.1).start()
    client.send(make_alert(1))
    wait_for(lambda: orch.metric("auth_failures_total") >= 2, what="second auth failure")
    report = client.close(0.2)
    assert report.undelivered == 1
    assert read_jsonl(tmp_path / "out.jsonl") == []


def test_alerts_forwarded_with_agent_identity_and_metrics(orch_factory, tmp_path):
    orch = orch_factory("--output", f"file:{tmp_path}/out.jsonl", "--output", "stdout")
    client = OrchestratorClient("127.0.0.1", orch.port, KEY, tls=False, agent_id="task-1",
                                metadata={"task_arn": "arn:aws:ecs:task/1"},
                                counters=lambda: {"events": 1234, "drops": 5},
                                heartbeat_interval=0.2).start()
    for i in range(300):
        client.send(make_alert(i))
    wait_for(lambda: client.stats()["acked"] == 300, what="acks")
    wait_for(lambda: orch.metric("agent_counter", f'{{agent_id="task-1",instance="{client.instance}",counter="events"}}') == 1234,
             what="heartbeat counters in metrics")
    assert orch.metric("connected_agents") == 1
    assert orch.metric("alerts_total") == 300
    status, body = orch.http("/healthz")
    assert status == 200 and json.loads(body)["agents"] == 1
    report = client.close()
    assert report.complete and report.acked == 300
    records = read_jsonl(tmp_path / "out.jsonl")
    assert [r["output_fields"]["i"] for r in records] == list(range(300))
    assert [r["orchestrator"]["seq"] for r in records] == list(range(1, 301))
    assert records[0]["orchestrator"]["agent_id"] == "task-1"
    assert records[0]["orchestrator"]["metadata"] == {"task_arn": "arn:aws:ecs:task/1"}
    assert records[0]["rule"] == "Test rule" and records[0]["priority"] == "Warning"
    orch.stop()
    stdout_lines = (tmp_path / "orch-1.out").read_text().splitlines()
    assert [json.loads(l) for l in stdout_lines] == records


def test_resent_alerts_are_deduplicated(orch_factory, tmp_path):
    orch = orch_factory("--output", f"file:{tmp_path}/out.jsonl")
    raw = RawAgent(orch.port)
    assert raw.hello(agent_id="a", instance="x")["acked"] == 0
    raw.send(protocol.alerts(1, [make_alert(i) for i in range(1, 6)]))
    assert raw.recv() == {"type": "ack", "seq": 5}
    raw.send(protocol.alerts(3, [make_alert(i) for i in range(3, 8)]))
    assert raw.recv() == {"type": "ack", "seq": 7}
    raw.close()
    # a reconnect learns what was taken already; a new instance starts over at seq 1
    raw = RawAgent(orch.port)
    assert raw.hello(agent_id="a", instance="x")["acked"] == 7
    raw.send(protocol.alerts(7, [make_alert(7), make_alert(8)]))
    assert raw.recv()["seq"] == 8
    raw2 = RawAgent(orch.port)
    assert raw2.hello(agent_id="a", instance="y")["acked"] == 0
    raw2.send(protocol.alerts(1, [make_alert(100)]))
    assert raw2.recv()["seq"] == 1
    records = read_jsonl(tmp_path / "out.jsonl")
    assert [(r["orchestrator"]["instance"], r["orchestrator"]["seq"]) for r in records] == \
        [("x", s) for s in range(1, 9)] + [("y", 1)]
    assert orch.metric("alerts_duplicate_total") == 4


def _bad_inputs():
    oversized = struct.pack(">I", protocol.DEFAULT_MAX_FRAME + 1) + b"\x80" * 100
    garbage = b"\x00\x00\x00\x03\xc1\xc1\xc1"
    def framed(payload: bytes) -> bytes:
        return protocol.HEADER.pack(len(payload)) + payload

    not_a_map = framed(msgpack.packb([1, 2]))
    hello = protocol.encode(protocol.hello("bad", "i", "v", KEY))
    return {
        "oversized before hello": oversized,
        "garbage": garbage,
        "not a map": not_a_map,
        "zero length": b"\x00\x00\x00\x00",
        "alerts before hello": protocol.encode(protocol.alerts(1, [make_alert(0)])),
        "oversized after hello": hello + oversized,
        "garbage after hello": hello + garbage,
        "second hello": hello + hello,
        "ack from an agent": hello + protocol.encode(protocol.ack(1)),
        "bad field type after hello": hello + framed(msgpack.packb({"type": "ack", "seq": "x"})),
        "wrong protocol version": framed(msgpack.packb(dict(protocol.hello("v", "i", "v", KEY), protocol=99))),
    }


def test_bad_frames_close_only_that_connection(orch_factory, tmp_path):
    orch = orch_factory("--output", f"file:{tmp_path}/out.jsonl", "--max-frame", str(protocol.DEFAULT_MAX_FRAME))
    good = OrchestratorClient("127.0.0.1", orch.port, KEY, tls=False, agent_id="good").start()
    sent = 0
    for name, data in _bad_inputs().items():
        raw = RawAgent(orch.port)
        raw.send_raw(data)
        try:
            frames = raw.recv_until_closed()  # the server must close it
        except socket.timeout:
            raise AssertionError(f"{name}: connection left open") from None
        errors = [f for f in frames if f["type"] == "error"]
        assert errors, f"{name}: no error frame before close: {frames}"
        raw.close()
        for _ in range(20):
            sent += 1
            good.send(make_alert(sent))
    # truncated: half a frame, then the peer goes away
    frame = protocol.encode(protocol.hello("trunc", "i", "v", KEY))
    raw = RawAgent(orch.port)
    raw.send_raw(frame[: len(frame) // 2])
    raw.close()
    wait_for(lambda: good.stats()["acked"] == sent, what="good agent fully acked")
    assert good.stats()["connects"] == 1, "the good agent's connection must not be disturbed"
    assert orch.proc.poll() is None
    assert orch.metric("protocol_errors_total") >= len(_bad_inputs())
    # and a new agent is still welcome
    assert RawAgent(orch.port).hello(agent_id="late")["type"] == "welcome"
    assert good.close().complete
    assert len(read_jsonl(tmp_path / "out.jsonl")) == sent


def test_slow_reading_agent_does_not_hold_up_others(orch_factory, tmp_path):
    # A 3 MB bundle goes to every agent after its welcome: more than the kernel buffers of
    # a peer that never reads, so the server's write to it must stall.
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "big.yaml").write_text("# " + "x" * 3_000_000 + "\n- list: l\n  items: []\n")
    orch = orch_factory("--output", f"file:{tmp_path}/out.jsonl", "--write-timeout", "2",
                        "--rules-dir", str(rules))
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", orch.port))
    slow.sendall(protocol.encode(protocol.hello("slow", "i", "v", KEY)))
    time.sleep(0.3)
    good = OrchestratorClient("127.0.0.1", orch.port, KEY, tls=False, agent_id="good").start()
    t0 = time.monotonic()
    for i in range(500):
        good.send(make_alert(i))
    wait_for(lambda: good.stats()["acked"] == 500, timeout=5, what="good agent acked")
    assert time.monotonic() - t0 < 3
    # the slow one is dropped once its write timeout passes
    wait_for(lambda: "agent slow" in orch.log() and "timed out" in orch.log(), timeout=10,
             what="slow agent dropped")
    assert orch.metric("connected_agents") == 1
    slow.close()
    assert good.close().complete


def test_metrics_endpoint_unknown_path_and_health(orch_factory):
    orch = orch_factory()
    import urllib.error
    try:
        orch.http("/nope")
        raise AssertionError("expected 404")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
    status, body = orch.http("/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"


@pytest.fixture(scope="module")
def shared_orch(tmp_path_factory):
    orch = OrchProcess(tmp_path_factory.mktemp("fuzz"), "--idle-timeout", "5").start()
    yield orch
    orch.stop()


valid_prefix = protocol.encode(protocol.hello("fuzz", "i", "v", KEY))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200), st.booleans())
def test_fuzz_live_server_with_random_bytes(shared_orch, data, after_hello):
    """Random bytes, before or after a valid hello: the server never dies or hangs."""
    sock = socket.create_connection(("127.0.0.1", shared_orch.port), timeout=5)
    try:
        sock.sendall((valid_prefix if after_hello else b"") + data)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):  # the server must close its side
            pass
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    assert shared_orch.proc.poll() is None
    assert RawAgent(shared_orch.port).hello(agent_id="after-fuzz")["type"] == "welcome"


def test_minimal_client_in_protocol_doc_works(orch_factory, tmp_path):
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    code = doc.split("## A minimal client", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    orch = orch_factory("--output", f"file:{tmp_path}/out.jsonl")
    code = code.replace('("127.0.0.1", 6667)', f'("127.0.0.1", {orch.port})').replace('"KEY"', repr(KEY))
    scope: dict = {}
    exec(compile(code, "protocol.md", "exec"), scope)
    assert scope["welcome"]["type"] == "welcome"
    assert scope["frame"] == {"type": "ack", "seq": 1}
    (record,) = read_jsonl(tmp_path / "out.jsonl")
    assert record["orchestrator"]["agent_id"] == "my-task" and record["rule"] == "r"


def test_sigterm_says_goodbye_and_exits_promptly(orch_factory):
    orch = orch_factory()
    raw = RawAgent(orch.port)
    assert raw.hello(agent_id="stay")["type"] == "welcome"
    t0 = time.monotonic()
    assert orch.stop() == 0
    assert time.monotonic() - t0 < 5
    frames = raw.recv_until_closed()
    assert frames and frames[-1]["type"] == "error" and frames[-1]["code"] == protocol.ERR_SHUTDOWN
