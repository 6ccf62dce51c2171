"""Run a scenario under `workload-agent run` and collect its JSON alerts."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

from .catalog import BIN_DIR, CONTAINER_ID, CONTAINER_IMAGE, HERE, PYTHON, WORKLOADS_DIR, Scenario

REPO = HERE.parents[1]
OUR_RULES = REPO / "rules"
NOBODY = 65534
TIMEOUT = 120


def pipeline_missing_reason() -> Optional[str]:
    """Why the end-to-end scenarios cannot run here, or None when they can."""
    try:
        import workload_agent.detect  # noqa: F401
        from workload_agent.state import StateTracker  # noqa: F401
    except ImportError as exc:
        return ("the detection pipeline (workload_agent.detect with the state tracker) is "
                f"not on this branch yet: {exc}")
    return None


@dataclass
class Outcome:
    returncode: int
    alerts: List[dict]
    stdout: str
    stderr: str
    alert_lines: List[str]

    @property
    def rules(self) -> set:
        return {a.get("rule") for a in self.alerts}

    def describe(self) -> str:
        lines = [f"exit status {self.returncode}", "alerts:"]
        lines += [f"  {a.get('priority')} {a.get('rule')}: {a.get('output')}" for a in self.alerts]
        if not self.alerts:
            lines += [f"  {ln}" for ln in self.alert_lines]
        lines += ["stdout:", self.stdout[-2000:], "stderr:", self.stderr[-4000:]]
        return "\n".join(lines)


def make_workdir(shared: bool) -> Path:
    """A fresh work directory, readable by all (servers such as nginx read files as an
    unprivileged worker user); `shared` makes it writable by an unprivileged user too."""
    path = Path(tempfile.mkdtemp(prefix="wa-scenario-"))
    path.chmod(0o777 if shared else 0o755)
    return path


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def readable_by_others(path: Path) -> bool:
    """Every directory up to `path` is searchable and `path` readable by any user."""
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        need = stat.S_IXOTH | (stat.S_IROTH if p == path else 0)
        if mode & need != need:
            return False
    return True


def python_for(user: Optional[int]) -> Optional[str]:
    """A Python interpreter the workload's user can run (None: there is none)."""
    candidates = [PYTHON, "/usr/bin/python3", "/usr/local/bin/python3"]
    for cand in candidates:
        path = Path(cand)
        if not path.exists():
            continue
        if user is None or readable_by_others(path.resolve()):
            return str(path)
    return None


def command_of(scenario: Scenario, workdir: Path, python: str) -> List[str]:
    values = {"py": python, "w": str(WORKLOADS_DIR), "workdir": str(workdir)}
    return [part.format(**values) for part in scenario.command]


def drop_to(user: int) -> List[str]:
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--"]


def agent_python_for(user: int) -> Optional[str]:
    """A Python that can run the agent as `user` (its modules and dependencies readable)."""
    for cand in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        if not Path(cand).exists():
            continue
        probe = subprocess.run(
            [*drop_to(user), cand, "-c",
             "import workload_agent.detect, workload_agent.state, workload_agent.tracer.core"],
            cwd="/", env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, capture_output=True)
        if probe.returncode == 0:
            return cand
    return None


def run(scenario: Scenario, rules: Sequence[Path], workdir: Path, *,
        agent_user: Optional[int] = None, workload_user: Optional[int] = None,
        agent_python: Optional[str] = None, json_alerts: bool = True, matching: str = "all",
        extra: Sequence[str] = ()) -> Outcome:
    """Run the scenario under the agent. agent_user: run the agent itself as that user;
    workload_user: the agent stays as it is and the workload drops to that user."""
    alerts_file = workdir / "alerts.jsonl"
    unprivileged = agent_user if agent_user is not None else workload_user
    python = python_for(unprivileged)
    assert python, "no Python interpreter usable by the workload user"
    argv = [agent_python or sys.executable, "-m", "workload_agent", "run"]
    for r in rules:
        argv += ["-r", str(r)]
    if json_alerts:
        argv.append("--json")
    argv += ["--alerts-to", str(alerts_file), "--rule-matching", matching,
             "--container-id", CONTAINER_ID, "--container-image", CONTAINER_IMAGE, *extra, "--"]
    if workload_user is not None:
        argv += drop_to(workload_user)
    argv += command_of(scenario, workdir, python)
    if agent_user is not None:
        argv = drop_to(agent_user) + argv
    env = dict(os.environ)
    env.update({
        "PATH": f"{BIN_DIR}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(workdir),
        "PYTHONPATH": str(REPO),
        "PYTHON": python,
        "LC_ALL": "C",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    env.update(dict(scenario.env))
    proc = subprocess.run(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=TIMEOUT,
                          start_new_session=True)  # no controlling terminal: CI-like
    lines = alerts_file.read_text().splitlines() if alerts_file.exists() else []
    lines = [ln for ln in lines if ln.strip()]
    alerts = [json.loads(ln) for ln in lines] if json_alerts else []
    return Outcome(proc.returncode, alerts, proc.stdout, proc.stderr, lines)
