"""Hypothesis properties: patching is idempotent and keeps the workload's argv (Docker's rule)."""
from __future__ import annotations

import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import patch_helpers as h
from workload_agent.patch import cfn, k8s, taskdef
from workload_agent.patch.core import Context, ImageConfig, PatchConfig, recipe_env

IMAGES = {
    "with-entry": ImageConfig(["/entry", "x"], ["cmd"]),
    "cmd-only": ImageConfig(None, ["/bin/cmd", "-v"]),
    "entry-only": ImageConfig(["/only"], None),
}
CFG = PatchConfig(env=recipe_env("orch.local", 6443, logging="debug", extra=[("EXTRA", "1")]))

# argv elements: anything a YAML or JSON writer might mangle, except the YAML 1.1 line
# breaks NEL/LS/PS, which ruamel.yaml itself does not round-trip (its own dump of '\x85'
# reads back as ' '), so no YAML input could carry them to us intact.
arg = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x85\u2028\u2029"), max_size=12)
argv = st.lists(arg, min_size=1, max_size=4)


@st.composite
def container(draw, name):
    c = {"name": name, "image": draw(st.sampled_from(sorted(IMAGES)))}
    if draw(st.booleans()):
        c["entryPoint"] = draw(argv)
    if draw(st.booleans()):
        c["command"] = draw(argv)
    if draw(st.booleans()):
        c["environment"] = [{"name": n, "value": draw(arg)}
                            for n in draw(st.lists(st.sampled_from(["A", "B", "EXTRA"]), unique=True))]
    return c


@st.composite
def task(draw):
    names = draw(st.lists(st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True), min_size=1, max_size=4,
                          unique=True).filter(lambda ns: "workload-agent" not in ns))
    return {"family": "t", "requiresCompatibilities": ["FARGATE"],
            "containerDefinitions": [draw(container(n)) for n in names]}


def docker_argv(c: dict, entry_key="entryPoint", cmd_key="command") -> list:
    """The spec's rule, written independently of the code under test."""
    img = IMAGES[c["image"]]
    if c.get(entry_key):
        return c[entry_key] + c.get(cmd_key, [])
    if c.get(cmd_key):
        return (img.entrypoint or []) + c[cmd_key]
    return (img.entrypoint or []) + (img.cmd or [])


def _ctx():
    return Context()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(task())
def test_taskdef_idempotent_and_argv_kept(td):
    text = json.dumps(td, indent=2) + "\n"
    once = taskdef.patch_text(text, CFG, IMAGES, _ctx(), "t.json")
    twice = taskdef.patch_text(once, CFG, IMAGES, _ctx(), "t.json")
    assert once == twice
    out = {c["name"]: c for c in json.loads(once)["containerDefinitions"]}
    for c in td["containerDefinitions"]:
        got = out[c["name"]]
        assert got["entryPoint"] == [h.INSTRUMENT]
        assert got["command"] == docker_argv(c)
        env = {e["name"]: e["value"] for e in got["environment"]}
        assert env["WORKLOAD_AGENT_ORCHESTRATOR"] == "orch.local" and env["EXTRA"] == "1"
        assert len(got["environment"]) == len(env)  # one entry per name
        assert got["linuxParameters"]["capabilities"]["add"].count("SYS_PTRACE") == 1
    assert list(out).count("workload-agent") == 1
    h.validate_register_input(json.loads(once))


def _yaml_text(data) -> str:
    from ruamel.yaml import YAML

    y = YAML()
    y.width = 4096
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()


def _pascal(c: dict) -> dict:
    out = {k[0].upper() + k[1:]: v for k, v in c.items()}
    if "Environment" in out:
        out["Environment"] = [{"Name": e["name"], "Value": e["value"]} for e in out["Environment"]]
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(task(), st.booleans())
def test_cfn_yaml_idempotent_and_argv_kept(td, as_json):
    template = {"Resources": {"T": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
        "RequiresCompatibilities": ["FARGATE"],
        "ContainerDefinitions": [_pascal(c) for c in td["containerDefinitions"]]}}}}
    text = json.dumps(template, indent=2) if as_json else _yaml_text(template)
    once = cfn.patch_text(text, CFG, IMAGES, _ctx(), "t")
    twice = cfn.patch_text(once, CFG, IMAGES, _ctx(), "t")
    assert once == twice
    (doc,) = [json.loads(once)] if as_json else h.load_yaml_all(once)
    out = {c["Name"]: c for c in doc["Resources"]["T"]["Properties"]["ContainerDefinitions"]}
    for c in td["containerDefinitions"]:
        assert out[c["name"]]["EntryPoint"] == [h.INSTRUMENT]
        assert out[c["name"]]["Command"] == docker_argv(c)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(task(), st.integers(1, 3))
def test_k8s_idempotent_and_argv_kept(td, ndocs):
    def k8s_container(c):
        out = {"name": c["name"], "image": c["image"]}
        if "entryPoint" in c:
            out["command"] = list(c["entryPoint"])  # unshared: no YAML aliases in the input
        if "command" in c:
            out["args"] = list(c["command"])
        return out

    docs = [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"d{i}"},
             "spec": {"template": {"spec": {"containers": [k8s_container(c) for c in td["containerDefinitions"]]}}}}
            for i in range(ndocs)]
    from ruamel.yaml import YAML

    y = YAML()
    y.width = 4096
    buf = io.StringIO()
    y.dump_all(docs, buf)
    text = buf.getvalue()
    once = k8s.patch_text(text, CFG, IMAGES, _ctx(), "m.yaml")
    twice = k8s.patch_text(once, CFG, IMAGES, _ctx(), "m.yaml")
    assert once == twice
    got_docs = h.load_yaml_all(once)
    assert len(got_docs) == ndocs
    for doc in got_docs:
        spec = doc["spec"]["template"]["spec"]
        out = {c["name"]: c for c in spec["containers"]}
        for c in td["containerDefinitions"]:
            assert out[c["name"]]["command"] == [h.INSTRUMENT]
            assert out[c["name"]]["args"] == docker_argv(c)
        assert [i["name"] for i in spec["initContainers"]] == ["workload-agent"]
