"""How the benches start the agent: the installed console script, with
`--priority security` so that a tracer that cannot start fails the bench instead of
posing as speed (an untraced workload is the fastest of all), and the tracer's stop
count read back from $WORKLOAD_AGENT_STATS_FILE to print beside each figure."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile


def agent_exe() -> str:
    """`workload-agent` next to this Python (its venv), else on PATH; never `python -m
    workload_agent`, which from a checkout imports the source tree without the built
    C core."""
    here = os.path.join(os.path.dirname(sys.executable), "workload-agent")
    exe = here if os.path.exists(here) else shutil.which("workload-agent")
    if exe is None:
        sys.exit("bench: workload-agent is not installed for this Python (pip install .)")
    return exe


def run_prefix(*extra: str) -> list:
    """`workload-agent run --priority security [extra] --` for a workload's argv."""
    return [agent_exe(), "run", "--priority", "security", *extra, "--"]


def check_traced() -> None:
    """Fail loudly unless the agent really traces here."""
    stops = run_counted(run_prefix("--no-rules", "--syscalls", "openat") + ["cat", "/dev/null"])[1]
    if not stops:
        sys.exit("bench: the agent did not trace `cat /dev/null` (no ptrace stops): refusing to "
                 "report figures for an untraced run")


def run_counted(argv: list, **kw) -> tuple:
    """(CompletedProcess, tracer stops or None) of an agent command line."""
    fd, path = tempfile.mkstemp(prefix="wa-stats-", suffix=".json")
    os.close(fd)
    try:
        env = dict(kw.pop("env", None) or os.environ, WORKLOAD_AGENT_STATS_FILE=path)
        proc = subprocess.run(argv, env=env, **kw)
        if proc.returncode == 125:
            sys.exit(f"bench: the agent refused to start the workload (priority security): {argv}")
        try:
            with open(path, encoding="utf-8") as f:
                stops = json.load(f).get("stops")
        except (OSError, ValueError):
            stops = None
        return proc, stops
    finally:
        os.unlink(path)
