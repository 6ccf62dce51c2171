#!/usr/bin/env python3
"""Orchestrator throughput: one orchestrator (1..N worker processes), simulated agents on loopback.

Each simulated agent is an asyncio connection speaking the real protocol: hello, then
alert batches with consecutive seqs, keeping up to --window batches unacked. The
orchestrator writes to a JSONL file, which is checked afterwards: every (agent, seq)
exactly once. Reported: sustained alerts/s, time to ack (p50/p99), orchestrator CPU and
peak memory.

    PYTHONPATH=. python3 bench/orchestrator_throughput.py --agents 500
    PYTHONPATH=. python3 bench/orchestrator_throughput.py --agents 200 --load-procs 2 --compare-workers 1,2
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workload_agent.orchestrator import protocol  # noqa: E402

KEY = "bench-key"


def alert(agent: int, i: int) -> dict:
    return {
        "time": "2026-11-26T12:00:00.123456789Z", "rule": "Terminal shell in container",
        "priority": "Notice", "source": "syscall", "hostname": f"task-{agent}",
        "tags": ["container", "shell", "mitre_execution", "T1059"],
        "output": f"A shell was spawned in a container with an attached terminal "
                  f"(evt_type=execve user=root process=bash proc_exepath=/bin/bash "
                  f"parent=runc command=bash -i terminal=34816 seq={i})",
        "output_fields": {"evt.type": "execve", "user.name": "root", "proc.name": "bash",
                          "proc.exepath": "/bin/bash", "proc.pname": "runc",
                          "proc.cmdline": "bash -i", "proc.tty": 34816, "i": i},
    }


async def one_agent(port: int, agent: int, batches: int, batch_size: int, window: int,
                    latencies: list, interval: float | None) -> int:
    """Sender and ack reader run side by side, so a late ack never delays a send."""
    import msgpack

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(protocol.encode(protocol.hello(f"agent-{agent}", "bench", "bench", KEY)))
    dec = protocol.FrameDecoder()
    # The load generator must not be the bottleneck: encode the alert array once and
    # splice it into each frame (the bytes protocol.encode would produce).
    array = msgpack.packb([alert(agent, i) for i in range(batch_size)], use_bin_type=True)
    head = b"\x83" + msgpack.packb("type") + msgpack.packb("alerts") + msgpack.packb("first_seq")
    tail = msgpack.packb("alerts") + array

    def frame_bytes(first: int) -> bytes:
        payload = head + msgpack.packb(first) + tail
        return protocol.HEADER.pack(len(payload)) + payload

    assert list(protocol.FrameDecoder().feed(frame_bytes(1)))[0]["first_seq"] == 1
    total = batches * batch_size
    sent_at: dict = {}
    state = {"acked": 0}
    progress = asyncio.Event()
    welcomed = asyncio.Event()

    async def read_acks():
        while state["acked"] < total:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("closed by the orchestrator")
            now = time.perf_counter()
            for frame in dec.feed(data):
                if frame["type"] == "welcome":
                    welcomed.set()
                elif frame["type"] == "ack":
                    for last in [s for s in sent_at if s <= frame["seq"]]:
                        latencies.append(now - sent_at.pop(last))
                    state["acked"] = frame["seq"]
                    progress.set()

    async def send_batches():
        await welcomed.wait()
        next_send = time.perf_counter() + (random.uniform(0, interval) if interval else 0)
        for seq in range(0, total, batch_size):
            if interval:
                await asyncio.sleep(max(0.0, next_send - time.perf_counter()))
                next_send += interval
            while seq - state["acked"] >= window * batch_size:
                progress.clear()
                await progress.wait()
            writer.write(frame_bytes(seq + 1))
            sent_at[seq + batch_size] = time.perf_counter()
            await writer.drain()

    reading = asyncio.ensure_future(read_acks())
    await send_batches()
    await reading
    writer.close()
    return state["acked"]


def load_process(port, agents, batches, batch_size, window, interval, out_q):
    async def main():
        lat: list = []
        t0 = time.perf_counter()
        results = await asyncio.gather(*(one_agent(port, a, batches, batch_size, window, lat,
                                                   interval) for a in agents))
        return sum(results), lat, time.perf_counter() - t0
    import resource
    done, lat, elapsed = asyncio.run(main())
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out_q.put((done, lat, elapsed, ru.ru_utime + ru.ru_stime))


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_mem_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def run_once(args, workers: int, rate: float | None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="wa-bench-"))
    out = tmp / "alerts.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO), WORKLOAD_AGENT_ACCESS_KEY=KEY)
    log = open(tmp / "orch.log", "wb")
    orch = subprocess.Popen([sys.executable, "-m", "workload_agent", "orchestrator",
                             "--listen", "127.0.0.1:0", "--plaintext", "--metrics-listen", "off",
                             "--workers", str(workers),
                             "--output", f"file:{out}", "--file-max-bytes", str(1 << 40)],
                            env=env, stderr=log, stdout=subprocess.DEVNULL)
    deadline = time.time() + 15
    port = None
    while time.time() < deadline:
        text = (tmp / "orch.log").read_text()
        found = re.findall(r"listening on 127\.0\.0\.1:(\d+)", text)
        if len(found) >= workers:
            port = int(found[0])
            break
        time.sleep(0.05)
    if port is None:
        print((tmp / "orch.log").read_text(), file=sys.stderr)
        raise SystemExit(1)
    pids = [orch.pid] + [int(p) for p in Path(f"/proc/{orch.pid}/task/{orch.pid}/children")
                         .read_text().split()]
    rss_idle = sum(proc_mem_kb(p, "VmRSS") for p in pids)
    cpu0 = sum(proc_cpu_seconds(p) for p in pids)

    q: multiprocessing.Queue = multiprocessing.Queue()
    agent_ids = list(range(args.agents))
    procs = [multiprocessing.Process(target=load_process,
                                     args=(port, agent_ids[i::args.load_procs], args.batches,
                                           args.batch_size, args.window,
                                           args.batch_size * args.agents / rate if rate else None,
                                           q))
             for i in range(args.load_procs)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    cpu = sum(proc_cpu_seconds(p) for p in pids) - cpu0
    rss_peak = sum(proc_mem_kb(p, "VmHWM") for p in pids)
    orch.send_signal(signal.SIGTERM)
    orch.wait(30)

    acked = sum(r[0] for r in results)
    lat = sorted(x for r in results for x in r[1])
    expected = args.agents * args.batches * args.batch_size
    seen = set()
    dups = 0
    for f in sorted(tmp.glob("alerts*.jsonl")):
        with open(f, "rb") as fh:
            for line in fh:
                rec = json.loads(line)["orchestrator"]
                key = (rec["agent_id"], rec["seq"])
                dups += key in seen
                seen.add(key)
    missing = expected - len(seen)

    def pct(p):
        return lat[min(len(lat) - 1, int(len(lat) * p))] * 1000 if lat else float("nan")

    summary = {
        "workers": workers, "agents": args.agents, "alerts": expected,
        "batch_size": args.batch_size, "window": args.window, "offered_rate": rate,
        "wall_s": round(wall, 2),
        "alerts_per_s": round(expected / wall), "acked": acked,
        "ack_ms_p50": round(pct(0.50), 1), "ack_ms_p99": round(pct(0.99), 1),
        "orch_cpu_s": round(cpu, 2), "orch_cpu_pct": round(100 * cpu / wall),
        "loadgen_cpu_s": round(sum(r[3] for r in results), 2),
        "orch_rss_idle_mb": round(rss_idle / 1024, 1), "orch_rss_peak_mb": round(rss_peak / 1024, 1),
        "lost": missing, "duplicated": dups, "cpus": os.cpu_count(),
    }
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", type=int, default=500)
    ap.add_argument("--batches", type=int, default=40, help="batches per agent")
    ap.add_argument("--batch-size", type=int, default=25, help="alerts per batch")
    ap.add_argument("--window", type=int, default=2, help="unacked batches per agent")
    ap.add_argument("--rate", type=float, default=None,
                    help="total alerts/s to offer (open loop); default: as fast as acked")
    ap.add_argument("--load-procs", type=int, default=1, help="load generator processes")
    ap.add_argument("--workers", type=int, default=1, help="orchestrator worker processes")
    ap.add_argument("--compare-workers", metavar="N,M",
                    help="side by side for these worker counts: the saturating rate, then p99 "
                         "ack at 50%% of it")
    args = ap.parse_args()

    if not args.compare_workers:
        summary = run_once(args, args.workers, args.rate)
        print(json.dumps(summary, indent=2))
        return 0 if summary["lost"] == 0 and summary["duplicated"] == 0 else 1
    rows = []
    for n in [int(x) for x in args.compare_workers.split(",")]:
        sat = run_once(args, n, None)
        half = run_once(args, n, sat["alerts_per_s"] / 2)
        rows.append((n, sat, half))
    print(f"{'workers':>7} {'saturating/s':>13} {'cpu%':>5} {'p99 ack ms':>11} "
          f"{'@50% rate/s':>12} {'p50 ms':>7} {'p99 ms':>7} {'lost':>5} {'dup':>4}")
    for n, sat, half in rows:
        print(f"{n:>7} {sat['alerts_per_s']:>13} {sat['orch_cpu_pct']:>5} {sat['ack_ms_p99']:>11} "
              f"{half['alerts_per_s']:>12} {half['ack_ms_p50']:>7} {half['ack_ms_p99']:>7} "
              f"{sat['lost'] + half['lost']:>5} {sat['duplicated'] + half['duplicated']:>4}")
    base = rows[0][1]["alerts_per_s"]
    for n, sat, _ in rows[1:]:
        print(f"ratio {n} vs {rows[0][0]} workers: {sat['alerts_per_s'] / base:.2f}x")
    bad = any(r[1]["lost"] or r[1]["duplicated"] or r[2]["lost"] or r[2]["duplicated"] for r in rows)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
