"""The `workload-agent patch` command: outputs, exit codes, and clear errors on bad input."""
from __future__ import annotations

import io
import json
import sys

import pytest

import patch_helpers as h

SEED = h.GOLDEN / "cfn-seed" / "input.yaml"


def test_registered_with_help():
    rc, out, _ = h.run_cli(["patch", "--help"])
    assert rc == 0 and "cfn" in out and "taskdef" in out and "k8s" in out
    rc, out, _ = h.run_cli(["patch", "cfn", "--help"])
    assert rc == 0 and "--check" in out and "--image-config" in out and "--any-launch-type" in out


def test_diff_shows_the_change_and_writes_nothing(tmp_path):
    rc, out, err = h.run_cli(["patch", "cfn", str(SEED), "--diff"])
    assert rc == 0, err
    assert out.startswith("--- ") and "+          EntryPoint: [/opt/draios/bin/instrument]" in out
    assert "-          EntryPoint: [/bin/ping, google.com]" in out
    rc, out, _ = h.run_cli(["patch", "cfn", str(SEED), "--check", "--diff"])
    assert rc == 3 and "+          Command: [/bin/ping, google.com]" in out


def test_stdin_to_stdout(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(SEED.read_text()))
    rc, out, err = h.run_cli(["patch", "cfn", "-"])
    assert rc == 0, err
    assert "EntryPoint: [/opt/draios/bin/instrument]" in out


def test_missing_file_and_invalid_yaml(tmp_path):
    rc, _, err = h.run_cli(["patch", "cfn", str(tmp_path / "nope.yaml")])
    assert rc == 1 and "nope.yaml: No such file" in err and "Traceback" not in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("Resources:\n  T:\n    Type: [unclosed\n")
    rc, _, err = h.run_cli(["patch", "cfn", str(bad)])
    assert rc == 1 and f"{bad}:4:1: invalid YAML" in err, err
    badjson = tmp_path / "bad.json"
    badjson.write_text('{"family": "x",\n "containerDefinitions": [}\n')
    rc, _, err = h.run_cli(["patch", "taskdef", str(badjson)])
    assert rc == 1 and f"{badjson}:2:27: invalid JSON" in err, err


def test_taskdef_must_be_json(tmp_path):
    f = tmp_path / "td.yaml"
    f.write_text("family: x\ncontainerDefinitions: []\n")
    rc, _, err = h.run_cli(["patch", "taskdef", str(f)])
    assert rc == 1 and "must be JSON" in err


@pytest.mark.parametrize("args, message", [
    (["--env", "NOVALUE"], "--env 'NOVALUE': expected NAME=VALUE"),
    (["--sidecar-log-group", "g"], "--sidecar-log-group needs --sidecar-log-region"),
    (["--image-config", "nofile"], "expected IMAGE=FILE"),
    (["--image-config", "img=/nonexistent.json"], "No such file or directory: /nonexistent.json"),
    (["--env", "WORKLOAD_AGENT_LOGGING=x", "--logging", "info"], "variable WORKLOAD_AGENT_LOGGING is given twice"),
    # the agent's own configuration parsers check values before they are deployed
    (["--logging", "loud"], "logging 'loud': expected one of"),
    (["--orchestrator", "host:notaport"], "orchestrator 'host:notaport': bad address"),
    (["--env", "WORKLOAD_AGENT_ORCHESTRATOR_PORT=99999"], "orchestrator-port '99999'"),
])
def test_bad_options(args, message):
    rc, _, err = h.run_cli(["patch", "cfn", str(SEED), *args])
    assert rc == 1 and message in err, err


def test_access_key_value_and_secret_are_exclusive():
    rc, _, err = h.run_cli(["patch", "cfn", str(SEED), "--access-key", "a", "--access-key-secret", "b"])
    assert rc == 2 and "not allowed with" in err


def test_bad_image_config_file(tmp_path):
    f = tmp_path / "img.json"
    f.write_text(json.dumps({"Entrypoint": "not a list"}))
    rc, _, err = h.run_cli(["patch", "cfn", str(SEED), "--image-config", f"x={f}"])
    assert rc == 1 and "Entrypoint must be a list of strings" in err
    f.write_text(json.dumps({"Labels": {}}))
    rc, _, err = h.run_cli(["patch", "cfn", str(SEED), "--image-config", f"x={f}"])
    assert rc == 1 and "no Entrypoint or Cmd found" in err


def test_replaced_user_variable_warns(tmp_path):
    case = h.GOLDEN / "cfn-strict-env"
    rc, out, err = h.run_cli(["patch", "cfn", str(case / "input.yaml"), "--orchestrator", "orch.example.internal"])
    assert rc == 0
    assert "warning:" in err and "WORKLOAD_AGENT_ORCHESTRATOR was {'value': 'somewhere.else'}" in err
    assert "Value: orch.example.internal" in out and "somewhere.else" not in out


def test_k8s_windows_list_and_secret_format(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        "- apiVersion: v1\n  kind: Pod\n  metadata: {name: win}\n"
        "  spec:\n    nodeSelector: {kubernetes.io/os: windows}\n"
        "    containers: [{name: a, image: x, command: [cmd.exe]}]\n"
        "- apiVersion: v1\n  kind: Pod\n  metadata: {name: lin}\n"
        "  spec:\n    containers: [{name: a, image: x, command: [/a]}]\n")
    rc, out, err = h.run_cli(["patch", "k8s", str(f)])
    assert rc == 0, err
    assert "note:" in err and "Pod win: skipped" in err
    (doc,) = h.load_yaml_all(out)
    win, lin = doc["items"]
    assert win["spec"]["containers"][0]["command"] == ["cmd.exe"]
    assert lin["spec"]["containers"][0]["command"] == [h.INSTRUMENT]
    rc, _, err = h.run_cli(["patch", "k8s", str(f), "--access-key-secret", "just-a-name"])
    assert rc == 1 and "SECRET_NAME:KEY" in err


def test_k8s_app_container_named_like_the_agent(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
                 "  containers: [{name: workload-agent, image: x, command: [/a]}]\n")
    rc, _, err = h.run_cli(["patch", "k8s", str(f)])
    assert rc == 1 and "pick --sidecar-name" in err


def test_cfn_any_launch_type_and_no_ptrace(tmp_path):
    src = h.GOLDEN / "cfn-selection" / "input.yaml"
    rc, out, err = h.run_cli(["patch", "cfn", str(src), "--any-launch-type", "--no-ptrace-cap"])
    assert rc == 0, err
    (t,) = h.load_yaml_all(out)
    ec2 = t["Resources"]["OnEc2"]["Properties"]["ContainerDefinitions"]
    assert ec2[0]["EntryPoint"] == [h.INSTRUMENT] and ec2[-1]["Name"] == "workload-agent"
    assert "SYS_PTRACE" not in out


def test_in_place_needs_a_file(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(SEED.read_text()))
    rc, _, err = h.run_cli(["patch", "cfn", "-", "--in-place"])
    assert rc == 2 and "--in-place needs a file" in err
