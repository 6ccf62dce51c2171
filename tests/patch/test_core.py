"""The core's rules, one by one, on plain data."""
from __future__ import annotations

import pytest

from workload_agent.patch.core import (INSTRUMENT, Context, EnvVar, ImageConfig, PatchConfig, PatchError,
                                       map_if, merge_env, resolve_argv, union_strings, wrapped_argv)

NGINX = ImageConfig(["/docker-entrypoint.sh"], ["nginx", "-g", "daemon off;"])


def resolver(table):
    return lambda image, arch, name: table.get(image)


@pytest.mark.parametrize("entry, cmd, want", [
    (["/bin/sh", "-c"], ["echo"], ["/bin/sh", "-c", "echo"]),     # entrypoint + command
    (["/bin/app"], None, ["/bin/app"]),                          # entrypoint set: image CMD unused
    (None, ["nginx", "-T"], ["/docker-entrypoint.sh", "nginx", "-T"]),  # image ENTRYPOINT still applies
    (None, None, ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"]),
    ([INSTRUMENT, "/bin/app"], ["-v"], ["/bin/app", "-v"]),      # reconciled, not wrapped twice
    ([INSTRUMENT], ["/bin/app"], ["/bin/app"]),
])
def test_docker_argv_rule(entry, cmd, want):
    assert resolve_argv(entry, cmd, "nginx", INSTRUMENT, resolver({"nginx": NGINX}), None, "w") == want


@pytest.mark.parametrize("entry, cmd, image_cfg, message", [
    (None, None, ImageConfig(None, None), "has neither ENTRYPOINT nor CMD"),
    (None, None, ImageConfig([], []), "has neither ENTRYPOINT nor CMD"),
    (None, None, None, "ENTRYPOINT and CMD of 'img' is needed and unknown"),
    (None, ["x"], None, "image ENTRYPOINT of 'img' is needed"),
    ([INSTRUMENT], None, None, "but command is empty"),
    ("sleep 1", None, None, "shell form is ambiguous"),
    ({"Ref": "P"}, None, None, "entryPoint is Ref(P), which cannot be reasoned about"),
    (None, 5, None, "command must be a list"),
])
def test_argv_errors_are_clear_and_never_empty(entry, cmd, image_cfg, message):
    with pytest.raises(PatchError, match=message.replace("(", r"\(").replace(")", r"\)")) as exc:
        resolve_argv(entry, cmd, "img", INSTRUMENT, resolver({"img": image_cfg}), None, "task T: container 'c'")
    assert str(exc.value).startswith("task T: container 'c': ")


def test_nested_fn_if_in_entrypoint_and_command():
    entry = {"Fn::If": ["A", ["/a"], {"Ref": "AWS::NoValue"}]}
    cmd = {"Fn::If": ["B", ["x"], ["y"]]}
    got = wrapped_argv(entry, cmd, "nginx", PatchConfig(), resolver({"nginx": NGINX}), None, "w", "c")
    assert got == {"Fn::If": ["A",
                              {"Fn::If": ["B", ["/a", "x"], ["/a", "y"]]},
                              {"Fn::If": ["B", ["/docker-entrypoint.sh", "x"], ["/docker-entrypoint.sh", "y"]]}]}


def test_map_if_keeps_the_node_and_its_condition():
    node = {"Fn::If": ["C", 1, {"Fn::If": ["D", 2, 3]}]}
    assert map_if(node, lambda v: v * 10) == {"Fn::If": ["C", 10, {"Fn::If": ["D", 20, 30]}]}
    assert node == {"Fn::If": ["C", 1, {"Fn::If": ["D", 2, 3]}]}  # input untouched
    with pytest.raises(PatchError, match="Fn::If needs"):
        map_if({"Fn::If": ["C", 1]}, lambda v: v)


def test_union_keeps_order_and_removes_old_duplicates():
    assert union_strings(["NET_ADMIN", "SYS_PTRACE", "SYS_PTRACE"], ["SYS_PTRACE"], "w", "f") == \
        ["NET_ADMIN", "SYS_PTRACE"]
    assert union_strings(None, ["SYS_PTRACE"], "w", "f") == ["SYS_PTRACE"]
    with pytest.raises(PatchError, match="expected a list"):
        union_strings({"Ref": "Caps"}, ["SYS_PTRACE"], "w", "f")


def test_environment_merge_by_name():
    ctx = Context()
    env = [{"name": "A", "value": "1"}, {"name": "KEY", "value": "plain"}]
    secrets = [{"name": "S", "valueFrom": "arn:s"}]
    wanted = [EnvVar("A", "1"), EnvVar("KEY", secret="arn:k"), EnvVar("NEW", "n")]
    new_env, new_secrets = merge_env(env, secrets, wanted, ctx, "w")
    assert new_env == [{"name": "A", "value": "1"}, {"name": "NEW", "value": "n"}]
    assert new_secrets == [{"name": "S", "valueFrom": "arn:s"}, {"name": "KEY", "valueFrom": "arn:k"}]
    assert env == [{"name": "A", "value": "1"}, {"name": "KEY", "value": "plain"}]  # input untouched
    assert ctx.warnings == ["w: variable KEY moves from environment"]
    strict = Context(strict=True)
    with pytest.raises(PatchError, match="variable A was .* replaced by .*--strict"):
        merge_env([{"name": "A", "value": "0"}], None, [EnvVar("A", "1")], strict, "w")


def test_duplicate_container_names_are_an_error():
    from workload_agent.patch.core import patch_ecs_containers

    containers = [{"name": "a", "entryPoint": ["/a"]}, {"name": "a", "entryPoint": ["/b"]}]
    with pytest.raises(PatchError, match="container 'a': duplicate container name"):
        patch_ecs_containers(containers, PatchConfig(), None, Context(), "task T")


def test_sidecar_is_reconciled_not_duplicated():
    from workload_agent.patch.core import patch_ecs_containers

    containers = [{"name": "a", "entryPoint": ["/a"]},
                  {"name": "workload-agent", "image": "old:1", "essential": True, "memory": 64}]
    out, wrapped = patch_ecs_containers(containers, PatchConfig(agent_image="new:2"), None, Context(), "task T")
    assert wrapped == 1 and [c["name"] for c in out] == ["a", "workload-agent"]
    assert out[1] == {"name": "workload-agent", "image": "new:2", "essential": False, "memory": 64}


def test_a_moved_variable_takes_its_comment_and_leaves_the_others():
    from workload_agent.patch import docio

    text = ("env:\n"
            "  - name: A\n    value: '1'\n"
            "  # about B\n"
            "  - name: B\n    value: '2'\n"
            "  # about C\n"
            "  - name: C\n    value: '3'\n")
    doc = docio.load(text, "t.yaml")
    env, secrets = merge_env(doc.docs[0]["env"], None, [EnvVar("B", secret="arn:b")], Context(), "w")
    doc.docs[0]["env"] = env
    out = doc.dump()
    assert "# about B" not in out and "  # about C\n  - name: C" in out
