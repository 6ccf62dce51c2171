#!/usr/bin/env python3
"""What the context captured at an exec stop costs, per exec, in the tracer thread.

    python3 bench/exec_facts_cost.py [--n 20000]

Builds a small C harness around csrc/procfacts.c and times wa_capture_proc_facts (stat,
status, loginuid, prlimit, stat and readlink of the exe, readlink of the cwd), what a quiet
exec's stop reads of it and what it leaves for later (wa_proc_facts_more), and
wa_capture_file_facts (the #! script case) on a live child process, pinned to one CPU.
Compare with the whole cost of a traced exec (bench/overhead.py's spawn workload).
"""
from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
HARNESS = r"""
#define _GNU_SOURCE
#include "procfacts.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + ts.tv_nsec / 1e9; }
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    pid_t pid = fork();
    if (pid == 0) { pause(); _exit(0); }
    struct wa_buf b = {0};
    struct wa_proc_facts f;
    double t0 = now();
    for (long i = 0; i < n; i++) { b.len = 0; wa_capture_proc_facts(pid, &b, WA_FACTS_ALL); }
    double t1 = now();
    for (long i = 0; i < n; i++) { b.len = 0; wa_capture_proc_facts(pid, &b, 0); }
    double t2 = now();
    for (long i = 0; i < n; i++) { f.valid = 0; wa_proc_facts_more(pid, &f, WA_FACTS_ALL); }
    double t3 = now();
    for (long i = 0; i < n; i++) { b.len = 0; wa_capture_file_facts(pid, "/bin/sh", 11, &b, NULL); }
    double t4 = now();
    printf("proc facts (a kept exec's stop): %.2f us\n"
           "proc facts (a quiet exec's stop: exe and links): %.2f us\n"
           "  the rest, read late or never (stat, status, loginuid, fd limit): %.2f us\n"
           "script facts (#! exec): %.2f us\n",
           (t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6, (t3 - t2) / n * 1e6, (t4 - t3) / n * 1e6);
    kill(pid, SIGKILL);
    return 0;
}
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = pathlib.Path(tmp) / "h.c"
        src.write_text(HARNESS)
        exe = pathlib.Path(tmp) / "h"
        subprocess.run(["gcc", "-O2", "-std=gnu11", "-I", str(ROOT / "csrc"), "-o", str(exe), str(src),
                        str(ROOT / "csrc" / "procfacts.c")], check=True)
        subprocess.run(["taskset", "-c", "0", str(exe), str(a.n)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
