"""Patched outputs are accepted by the offline validators of each platform."""
from __future__ import annotations

import json

import pytest

import patch_helpers as h

OK_CASES = [c for c in h.case_dirs() if not (c / "expected.err").exists()]


def _by_kind(kind):
    return [c for c in OK_CASES if h.case_kind(c) == kind]


def _patched(case, monkeypatch) -> str:
    monkeypatch.chdir(h.GOLDEN)
    rc, out, err = h.run_cli(["patch", h.case_kind(case), str(h.case_input(case)), *h.case_args(case)])
    assert rc == 0, err
    return out


def _containers(template: dict):
    for lid, res in template["Resources"].items():
        if res.get("Type") == "AWS::ECS::TaskDefinition":
            yield lid, res["Properties"]


def _flatten_if(value):
    """Every concrete list an Fn::If tree can produce."""
    if isinstance(value, dict) and "Fn::If" in value:
        for branch in value["Fn::If"][1:]:
            yield from _flatten_if(branch)
    elif isinstance(value, dict) and value.get("Ref") == "AWS::NoValue":
        return
    else:
        yield value


@pytest.mark.parametrize("case", _by_kind("cfn"), ids=lambda c: c.name)
def test_cfn_lint_clean(case, monkeypatch):
    text = _patched(case, monkeypatch)
    before = {str(m) for m in h.cfn_lint(h.case_input(case).read_text())}
    after = [m for m in h.cfn_lint(text) if str(m) not in before]
    assert not after, "\n".join(str(m) for m in after)
    # what cfn-lint does not check: unique container names, VolumesFrom pointing at a container
    (template,) = h.load_yaml_all(text) if not text.lstrip().startswith("{") else [json.loads(text)]
    for lid, props in _containers(template):
        for defs in _flatten_if(props["ContainerDefinitions"]):
            items = [leaf for c in defs for leaf in _flatten_if(c)]
            names = [c["Name"] for c in items]
            assert len(names) == len(set(names)), (lid, names)
            for c in items:
                for vf in c.get("VolumesFrom", []):
                    assert vf["SourceContainer"] in names, (lid, c["Name"], vf)


def test_cfn_inputs_are_lint_clean_themselves():
    """So that 'no new findings' above means 'clean'."""
    for case in _by_kind("cfn"):
        if (case / "expected.err").exists():
            continue
        found = h.cfn_lint(h.case_input(case).read_text())
        assert not found, (case.name, [str(m) for m in found])


@pytest.mark.parametrize("case", _by_kind("taskdef"), ids=lambda c: c.name)
def test_taskdef_register_shape(case, monkeypatch):
    td = json.loads(_patched(case, monkeypatch))
    h.validate_register_input(td)


def test_register_keys_match_botocore():
    import botocore.session

    from workload_agent.patch.taskdef import REGISTER_KEYS

    shape = botocore.session.get_session().get_service_model("ecs").operation_model("RegisterTaskDefinition").input_shape
    # Every key the installed botocore accepts is kept; the patcher may also know keys that
    # only newer botocore releases have (a fresh CI venv gets the newest).
    newer = {"trustedExecutionConfiguration"}
    assert set(shape.members) <= set(REGISTER_KEYS)
    assert set(REGISTER_KEYS) - set(shape.members) <= newer


def test_param_validator_rejects_what_we_must_never_emit():
    """The validator is a real check: describe-only keys and a string entryPoint fail."""
    from botocore.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        h.validate_register_input({"family": "x", "revision": 3, "containerDefinitions": []})
    with pytest.raises(ParamValidationError):
        h.validate_register_input({"family": "x", "containerDefinitions": [{"name": "a", "entryPoint": "sh"}]})


@pytest.mark.parametrize("case", _by_kind("taskdef"), ids=lambda c: c.name)
def test_moto_register_describe_round_trip(case, monkeypatch):
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    td = json.loads(_patched(case, monkeypatch))
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    with moto.mock_aws():
        ecs = boto3.client("ecs", region_name="us-east-1")
        arn = ecs.register_task_definition(**td)["taskDefinition"]["taskDefinitionArn"]
        got = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    back = {c["name"]: c for c in got["taskDefinition"]["containerDefinitions"]}
    for c in td["containerDefinitions"]:
        for key in ("entryPoint", "command", "volumesFrom", "environment", "secrets", "linuxParameters"):
            if key in c:
                assert back[c["name"]][key] == c[key], (c["name"], key)
    # and what describe returns patches to the same thing again (already instrumented)
    monkeypatch.chdir(h.GOLDEN)
    again = h.GOLDEN.parent / "_describe.json"
    try:
        again.write_text(json.dumps(got, default=str))
        rc, out, err = h.run_cli(["patch", "taskdef", str(again), *h.case_args(case)])
    finally:
        again.unlink()
    assert rc == 0, err
    repatched = {c["name"]: c for c in json.loads(out)["containerDefinitions"]}
    assert list(repatched) == [c["name"] for c in td["containerDefinitions"]]
    for c in td["containerDefinitions"]:
        for key, value in c.items():
            assert repatched[c["name"]][key] == value, (c["name"], key)


K8S_MODELS = {"Pod": "V1Pod", "Deployment": "V1Deployment", "StatefulSet": "V1StatefulSet",
              "DaemonSet": "V1DaemonSet", "Job": "V1Job", "CronJob": "V1CronJob", "Service": "V1Service"}


def _k8s_object(doc: dict):
    from kubernetes import client

    api = client.ApiClient()
    try:  # kubernetes >= 35: deserialize(text, type, content_type)
        return api.deserialize(json.dumps(doc), K8S_MODELS[doc["kind"]], "application/json")
    except TypeError:
        class _Resp:
            data = json.dumps(doc)

        return api.deserialize(_Resp(), K8S_MODELS[doc["kind"]])


def _pod_spec(obj):
    kind = type(obj).__name__
    if kind == "V1Pod":
        return obj.spec
    if kind == "V1CronJob":
        return obj.spec.job_template.spec.template.spec
    return obj.spec.template.spec


@pytest.mark.parametrize("case", _by_kind("k8s"), ids=lambda c: c.name)
def test_k8s_models(case, monkeypatch):
    text = _patched(case, monkeypatch)
    docs = h.load_yaml_all(text) if not text.lstrip().startswith("{") else [json.loads(text)]
    checked = 0
    for doc in docs:
        obj = _k8s_object(doc)
        if type(obj).__name__ == "V1Service":
            continue
        spec = _pod_spec(obj)
        agent_mounted = [c for c in spec.containers
                         if any(m.mount_path == "/opt/draios" for m in (c.volume_mounts or []))]
        if not agent_mounted:
            continue
        checked += 1
        (init,) = [c for c in spec.init_containers if c.name == "workload-agent"]
        assert spec.init_containers[0] is init  # before any other init container
        vol = [v for v in spec.volumes if v.name == "workload-agent"]
        assert len(vol) == 1 and vol[0].empty_dir is not None
        assert any(m.name == "workload-agent" for m in init.volume_mounts)
        for c in agent_mounted:
            assert c.command == [h.INSTRUMENT]
            assert c.args and c.args[0] != h.INSTRUMENT
            (m,) = [m for m in c.volume_mounts if m.mount_path == "/opt/draios"]
            assert m.name == "workload-agent" and m.read_only is True
    assert checked
