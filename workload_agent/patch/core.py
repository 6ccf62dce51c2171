"""The pure patching core: ECS container definitions (camelCase keys) in, patched ones out.

Adapters (cfn.py, taskdef.py, k8s.py) translate their formats to and from this shape.
Values may be CloudFormation intrinsics, in long form ({"Ref": ...}) or short form
(ruamel tagged nodes); the core passes them through untouched unless it has to reason
about them, and then either recurses (Fn::If) or raises a PatchError naming the place.
Nothing here does I/O: image ENTRYPOINT/CMD come from an ImageResolver the caller built.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .docio import attach_tail, detach_tail
from .errors import PatchError

INSTRUMENT = "/opt/draios/bin/instrument"
AGENT_MOUNT = "/opt/draios"
DEFAULT_SIDECAR = "workload-agent"
DEFAULT_AGENT_IMAGE = "workload-agent:latest"
PTRACE_CAP = "SYS_PTRACE"

# Task-level opt-in/opt-out tags: our names first, then the ones kilt users already have.
TAG_IGNORE = ("workload-agent-ignore", "kilt-ignore")
TAG_INCLUDE = ("workload-agent-include", "kilt-include")
TAG_IGNORE_CONTAINERS = ("workload-agent-ignore-containers", "kilt-ignore-containers")
TAG_INCLUDE_CONTAINERS = ("workload-agent-include-containers", "kilt-include-containers")


@dataclass
class EnvVar:
    """One variable the recipe sets: a plain value, or a secret reference (ARN, k8s ref)."""

    name: str
    value: str | None = None
    secret: Any = None


@dataclass
class ImageConfig:
    entrypoint: list | None
    cmd: list | None
    architecture: str | None = None


@dataclass
class PatchConfig:
    agent_image: Any = DEFAULT_AGENT_IMAGE
    sidecar_name: str = DEFAULT_SIDECAR
    instrument: str = INSTRUMENT
    env: list[EnvVar] = field(default_factory=list)
    sidecar_cpu: int | None = None
    sidecar_memory: int | None = None
    sidecar_log_configuration: dict | None = None
    sidecar_repository_credentials: str | None = None
    add_ptrace_cap: bool = True
    opt_in: bool = False
    include_containers: list[str] = field(default_factory=list)
    exclude_containers: list[str] = field(default_factory=list)
    include_firelens: bool = False
    any_launch_type: bool = False
    strict: bool = False


def _setting(name: str):
    """The agent's own definition of a setting (its variable name and its parser)."""
    from ..configuration import SETTINGS

    for s in SETTINGS:
        if s.name == name:
            return s
    raise KeyError(name)


def env_name(setting: str) -> str:
    return _setting(setting).env_names[0]


def recipe_env(orchestrator: Any = None, orchestrator_port: Any = None, access_key: Any = None,
               access_key_secret: Any = None, logging: Any = None,
               extra: list[tuple[str, Any]] | None = None) -> list[EnvVar]:
    """The variables an instrumented container gets, in a stable order.

    Names and checks come from the agent's configuration module, so a value the agent
    would refuse at start (a bad log level, port or address) is refused here already.
    """
    if access_key is not None and access_key_secret is not None:
        raise PatchError("give the access key either as a value or as a secret, not both")
    out = []
    for setting, value in (("orchestrator", orchestrator), ("orchestrator_port", orchestrator_port),
                           ("access_key", access_key), ("logging", logging)):
        if value is not None:
            out.append(EnvVar(env_name(setting), _checked(setting, value)))
    if access_key_secret is not None:
        out.append(EnvVar(env_name("access_key"), secret=access_key_secret))
    from ..configuration import SETTINGS

    by_env = {n: s.name for s in SETTINGS for n in s.env_names}
    for name, value in extra or []:
        if any(v.name == name for v in out):
            raise PatchError(f"variable {name} is given twice")
        out.append(EnvVar(name, _checked(by_env[name], value) if name in by_env else value))
    return out


def _checked(setting: str, value: Any) -> Any:
    """value as the variable's text, after the agent's own parser accepted it."""
    if intrinsic(value) or not isinstance(value, (str, int)):
        return value  # a CloudFormation expression: resolved only at deploy time
    text = str(value)
    try:
        _setting(setting).parse(text)
    except ValueError as exc:
        raise PatchError(f"{setting.replace('_', '-')} {text!r}: {exc}") from None
    return text


# An image resolver: (image value, architecture or None, container name) -> ImageConfig or
# None when unknown. It may raise PatchError to explain why it is unknown.
ImageResolver = Callable[[Any, "str | None", str], "ImageConfig | None"]


class Context:
    """Where we are (for messages) and the warnings collected on the way."""

    def __init__(self, strict: bool = False, report: Callable[[str, str], None] | None = None,
                 field_case: Callable[[str], str] | None = None):
        self.strict = strict
        self._case = field_case  # how the adapter's format spells our camelCase field names
        self.warnings: list[str] = []
        self.notes: list[str] = []
        self._report = report  # (level "warning" | "note", text)

    def with_field_case(self, case: Callable[[str], str]) -> "Context":
        """The same context (shared warnings) speaking another format's field names."""
        other = copy.copy(self)
        other._case = case
        return other

    def field(self, path: str) -> str:
        """A field path as the user's format spells it (EntryPoint in CloudFormation)."""
        if not self._case:
            return path
        return ".".join(self._case(part) for part in path.split("."))

    def note(self, where: str, msg: str) -> None:
        """Something the user should know that is not a problem (e.g. a skipped task)."""
        text = f"{where}: {msg}"
        self.notes.append(text)
        if self._report:
            self._report("note", text)

    def warn(self, where: str, msg: str) -> None:
        text = f"{where}: {msg}"
        if self.strict:
            raise PatchError(text + " (--strict)")
        self.warnings.append(text)
        if self._report:
            self._report("warning", text)


# ---------------------------------------------------------------- intrinsics

def intrinsic(value: Any) -> tuple[str, Any] | None:
    """(function name, argument) if value is a CloudFormation intrinsic, else None.

    Long form {"Fn::If": [...]} / {"Ref": x} and ruamel short form (!If [...]) both
    count; short-form names are normalised to the long names.
    """
    tag = getattr(value, "tag", None)
    tagval = getattr(tag, "value", tag if isinstance(tag, str) else None)
    if tagval and isinstance(tagval, str) and tagval.startswith("!"):
        name = tagval[1:]
        if name not in ("Ref", "Condition"):
            name = "Fn::" + name
        arg = value.value if hasattr(value, "value") and not isinstance(value, (list, dict)) else value
        return name, arg
    if isinstance(value, dict) and len(value) == 1:
        (key,) = value.keys()
        if isinstance(key, str) and (key == "Ref" or key.startswith("Fn::")):
            return key, value[key]
    return None


def is_no_value(value: Any) -> bool:
    fn = intrinsic(value)
    return bool(fn and fn[0] == "Ref" and str(fn[1]) == "AWS::NoValue")


def map_if(value: Any, fn: Callable[[Any], Any]) -> Any:
    """Apply fn to every leaf of nested Fn::If branches, keeping the node's own form."""
    i = intrinsic(value)
    if i and i[0] == "Fn::If":
        args = i[1]
        if not isinstance(args, list) or len(args) != 3:
            raise PatchError("Fn::If needs [condition, value_if_true, value_if_false]")
        new_args = shallow_copy(args)  # keeps the ruamel tag on a short-form !If
        new_args[1] = map_if(args[1], fn)
        new_args[2] = map_if(args[2], fn)
        if isinstance(value, dict):
            out = shallow_copy(value)
            (key,) = value.keys()
            out[key] = new_args
            return out
        return new_args
    return fn(value)


def shallow_copy(node: Any) -> Any:
    """A new list/dict holding the same items, with ruamel's comments, style and tag.

    copy.copy() is not enough for ruamel nodes: it rebuilds a list by appending, which
    shifts the comments attached to its items.
    """
    if isinstance(node, list):
        new = type(node)()
        new.extend(node) if type(node) is list else list.extend(new, node)
    elif isinstance(node, dict):
        new = type(node)()
        for k, v in node.items():
            new[k] = v
    else:
        return copy.copy(node)
    if hasattr(node, "copy_attributes"):
        node.copy_attributes(new)
    return new


def describe(value: Any) -> str:
    i = intrinsic(value)
    if i:
        return f"{i[0]}({i[1]!s})"
    return repr(value)


# ---------------------------------------------------------------- argv

def _argv_list(value: Any, field_name: str, where: str) -> list | None:
    """The list form of an entryPoint/command value; None when unset."""
    if value is None or is_no_value(value):
        return None
    if isinstance(value, str):
        raise PatchError(
            f"{where}: {field_name} is a string ({value!r}); shell form is ambiguous, "
            f"write it as a list, e.g. [\"/bin/sh\", \"-c\", {value!r}]"
        )
    if intrinsic(value):
        raise PatchError(
            f"{where}: {field_name} is {describe(value)}, which cannot be reasoned about; "
            "write it as a list (intrinsics inside its elements are fine)"
        )
    if not isinstance(value, list):
        raise PatchError(f"{where}: {field_name} must be a list, not {type(value).__name__}")
    return value


def resolve_argv(entry: Any, cmd: Any, image: Any, instrument: str, resolver: ImageResolver | None,
                 arch: str | None, where: str, name: str = "", entry_name: str = "entryPoint",
                 cmd_name: str = "command") -> list:
    """The workload argv by Docker's rule, unwrapping an already-instrumented container."""
    e = _argv_list(entry, entry_name, where)
    c = _argv_list(cmd, cmd_name, where)
    if e and e[0] == instrument:
        # Already wrapped: reconcile, never wrap twice.
        argv = list(e[1:]) + list(c or [])
        if not argv:
            raise PatchError(f"{where}: {entry_name} is [{instrument}] but {cmd_name} is empty")
        return argv
    if e:
        return list(e) + list(c or [])
    img: ImageConfig | None = None
    need = "ENTRYPOINT" if c else "ENTRYPOINT and CMD"
    if resolver is not None:
        img = resolver(image, arch, name)
    if img is None:
        raise PatchError(
            f"{where}: {entry_name} is not set, so the image {need} of {describe(image)} is needed "
            f"and unknown; set {entry_name} (and {cmd_name}) explicitly or pass "
            f"--image-config IMAGE=FILE (IMAGE may also be the container name)"
        )
    if arch and img.architecture and _norm_arch(img.architecture) != _norm_arch(arch):
        raise PatchError(
            f"{where}: image config for {describe(image)} is for {img.architecture}, the task runs on {arch}"
        )
    if c:
        argv = list(img.entrypoint or []) + list(c)
    else:
        argv = list(img.entrypoint or []) + list(img.cmd or [])
    if argv and argv[0] == instrument:
        argv = argv[1:]  # the image embeds the agent already (COPY --from): never wrap twice
    if not argv:
        raise PatchError(f"{where}: the image {describe(image)} has neither ENTRYPOINT nor CMD, nothing to run")
    return argv


def wrapped_argv(entry: Any, cmd: Any, image: Any, cfg: PatchConfig, resolver: ImageResolver | None,
                 arch: str | None, where: str, name: str, entry_name: str = "entryPoint",
                 cmd_name: str = "command") -> Any:
    """The argv to hand to instrument; an Fn::If in either field becomes an Fn::If of argvs."""
    def leaf(e: Any, c: Any) -> Any:
        argv = resolve_argv(e, c, image, cfg.instrument, resolver, arch, where, name, entry_name, cmd_name)
        # a fresh copy of every element: a shared node would come out as a YAML alias
        return like_list(c, copy.deepcopy(argv), e)

    return map_if(entry, lambda e: map_if(cmd, lambda c: leaf(e, c)))


def _norm_arch(a: str) -> str:
    a = a.lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "arm64/v8": "arm64"}.get(a, a)


# ---------------------------------------------------------------- merges

def union_strings(existing: Any, items: Iterable[str], where: str, field_name: str) -> list:
    """Set union keeping the existing order; intrinsics in the list are left alone."""
    if existing is None or is_no_value(existing):
        out: list = []
    elif isinstance(existing, list):
        out = shallow_copy(existing)
    else:
        raise PatchError(f"{where}: {field_name} is {describe(existing)}, expected a list")
    for item in items:
        if item not in out:
            out.append(item)
        while out.count(item) > 1:  # a duplicate left by an earlier, non-idempotent tool
            del out[len(out) - 1 - out[::-1].index(item)]
    return out


def merge_env(env_list: Any, secret_list: Any, wanted: list[EnvVar], ctx: Context, where: str,
              value_key: str = "value", secret_key: str = "valueFrom",
              secret_wrap: Callable[[Any], Any] | None = None,
              combined: bool = False) -> tuple[list | None, list | None]:
    """Union of the container's variables with the recipe's, by name.

    A user variable of the same name with a different value is replaced with a warning
    (an error under --strict); a variable moves between the plain and the secret list
    when the recipe says so. With combined (Kubernetes keeps both kinds in `env`),
    env_list holds both.
    """
    same = combined
    envs = checked_list(env_list, ctx.field("env" if same else "environment"), where)
    secrets = envs if same else checked_list(secret_list, ctx.field("secrets"), where)
    for var in wanted:
        if var.secret is not None:
            target, other = secrets, (None if same else envs)
            entry = {"name": var.name, secret_key: secret_wrap(var.secret) if secret_wrap else var.secret}
        else:
            target, other = envs, (None if same else secrets)
            entry = {"name": var.name, value_key: var.value}
        if other is not None:
            for i, cur in enumerate(other):
                if isinstance(cur, dict) and cur.get("name") == var.name:
                    ctx.warn(where, f"variable {var.name} moves from "
                                    f"{'secrets' if other is secrets else 'environment'}")
                    _delete_item(other, i)
                    break
        for i, cur in enumerate(target):
            if isinstance(cur, dict) and cur.get("name") == var.name:
                if _entry_value(cur) != _entry_value(entry):
                    ctx.warn(where, f"variable {var.name} was {_entry_value(cur)!r}, "
                                    f"replaced by {_entry_value(entry)!r}")
                    target[i] = entry
                break
        else:
            target.append(entry)
    return (envs or None), (None if same else (secrets or None))


def _delete_item(lst: list, i: int) -> None:
    """del lst[i], taking the comment lines above the item with it (ruamel keeps those
    as the tail of the item before) and keeping the ones above the next item."""
    if getattr(lst, "ca", None) is None or i == 0:
        del lst[i]
        return

    detach_tail(lst[i - 1])           # the lines above item i: they go with it
    below = detach_tail(lst[i])       # the lines above item i + 1: they stay
    del lst[i]
    attach_tail(lst[i - 1], below)


def _entry_value(entry: dict) -> Any:
    return {k: v for k, v in entry.items() if k != "name"}


def checked_list(value: Any, field_name: str, where: str) -> list:
    if value is None or is_no_value(value):
        return []
    if not isinstance(value, list) or intrinsic(value):
        raise PatchError(f"{where}: {field_name} is {describe(value)}, expected a list")
    return shallow_copy(value)


# ---------------------------------------------------------------- selection

def parse_tags(tags: Any, where: str) -> dict[str, Any]:
    """{key: value} of the task's tags; keys that are intrinsics are skipped (not ours)."""
    out: dict[str, Any] = {}
    if tags is None or is_no_value(tags):
        return out
    if not isinstance(tags, list) or intrinsic(tags):
        return out
    for t in tags:
        if not isinstance(t, dict):
            continue
        key = t.get("key")
        if isinstance(key, str):
            out[key] = t.get("value")
    return out


def _names(value: Any, tag: str, where: str) -> list[str]:
    if not isinstance(value, str):
        raise PatchError(f"{where}: tag {tag} must be a literal string of colon-separated "
                         f"container names, not {describe(value)}")
    return [n for n in value.split(":") if n]


def task_selected(tags: dict[str, Any], cfg: PatchConfig) -> bool:
    if any(t in tags for t in TAG_IGNORE):
        return False
    if cfg.opt_in:
        return any(t in tags for t in TAG_INCLUDE)
    return True


def container_filter(tags: dict[str, Any], cfg: PatchConfig, where: str) -> Callable[[str], bool]:
    include = list(cfg.include_containers)
    exclude = list(cfg.exclude_containers)
    for t in TAG_INCLUDE_CONTAINERS:
        if t in tags:
            include += _names(tags[t], t, where)
    for t in TAG_IGNORE_CONTAINERS:
        if t in tags:
            exclude += _names(tags[t], t, where)

    def ok(name: str) -> bool:
        if name in exclude:
            return False
        return not include or name in include

    return ok


# ---------------------------------------------------------------- ECS containers

def sidecar_definition(cfg: PatchConfig) -> dict:
    side: dict = {"name": cfg.sidecar_name, "image": cfg.agent_image, "essential": False}
    if cfg.sidecar_cpu is not None:
        side["cpu"] = cfg.sidecar_cpu
    if cfg.sidecar_memory is not None:
        side["memory"] = cfg.sidecar_memory
    if cfg.sidecar_log_configuration:
        side["logConfiguration"] = copy.deepcopy(cfg.sidecar_log_configuration)
    if cfg.sidecar_repository_credentials:
        side["repositoryCredentials"] = {"credentialsParameter": cfg.sidecar_repository_credentials}
    return side


def patch_ecs_container(c: dict, cfg: PatchConfig, resolver: ImageResolver | None,
                        arch: str | None, ctx: Context, where: str) -> dict:
    """One app container, wrapped: argv, capability, volumesFrom, environment."""
    c = copy.deepcopy(c)
    entry, cmd = c.get("entryPoint"), c.get("command")
    argv = wrapped_argv(entry, cmd, c.get("image"), cfg, resolver, arch, where, c.get("name", ""),
                        ctx.field("entryPoint"), ctx.field("command"))
    set_near(c, "entryPoint", like_list(entry, [cfg.instrument], entry), before="command")
    set_near(c, "command", argv, after="entryPoint")

    if cfg.add_ptrace_cap:
        lp = c.get("linuxParameters")
        if lp is None or is_no_value(lp):
            lp = {}
        elif not isinstance(lp, dict) or intrinsic(lp):
            raise PatchError(f"{where}: {ctx.field('linuxParameters')} is {describe(lp)}, expected a mapping")
        caps = lp.get("capabilities")
        if caps is None or is_no_value(caps):
            caps = {}
        elif not isinstance(caps, dict) or intrinsic(caps):
            raise PatchError(f"{where}: {ctx.field('linuxParameters.capabilities')} is {describe(caps)}, "
                             "expected a mapping")
        drop = caps.get("drop")
        if isinstance(drop, list) and PTRACE_CAP in drop:
            ctx.warn(where, f"{ctx.field('capabilities.drop')} lists {PTRACE_CAP}, which the agent needs")
        caps["add"] = union_strings(caps.get("add"), [PTRACE_CAP], where, ctx.field("linuxParameters.capabilities.add"))
        lp["capabilities"] = caps
        c["linuxParameters"] = lp

    vf = checked_list(c.get("volumesFrom"), ctx.field("volumesFrom"), where)
    mine = {"sourceContainer": cfg.sidecar_name, "readOnly": True}
    for i, cur in enumerate(vf):
        if isinstance(cur, dict) and cur.get("sourceContainer") == cfg.sidecar_name:
            if cur.get("readOnly") is not True:
                vf[i] = updated(cur, mine)
            break
    else:
        vf.append(mine)
    c["volumesFrom"] = vf

    env, secrets = merge_env(c.get("environment"), c.get("secrets"), cfg.env, ctx, where)
    if env is not None:
        c["environment"] = env
    if secrets is not None:
        c["secrets"] = secrets
    return c


def patch_ecs_containers(containers: Any, cfg: PatchConfig, resolver: ImageResolver | None,
                         ctx: Context, where: str, arch: str | None = None,
                         tags: dict[str, Any] | None = None) -> tuple[Any, int]:
    """All container definitions of one task: (new value, number of containers wrapped).

    The list itself, or any element of it, may be an Fn::If; each branch is patched.
    Raises PatchError listing every problem of the task, not just the first.
    """
    want = container_filter(tags or {}, cfg, where)
    count = [0]

    def one_list(lst: Any) -> Any:
        if lst is None or is_no_value(lst):
            return lst
        if intrinsic(lst) or not isinstance(lst, list):
            raise PatchError(f"{where}: {ctx.field('containerDefinitions')} is {describe(lst)}, expected a list")
        errors: list[str] = []
        seen: list[str] = []
        state = {"wrapped": 0, "sidecar": False}

        def one_container(c: Any, i: int) -> Any:
            if c is None or is_no_value(c):
                return c
            if not isinstance(c, dict) or intrinsic(c):
                errors.append(f"{where}: container #{i} is {describe(c)}, expected a mapping")
                return c
            name = c.get("name")
            cwhere = f"{where}: container {name!r}" if isinstance(name, str) else f"{where}: container #{i}"
            if not isinstance(name, str):
                errors.append(f"{cwhere}: {ctx.field('name')} is {describe(name)}, expected a string")
                return c
            if name == cfg.sidecar_name:
                state["sidecar"] = True
                return updated(c, sidecar_definition(cfg))
            if not want(name) or (c.get("firelensConfiguration") is not None and not cfg.include_firelens):
                return c
            try:
                patched = patch_ecs_container(c, cfg, resolver, arch, ctx, cwhere)
            except PatchError as exc:
                errors.append(str(exc))
                return c
            state["wrapped"] += 1
            return patched

        out = []
        for i, c in enumerate(lst):
            if isinstance(c, dict) and not intrinsic(c) and isinstance(c.get("name"), str):
                if c["name"] in seen:
                    errors.append(f"{where}: container {c['name']!r}: duplicate container name")
                seen.append(c["name"])
            out.append(map_if(c, lambda leaf, i=i: one_container(leaf, i)))
        if errors:
            raise PatchError("\n".join(errors))
        if state["wrapped"] and not state["sidecar"]:
            out.append(sidecar_definition(cfg))
        count[0] += state["wrapped"]
        return _replace_items(lst, out)

    return map_if(containers, one_list), count[0]


def _replace_items(original: list, items: list) -> list:
    """original's list (type, comments between items) holding items."""
    new = shallow_copy(original)
    for i, item in enumerate(items):
        if i < len(new):
            if new[i] is not item:
                new[i] = item
        else:
            new.append(item)
    return new


def set_near(mapping: dict, key: str, value: Any, after: str | None = None, before: str | None = None) -> None:
    """mapping[key] = value; a new key goes next to a related one so they stay together."""
    if key in mapping or (after not in mapping and before not in mapping):
        mapping[key] = value
        return
    pos = list(mapping).index(after) + 1 if after in mapping else list(mapping).index(before)
    if hasattr(mapping, "insert"):  # ruamel CommentedMap keeps comments this way
        mapping.insert(pos, key, value)
        return
    items = list(mapping.items())
    items.insert(pos, (key, value))
    mapping.clear()
    mapping.update(items)


def updated(existing: dict, desired: dict) -> dict:
    """existing with desired's keys set, existing key order and extra keys kept."""
    out = shallow_copy(existing)
    for k, v in desired.items():
        out[k] = v
    return out


def like_list(original: Any, items: list, style: Any = None) -> Any:
    """items as a list in the style of original (or of style when original is unset).

    An unchanged list is returned as is, so comments in it survive a second run; a new
    one copies the ruamel list type and its flow style, not its comments.
    """
    if isinstance(original, list) and not intrinsic(original) and list(original) == list(items):
        return original
    template = original if isinstance(original, list) and not intrinsic(original) else style
    if isinstance(template, list) and type(template) is not list and not intrinsic(template):
        new = type(template)(items)
        fa = getattr(template, "fa", None)
        if fa is not None and fa.flow_style():
            new.fa.set_flow_style()
        return new
    return list(items)
