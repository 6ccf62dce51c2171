"""ECS task definition adapter: register-task-definition input or describe-task-definition output.

The output is always RegisterTaskDefinition input (`aws ecs register-task-definition
--cli-input-json file://OUT`): describe-only keys (ARN, revision, status, ...) are dropped.
A file given explicitly is patched whatever its launch type; Windows tasks are skipped.
"""
from __future__ import annotations

from typing import Any

from . import core
from .core import Context, PatchConfig, PatchError

# RegisterTaskDefinition's input members (tests compare this with botocore's model).
REGISTER_KEYS = (
    "family", "taskRoleArn", "executionRoleArn", "networkMode", "containerDefinitions", "volumes",
    "placementConstraints", "requiresCompatibilities", "cpu", "memory", "tags", "pidMode", "ipcMode",
    "proxyConfiguration", "inferenceAccelerators", "ephemeralStorage", "runtimePlatform",
    "enableFaultInjection", "trustedExecutionConfiguration",
)

_ARCH = {"ARM64": "arm64", "X86_64": "amd64"}


def to_register_input(data: Any, source: str) -> dict:
    """describe output ({taskDefinition, tags}) or register input -> register input."""
    if not isinstance(data, dict):
        raise PatchError(f"{source}: expected a JSON object")
    tags = None
    if isinstance(data.get("taskDefinition"), dict):
        tags = data.get("tags")
        data = data["taskDefinition"]
    if "containerDefinitions" not in data:
        raise PatchError(f"{source}: no containerDefinitions (expected a task definition or "
                         "`aws ecs describe-task-definition --include TAGS` output)")
    out = {k: v for k, v in data.items() if k in REGISTER_KEYS}
    if tags and "tags" not in out:
        out["tags"] = tags
    return out


def patch_taskdef(data: Any, cfg: PatchConfig, image_configs: dict, ctx: Context,
                  source: str = "taskdef", lookup=None) -> tuple[dict, int]:
    from .images import make_resolver

    td = to_register_input(data, source)
    where = f"{source}: task {td.get('family', '?')}"
    platform = td.get("runtimePlatform") or {}
    osf = platform.get("operatingSystemFamily")
    if isinstance(osf, str) and osf.upper().startswith("WINDOWS"):
        ctx.note(where, f"skipped: {osf} containers cannot be traced")
        return td, 0
    arch = platform.get("cpuArchitecture")
    arch = _ARCH.get(arch.upper(), arch.lower()) if isinstance(arch, str) else None
    tags = core.parse_tags(td.get("tags"), where)
    if not core.task_selected(tags, cfg):
        return td, 0
    resolver = make_resolver(image_configs, lookup)
    td["containerDefinitions"], wrapped = core.patch_ecs_containers(
        td["containerDefinitions"], cfg, resolver, ctx, where, arch, tags)
    return td, wrapped


def patch_text(text: str, cfg: PatchConfig, image_configs: dict, ctx: Context, source: str,
               lookup=None) -> str:
    from . import docio

    doc = docio.load(text, source)
    if doc.kind != "json":
        raise PatchError(f"{source}: a task definition must be JSON")
    doc.docs[0], _ = patch_taskdef(doc.docs[0], cfg, image_configs, ctx, source, lookup)
    return doc.dump()
