"""Bad input of any shape is a PatchError with a message, never a traceback."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workload_agent.patch import cfn, cfn_macro, k8s, taskdef
from workload_agent.patch.core import Context, PatchConfig, PatchError
from workload_agent.patch.images import parse_image_config

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
keys = st.sampled_from(["Resources", "Type", "Properties", "ContainerDefinitions", "Name", "Image", "EntryPoint",
                        "Command", "Environment", "Secrets", "LinuxParameters", "Capabilities", "Add", "Drop",
                        "VolumesFrom", "Tags", "Key", "Value", "RequiresCompatibilities", "RuntimePlatform",
                        "Fn::If", "Ref", "Fn::Sub", "containerDefinitions", "name", "image", "entryPoint", "command",
                        "environment", "kind", "spec", "containers", "args", "template", "metadata", "env",
                        "volumeMounts", "initContainers", "volumes", "taskDefinition", "FirelensConfiguration"])
values = st.recursive(scalars | st.sampled_from(["AWS::ECS::TaskDefinition", "FARGATE", "Pod", "Deployment",
                                                 "/bin/sh", "AWS::NoValue", "workload-agent"]),
                      lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
                      max_leaves=30)


def _one_of_ok(fn):
    try:
        out = fn()
    except PatchError as exc:
        assert str(exc)
        return None
    assert isinstance(out, str)
    return out


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(values)
def test_cfn_any_json(data):
    cfg = PatchConfig(any_launch_type=True)
    _one_of_ok(lambda: cfn.patch_text(json.dumps(data), cfg, {}, Context(), "t.json"))


@FUZZ
@given(values)
def test_taskdef_any_json(data):
    _one_of_ok(lambda: taskdef.patch_text(json.dumps(data), PatchConfig(), {}, Context(), "t.json"))


@FUZZ
@given(values)
def test_k8s_any_json(data):
    _one_of_ok(lambda: k8s.patch_text(json.dumps(data), PatchConfig(), {}, Context(), "m.json"))


@FUZZ
@given(st.text(max_size=200))
def test_any_text(text):
    for mod in (cfn, k8s):
        _one_of_ok(lambda: mod.patch_text(text, PatchConfig(), {}, Context(), "f.yaml"))


@FUZZ
@given(values)
def test_image_config_any_json(data):
    try:
        parse_image_config(data, "x.json")
    except PatchError as exc:
        assert "x.json" in str(exc)


@FUZZ
@given(values, values)
def test_macro_any_event(fragment, params):
    resp = cfn_macro.handler({"requestId": "r", "fragment": fragment, "params": params}, None)
    assert resp["status"] in ("success", "failure") and resp["requestId"] == "r"
    if resp["status"] == "failure":
        assert resp["errorMessage"] and not resp["errorMessage"].startswith("internal error"), resp["errorMessage"]


container_keys = st.sampled_from(["Name", "Image", "EntryPoint", "Command", "Environment", "Secrets",
                                  "LinuxParameters", "VolumesFrom", "FirelensConfiguration", "Essential"])
near_container = st.builds(lambda name, argv, rest: {"Name": name, "EntryPoint": argv, **rest},
                           st.text(min_size=1, max_size=5), st.lists(st.text(max_size=5), min_size=1, max_size=3),
                           st.dictionaries(container_keys, values, max_size=4))


@FUZZ
@given(st.lists(near_container | values, max_size=4), values, st.sampled_from(["yaml", "json"]))
def test_cfn_near_valid(containers, tags, fmt):
    template = {"Resources": {"T": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
        "RequiresCompatibilities": ["FARGATE"], "Tags": tags, "ContainerDefinitions": containers}}}}
    text = json.dumps(template)
    if fmt == "yaml":
        import io

        from ruamel.yaml import YAML

        buf = io.StringIO()
        YAML().dump(template, buf)
        text = buf.getvalue()
    cfg = PatchConfig(env=[])
    out = _one_of_ok(lambda: cfn.patch_text(text, cfg, {}, Context(), "t"))
    if out is not None:
        assert _one_of_ok(lambda: cfn.patch_text(out, cfg, {}, Context(), "t")) == out


k8s_keys = st.sampled_from(["image", "command", "args", "env", "volumeMounts", "securityContext"])
# mostly valid containers (a name and an argv) with some fields anything at all
k8s_container = st.builds(lambda name, argv, rest: {"name": name, "command": argv, **rest},
                          st.text(min_size=1, max_size=5), st.lists(st.text(max_size=5), min_size=1, max_size=3),
                          st.dictionaries(k8s_keys, values, max_size=3))


@FUZZ
@given(st.lists(k8s_container | values, max_size=4), values)
def test_k8s_near_valid(containers, spec_extra):
    spec = {"containers": containers}
    if isinstance(spec_extra, dict):
        spec.update({k: v for k, v in spec_extra.items() if k != "containers"})
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}
    out = _one_of_ok(lambda: k8s.patch_text(json.dumps(doc), PatchConfig(), {}, Context(), "p.json"))
    if out is not None:
        assert _one_of_ok(lambda: k8s.patch_text(out, PatchConfig(), {}, Context(), "p.json")) == out
