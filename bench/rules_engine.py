#!/usr/bin/env python3
"""Rules engine speed: load+compile of the upstream Falco rules, and events per second
through them on a recorded capture (one core, no tracer: only the rules engine).

    python3 bench/rules_engine.py CAPTURE [--rules-dir DIR] [--matching all] [--repeat 5]

CAPTURE is a `workload-agent record` file (bench/mix.sh records a realistic mix:
`workload-agent record -o mix.wacap --no-rules -- bench/mix.sh`). The events are
decoded once before timing; each pass evaluates every event against the enabled
rules of all three upstream files, like `replay --rule-matching all` does.
Load+compile is timed cold (no compiled-rules cache) and warm (cache filled), each in
a fresh process. Times are the CPU time of the measuring process (the machine may
be shared; the targets are per core).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

NAMES = ("falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml")


def rules_dir(given):
    for cand in ([given] if given else []) + [
            os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "falco-rules"),
            "/work/shared/falco-rules"]:
        if cand and os.path.isfile(os.path.join(cand, NAMES[0])):
            return cand
    sys.exit("upstream Falco rules not found: give --rules-dir DIR holding " + ", ".join(NAMES))


LOAD_PROBE = r"""
import sys, time
t0 = time.process_time()
from workload_agent.rules.cache import load_rules_cached
r = load_rules_cached(sys.argv[1:])
t1 = time.process_time()
assert r.ok, [m.as_text() for m in r.errors]
print((t1 - t0) * 1000, len(r.ruleset.enabled_rules))
"""


def load_ms(paths, env) -> tuple:
    out = subprocess.run([sys.executable, "-c", LOAD_PROBE, *paths], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), int(out[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture")
    ap.add_argument("--rules-dir")
    ap.add_argument("--matching", default="all", choices=("first", "all"))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    d = rules_dir(args.rules_dir)
    paths = [os.path.join(d, n) for n in NAMES]

    import tempfile
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, WORKLOAD_AGENT_RULES_CACHE=cache)
        cold = [load_ms(paths, dict(env, WORKLOAD_AGENT_RULES_CACHE="off"))[0] for _ in range(args.repeat)]
        load_ms(paths, env)
        warm = [load_ms(paths, env)[0] for _ in range(args.repeat)]
    print(f"load+compile of the three upstream files: cold {statistics.median(cold):.1f} ms, "
          f"cached {statistics.median(warm):.1f} ms (median of {args.repeat}, target <= 100 ms)")

    from workload_agent.capture.format import CaptureReader, Drop
    from workload_agent.rules.loader import load_rules
    result = load_rules(paths, compile_each=False)
    ruleset = result.ruleset
    events = [e for e in CaptureReader(args.capture).records() if not isinstance(e, Drop)]
    match = ruleset.match
    mode = args.matching
    rates, hits = [], 0
    for _ in range(args.repeat):
        hits = 0
        # CPU time of this process: the machine may be shared, and the figure is per core.
        t0 = time.process_time()
        for ev in events:
            hits += len(match(ev, mode))
        rates.append(len(events) / (time.process_time() - t0))
    print(f"rules engine: {statistics.median(rates) / 1000:.1f}k events/s (best {max(rates) / 1000:.1f}k) "
          f"on {len(events)} events, {len(ruleset.enabled_rules)} enabled rules, "
          f"--rule-matching {mode}, {hits} matches per pass (target >= 250k)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
