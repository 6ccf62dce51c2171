#!/usr/bin/env python3
"""A server under load: nginx (1 worker, 4 KiB static files) driven by wrk on the other
CPU, requests/s side by side in one run: native, strace on the same syscall set, a bare C
tracer stopping on each openat only (the floor of one stop per request), and the agent
with the default rules; nginx pinned to CPU 0 (like a 1-vCPU task, where the
agent's consumer shares the workload's CPU) and unpinned.

    python3 bench/server.py [--seconds 5] [--repeat 3] [--connections 16]

Needs nginx and wrk: `apt-get install nginx wrk` (Debian). Without them the
script says so and exits with status 0 (nothing measured). The agent is the installed
`workload-agent` with `--priority security` (agent_cmd.py); the tracer's stop count is
printed beside its figures.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agent_cmd import agent_exe, check_traced, run_prefix  # noqa: E402

CONF = """
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
    server {{
        listen 127.0.0.1:{port};
        root {d}/www;
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the server did not start listening")


def one_run(prefix: list, nginx: str, d: str, port: int, args, wrk_cpu) -> tuple:
    """(requests/s, tracer stops or None) of one server start, load, stop."""
    stats = os.path.join(d, "stats.json")
    if os.path.exists(stats):
        os.unlink(stats)
    env = dict(os.environ, WORKLOAD_AGENT_STATS_FILE=stats)
    conf = os.path.join(d, "nginx.conf")
    server = subprocess.Popen(prefix + [nginx, "-p", d, "-c", conf], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, server)
        wrk = (["taskset", "-c", wrk_cpu] if wrk_cpu else []) + [
            shutil.which("wrk"), "-t1", f"-c{args.connections}", f"-d{args.seconds}s",
            f"http://127.0.0.1:{port}/f{0}.html"]
        out = subprocess.run(wrk, capture_output=True, text=True, check=True).stdout
        m = re.search(r"Requests/sec:\s*([\d.]+)", out)
        rps = float(m.group(1)) if m else 0.0
    finally:
        subprocess.run([nginx, "-p", d, "-c", conf, "-s", "quit"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    if server.returncode == 125:
        sys.exit("bench: the agent refused to start nginx (priority security)")
    stops = None
    try:
        import json
        with open(stats, encoding="utf-8") as f:
            stops = json.load(f).get("stops")
    except (OSError, ValueError):
        pass
    return rps, stops


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx is None or shutil.which("wrk") is None:
        print("bench/server.py: needs nginx and wrk: apt-get install nginx wrk; nothing measured")
        return 0
    check_traced()
    plan = subprocess.run([agent_exe(), "run", "--print-syscalls"], capture_output=True, text=True,
                          check=True)
    traced = plan.stdout.split()
    print("traced by the agent (and strace):", " ".join(traced), flush=True)
    ncpu = os.cpu_count() or 1
    d = tempfile.mkdtemp(prefix="wa-server-bench-")
    os.makedirs(os.path.join(d, "www"))
    os.makedirs(os.path.join(d, "tmp"))
    for i in range(4):
        with open(os.path.join(d, "www", f"f{i}.html"), "wb") as f:
            f.write(os.urandom(2048).hex().encode())  # 4 KiB
    port = free_port()
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(CONF.format(d=d, port=port))
    strace = shutil.which("strace")
    runners = {"native": []}
    if strace:
        runners["strace"] = [strace, "-f", "--seccomp-bpf", "-e", "trace=" + ",".join(traced), "-o", "/dev/null"]
    # the floor: a minimal C tracer taking only the openat entry stops (nginx opens the file
    # of each request), no decoding, no rules
    bare = os.path.join(d, "bare_tracer")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bare_tracer.c")
    if shutil.which("gcc") and subprocess.run(["gcc", "-O2", "-o", bare, src]).returncode == 0:
        runners["bare_c_tracer"] = [bare, "entry"]
    else:
        print("no gcc: the bare C tracer (the floor of one stop per request) is not measured")
    runners["agent"] = run_prefix("--alerts-to", "/dev/null")
    placements = {"unpinned": (None, None)}
    if ncpu >= 2 and shutil.which("taskset"):
        placements = {"pinned (nginx+agent CPU 0, wrk CPU 1)": ("0", "1"), **placements}
    try:
        for label, (server_cpu, wrk_cpu) in placements.items():
            print(f"\n{label}", flush=True)
            samples = {r: [] for r in runners}
            stops = {}
            for _ in range(args.repeat):
                for r, prefix in runners.items():  # interleaved: drift hits every runner alike
                    pin = ["taskset", "-c", server_cpu] if server_cpu else []
                    rps, n = one_run(pin + prefix, nginx, d, port, args, wrk_cpu)
                    samples[r].append(rps)
                    if n is not None:
                        stops[r] = n
            native = statistics.median(samples["native"]) or 1.0
            for r, s in samples.items():
                med = statistics.median(s)
                line = (f"  {r:13s} {med:10.0f} requests/s  x{med / native:5.2f} of native  "
                        f"(runs: {', '.join(f'{x:.0f}' for x in s)})")
                if r in stops:
                    line += f"   {stops[r]} stops in the last run"
                print(line, flush=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
