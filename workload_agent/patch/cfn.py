"""CloudFormation adapter: AWS::ECS::TaskDefinition resources of a template (YAML or JSON).

Container definitions are PascalCase here and camelCase in the core; keys are renamed
on the way in and out, except inside free-form maps (log options, Docker labels) and
inside intrinsics other than Fn::If (whose branches are data like any other).
"""
from __future__ import annotations

import copy
import re
from typing import Any, Callable

from . import core
from .core import Context, PatchConfig, PatchError, intrinsic, is_no_value, map_if

TASK_TYPE = "AWS::ECS::TaskDefinition"
# Maps whose keys are user data, not schema names (both spellings).
FREEFORM = {"Options", "options", "DockerLabels", "dockerLabels"}


def _camel(key: str) -> str:
    return key[:1].lower() + key[1:]


def _pascal(key: str) -> str:
    return key[:1].upper() + key[1:]


def rename_keys(node: Any, fn: Callable[[str], str], free: bool = False) -> Any:
    """node with every schema key passed through fn; comments and styles carried over."""
    if intrinsic(node):
        if intrinsic(node)[0] == "Fn::If":
            return map_if(node, lambda leaf: rename_keys(leaf, fn, free))
        return node
    if isinstance(node, dict):
        new = type(node)()
        renamed = {}
        for k, v in node.items():
            nk = fn(k) if isinstance(k, str) and not free else k
            renamed[k] = nk
            new[nk] = rename_keys(v, fn, free=(k in FREEFORM))
        _copy_format(node, new, renamed)
        return new
    if isinstance(node, list):
        new = type(node)()
        for v in node:
            new.append(rename_keys(v, fn, free))
        _copy_format(node, new, None)
        return new
    return node


def _copy_format(old: Any, new: Any, renamed: dict | None) -> None:
    ca = getattr(old, "ca", None)
    if ca is None:
        return
    new.ca.comment = ca.comment
    new.ca.end = ca.end
    for k, c in ca.items.items():
        new.ca.items[renamed.get(k, k) if renamed is not None else k] = c
    if old.fa.flow_style():
        new.fa.set_flow_style()
    if hasattr(old, "lc"):
        new.lc.line, new.lc.col = old.lc.line, old.lc.col


def parameter_resolver(template: dict, values: dict | None) -> Callable[[Any], "str | None"]:
    """Image value -> literal name, through !Ref parameters and simple !Sub strings."""
    params = template.get("Parameters") if isinstance(template.get("Parameters"), dict) else {}
    values = values or {}

    def param(name: str) -> str | None:
        if name in values and isinstance(values[name], str):
            return values[name]
        p = params.get(name)
        if isinstance(p, dict) and isinstance(p.get("Default"), (str, int)):
            return str(p["Default"])
        return None

    def resolve(value: Any) -> str | None:
        if isinstance(value, str) and not intrinsic(value):
            return str(value)
        i = intrinsic(value)
        if not i:
            return None
        if i[0] == "Ref" and isinstance(i[1], str):
            return param(str(i[1]))
        if i[0] == "Fn::Sub" and isinstance(i[1], str):
            missing = []

            def sub(m: re.Match) -> str:
                v = param(m.group(1))
                if v is None:
                    missing.append(m.group(1))
                    return ""
                return v

            out = re.sub(r"\$\{([^}!]+)\}", sub, str(i[1]))
            return None if missing else out
        return None

    return resolve


_ARCH = {"ARM64": "arm64", "X86_64": "amd64"}


def patch_template(template: Any, cfg: PatchConfig, image_configs: dict, ctx: Context,
                   source: str = "template", parameter_values: dict | None = None,
                   use_docker: bool = False) -> int:
    """Patch every selected task definition of template in place; returns containers wrapped.

    All problems of all resources are collected and raised together.
    """
    from .images import make_resolver

    if not isinstance(template, dict):
        raise PatchError(f"{source}: a template must be a mapping")
    resources = template.get("Resources")
    if not isinstance(resources, dict):
        raise PatchError(f"{source}: no Resources mapping")
    resolver = make_resolver(image_configs, use_docker, parameter_resolver(template, parameter_values))
    ctx = ctx.with_field_case(_pascal)
    errors: list[str] = []
    total = 0
    for logical_id, res in resources.items():
        if not isinstance(res, dict) or res.get("Type") != TASK_TYPE:
            continue
        where = f"{source}: resource {logical_id}"
        try:
            total += _patch_resource(res, cfg, resolver, ctx, where)
        except PatchError as exc:
            errors.append(str(exc))
    if errors:
        raise PatchError("\n".join(errors))
    return total


def _patch_resource(res: dict, cfg: PatchConfig, resolver, ctx: Context, where: str) -> int:
    props = res.get("Properties")
    if not isinstance(props, dict) or intrinsic(props):
        raise PatchError(f"{where}: Properties is {core.describe(props)}, expected a mapping")
    compat = props.get("RequiresCompatibilities")
    if not cfg.any_launch_type and not (isinstance(compat, list) and "FARGATE" in compat):
        return 0
    platform = props.get("RuntimePlatform")
    arch = None
    if isinstance(platform, dict) and not intrinsic(platform):
        osf = platform.get("OperatingSystemFamily")
        if isinstance(osf, str) and osf.upper().startswith("WINDOWS"):
            ctx.note(where, f"skipped: {osf} containers cannot be traced")
            return 0
        cpu = platform.get("CpuArchitecture")
        if isinstance(cpu, str):
            arch = _ARCH.get(cpu.upper(), cpu.lower())
    tags = core.parse_tags(rename_keys(props.get("Tags"), _camel), where)
    if not core.task_selected(tags, cfg):
        return 0
    if "ContainerDefinitions" not in props:
        raise PatchError(f"{where}: no ContainerDefinitions")
    from .docio import attach_tail, hoist_item_tails

    original = props["ContainerDefinitions"]
    tail = hoist_item_tails(original) if isinstance(original, list) and not intrinsic(original) else None
    containers = rename_keys(original, _camel)
    new, wrapped = core.patch_ecs_containers(containers, cfg, resolver, ctx, where, arch, tags)
    props["ContainerDefinitions"] = rename_keys(new, _pascal)
    attach_tail(props["ContainerDefinitions"], tail)
    return wrapped


def patch_text(text: str, cfg: PatchConfig, image_configs: dict, ctx: Context, source: str,
               use_docker: bool = False) -> str:
    from . import docio

    doc = docio.load(text, source)
    patch_template(doc.docs[0], cfg, image_configs, ctx, source, use_docker=use_docker)
    return doc.dump()


def patch_fragment(fragment: dict, cfg: PatchConfig, image_configs: dict, ctx: Context,
                   parameter_values: dict | None = None) -> dict:
    """The macro's view: a whole template, or a Resources-like snippet; returns a new one."""
    fragment = copy.deepcopy(fragment)
    if isinstance(fragment, dict) and "Resources" in fragment:
        patch_template(fragment, cfg, image_configs, ctx, "fragment", parameter_values)
    else:
        wrapper = {"Resources": fragment}
        patch_template(wrapper, cfg, image_configs, ctx, "fragment", parameter_values)
    return fragment


__all__ = ["patch_template", "patch_text", "patch_fragment", "rename_keys", "is_no_value"]
