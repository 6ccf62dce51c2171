"""--workers N: N orchestrator processes on one port (SO_REUSEPORT), supervised."""
from __future__ import annotations

import signal

import psutil

from orch_harness import OrchProcess, make_alert, read_jsonl, wait_for
from test_delivery import _client


def test_two_workers_share_the_port_and_a_killed_one_comes_back(tmp_path):
    orch = OrchProcess(tmp_path, "--workers", "2", "--output", f"file:{tmp_path}/out.jsonl").start()
    try:
        workers = wait_for(lambda: (lambda c: c if len(c) == 2 else None)(
            psutil.Process(orch.proc.pid).children()), what="two workers")
        wait_for(lambda: orch.log().count("listening on") == 2, what="both workers listening")
        clients = [_client(orch.port, agent_id=f"w{k}").start() for k in range(20)]
        for c in clients:
            for i in range(30):
                c.send(make_alert(i))
        wait_for(lambda: all(c.stats()["acked"] == 30 for c in clients), what="first round acked")
        files = [tmp_path / "out-w1.jsonl", tmp_path / "out-w2.jsonl"]
        assert all(f.exists() and f.stat().st_size for f in files), "both workers took agents"

        victim = workers[0]
        victim.send_signal(signal.SIGKILL)
        wait_for(lambda: (lambda c: len(c) == 2 and victim.pid not in [p.pid for p in c])(
            psutil.Process(orch.proc.pid).children()), timeout=15, what="the worker restarted")
        for c in clients:
            for i in range(30, 60):
                c.send(make_alert(i))
        reports = [c.close(15) for c in clients]
    finally:
        assert orch.stop() == 0
    assert all(r.complete for r in reports)
    got = [(r["orchestrator"]["agent_id"], r["output_fields"]["i"]) for r in read_jsonl(*files)]
    assert sorted(set(got)) == sorted((f"w{k}", i) for k in range(20) for i in range(60))
    # the kill lands between batches, so every alert is also there once
    assert len(got) == len(set(got))
    # SIGTERM to the supervisor stopped the workers too
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in workers[1:])
