"""The detector's own alerts: drops reported as an alert of their own, container suffix."""
import json

from workload_agent import detect
from workload_agent.events import records as R
from workload_agent.rules.event import Container
from workload_agent.rules.loader import load_rules
from workload_agent.state import StateTracker


def _drop(n, ts):
    return R.Record(R.K_DROP, 0, ts, 0, 0, 0, 0, 0, 0, (0,) * 6, n, {})


def test_drops_become_a_critical_alert(tmp_path):
    res = load_rules(["r.yaml"], contents={"r.yaml": "- rule: x\n  desc: d\n  condition: evt.type = open\n"
                                                      "  output: o\n  priority: INFO\n"})
    out = tmp_path / "alerts.jsonl"
    writer = detect.AlertWriter(str(out), json_lines=True)
    d = detect.Detector(res.ruleset, StateTracker(Container(id="c0ffee")), writer)
    d.handle([_drop(17, 1_700_000_000_000_000_000), _drop(3, 1_700_000_001_000_000_000)])
    d.close({})
    alerts = [json.loads(x) for x in out.read_text().splitlines()]
    assert [a["rule"] for a in alerts] == [detect.DROP_RULE, detect.DROP_RULE]
    assert alerts[0]["priority"] == "Critical"
    assert alerts[0]["output_fields"]["n_drops"] == 17
    assert alerts[1]["output_fields"]["n_drops_total"] == 20
    assert alerts[1]["time"].startswith("2023-11-14T22:13:21")
    assert d.counters()["drops"] == 20 and d.counters()["alerts"] == 2


def test_the_consumer_counts_its_cpu_time_beside_its_wall_time(tmp_path, capsys):
    """--stats' per-record figures: the thread's CPU time can only be part of the wall time."""
    res = load_rules(["r.yaml"], contents={"r.yaml": "- rule: x\n  desc: d\n  condition: evt.type = open\n"
                                                      "  output: o\n  priority: INFO\n"})
    d = detect.Detector(res.ruleset, StateTracker(Container(id="c0ffee")),
                        detect.AlertWriter(str(tmp_path / "a.txt")))
    d.print_stats = True
    for i in range(50):
        d.handle([_drop(1, 1_700_000_000_000_000_000 + i)])
    c = d.counters()
    assert c["records"] == 50
    assert 0 < c["consumer_cpu_ns"] <= c["consumer_ns"] * 1.05 + 1_000_000   # clocks' granularity
    d.close({})
    line = capsys.readouterr().err.splitlines()[-1]
    assert "consumer_us_per_record=" in line and "consumer_cpu_us_per_record=" in line
