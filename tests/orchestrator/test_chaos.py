"""The chaos run of issue #14, bounded and on loopback: kill, stall, fill.

20 agents (the real client, one per simulated task) each send 50 alerts over about ten
seconds to three orchestrators at once, one per output kind: a JSONL file, a NATS
JetStream stream, and a falcosidekick-like http endpoint. Meanwhile each orchestrator is
SIGKILLed three times and restarted after 1-3 s, the file orchestrator starts on a
"disk" that fills at 30 kB until room is made, and the http endpoint stalls 2 s per
request for a while. Then: the file and the stream hold every alert exactly once; the
http endpoint has every alert (at least once, the repeats counted); the agents report
nothing lost.
"""
from __future__ import annotations

import collections
import json
import random
import resource
import threading
import time

from workload_agent.outputs.fanout import Fanout

from orch_harness import NatsServer, OrchProcess, SidekickReceiver, make_alert, wait_for
from test_delivery import _client

AGENTS, PER_AGENT = 20, 50


def test_chaos_kill_stall_fill(tmp_path):
    rng = random.Random(14)
    nats = NatsServer(tmp_path)
    receiver = SidekickReceiver()
    out_file = tmp_path / "alerts.jsonl"
    orchs = {
        "file": OrchProcess(tmp_path, "--output", f"file:{out_file}"),
        "nats": OrchProcess(tmp_path, "--output", f"{nats.url}/CHAOS"),
        "http": OrchProcess(tmp_path, "--output", receiver.url),
    }
    orchs["file"].preexec = lambda: resource.setrlimit(resource.RLIMIT_FSIZE,
                                                       (30_000, resource.RLIM_INFINITY))
    for o in orchs.values():
        o.start()
    orchs["file"].preexec = None  # restarts get a disk with room
    agents = []
    for k in range(AGENTS):
        agents.append(Fanout([_client(orchs[kind].port, agent_id=f"a{k}", heartbeat_interval=1.0)
                              for kind in ("file", "nats", "http")]).start())
    events = []

    def produce(agent):
        for i in range(PER_AGENT):
            agent.send(make_alert(i))
            time.sleep(0.2)

    producers = [threading.Thread(target=produce, args=(a,)) for a in agents]
    t0 = time.monotonic()
    try:
        for t in producers:
            t.start()
        # fill: the file output fails (short write, then EFBIG) until room is made
        wait_for(lambda: orchs["file"].metric("output_errors_total") > 0, timeout=20,
                 what="the file output hitting the full disk")
        events.append(f"{time.monotonic() - t0:.1f}s file output full")
        time.sleep(1.0)
        resource.prlimit(orchs["file"].proc.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        events.append(f"{time.monotonic() - t0:.1f}s room made")
        receiver.stall = 2.0  # stall: every http request now takes 2 s
        for round_ in range(3):
            victims = list(orchs.items())
            rng.shuffle(victims)
            for kind, orch in victims:
                orch.kill()
            down = rng.uniform(1.0, 3.0)
            events.append(f"{time.monotonic() - t0:.1f}s SIGKILL all three, down {down:.1f}s")
            time.sleep(down)
            if round_ == 1:
                receiver.stall = 0.0
            for orch in orchs.values():
                orch.start()
            time.sleep(rng.uniform(0.5, 1.5))
        for t in producers:
            t.join()
        reports = [a.close(30) for a in agents]
        events.append(f"{time.monotonic() - t0:.1f}s agents closed")
    finally:
        for orch in orchs.values():
            orch.stop()
        receiver.close()
    expected = {(f"a{k}", i) for k in range(AGENTS) for i in range(PER_AGENT)}
    lost_at_agents = sum(r.undelivered + r.buffer_dropped for r in reports)

    lines = out_file.read_text().splitlines()
    file_keys = [(r["orchestrator"]["agent_id"], r["output_fields"]["i"])
                 for r in map(json.loads, lines)]
    messages = nats.stream_messages("CHAOS")
    nats.stop()
    nats_keys = [(b["orchestrator"]["agent_id"], b["output_fields"]["i"]) for _, _, b in messages]
    http_keys = [(a["orchestrator"]["agent_id"], a["output_fields"]["i"]) for a in receiver.accepted]
    http_dups = sum(n - 1 for n in collections.Counter(http_keys).values())
    figures = {"file": (len(file_keys), len(set(file_keys))),
               "nats": (len(nats_keys), len(set(nats_keys))),
               "http": (len(http_keys), len(set(http_keys)), http_dups),
               "lost_at_agents": lost_at_agents,
               "resent": sum(c.stats()["resent"] for a in agents for c in a.clients)}
    print("chaos:", json.dumps(figures), "|", "; ".join(events))

    assert lost_at_agents == 0, reports
    assert set(file_keys) == expected and len(file_keys) == len(expected), figures
    assert set(nats_keys) == expected and len(nats_keys) == len(expected), figures
    assert set(http_keys) == expected, figures   # at least once; the repeats are counted
    assert receiver.rejected == []
