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


class _Args:
    """What parse_args gives, from quick_args."""

    def __init__(self, values: dict) -> None:
        self.__dict__.update(values)


class _Options:
    """Stands in for argparse's subparsers and for the parser they make, for a command's
    register(): it keeps the options it is given, and quick_args reads a plain command
    line with them. Everything it is not sure of (help, a value argparse might take
    otherwise, an error to report) is left to argparse, which gives the usual messages."""

    _TAKES_VALUE = {None: True, "store": True, "append": True, "store_true": False,
                    "store_false": False, "store_const": False}
    _KNOWN = {"action", "default", "dest", "type", "choices", "nargs", "const", "help", "metavar"}

    def __init__(self) -> None:
        self.options: dict = {}    # option string -> (dest, action, type, choices, const)
        self.defaults: dict = {}
        self.positional = None
        self.unsure: set = set()   # option strings left to argparse

    def add_parser(self, name, **kwargs):
        return self

    def set_defaults(self, **kwargs) -> None:
        self.defaults.update(kwargs)

    def add_argument(self, *flags, **kw) -> None:
        action = kw.get("action")
        if not flags[0].startswith("-"):
            if self.positional is not None or kw.get("nargs") != "*":
                self.unsure.add("")   # a command line this reading does not know: argparse
            self.positional = kw.get("dest", flags[0])
            return
        named = next((f for f in flags if f.startswith("--")), flags[0])   # as argparse names it
        dest = kw.get("dest") or named.lstrip("-").replace("-", "_")
        if action not in self._TAKES_VALUE or set(kw) - self._KNOWN or "nargs" in kw:
            self.unsure.update(flags)
        for flag in flags:
            self.options[flag] = (dest, action, kw.get("type"), kw.get("choices"), kw.get("const"))
        if action == "store_true":
            default = kw.get("default", False)
        elif action == "store_false":
            default = kw.get("default", True)
        else:
            default = kw.get("default")
        self.defaults.setdefault(dest, default)

    def parse(self, argv: list):
        """The namespace argparse would give for ``OPTIONS -- CMD...``, or None."""
        if "--" not in argv or "" in self.unsure or self.positional is None:
            return None
        cut = argv.index("--")
        opts, rest = argv[:cut], argv[cut + 1:]
        if "--" in rest:
            return None   # argparse's handling of a second "--" changed across versions
        values = {k: (list(v) if isinstance(v, list) else v) for k, v in self.defaults.items()}
        i = 0
        while i < len(opts):
            flag, value = opts[i], None
            if flag.startswith("--") and "=" in flag:
                flag, value = flag.split("=", 1)
            spec = self.options.get(flag)
            if spec is None or flag in self.unsure:
                return None
            dest, action, type_, choices, const = spec
            if not self._TAKES_VALUE[action]:
                if value is not None:
                    return None
                values[dest] = {"store_true": True, "store_false": False}.get(action, const)
                i += 1
                continue
            if value is None:
                i += 1
                if i >= len(opts) or opts[i].startswith("-"):
                    return None
                value = opts[i]
            if type_ is not None:
                try:
                    value = type_(value)
                except Exception:  # noqa: BLE001 - argparse says what is wrong with it
                    return None
            if choices is not None and value not in choices:
                return None
            if action == "append":
                values[dest] = (values[dest] or []) + [value]
            else:
                values[dest] = value
            i += 1
        values[self.positional] = rest
        return _Args(values)


def quick_args(argv: list):
    """The parsed `run` command line without argparse (whose import and parser building
    cost every container start some 10 ms), when it is the plain ``run [OPTIONS] -- CMD``
    form with options spelled out; None for anything else, which argparse then reads."""
    if not argv or argv[0] != "run":
        return None
    from .runner import register

    options = _Options()
    register(options)
    return options.parse(argv[1:])


# Commands after which the process has nothing left to do but exit (see _leave).
LEAVE_AT_ONCE = {"run"}


def main(argv: list[str] | None = None) -> int:
    as_process = argv is None   # the console script: this process ends when we return
    argv = sys.argv[1:] if argv is None else list(argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = None
    args = quick_args(argv)
    if args is None:
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

    threading = sys.modules.get("threading")   # not imported: no thread of its kind exists
    if threading is not None:
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
