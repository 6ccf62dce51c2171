"""`workload-agent patch {cfn,taskdef,k8s} FILE`: instrument infrastructure code.

Exit status: 0 done (or, with --check, nothing left to instrument), 1 input we cannot
patch (every problem is listed), 2 usage, 3 --check found something not instrumented.
"""
from __future__ import annotations

import argparse
import os
import sys

EXIT_ERROR = 1
EXIT_CHECK = 3


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "patch", help="instrument CloudFormation templates, ECS task definitions, Kubernetes manifests",
        description="Make /opt/draios/bin/instrument the entrypoint of every selected container, "
                    "add the agent sidecar (ECS) or init container (Kubernetes). Idempotent.")
    sub = p.add_subparsers(dest="patch_kind", metavar="KIND")
    sub.required = True
    for kind, helptext in (("cfn", "a CloudFormation template (YAML or JSON)"),
                           ("taskdef", "an ECS task definition JSON (register input or describe output)"),
                           ("k8s", "Kubernetes manifests (multi-document YAML or JSON)")):
        sp = sub.add_parser(kind, help=helptext, description=f"Instrument {helptext}.")
        _add_options(sp, kind)
        sp.set_defaults(func=run, patch_kind=kind)


def _add_options(p: argparse.ArgumentParser, kind: str) -> None:
    from .core import DEFAULT_AGENT_IMAGE, DEFAULT_SIDECAR, INSTRUMENT

    p.add_argument("file", metavar="FILE", help="input file ('-' for stdin)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", metavar="OUT", help="write the result here (default: stdout)")
    out.add_argument("--in-place", action="store_true", help="rewrite FILE")
    out.add_argument("--check", action="store_true",
                     help=f"write nothing; exit {EXIT_CHECK} if something is not instrumented yet")
    p.add_argument("--diff", action="store_true", help="print a unified diff of the change instead of the result")

    a = p.add_argument_group("agent")
    a.add_argument("--agent-image", default=DEFAULT_AGENT_IMAGE, help="image holding /opt/draios (default %(default)s)")
    a.add_argument("--sidecar-name", default=DEFAULT_SIDECAR,
                   help="name of the sidecar / init container (default %(default)s)")
    a.add_argument("--instrument", default=INSTRUMENT, help="path of instrument inside containers (default %(default)s)")
    a.add_argument("--no-ptrace-cap", dest="add_ptrace_cap", action="store_false",
                   help="do not add SYS_PTRACE (e.g. where the runtime's seccomp profile allows ptrace anyway)")

    e = p.add_argument_group("agent environment")
    e.add_argument("--orchestrator", metavar="HOST", help="orchestrator address")
    e.add_argument("--orchestrator-port", metavar="PORT", type=int)
    k = e.add_mutually_exclusive_group()
    k.add_argument("--access-key", metavar="KEY", help="access key as a plain value (visible in the definition)")
    k.add_argument("--access-key-secret", metavar="REF",
                   help="access key from a secret: a Secrets Manager / SSM ARN (ECS), SECRET:KEY (Kubernetes)")
    e.add_argument("--logging", metavar="LEVEL", help="agent log level")
    e.add_argument("--env", metavar="NAME=VALUE", action="append", default=[], help="extra variable (repeatable)")

    s = p.add_argument_group("sidecar")
    s.add_argument("--sidecar-cpu", type=int, metavar="UNITS", help="CPU units (1024 = one vCPU)")
    s.add_argument("--sidecar-memory", type=int, metavar="MIB", help="memory limit in MiB")
    if kind != "k8s":
        s.add_argument("--sidecar-log-group", metavar="GROUP", help="send the sidecar's output to awslogs")
        s.add_argument("--sidecar-log-region", metavar="REGION", help="awslogs region (required with a log group)")
        s.add_argument("--sidecar-log-stream-prefix", metavar="PREFIX", default="workload-agent")
        s.add_argument("--sidecar-repository-credentials", metavar="ARN",
                       help="secret with credentials for a private agent image")

    sel = p.add_argument_group("selection")
    sel.add_argument("--opt-in", action="store_true",
                     help="only patch tasks/workloads tagged workload-agent-include or kilt-include")
    sel.add_argument("--include-container", action="append", default=[], metavar="NAME",
                     help="only patch these containers (repeatable)")
    sel.add_argument("--exclude-container", action="append", default=[], metavar="NAME",
                     help="never patch these containers (repeatable)")
    if kind != "k8s":
        sel.add_argument("--include-firelens", action="store_true", help="also wrap FireLens log routers")
    if kind == "cfn":
        sel.add_argument("--any-launch-type", action="store_true",
                         help="patch every task definition, not only those requiring FARGATE")

    i = p.add_argument_group("images")
    i.add_argument("--image-config", action="append", default=[], metavar="IMAGE=FILE",
                   help="ENTRYPOINT/CMD of IMAGE (or of the container named IMAGE): docker inspect output, "
                        "an OCI image config or {\"Entrypoint\": [...], \"Cmd\": [...]} (repeatable)")
    i.add_argument("--docker-inspect", action="store_true",
                   help="ask the local docker for images not given with --image-config")
    i.add_argument("--registry-lookup", action="store_true",
                   help="then ask the image's registry (anonymous pull; the task's architecture)")
    i.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                   help="talk plain HTTP to this registry (repeatable)")
    p.add_argument("--strict", action="store_true", help="treat warnings (e.g. a replaced user variable) as errors")


def build_config(args):
    from .core import PatchConfig, PatchError, recipe_env

    extra = []
    for spec in args.env:
        name, sep, value = spec.partition("=")
        if not sep or not name:
            raise PatchError(f"--env {spec!r}: expected NAME=VALUE")
        extra.append((name, value))
    env = recipe_env(args.orchestrator, args.orchestrator_port, args.access_key, args.access_key_secret,
                     args.logging, extra)
    log = None
    if getattr(args, "sidecar_log_group", None):
        if not args.sidecar_log_region:
            raise PatchError("--sidecar-log-group needs --sidecar-log-region")
        log = {"logDriver": "awslogs", "options": {
            "awslogs-group": args.sidecar_log_group, "awslogs-region": args.sidecar_log_region,
            "awslogs-stream-prefix": args.sidecar_log_stream_prefix}}
    return PatchConfig(
        agent_image=args.agent_image, sidecar_name=args.sidecar_name, instrument=args.instrument, env=env,
        sidecar_cpu=args.sidecar_cpu, sidecar_memory=args.sidecar_memory, sidecar_log_configuration=log,
        sidecar_repository_credentials=getattr(args, "sidecar_repository_credentials", None),
        add_ptrace_cap=args.add_ptrace_cap, opt_in=args.opt_in, include_containers=args.include_container,
        exclude_containers=args.exclude_container, include_firelens=getattr(args, "include_firelens", False),
        any_launch_type=getattr(args, "any_launch_type", False), strict=args.strict)


def patch_text(kind: str, text: str, cfg, image_configs: dict, ctx, source: str, lookup=None) -> str:
    if kind == "cfn":
        from . import cfn as mod
    elif kind == "taskdef":
        from . import taskdef as mod
    else:
        from . import k8s as mod
    return mod.patch_text(text, cfg, image_configs, ctx, source, lookup)


def _same_content(before: str, after: str, source: str) -> bool:
    from . import docio

    multi = not before.lstrip().startswith(("{", "["))
    return ([docio.plain(d) for d in docio.load(before, source, multi=multi).docs]
            == [docio.plain(d) for d in docio.load(after, source, multi=multi).docs])


def run(args) -> int:
    from .core import Context, PatchError
    from .images import Lookup, load_image_configs

    source = "<stdin>" if args.file == "-" else args.file
    try:
        if args.file == "-":
            text = sys.stdin.read()
        else:
            with open(args.file, encoding="utf-8") as fh:
                text = fh.read()
    except OSError as exc:
        print(f"workload-agent patch: {source}: {exc.strerror}", file=sys.stderr)
        return EXIT_ERROR
    except UnicodeDecodeError as exc:
        print(f"workload-agent patch: {source}: not UTF-8 text ({exc.reason} at byte {exc.start})", file=sys.stderr)
        return EXIT_ERROR
    ctx = Context(strict=args.strict, report=lambda level, m: print(f"{level}: {m}", file=sys.stderr))
    try:
        cfg = build_config(args)
        configs = load_image_configs(args.image_config)
        lookup = Lookup(args.docker_inspect, args.registry_lookup, tuple(args.insecure_registry))
        out = patch_text(args.patch_kind, text, cfg, configs, ctx, source, lookup)
    except PatchError as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_ERROR
    if args.diff:
        import difflib

        sys.stdout.writelines(difflib.unified_diff(
            text.splitlines(keepends=True), out.splitlines(keepends=True), source, source + " (instrumented)"))
    if args.check:
        if out != text and not _same_content(text, out, source):
            print(f"{source}: not fully instrumented (run without --check to patch)", file=sys.stderr)
            return EXIT_CHECK
        return 0
    if args.diff and not (args.output or args.in_place):
        return 0
    target = args.file if args.in_place else args.output
    if args.in_place and args.file == "-":
        print("workload-agent patch: --in-place needs a file, not stdin", file=sys.stderr)
        return 2
    if target:
        tmp = f"{target}.tmp-{os.getpid()}"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(out)
            os.replace(tmp, target)
        except OSError as exc:
            print(f"workload-agent patch: {target}: {exc.strerror}", file=sys.stderr)
            return EXIT_ERROR
    else:
        sys.stdout.write(out)
    return 0
