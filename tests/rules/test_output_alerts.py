"""Alert lines in Falco's text and JSON shapes; the priority table."""
from __future__ import annotations

import json

import pytest

from workload_agent.rules.output import alert_json, alert_text
from workload_agent.rules.priority import Priority, parse_priority

TS = 1_700_000_000_123_456_789  # 2023-11-14T22:13:20.123456789Z


def test_alert_text():
    assert alert_text(TS, Priority.WARNING, "msg here") == \
        "2023-11-14T22:13:20.123456789+0000: Warning msg here"
    assert alert_text(TS, "info", "x").split(": ", 1)[1] == "Informational x"
    assert alert_text(0, "critical", "x") == "1970-01-01T00:00:00.000000000+0000: Critical x"


def test_alert_json_shape():
    line = alert_json(TS, "NOTICE", "the output", "My Rule", {"proc.name": "bash", "fd.sip": None,
                                                             "proc.pid": 7},
                      tags=["b", "a", "b"], hostname="node-1")
    assert "\n" not in line
    doc = json.loads(line)
    assert list(doc) == ["hostname", "output", "output_fields", "priority", "rule", "source", "tags",
                         "time"]
    assert list(doc["output_fields"]) == ["evt.time", "fd.sip", "proc.name", "proc.pid"]
    assert doc == {
        "hostname": "node-1", "output": "the output",
        "output_fields": {"evt.time": TS, "proc.name": "bash", "fd.sip": None, "proc.pid": 7},
        "priority": "Notice", "rule": "My Rule", "source": "syscall", "tags": ["a", "b"],
        "time": "2023-11-14T22:13:20.123456789Z"}


def test_alert_json_hostname_from_environment(monkeypatch):
    monkeypatch.setenv("FALCO_HOSTNAME", "from-env")
    assert json.loads(alert_json(TS, "debug", "m", "r"))["hostname"] == "from-env"


def test_priority_table():
    assert [p.long for p in Priority] == ["Emergency", "Alert", "Critical", "Error", "Warning",
                                          "Notice", "Informational", "Debug"]
    assert [int(p) for p in Priority] == list(range(8))
    assert parse_priority("info") is Priority.INFORMATIONAL
    assert parse_priority("Informational") is Priority.INFORMATIONAL
    assert parse_priority("wArNiNg") is Priority.WARNING
    assert Priority.CRITICAL.at_least(Priority.WARNING)
    assert not Priority.DEBUG.at_least(Priority.NOTICE)
    with pytest.raises(ValueError, match="unknown priority 'urgent'"):
        parse_priority("urgent")
