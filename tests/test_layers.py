"""Layers point down: a package imports only what sits below it, checked in a fresh
interpreter (what a module drags in when imported alone)."""
import subprocess
import sys

import pytest

CASES = [
    # module imported alone (and, for a command module, its parser built) -> packages it
    # must not pull in
    ("workload_agent.rules.cli", ["workload_agent.capture", "workload_agent.tracer"]),
    ("workload_agent.rules.loader", ["workload_agent.capture", "workload_agent.tracer",
                                     "workload_agent.runner"]),
    ("workload_agent.patch.docio", ["workload_agent.patch.core"]),
    ("workload_agent.events.arch", ["workload_agent.tracer"]),
    ("workload_agent.capture.replay", ["workload_agent.tracer.seccomp"]),
]


@pytest.mark.parametrize("module,forbidden", CASES, ids=[c[0] for c in CASES])
def test_module_does_not_import_upward(module, forbidden):
    code = (f"import argparse, sys, {module}\n"
            f"if hasattr({module}, 'register'): {module}.register(argparse.ArgumentParser().add_subparsers())\n"
            f"print('\\n'.join(sorted(m for m in sys.modules if m.startswith('workload_agent'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert module in out
    assert [m for m in out if any(m == f or m.startswith(f + ".") for f in forbidden)] == []


def test_rules_test_is_still_a_rules_subcommand():
    p = subprocess.run([sys.executable, "-m", "workload_agent", "rules", "test", "--help"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "--junit-xml" in p.stdout
