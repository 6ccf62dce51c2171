"""What `run` and `instrument` do around the workload: no garbage collection while the
agent starts, then what it built frozen out of later collections; after the workload's
end, a quick exit that still delivers every alert, runs the exit handlers and gives the
workload's status."""
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import needs_tracing
from tests.state.test_container import ecs_server  # noqa: F401 - the task metadata endpoint fixture

needs_tracing()

RULES = """
- rule: Hostname read
  desc: a rule for the test
  condition: evt.type in (open, openat) and fd.name = /etc/hostname and proc.name = cat
  output: "hostname read by %proc.name"
  priority: WARNING
"""


def env_for(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKLOAD_AGENT_", "SYSDIG_"))}
    env.update(WORKLOAD_AGENT_RULES_CACHE=str(tmp_path / "cache"), **extra)
    return env


@pytest.fixture
def rules(tmp_path):
    f = tmp_path / "rules.yaml"
    f.write_text(RULES)
    return str(f)


# The console scripts' own code path (cli.main / cli.instrument_main with no argv), with an
# exit handler of someone else's that must still run.
PRELUDE = textwrap.dedent("""
    import atexit, sys
    marker = sys.argv.pop(1)
    atexit.register(lambda: open(marker, "w").write("exit handler ran"))
    from workload_agent import cli
""")


@pytest.mark.parametrize("entry", ["run", "instrument"])
@pytest.mark.parametrize("alerts", ["stdout", "file"])
def test_quick_exit_keeps_alerts_status_and_exit_handlers(tmp_path, rules, entry, alerts):
    marker = tmp_path / "atexit"
    out = tmp_path / "alerts.txt"
    workload = ["sh", "-c", "cat /etc/hostname >/dev/null; echo workload-output; exit 7"]
    if entry == "run":
        code = PRELUDE + "cli.main()"
        args = ["run", "--priority", "security", "--rules", rules]
        if alerts == "file":
            args += ["--alerts-to", str(out)]
        argv = args + ["--"] + workload
        env = env_for(tmp_path)
    else:
        code = PRELUDE + "cli.instrument_main()"
        argv = workload
        env = env_for(tmp_path, WORKLOAD_AGENT_RULES=rules, WORKLOAD_AGENT_PRIORITY="security",
                      **({"WORKLOAD_AGENT_ALERTS_TO": str(out)} if alerts == "file" else {}))
    for _ in range(2):   # the second start takes the rules and the prefilter from the cache
        if out.exists():
            out.unlink()
        # stdout is a pipe: block-buffered, so an exit that skipped the flush would lose it
        p = subprocess.run([sys.executable, "-c", code, str(marker)] + argv, capture_output=True,
                           text=True, timeout=120, env=env)
        assert p.returncode == 7, p.stderr
        assert "Traceback" not in p.stderr
        text = p.stdout if alerts == "stdout" else out.read_text()
        assert text.count("hostname read by cat") == 1, (p.stdout, p.stderr)
        assert "workload-output" in p.stdout
        assert marker.read_text() == "exit handler ran"
        marker.unlink()


def test_signal_death_status_after_quick_exit(tmp_path, rules):
    p = subprocess.run([sys.executable, "-m", "workload_agent", "run", "--rules", rules, "--",
                        "sh", "-c", "kill -TERM $$"], capture_output=True, text=True, timeout=120,
                       env=env_for(tmp_path))
    assert p.returncode == 128 + 15, p.stderr


GC_PROBE = textwrap.dedent("""
    import gc, sys
    from workload_agent import runner
    collections = []
    gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info["generation"]))
    at_settle = []
    settle = runner.settle_gc
    def settle_and_count():
        at_settle.append(len(collections))
        settle()
    runner.settle_gc = settle_and_count
    # A run called in-process by someone whose collector runs (a test): left as it was.
    assert runner.run(["true"], syscalls=["openat"]) == 0
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert at_settle == [len(collections)]
    at_settle.clear()
    before = len(collections)
    # The entry point: nothing collected from its start to the detector's, then frozen.
    code = runner.instrument(["sh", "-c", "cat /etc/hostname >/dev/null"])
    print(code, at_settle[0] - before, gc.isenabled(), gc.get_freeze_count() > 1000)
""")


def test_no_collection_while_starting_then_frozen(tmp_path, rules):
    p = subprocess.run([sys.executable, "-c", GC_PROBE], capture_output=True, text=True, timeout=120,
                       env=env_for(tmp_path, WORKLOAD_AGENT_RULES=rules, WORKLOAD_AGENT_PRIORITY="security"))
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[-4:] == ["0", "0", "True", "True"], p.stdout


def test_container_found_once_the_workload_runs(tmp_path, rules, ecs_server):
    """The container is detected after the workload's exec when nothing needs it before:
    an alert still names the ECS task's container, and an endpoint that does not answer is
    a logged warning, not a failure."""
    import json

    url, _ = ecs_server
    argv = [sys.executable, "-m", "workload_agent", "run", "--json", "--priority", "security",
            "--rules", rules, "--", "sh", "-c", "cat /etc/hostname >/dev/null"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                       env=env_for(tmp_path, ECS_CONTAINER_METADATA_URI_V4=url))
    assert p.returncode == 0, p.stderr
    (alert,) = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert alert["output_fields"]["container.id"] == "0d8b4c7e1f2a"
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                       env=env_for(tmp_path, ECS_CONTAINER_METADATA_URI_V4=url.rsplit("/", 1)[0] + "/gone"))
    assert p.returncode == 0, p.stderr
    assert "ECS task metadata" in p.stderr and "unavailable" in p.stderr
    assert "Traceback" not in p.stderr
    (alert,) = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert alert["output_fields"]["container.id"] != "0d8b4c7e1f2a"


def test_a_thread_that_is_not_a_daemon_gets_the_usual_exit(tmp_path, rules):
    """Someone's non-daemon thread that finishes only once the main thread is done: the
    quick exit would cut it off, so the interpreter's own exit runs and waits for it."""
    marker = tmp_path / "thread-done"
    code = textwrap.dedent(f"""
        import sys, threading
        def after_main():
            threading.main_thread().join()
            open({str(marker)!r}, "w").write("done")
        threading.Thread(target=after_main).start()
        from workload_agent import cli
        sys.exit(cli.instrument_main())
    """)
    p = subprocess.run([sys.executable, "-c", code, "sh", "-c", "exit 9"], capture_output=True,
                       text=True, timeout=120, env=env_for(tmp_path, WORKLOAD_AGENT_RULES=rules))
    assert p.returncode == 9, p.stderr
    assert marker.read_text() == "done"


MODULES_AT_EXIT = textwrap.dedent("""
    import atexit, sys
    out = sys.argv.pop(1)
    before = set(sys.modules)
    heavy = ("workload_agent.state.tracker", "workload_agent.rules.ruleset", "workload_agent.rules.group",
             "workload_agent.tracer.prefilter", "workload_agent.events.params", "threading", "argparse")
    atexit.register(lambda: open(out, "w").write(" ".join(m for m in heavy
                                                          if m in sys.modules and m not in before)))
    from workload_agent import cli
    cli.main()
""")


def test_a_workload_that_sends_no_record_loads_no_rules(tmp_path, rules):
    """With a warm rules cache, a run whose workload does nothing a rule could see gets no
    record: it never loads the rules, builds no state and starts no threading thread. One
    that does gets the detector built at its first record, and its alert."""
    out = tmp_path / "modules"
    argv = [sys.executable, "-c", MODULES_AT_EXIT, str(out), "run", "--priority", "security",
            "--stats", "--rules", rules, "--"]
    env = env_for(tmp_path)
    for _ in range(2):   # the second start is warm
        p = subprocess.run(argv + ["sh", "-c", "ls / >/dev/null; exit 4"], capture_output=True,
                           text=True, timeout=120, env=env)
        assert p.returncode == 4, p.stderr
    assert " records=0 " in p.stderr, p.stderr
    assert out.read_text() == ""
    p = subprocess.run(argv + ["sh", "-c", "cat /etc/hostname >/dev/null"], capture_output=True,
                       text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("hostname read by cat") == 1, (p.stdout, p.stderr)
    assert "workload_agent.state.tracker" in out.read_text().split()
