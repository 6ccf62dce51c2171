#!/usr/bin/env python3
"""Where the live consumer's time goes, stage by stage, on ring batches recorded once.

    python3 bench/consumer_replay.py record OUT [--rules F ...] -- CMD [ARGS...]
    python3 bench/consumer_replay.py replay IN [--rules F ...] [--matching all]
                                     [--repeat 5] [--alerts FILE]

`record` runs CMD under the agent (`run --priority security`, the default rules unless
--rules) and keeps the raw bytes of every batch the consumer reads from the ring, as the
C prefilter left them, with the agent's pid and start instant. `replay` feeds those
batches to a fresh consumer (state tracker + rules engine + alert output, built like a
run builds it) `--repeat` times and reports:

* the consumer's CPU time per record as `--stats` counts it (`Detector.handle`'s
  consumer_cpu_ns: state + rules + output), and with the batch decode (ring bytes to
  verdict), measured with nothing timed per record;
* per record, wall time of each stage: decoding the batch (`events.records.decode_batch`), the state update and
  event (`StateTracker.process`), the rule groups (`Ruleset.match`), alert output;
* the median per kept syscall record of each type (the open/close path: openat), timed
  around the same work (state + rules + output), and with the record's share of its
  batch's decode (ring bytes to verdict);
* `--alerts FILE`: the alert lines of the first pass, to compare builds byte for byte.

The recorded processes are gone at replay: the state applies what the records carry, so
nothing but the agent's own (recorded) pid is looked up in /proc. Figures, not a test:
compare builds within one run (the same recording, one venv each).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import sys
import time

_TAG = struct.Struct("<cI")


def record(out: str, rules: list, argv: list) -> int:
    from workload_agent import cli, runner
    from workload_agent.tracer import core

    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    pending = []
    header = {}

    def put(tag: bytes, data: bytes) -> None:
        # straight to the file: the agent leaves with os._exit
        if tag == b"B" and not header:
            pending.append(data)
            return
        os.write(fd, _TAG.pack(tag, len(data)) + data)

    read_raw = core.Tracer.read_raw

    def read_and_keep(self):
        raw = read_raw(self)
        if raw:
            put(b"B", bytes(raw))
        return raw

    build = runner.DetectionPlan.build

    def build_and_note(self):
        header.update(agent_pid=os.getpid(), start_ns=self.start_ns, argv=argv, rules=rules)
        put(b"H", json.dumps(header).encode())
        for data in pending:
            put(b"B", data)
        pending.clear()
        return build(self)

    core.Tracer.read_raw = read_and_keep
    runner.DetectionPlan.build = build_and_note
    args = ["run", "--priority", "security", "--alerts-to", os.devnull, "--stats"]
    for r in rules:
        args += ["-r", r]
    return cli.main(args + ["--"] + argv)


def load(path: str) -> tuple:
    with open(path, "rb") as f:
        data = f.read()
    header, batches, off = None, [], 0
    while off < len(data):
        tag, n = _TAG.unpack_from(data, off)
        off += _TAG.size
        chunk = data[off:off + n]
        off += n
        if tag == b"H":
            header = json.loads(chunk)
        else:
            batches.append(chunk)
    if header is None:
        sys.exit(f"{path}: no header (the run did not build its detector)")
    return header, batches


class _Lines:
    """An alert writer target keeping the lines in memory."""

    def __init__(self) -> None:
        self.lines = []

    def write(self, s: str) -> None:
        self.lines.append(s)

    def flush(self) -> None:
        pass


def replay(path: str, rules: list, matching: str, repeat: int, alerts: str | None) -> int:
    from workload_agent import detect
    from workload_agent.events import records as R
    from workload_agent.events.display import syscall_name
    from workload_agent.state import StateTracker, detect_container

    header, batches = load(path)
    ruleset, _ = detect.load_ruleset(rules or header.get("rules") or [])
    container = detect_container()
    clock = time.perf_counter_ns
    stage = {"decode": [], "state": [], "rules": [], "output": []}
    whole, whole_ring = [], []   # per record, as --stats counts it (Detector.handle), CPU
    per_type = {}        # type -> [ns per record], state + rules + output, pooled over passes
    per_type_ring = {}   # the same with the record's share of its batch's decode
    n_records = 0
    lines = None

    def consumer():
        out = _Lines()
        writer = detect.AlertWriter(None)
        writer.out = out
        tracker = StateTracker(container, agent_pid=header["agent_pid"], start_ns=header["start_ns"])
        tracker.wanted = ruleset.event_types()
        return out, tracker, detect.Detector(ruleset, tracker, writer, mode=matching)

    for i in range(repeat):
        # the consumer as a run has it, its own counters, nothing timed per record
        out, tracker, det = consumer()
        c0 = time.thread_time_ns()
        for raw in batches:
            det.handle(R.decode_batch(raw))
        ring = time.thread_time_ns() - c0
        whole.append(det.consumer_cpu_ns / max(det.records, 1) / 1000)
        whole_ring.append(ring / max(det.records, 1) / 1000)
        if lines is None:
            lines = out.lines
        # the same work, each stage timed per record (wall time, a cheap clock)
        out, tracker, det = consumer()
        process, match, alert = tracker.process, ruleset.match, det._alert
        t_dec = t_state = t_rules = t_out = 0
        n_records = 0
        for raw in batches:
            c0 = clock()
            batch = R.decode_batch(raw)
            dec = clock() - c0
            dec_each = dec / max(len(batch), 1)
            t_dec += dec
            n_records += len(batch)
            for rec in batch:
                a = clock()
                ev = process(rec)
                b = clock()
                hits = match(ev, matching) if ev is not None else ()
                c = clock()
                for rule in hits:
                    alert(rule, ev)
                d = clock()
                t_state += b - a
                t_rules += c - b
                t_out += d - c
                if rec.kind == R.K_SYSCALL:
                    name = syscall_name(rec.arch, rec.nr)
                    per_type.setdefault(name, []).append(d - a)
                    per_type_ring.setdefault(name, []).append(d - a + dec_each)
        for k, v in (("decode", t_dec), ("state", t_state), ("rules", t_rules), ("output", t_out)):
            stage[k].append(v / max(n_records, 1) / 1000)
    if alerts:
        with open(alerts, "w", encoding="utf-8") as f:
            f.write("".join(lines))
    print(f"{path}: {len(batches)} batches, {n_records} records, {len(lines)} alert lines, "
          f"{len(ruleset.enabled_rules)} enabled rules, --rule-matching {matching}; median of {repeat} passes")
    print(f"  consumer CPU as --stats counts it: {statistics.median(whole):6.2f} us/record "
          f"(consumer_cpu_us_per_record); ring bytes to verdict: {statistics.median(whole_ring):6.2f} us/record")
    print("  by stage, wall time per record:")
    total = 0.0
    for k, v in stage.items():
        m = statistics.median(v)
        total += m
        print(f"    {k:8} {m:6.2f} us")
    print(f"    {'total':8} {total:6.2f} us")
    for name, v in sorted(per_type.items(), key=lambda kv: -len(kv[1])):
        if len(v) < repeat * 20:
            continue
        print(f"  {name:12} x{len(v) // repeat:<7} median {statistics.median(v) / 1000:6.2f} us "
              f"state+rules+output, {statistics.median(per_type_ring[name]) / 1000:6.2f} us ring to verdict")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("out")
    r.add_argument("--rules", "-r", action="append", default=[])
    r.add_argument("argv", nargs=argparse.REMAINDER)
    p = sub.add_parser("replay")
    p.add_argument("input")
    p.add_argument("--rules", "-r", action="append", default=[])
    p.add_argument("--matching", default="first", choices=("first", "all"))
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--alerts")
    a = ap.parse_args()
    if a.cmd == "record":
        argv = a.argv[1:] if a.argv[:1] == ["--"] else a.argv
        if not argv:
            ap.error("record: a command to run after --")
        return record(a.out, a.rules, argv)
    return replay(a.input, a.rules, a.matching, a.repeat, a.alerts)


if __name__ == "__main__":
    sys.exit(main())
