"""Kubernetes adapter: Pods and the workloads that template them, in multi-document YAML.

An initContainer copies the agent from its image into an emptyDir volume; every app
container mounts that volume read-only at /opt/draios and runs
command=[instrument], args=its argv. Kubernetes `command` is Docker's ENTRYPOINT and
`args` its CMD, so the core's argv rule applies with those names. Opt-out and opt-in
use the task tag names as annotations on the workload or its pod template.
"""
from __future__ import annotations

from typing import Any

from . import core
from .core import Context, EnvVar, PatchConfig, PatchError

AGENT_VOLUME = "workload-agent"
INIT_MOUNT = "/mnt/workload-agent"
# kind -> path from the document to its pod spec
POD_SPEC_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "PodTemplate": ("template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def _get(node: Any, path: tuple) -> Any:
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _annotations(doc: dict, path: tuple) -> dict:
    out: dict = {}
    # the workload's own metadata, then the pod template's (which wins)
    for meta in (doc.get("metadata"), _get(doc, path[:-1] + ("metadata",))):
        if isinstance(meta, dict):
            for src in ("labels", "annotations"):
                if isinstance(meta.get(src), dict):
                    out.update({str(k): v for k, v in meta[src].items()})
    return out


def _secret_ref(value: str) -> dict:
    name, sep, key = value.partition(":")
    if not sep or not name or not key:
        raise PatchError(f"access key secret {value!r}: for Kubernetes give SECRET_NAME:KEY")
    return {"secretKeyRef": {"name": name, "key": key}}


def _millicores(units: int) -> str:
    return f"{round(units * 1000 / 1024)}m"


def init_container(cfg: PatchConfig) -> dict:
    # cp -R, not -a: run as a non-root user, busybox cp -a fails on preserving ownership;
    # modes survive either way and the bundle holds no symlinks.
    c: dict = {
        "name": cfg.sidecar_name,
        "image": cfg.agent_image,
        "command": ["/bin/cp", "-R", core.AGENT_MOUNT + "/.", INIT_MOUNT + "/"],
        "volumeMounts": [{"name": AGENT_VOLUME, "mountPath": INIT_MOUNT}],
    }
    limits = {}
    if cfg.sidecar_cpu is not None:
        limits["cpu"] = _millicores(cfg.sidecar_cpu)
    if cfg.sidecar_memory is not None:
        limits["memory"] = f"{cfg.sidecar_memory}Mi"
    if limits:
        c["resources"] = {"limits": limits, "requests": dict(limits)}
    return c


def _union_by(lst: list, key: str, item: dict, where: str, what: str) -> list:
    for i, cur in enumerate(lst):
        if isinstance(cur, dict) and cur.get(key) == item[key]:
            if any(cur.get(k) != v for k, v in item.items()):
                lst[i] = core._update(cur, item)
            return lst
    lst.append(item)
    return lst


def patch_container(c: dict, cfg: PatchConfig, resolver, arch: str | None, ctx: Context, where: str) -> dict:
    import copy

    c = copy.deepcopy(c)
    entry, args = c.get("command"), c.get("args")
    argv = core.wrapped_argv(entry, args, c.get("image"), cfg, resolver, arch, where, c.get("name", ""),
                             "command", "args")
    core.set_near(c, "command", core._like(entry, [cfg.instrument], entry), before="args")
    core.set_near(c, "args", argv, after="command")

    mounts = core._checked_list(c.get("volumeMounts"), "volumeMounts", where)
    for m in mounts:
        if isinstance(m, dict) and m.get("mountPath") == core.AGENT_MOUNT and m.get("name") != AGENT_VOLUME:
            raise PatchError(f"{where}: volume {m.get('name')!r} is already mounted at {core.AGENT_MOUNT}")
    c["volumeMounts"] = _union_by(mounts, "name",
                                  {"name": AGENT_VOLUME, "mountPath": core.AGENT_MOUNT, "readOnly": True},
                                  where, "volumeMounts")
    if cfg.add_ptrace_cap:
        sc = _mapping(c.get("securityContext"), "securityContext", where)
        caps = _mapping(sc.get("capabilities"), "securityContext.capabilities", where)
        drop = caps.get("drop")
        if isinstance(drop, list) and core.PTRACE_CAP in drop:
            ctx.warn(where, f"capabilities.drop lists {core.PTRACE_CAP}, which the agent may need")
        caps["add"] = core.union_strings(caps.get("add"), [core.PTRACE_CAP], where,
                                         "securityContext.capabilities.add")
        sc["capabilities"] = caps
        c["securityContext"] = sc
    env = c.get("env")
    env = [] if env is None else env
    new_env, _ = core.merge_env(env, None, cfg.env, ctx, where, secret_wrap=_secret_ref, combined=True)
    if new_env is not None:
        c["env"] = new_env
    return c


def _mapping(value: Any, field: str, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PatchError(f"{where}: {field} must be a mapping, not {type(value).__name__}")
    return value


def patch_pod_spec(spec: dict, cfg: PatchConfig, resolver, ctx: Context, where: str,
                   annotations: dict) -> int:
    """Patch one pod spec in place; returns the number of containers wrapped."""
    if not isinstance(spec, dict):
        raise PatchError(f"{where}: pod spec is not a mapping")
    os_name = _get(spec, ("os", "name")) or _get(spec, ("nodeSelector", "kubernetes.io/os"))
    if isinstance(os_name, str) and os_name.lower() == "windows":
        ctx.note(where, "skipped: Windows pods cannot be traced")
        return 0
    if not core.task_selected(annotations, cfg):
        return 0
    arch = _get(spec, ("nodeSelector", "kubernetes.io/arch"))
    want = core.container_filter(annotations, cfg, where)
    containers = spec.get("containers")
    if not isinstance(containers, list):
        raise PatchError(f"{where}: spec.containers must be a list")
    from .docio import attach_tail, detach_tail, hoist_item_tails

    spec_tail = detach_tail(spec)
    tail = hoist_item_tails(containers)
    try:
        return _patch_pod_spec(spec, containers, cfg, resolver, ctx, where, arch, want)
    finally:
        attach_tail(containers, tail)
        attach_tail(spec, spec_tail)


def _patch_pod_spec(spec: dict, containers: list, cfg: PatchConfig, resolver, ctx: Context, where: str,
                    arch: Any, want) -> int:
    errors: list[str] = []
    wrapped = 0
    seen: set = set()
    for i, c in enumerate(containers):
        name = c.get("name") if isinstance(c, dict) else None
        cwhere = f"{where}: container {name!r}" if name else f"{where}: container #{i}"
        if not isinstance(c, dict) or not isinstance(name, str):
            errors.append(f"{cwhere}: expected a mapping with a name")
            continue
        if name in seen:
            errors.append(f"{cwhere}: duplicate container name")
        seen.add(name)
        if name == cfg.sidecar_name:
            errors.append(f"{cwhere}: an app container has the agent's name; pick --sidecar-name")
            continue
        if not want(name):
            continue
        try:
            containers[i] = patch_container(c, cfg, resolver, arch, ctx, cwhere)
            wrapped += 1
        except PatchError as exc:
            errors.append(str(exc))
    if errors:
        raise PatchError("\n".join(errors))
    if not wrapped:
        return 0
    volumes = core._checked_list(spec.get("volumes"), "volumes", where)
    spec["volumes"] = _union_by(volumes, "name", {"name": AGENT_VOLUME, "emptyDir": {}}, where, "volumes")
    inits = core._checked_list(spec.get("initContainers"), "initContainers", where)
    desired = init_container(cfg)
    for i, cur in enumerate(inits):
        if isinstance(cur, dict) and cur.get("name") == cfg.sidecar_name:
            inits[i] = core._update(cur, desired)
            break
    else:
        inits.insert(0, desired)
    spec["initContainers"] = inits
    return wrapped


def patch_docs(docs: list, cfg: PatchConfig, image_configs: dict, ctx: Context, source: str,
               use_docker: bool = False) -> int:
    from .images import make_resolver

    resolver = make_resolver(image_configs, use_docker)
    errors: list[str] = []
    total = 0

    def visit(doc: Any, label: str) -> None:
        nonlocal total
        if not isinstance(doc, dict):
            return
        kind = doc.get("kind")
        if kind == "List" and isinstance(doc.get("items"), list):
            for j, item in enumerate(doc["items"]):
                visit(item, f"{label} item {j}")
            return
        path = POD_SPEC_PATHS.get(kind) if isinstance(kind, str) else None
        if path is None:
            return
        name = _get(doc, ("metadata", "name")) or "?"
        where = f"{source}: {label}{kind} {name}"
        spec = _get(doc, path)
        if spec is None:
            errors.append(f"{where}: no {'.'.join(path)}")
            return
        try:
            total += patch_pod_spec(spec, cfg, resolver, ctx, where, _annotations(doc, path))
        except PatchError as exc:
            errors.append(str(exc))

    for n, doc in enumerate(docs):
        visit(doc, f"document {n + 1} " if len(docs) > 1 else "")
    if errors:
        raise PatchError("\n".join(errors))
    return total


def patch_text(text: str, cfg: PatchConfig, image_configs: dict, ctx: Context, source: str,
               use_docker: bool = False) -> str:
    from . import docio

    doc = docio.load(text, source, multi=True)
    patch_docs(doc.docs, cfg, image_configs, ctx, source, use_docker)
    return doc.dump()


__all__ = ["patch_docs", "patch_text", "EnvVar"]
