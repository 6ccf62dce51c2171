"""A warm start (warm_start.py): the second start with the same rules files takes the
syscalls, notes, capture specs and prefilter the first one derived, without loading the
rules; it is never served for other rules, another selection or another architecture, and
its rules, loaded at the first record, are those of the bytes read at the start."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.rules.upstream_files import NAMES, rules_dir
from workload_agent import detect, warm_start
from workload_agent.events.arch import native_arch
from workload_agent.rules.loader import load_rules
from workload_agent.runner import default_capture, plan_detection

UPSTREAM = [str(rules_dir() / n) for n in NAMES]
RULE = """
- rule: etc open
  desc: d
  condition: evt.type = openat and fd.name startswith /etc and proc.name = cat
  output: "%proc.name opened %fd.name"
  priority: WARNING
- rule: tmp exec
  desc: d
  condition: evt.type = execve and evt.dir = < and proc.exepath startswith /tmp/
  output: "%proc.exepath run"
  priority: NOTICE
"""


def summary(ruleset):
    return [(r.name, r.enabled, r.priority, r.event_types, r.condition, r.output_text)
            for r in ruleset.rules]


def plan(rules, min_priority=None):
    p, names, notes = plan_detection(rules=rules, min_priority=min_priority)
    assert p.names == names
    return p, notes


@pytest.mark.parametrize("rules", [UPSTREAM, []], ids=["upstream", "default"])
@pytest.mark.parametrize("min_priority", [None, "WARNING"])
def test_the_warm_start_is_what_the_cold_one_derived(cache_dir, rules, min_priority):
    cold, cold_notes = plan(rules, min_priority)
    assert cold.warm is None
    cold_pf = cold.prefilter()   # compiled, and the start kept for the next one
    warm, warm_notes = plan(rules, min_priority)
    assert warm.warm is not None and warm._ruleset is None
    assert (warm.names, warm_notes) == (cold.names, cold_notes)
    assert warm.capture() == cold.capture() == default_capture(cold.names)
    fresh = load_rules(rules or detect.default_rules_paths(), min_priority=min_priority,
                       compile_each=False).ruleset
    # the image carries this start's own instant into the exec program's drift test
    assert warm.prefilter() == detect.prefilter_for(fresh, cold.names, warm.start_ns).image()
    assert cold_pf.image().with_start(warm.start_ns) == warm.prefilter()
    assert summary(warm.ruleset) == summary(fresh)


def test_never_served_for_other_rules_a_selection_or_an_architecture(cache_dir, tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text(RULE)
    cold, _ = plan([str(f)])
    cold.prefilter()
    assert plan([str(f)])[0].warm is not None
    assert plan([str(f)], "ERROR")[0].warm is None
    other = "aarch64" if native_arch() != "aarch64" else "x86_64"
    assert warm_start.find([str(f)], None, other) is None
    f.write_text(RULE.replace("proc.name = cat", "proc.name = dog"))
    changed, _ = plan([str(f)])
    assert changed.warm is None
    assert {r.name: r.condition for r in changed.ruleset.rules}["etc open"] != \
        {r.name: r.condition for r in cold.ruleset.rules}["etc open"]


def test_damaged_or_shared_entries_are_a_cold_start(cache_dir, tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text(RULE)
    plan([str(f)])[0].prefilter()
    (entry,) = [p for p in os.listdir(cache_dir) if p.startswith("start-")]
    (cache_dir / entry).write_bytes(b"\x00garbage")
    again, _ = plan([str(f)])
    assert again.warm is None
    again.prefilter()   # stored anew
    assert plan([str(f)])[0].warm is not None
    os.chmod(cache_dir / entry, 0o666)   # writable by others: never read
    assert plan([str(f)])[0].warm is None


def test_the_rules_are_those_read_at_the_start(cache_dir, tmp_path):
    """The files change between the start and the first record, and the compiled rules
    entry is gone: the rules come from the bytes the start's key was made of."""
    f = tmp_path / "r.yaml"
    f.write_text(RULE.replace("\n", "\r\n"))   # read as the loader reads: universal newlines
    cold, _ = plan([str(f)])
    cold.prefilter()
    want = summary(cold.ruleset)
    warm, _ = plan([str(f)])
    f.write_text(RULE.replace("startswith /etc", "startswith /usr"))
    for p in os.listdir(cache_dir):
        if p.startswith("rules-"):
            os.unlink(cache_dir / p)
    assert summary(warm.ruleset) == want


WARM_RUN = textwrap.dedent("""
    import sys
    before = set(sys.modules)   # a site's .pth files may import some of them already
    from workload_agent import runner
    plan, names, notes = runner.plan_detection(rules=sys.argv[1:])
    plan.capture(), plan.prefilter()
    heavy = ("workload_agent.rules.ruleset", "workload_agent.rules.loader", "workload_agent.rules.condition",
             "workload_agent.events.params", "workload_agent.tracer.prefilter", "workload_agent.state.tracker",
             "yaml", "pickle", "dataclasses", "typing", "re", "argparse")
    print(plan.warm is not None, [m for m in heavy if m in sys.modules and m not in before])
""")


def test_a_warm_start_loads_no_rules_and_imports_little(cache_dir, tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text(RULE)
    env = dict(os.environ, WORKLOAD_AGENT_RULES_CACHE=str(cache_dir))
    outs = [subprocess.run([sys.executable, "-c", WARM_RUN, str(f)], capture_output=True, text=True,
                           env=env, timeout=60, check=True).stdout.strip() for _ in range(2)]
    assert outs[0].startswith("False")
    assert outs[1] == "True []"
