"""Command-line entry points: `workload-agent <command>` and `instrument`.

Each subsystem owns its subcommand in its own module, which exposes
``register(subparsers)``; the parser is assembled here so that the `instrument`
fast path never imports the subsystems it does not use.
"""
from __future__ import annotations

import sys

# command name -> module exposing register(subparsers)
SUBCOMMANDS = {
    "run": "workload_agent.runner",
    "rules": "workload_agent.rules.cli",
    "patch": "workload_agent.patch.cli",
    "orchestrator": "workload_agent.orchestrator.cli",
    "config": "workload_agent.configuration",
    "record": "workload_agent.capture.cli",
    "replay": "workload_agent.capture.cli",
    "capture": "workload_agent.capture.cli",
}

# Subcommands owned by another package than their command's: wired here, so that layers
# point down (the rules engine does not import the capture package for `rules test`).
NESTED = {"rules": [("workload_agent.capture.ruletest", "register_test")]}


def build_parser(only: str | None = None):
    """The full parser (argparse.ArgumentParser), or (only=NAME) one with just that
    command: a command's run must not pay for importing every other subsystem."""
    import argparse
    import importlib

    from . import __version__

    parser = argparse.ArgumentParser(
        prog="workload-agent",
        description="Runtime threat detection for containers, by ptrace and Falco-syntax rules.",
    )
    parser.add_argument("--version", action="version", version=f"workload-agent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, modname in SUBCOMMANDS.items():
        if only is not None and name != only:
            continue
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            # A subsystem that has not landed yet; anything else broken must surface.
            if exc.name and modname.startswith(exc.name):
                continue
            raise
        nested = mod.register(sub)
        for nested_mod, fn in NESTED.get(name, ()):
            getattr(importlib.import_module(nested_mod), fn)(nested)
    return parser


# Commands after which the process has nothing left to do but exit (see _leave).
LEAVE_AT_ONCE = {"run"}


def main(argv: list[str] | None = None) -> int:
    as_process = argv is None   # the console script: this process ends when we return
    argv = sys.argv[1:] if argv is None else list(argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first if first in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        code = int(args.func(args) or 0)
    except BrokenPipeError:
        # `workload-agent rules fields | head`: the reader left; no traceback for that.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    if as_process and first in LEAVE_AT_ONCE:   # (args.command is run's workload argv)
        _leave(code)
    return code


def instrument_main(argv: list[str] | None = None) -> int:
    """`instrument CMD ARGS...` == `workload-agent run -- CMD ARGS...`, configured from the environment."""
    from .runner import instrument

    code = instrument(sys.argv[1:] if argv is None else argv)
    if argv is None:
        _leave(code)
    return code


def _leave(code: int) -> None:
    """End the process with ``code`` once a traced run is over, without the interpreter's
    teardown of every module and object (with the rules loaded that is a full garbage
    collection and more, some 25 ms by which the workload's end would seem later). By
    now the workload has exited, every output is closed and every agent thread is a
    daemon; the exit handlers still run and the standard streams are flushed. A thread
    that is not a daemon gets the interpreter's usual exit, which waits for it."""
    import atexit
    import os
    import threading

    main = threading.main_thread()
    if any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate()):
        return
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:   # None: started with that descriptor closed
                stream.flush()
        except (OSError, ValueError):
            pass   # a reader that left, a closed stream: as at any exit, nothing to add
    os._exit(code & 0xFF)


if __name__ == "__main__":
    sys.exit(main())
