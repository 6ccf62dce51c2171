"""The orchestrator's NATS JetStream output against a real nats-server (JetStream on,
loopback, started here): subjects as falcosidekick names them, each alert once in the
stream across orchestrator replicas, failover and a SIGKILL."""
from __future__ import annotations

import signal
import threading
import time

import pytest

from workload_agent.orchestrator.nats_output import subject
from workload_agent.orchestrator.outputs import OutputError, make_output

from orch_harness import NatsServer, OrchProcess, make_alert, wait_for
from test_delivery import _client


@pytest.mark.parametrize("priority, rule, expected", [
    ("Warning", "Read sensitive file untrusted", "falco.warning.read_sensitive_file_untrusted"),
    ("Notice", "Terminal shell in container!", "falco.notice.terminal_shell_in_container"),
    ("CRITICAL", "--Drop & execute (new binary)--", "falco.critical.drop_execute_new_binary"),
])
def test_subject_is_falcosidekicks(priority, rule, expected):
    assert subject(priority, rule) == expected


@pytest.mark.parametrize("spec, fragment", [
    ("nats://127.0.0.1:4222", "STREAM"),
    ("nats://127.0.0.1:4222/a/b", "STREAM"),
    ("nats://127.0.0.1:99999/S", "(?i)port"),
    ("nats:///S", "STREAM"),
])
def test_bad_nats_specs_are_named(spec, fragment):
    pytest.importorskip("nats")
    with pytest.raises(OutputError, match=fragment):
        make_output(spec)


@pytest.fixture
def nats_server(tmp_path):
    server = NatsServer(tmp_path)
    yield server
    server.stop()


def test_two_orchestrators_one_stream_sigkill_exactly_once(tmp_path, nats_server):
    out = f"{nats_server.url}/FALCO"
    a = OrchProcess(tmp_path, "--output", out).start()
    b = OrchProcess(tmp_path, "--output", out).start()
    n_agents, per_agent, first_part = 6, 150, 50
    clients = []
    for k in range(n_agents):
        first, second = (a, b) if k % 2 == 0 else (b, a)
        clients.append(_client(first.port, failover=[("127.0.0.1", second.port)],
                               agent_id=f"agent-{k}", heartbeat_interval=0.5).start())
    on_a = clients[::2]
    frozen = threading.Event()

    def produce(client):
        for i in range(per_agent):
            if i == first_part:
                frozen.wait(30)
            client.send(make_alert(i))
            time.sleep(0.01)

    producers = [threading.Thread(target=produce, args=(c,)) for c in clients]
    try:
        for t in producers:
            t.start()
        wait_for(lambda: all(c.stats()["acked"] > 0 for c in clients), what="alerts flowing")
        # Frozen, a keeps what its agents write without acking it: when it dies, each of
        # them surely has alerts in flight (a plain kill could find them all acked).
        a.proc.send_signal(signal.SIGSTOP)
        frozen.set()
        wait_for(lambda: all(c.stats()["in_flight"] > 0 for c in on_a), what="alerts in flight to a")
        in_flight = sum(c.stats()["in_flight"] for c in on_a)
        a.kill()  # SIGKILL mid-stream: its agents fail over to b and resend the unacked
        wait_for(lambda: all(c.stats()["connects"] >= 2 for c in on_a), what="failover to b")
        a.start()
        for t in producers:
            t.join()
        reports = [c.close(15) for c in clients]
    finally:
        a.stop()
        b.stop()
    assert all(r.complete for r in reports), reports
    messages = nats_server.stream_messages("FALCO")
    ids = [h.get("Nats-Msg-Id") for _, h, _ in messages]
    expected = {f"agent-{k}/{c.instance}/{s}" for k, c in enumerate(clients)
                for s in range(1, per_agent + 1)}
    assert len(ids) == len(set(ids)), "a duplicate reached the stream"
    assert set(ids) == expected
    for subj, headers, body in messages:
        assert subj == "falco.warning.test_rule"
        meta = body["orchestrator"]
        assert headers["Nats-Msg-Id"] == f"{meta['agent_id']}/{meta['instance']}/{meta['seq']}"
        assert body["output_fields"]["i"] == meta["seq"] - 1
    assert sum(c.stats()["resent"] for c in on_a) >= in_flight > 0


def test_nats_down_means_no_ack_then_delivered(tmp_path, nats_server):
    """JetStream unreachable: the orchestrator acks nothing; back up: everything lands."""
    out = f"{nats_server.url}/DOWN"
    orch = OrchProcess(tmp_path, "--output", out).start()
    client = _client(orch.port, agent_id="patient").start()
    try:
        client.send(make_alert(0))
        deadline = time.monotonic() + 10
        while client.stats()["acked"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.stats()["acked"] == 1
        nats_server.stop()
        for i in range(1, 20):
            client.send(make_alert(i))
        time.sleep(1.5)
        assert client.stats()["acked"] == 1, "nothing may be acked while JetStream is away"
        restarted = NatsServer.__new__(NatsServer)
        restarted.__dict__.update(nats_server.__dict__)
        import subprocess

        restarted.log = open(tmp_path / "nats2.log", "wb")
        restarted.proc = subprocess.Popen([nats_server.binary, "-js", "-a", "127.0.0.1", "-p",
                                           str(nats_server.port), "-sd", str(tmp_path / "jetstream")],
                                          stdout=restarted.log, stderr=subprocess.STDOUT)
        nats_server.proc, nats_server.log = restarted.proc, restarted.log
        report = client.close(20)
    finally:
        orch.stop()
    assert report.complete
    ids = [h["Nats-Msg-Id"] for _, h, _ in nats_server.stream_messages("DOWN")]
    assert sorted(ids, key=lambda x: int(x.rsplit("/", 1)[1])) == \
        [f"patient/{client.instance}/{s}" for s in range(1, 21)]


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_fuzz_nats_specs_give_an_output_or_a_named_error(rest):
    pytest.importorskip("nats")
    try:
        out = make_output("nats://" + rest)
    except OutputError as exc:
        assert "nats://" in str(exc)
        return
    assert out.stream and out.server.startswith("nats://")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20), st.text(max_size=60))
def test_fuzz_subjects_are_valid_nats_tokens(priority, rule):
    subj = subject(priority, rule)
    tokens = subj.split(".")
    assert tokens[0] == "falco" and len(tokens) >= 3
    assert not any(c in subj for c in " \t\r\n*>")
