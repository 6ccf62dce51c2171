"""CloudFormation macro: `handler(event, context)` for an AWS Lambda function.

The macro contract: CloudFormation sends {requestId, fragment, params,
templateParameterValues, ...} and expects {requestId, status, fragment} back, with
status "failure" and an errorMessage when the template cannot be instrumented. Every
problem of every resource is reported; nothing is swallowed into a success.

Settings come from the macro's Parameters (`Transform: {Name: WorkloadAgent,
Parameters: {AgentImage: ...}}`) and, as defaults, from the function's environment
variables of the same name in UPPER_SNAKE_CASE (AgentImage -> AGENT_IMAGE).
"""
from __future__ import annotations

import os
import re
from typing import Any

# parameter name -> kind; one table drives both the parameters and their environment defaults
PARAMETERS = {
    "AgentImage": "str", "SidecarName": "str", "Instrument": "str",
    "Orchestrator": "str", "OrchestratorPort": "int", "AccessKey": "str", "AccessKeySecret": "str",
    "Logging": "str", "SidecarCpu": "int", "SidecarMemory": "int", "SidecarLogGroup": "str",
    "SidecarLogRegion": "str", "SidecarLogStreamPrefix": "str", "SidecarRepositoryCredentials": "str",
    "OptIn": "bool", "AnyLaunchType": "bool", "IncludeFirelens": "bool", "AddPtraceCap": "bool",
    "Strict": "bool", "IncludeContainers": "list", "ExcludeContainers": "list",
    "ImageConfigs": "map", "RegistryLookup": "bool",
}


def _env_name(param: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", param).upper()


def _settings(params: Any) -> dict:
    from .core import PatchError

    params = params if isinstance(params, dict) else {}
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise PatchError(f"unknown macro parameter(s): {', '.join(unknown)}; known: {', '.join(PARAMETERS)}")
    out: dict = {}
    for name, kind in PARAMETERS.items():
        value = params.get(name, os.environ.get(_env_name(name)))
        if value is None:
            continue
        try:
            if kind == "int":
                value = int(value)
            elif kind == "bool":
                if isinstance(value, str):
                    if value.lower() not in ("true", "false"):
                        raise ValueError(value)
                    value = value.lower() == "true"
                value = bool(value)
            elif kind == "list":
                if isinstance(value, str):
                    value = [v for v in re.split(r"[,:]", value) if v]
                if not isinstance(value, list):
                    raise ValueError(value)
            elif kind == "map":
                if isinstance(value, str):
                    import json

                    value = json.loads(value)
                if not isinstance(value, dict):
                    raise ValueError(value)
        except ValueError:
            raise PatchError(f"macro parameter {name}: {value!r} is not a valid {kind}") from None
        out[name] = value
    return out


def build(params: Any):
    """(PatchConfig, image configs) from macro parameters and environment defaults."""
    from .core import DEFAULT_AGENT_IMAGE, DEFAULT_SIDECAR, INSTRUMENT, PatchConfig, PatchError, recipe_env
    from .images import parse_image_config

    s = _settings(params)
    env = recipe_env(s.get("Orchestrator"), s.get("OrchestratorPort"), s.get("AccessKey"),
                     s.get("AccessKeySecret"), s.get("Logging"))
    log = None
    if s.get("SidecarLogGroup"):
        log = {"logDriver": "awslogs", "options": {
            "awslogs-group": s["SidecarLogGroup"],
            "awslogs-region": s.get("SidecarLogRegion") or {"Ref": "AWS::Region"},
            "awslogs-stream-prefix": s.get("SidecarLogStreamPrefix", "workload-agent")}}
    cfg = PatchConfig(
        agent_image=s.get("AgentImage", DEFAULT_AGENT_IMAGE), sidecar_name=s.get("SidecarName", DEFAULT_SIDECAR),
        instrument=s.get("Instrument", INSTRUMENT), env=env, sidecar_cpu=s.get("SidecarCpu"),
        sidecar_memory=s.get("SidecarMemory"), sidecar_log_configuration=log,
        sidecar_repository_credentials=s.get("SidecarRepositoryCredentials"),
        add_ptrace_cap=s.get("AddPtraceCap", True), opt_in=s.get("OptIn", False),
        include_containers=s.get("IncludeContainers", []), exclude_containers=s.get("ExcludeContainers", []),
        include_firelens=s.get("IncludeFirelens", False), any_launch_type=s.get("AnyLaunchType", False),
        strict=s.get("Strict", False))
    images = {}
    for image, conf in (s.get("ImageConfigs") or {}).items():
        if not isinstance(conf, dict):
            raise PatchError(f"macro parameter ImageConfigs: {image}: expected a mapping")
        images[image] = parse_image_config(conf, f"ImageConfigs[{image}]")
    return cfg, images


def lookup(params: Any):
    from .images import Lookup

    return Lookup(registry=_settings(params).get("RegistryLookup", False))


def handler(event: dict, context: Any = None) -> dict:
    from .cfn import patch_fragment
    from .core import Context, PatchError

    request_id = event.get("requestId") if isinstance(event, dict) else None
    try:
        if not isinstance(event, dict) or "fragment" not in event:
            raise PatchError("event has no fragment")
        cfg, images = build(event.get("params"))
        ctx = Context(strict=cfg.strict, report=lambda level, m: print(f"{level}: {m}"))
        fragment = patch_fragment(event["fragment"], cfg, images, ctx,
                                  event.get("templateParameterValues") or {}, lookup(event.get("params")))
    except PatchError as exc:
        return _failure(event, request_id, str(exc))
    except Exception as exc:  # a bug of ours must still fail the stack, with a message
        return _failure(event, request_id, f"internal error: {type(exc).__name__}: {exc}")
    return {"requestId": request_id, "status": "success", "fragment": fragment}


def _failure(event: Any, request_id: Any, message: str) -> dict:
    fragment = event.get("fragment") if isinstance(event, dict) else None
    return {"requestId": request_id, "status": "failure", "fragment": fragment, "errorMessage": message}
