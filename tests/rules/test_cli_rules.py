"""`workload-agent rules validate|describe` as a user runs them: a subprocess, real files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
- required_engine_version: 0.57.0
- required_plugin_versions:
  - name: container
    version: 0.4.0
- list: shells
  items: [bash, sh]
- macro: spawned
  condition: evt.type in (execve, execveat)
- rule: shell
  desc: a shell started
  condition: spawned and proc.name in (shells)
  output: "shell %proc.name"
  priority: WARNING
  tags: [shell]
"""

WARNED = GOOD + "- list: unused_list\n  items: [x]\n"

BAD = """\
- rule: broken
  desc: d
  condition: >
    evt.type = open and
    proc.name = = bash
  output: o
  priority: INFO
"""


def run(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "workload_agent", "rules", *args],
                          capture_output=True, text=True, env=env, cwd=str(REPO), timeout=120)


@pytest.fixture
def files(tmp_path):
    for name, text in (("good.yaml", GOOD), ("warned.yaml", WARNED), ("bad.yaml", BAD)):
        (tmp_path / name).write_text(text)
    return tmp_path


def test_validate_ok(files):
    p = run("validate", str(files / "good.yaml"))
    assert p.returncode == 0, p.stderr
    first = p.stdout.splitlines()[0]
    assert first == f"{files / 'good.yaml'}: Ok"
    assert "container" in p.stdout and "natively" in p.stdout


def test_validate_ok_with_warnings_still_exits_zero(files):
    p = run("validate", str(files / "warned.yaml"))
    assert p.returncode == 0
    assert p.stdout.splitlines()[0].endswith(": Ok, with warnings")
    assert f"{files / 'warned.yaml'}:15:3: warning LOAD_UNUSED_LIST" in p.stdout


def test_validate_invalid_reports_position_and_fails(files):
    p = run("validate", str(files / "bad.yaml"))
    assert p.returncode == 1
    assert p.stdout.splitlines()[0].endswith("bad.yaml: Invalid")
    line = next(x for x in p.stdout.splitlines() if "error LOAD_ERR_COMPILE_CONDITION" in x)
    # "= bash" after "proc.name =": line 5, column 17 (1-based)
    assert line.startswith(f"{files / 'bad.yaml'}:5:17: ")
    assert "rule 'broken'" in p.stdout
    assert "Traceback" not in p.stderr


def test_validate_several_files_accumulate_definitions(files):
    (files / "extra.yaml").write_text("- list: shells\n  items: [zsh]\n  override:\n    items: append\n")
    p = run("validate", str(files / "good.yaml"), str(files / "extra.yaml"))
    assert p.returncode == 0, p.stdout
    assert [l.split(": ")[-1] for l in p.stdout.splitlines() if l.startswith(str(files))][:2] == ["Ok", "Ok"]


def test_validate_directory_loads_yaml_files_alphabetically(tmp_path):
    (tmp_path / "b.yaml").write_text("- list: l\n  items: [b]\n  override:\n    items: append\n")
    (tmp_path / "a.yml").write_text("- list: l\n  items: [a]\n"
                                     "- rule: r\n  desc: d\n  condition: proc.name in (l) and evt.type=open\n"
                                     "  output: o\n  priority: INFO\n")
    (tmp_path / "notes.txt").write_text("ignored")
    p = run("validate", str(tmp_path))
    assert p.returncode == 0, p.stdout
    assert p.stdout.index("a.yml: Ok") < p.stdout.index("b.yaml: Ok")


def test_validate_json_shape(files):
    # warned.yaml first: as in Falco, a later file's compile would include bad.yaml's rule again.
    p = run("validate", "--json", str(files / "warned.yaml"), str(files / "bad.yaml"))
    assert p.returncode == 1
    doc = json.loads(p.stdout)
    warned, bad = doc["falco_load_results"]
    assert bad["name"].endswith("bad.yaml") and bad["successful"] is False
    err = bad["errors"][0]
    assert set(err) == {"code", "codedesc", "message", "context"}
    assert err["code"] == "LOAD_ERR_COMPILE_CONDITION"
    locs = err["context"]["locations"]
    assert [l["item_type"] for l in locs] == ["rules content", "rule", "rule condition", "condition expression"]
    assert locs[1]["item_name"] == "broken"
    assert locs[-1]["position"]["line"] == 4 and locs[-1]["position"]["column"] == 16  # 0-based, as Falco
    assert "^" in err["context"]["snippet"]
    assert warned["successful"] is True
    assert [w["code"] for w in warned["warnings"]] == ["LOAD_UNUSED_LIST"]
    assert any("container" in n for n in warned["notes"])


def test_a_broken_rule_is_reported_again_by_later_files_like_falco(files):
    # Falco compiles everything collected so far after each file, so the broken rule from
    # bad.yaml fails the compile after good.yaml too; the message still points into bad.yaml.
    p = run("validate", "--json", str(files / "bad.yaml"), str(files / "good.yaml"))
    bad, good = json.loads(p.stdout)["falco_load_results"]
    assert not bad["successful"] and not good["successful"]
    assert good["errors"][0]["context"]["locations"][-1]["position"]["name"].endswith("bad.yaml")


def test_validate_missing_file_and_malformed_yaml(tmp_path):
    p = run("validate", str(tmp_path / "missing.yaml"))
    assert p.returncode == 1 and "LOAD_ERR_FILE_READ" in p.stdout
    (tmp_path / "m.yaml").write_text("- rule: [unterminated\n")
    p = run("validate", str(tmp_path / "m.yaml"))
    assert p.returncode == 1 and "LOAD_ERR_YAML_PARSE" in p.stdout and "Traceback" not in p.stderr
    assert f"{tmp_path / 'm.yaml'}:2:1:" in p.stdout


def test_validate_needs_a_file():
    p = run("validate")
    assert p.returncode == 2


def test_describe_text_and_json(files):
    p = run("describe", "-r", str(files / "good.yaml"))
    assert p.returncode == 0, p.stderr
    assert "Rule: shell" in p.stdout
    assert "event types: execve, execveat" in p.stdout
    assert "condition: evt.type in (execve, execveat) and proc.name in (bash, sh)" in p.stdout
    assert "macros: spawned" in p.stdout and "lists: shells" in p.stdout
    p = run("describe", "--json", "-r", str(files / "good.yaml"), "shell")
    doc = json.loads(p.stdout)
    (r,) = doc["rules"]
    assert r["name"] == "shell" and r["priority"].upper() == "WARNING" and r["enabled"] is True
    assert r["event_types"] == ["execve", "execveat"] and r["tags"] == ["shell"]
    assert r["fields"] == ["evt.type", "proc.name"]
    assert doc["enabled_event_types"] == ["execve", "execveat"]


def test_describe_unknown_rule_and_invalid_file(files):
    p = run("describe", "-r", str(files / "good.yaml"), "nope")
    assert p.returncode == 1 and "no rule named 'nope'" in p.stderr
    p = run("describe", "-r", str(files / "good.yaml"), str(files / "bad.yaml"))
    assert p.returncode == 1 and "-r " in p.stderr  # hint: a file given as a rule name
    p = run("describe", "-r", str(files / "bad.yaml"))
    assert p.returncode == 1 and "LOAD_ERR_COMPILE_CONDITION" in p.stderr


def test_describe_selections_and_min_priority(files):
    p = run("describe", "--json", "-r", str(files / "good.yaml"), "--disable-tag", "shell")
    doc = json.loads(p.stdout)
    assert doc["rules"][0]["enabled"] is False and doc["rules"][0]["enabled_in_file"] is True
    assert doc["enabled_event_types"] == []
    p = run("describe", "--json", "-r", str(files / "good.yaml"), "--disable", "*", "--enable", "sh*")
    assert json.loads(p.stdout)["rules"][0]["enabled"] is True
    p = run("describe", "--json", "-r", str(files / "good.yaml"), "--min-priority", "error")
    assert json.loads(p.stdout)["rules"][0]["enabled"] is False
    p = run("describe", "-r", str(files / "good.yaml"), "--min-priority", "loud")
    assert p.returncode == 2 and "unknown priority" in p.stderr
