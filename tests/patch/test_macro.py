"""The CloudFormation macro handler, called with synthetic events as CloudFormation sends them."""
from __future__ import annotations

import copy
import json

import patch_helpers as h
from workload_agent.patch.cfn_macro import handler

TEMPLATE = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Resources": {
        "Task": {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "RequiresCompatibilities": ["FARGATE"],
                "NetworkMode": "awsvpc",
                "Cpu": "256",
                "Memory": "512",
                "ContainerDefinitions": [
                    {"Name": "App", "Image": "busybox:latest", "EntryPoint": ["/bin/ping", "google.com"]},
                ],
            },
        },
        "Bucket": {"Type": "AWS::S3::Bucket"},
    },
}


def _event(fragment, params=None, values=None, request_id="req-1"):
    return {"accountId": "123456789012", "region": "us-east-1", "requestId": request_id,
            "transformId": "123456789012::WorkloadAgent", "fragment": fragment,
            "params": params or {}, "templateParameterValues": values or {}}


def test_success_patches_the_seed_task():
    fragment = copy.deepcopy(TEMPLATE)
    resp = handler(_event(fragment, {"AgentImage": "repo/agent:1", "Orchestrator": "orch", "OrchestratorPort": "6667",
                                     "AccessKeySecret": "arn:aws:secretsmanager:us-east-1:1:secret:k"}), None)
    assert resp["status"] == "success" and resp["requestId"] == "req-1"
    assert fragment == TEMPLATE  # the event is not modified in place
    containers = resp["fragment"]["Resources"]["Task"]["Properties"]["ContainerDefinitions"]
    app, side = containers
    assert app["EntryPoint"] == [h.INSTRUMENT] and app["Command"] == ["/bin/ping", "google.com"]
    assert {"Name": "WORKLOAD_AGENT_ORCHESTRATOR_PORT", "Value": "6667"} in app["Environment"]
    assert app["Secrets"] == [{"Name": "WORKLOAD_AGENT_ACCESS_KEY",
                               "ValueFrom": "arn:aws:secretsmanager:us-east-1:1:secret:k"}]
    assert side == {"Name": "workload-agent", "Image": "repo/agent:1", "Essential": False}
    assert resp["fragment"]["Resources"]["Bucket"] == TEMPLATE["Resources"]["Bucket"]
    # the result is valid CloudFormation
    assert not h.cfn_lint(json.dumps(resp["fragment"]))
    # and feeding it back changes nothing (idempotent)
    again = handler(_event(resp["fragment"], {"AgentImage": "repo/agent:1", "Orchestrator": "orch",
                                              "OrchestratorPort": "6667",
                                              "AccessKeySecret": "arn:aws:secretsmanager:us-east-1:1:secret:k"}))
    assert again["status"] == "success" and again["fragment"] == resp["fragment"]


def test_image_from_template_parameter_values(monkeypatch):
    fragment = copy.deepcopy(TEMPLATE)
    c = fragment["Resources"]["Task"]["Properties"]["ContainerDefinitions"][0]
    fragment["Parameters"] = {"Image": {"Type": "String"}}
    c["Image"] = {"Ref": "Image"}
    del c["EntryPoint"]
    params = {"ImageConfigs": {"registry/app:7": {"Entrypoint": ["/app"], "Cmd": ["serve"]}}}
    resp = handler(_event(fragment, params, {"Image": "registry/app:7"}))
    assert resp["status"] == "success", resp.get("errorMessage")
    app = resp["fragment"]["Resources"]["Task"]["Properties"]["ContainerDefinitions"][0]
    assert app["Command"] == ["/app", "serve"] and app["Image"] == {"Ref": "Image"}
    # without the parameter value the image is unknown: a failure naming resource and container
    resp = handler(_event(copy.deepcopy(fragment), params, {}))
    assert resp["status"] == "failure"
    assert "resource Task" in resp["errorMessage"] and "'App'" in resp["errorMessage"]
    assert "Ref(Image)" in resp["errorMessage"]


def test_defaults_from_lambda_environment(monkeypatch):
    monkeypatch.setenv("AGENT_IMAGE", "env/agent:2")
    monkeypatch.setenv("SIDECAR_NAME", "Agent")
    resp = handler(_event(copy.deepcopy(TEMPLATE)))
    side = resp["fragment"]["Resources"]["Task"]["Properties"]["ContainerDefinitions"][-1]
    assert side["Name"] == "Agent" and side["Image"] == "env/agent:2"
    # a macro parameter beats the environment
    resp = handler(_event(copy.deepcopy(TEMPLATE), {"AgentImage": "param/agent:3"}))
    assert resp["fragment"]["Resources"]["Task"]["Properties"]["ContainerDefinitions"][-1]["Image"] == "param/agent:3"


def test_resources_snippet_fragment():
    """Fn::Transform inside Resources hands over a snippet, not a template."""
    snippet = copy.deepcopy(TEMPLATE["Resources"])
    resp = handler(_event(snippet))
    assert resp["status"] == "success"
    assert resp["fragment"]["Task"]["Properties"]["ContainerDefinitions"][0]["EntryPoint"] == [h.INSTRUMENT]


def test_failures_report_every_problem_and_keep_the_fragment():
    fragment = copy.deepcopy(TEMPLATE)
    fragment["Resources"]["Other"] = copy.deepcopy(fragment["Resources"]["Task"])
    fragment["Resources"]["Task"]["Properties"]["ContainerDefinitions"][0]["EntryPoint"] = "ping google.com"
    fragment["Resources"]["Other"]["Properties"]["ContainerDefinitions"][0]["Command"] = {"Ref": "Cmd"}
    del fragment["Resources"]["Other"]["Properties"]["ContainerDefinitions"][0]["EntryPoint"]
    resp = handler(_event(fragment, request_id="req-9"))
    assert resp["status"] == "failure" and resp["requestId"] == "req-9"
    assert resp["fragment"] == fragment
    msg = resp["errorMessage"]
    assert "resource Task: container 'App': EntryPoint is a string" in msg
    assert "resource Other: container 'App': Command is Ref(Cmd)" in msg


def test_bad_parameters_and_events_fail_cleanly():
    resp = handler(_event(copy.deepcopy(TEMPLATE), {"AgentImg": "typo"}))
    assert resp["status"] == "failure" and "AgentImg" in resp["errorMessage"]
    resp = handler(_event(copy.deepcopy(TEMPLATE), {"SidecarCpu": "lots"}))
    assert resp["status"] == "failure" and "SidecarCpu" in resp["errorMessage"]
    resp = handler({"requestId": "r"})
    assert resp == {"requestId": "r", "status": "failure", "fragment": None, "errorMessage": "event has no fragment"}
    resp = handler(_event("not a template"))
    assert resp["status"] == "failure" and resp["errorMessage"]


def test_strict_turns_a_replaced_user_variable_into_a_failure():
    fragment = copy.deepcopy(TEMPLATE)
    fragment["Resources"]["Task"]["Properties"]["ContainerDefinitions"][0]["Environment"] = [
        {"Name": "WORKLOAD_AGENT_LOGGING", "Value": "debug"}]
    ok = handler(_event(copy.deepcopy(fragment), {"Logging": "info"}))
    assert ok["status"] == "success"
    strict = handler(_event(copy.deepcopy(fragment), {"Logging": "info", "Strict": "true"}))
    assert strict["status"] == "failure" and "WORKLOAD_AGENT_LOGGING" in strict["errorMessage"]


def test_macro_needs_only_the_standard_library():
    """The Lambda package is just workload_agent/: no ruamel, PyYAML or boto imported."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    code = (
        "import sys\n"
        "for m in ('ruamel', 'yaml', 'botocore', 'boto3', 'cffi'):\n"
        "    sys.modules[m] = None\n"
        "import json\n"
        "from workload_agent.patch.cfn_macro import handler\n"
        f"event = {{'requestId': 'r', 'fragment': {json.dumps(TEMPLATE)}, 'params': {{}}}}\n"
        "r = handler(event, None)\n"
        "print(r['status'], r.get('errorMessage', ''))\n"
    )
    out = subprocess.run([sys.executable, "-c", code.replace("true", "True").replace("false", "False")],
                         cwd=repo, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "success", out.stdout + out.stderr
