"""Layered configuration: command line, then environment, then a YAML file, then defaults.

Every setting is declared once in SETTINGS; the environment names, the YAML key, the
command-line flag, the parser and the help text all come from that one table.  The
Sysdig serverless agent's variables (SYSDIG_*) are accepted as aliases so task
definitions instrumented for it keep working unchanged.

Start-up time matters (`instrument` runs in front of every container start), so this
module imports only the standard library; yaml is imported only when a config file or a
YAML extra configuration is actually given.
"""
from __future__ import annotations

import os

TYPE_CHECKING = False  # typing and dataclasses cost milliseconds at every container start
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping

ENV_PREFIX = "WORKLOAD_AGENT_"
DEFAULT_ORCHESTRATOR_PORT = 6667

LOG_LEVELS = ("silent", "fatal", "critical", "error", "warning", "info", "debug", "trace")
PRIORITIES = ("availability", "security")
TRACE_LEVEL = 5  # below logging.DEBUG, for per-syscall chatter


class ConfigError(ValueError):
    """A bad configuration value; the message names where it came from."""


# --- value parsers: (value from env string or YAML) -> typed value, or ValueError ----

def _parse_str(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError("expected a string")
    return str(value)


def _parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip(), 0)
    except ValueError:
        raise ValueError("expected an integer") from None


def _parse_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError("expected a number") from None


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected a boolean (true/false, yes/no, 1/0, on/off)")


def _parse_list(value: Any) -> list:
    """Lists come as YAML sequences or, from the environment, comma-separated."""
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    if isinstance(value, dict):
        raise ValueError("expected a list or a comma-separated string")
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return text
    parse.choices = choices  # type: ignore[attr-defined]
    return parse


def _positive(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        result = parse(value)
        if result <= 0:
            raise ValueError("must be greater than 0")
        return result
    return check


def split_host_port(text: str, default_port: int | None = None,
                    allow_port_zero: bool = False) -> tuple[str, int | None]:
    """'host', 'host:port', '[v6]:port' or bare 'v6' -> (host, port or default).

    allow_port_zero: for listening addresses, where 0 means "any free port".
    """
    text = text.strip()
    if not text:
        raise ValueError("empty address")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad address {text!r}: expected [IPv6]:PORT")
        port_text = rest[1:] if rest else ""
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:  # no colon, or a bare IPv6 address
        host, port_text = text, ""
    if not host:
        raise ValueError(f"bad address {text!r}: no host")
    if "[" in host or "]" in host:   # nothing could write such a host back
        raise ValueError(f"bad address {text!r}: brackets go around an IPv6 address only, "
                         "as [::1]:PORT")
    if not port_text:
        return host, default_port
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"bad address {text!r}: port {port_text!r} is not a number") from None
    if not (0 if allow_port_zero else 1) <= port < 65536:
        raise ValueError(f"bad address {text!r}: port {port} out of range 1-65535")
    return host, port


def _parse_address(value: Any) -> str:
    text = _parse_str(value).strip()
    split_host_port(text)  # validate only; the port may come from orchestrator_port
    return text


def _parse_addresses(value: Any) -> str:
    """One address or several, comma-separated (a YAML list works too)."""
    parts = _parse_list(value)
    if not parts:
        raise ValueError("empty address")
    return ",".join(_parse_address(p) for p in parts)


def _parse_alerts_to(value: Any) -> str:
    text = _parse_str(value).strip()
    if not text:
        raise ValueError("expected stdout, stderr, a file path or an http(s):// URL")
    if text.startswith(("http://", "https://")):
        from .outputs.falco_http import parse_url  # only when a URL is given: start-up time
        parse_url(text)
    return text


def _parse_port(value: Any) -> int:
    port = _parse_int(value)
    if not 0 < port < 65536:
        raise ValueError("expected a port number 1-65535")
    return port


class Setting:
    """One configuration setting; the single source of its names, parser and help."""

    __slots__ = ("name", "parse", "default", "help", "env", "secret", "flag", "metavar")

    def __init__(self, name: str, parse: Callable[[Any], Any], default: Any, help: str,
                 env: tuple = (), secret: bool = False, flag: bool = True,
                 metavar: str | None = None):
        self.name = name
        self.parse = parse            # env string or YAML value -> typed value, or ValueError
        self.default = default
        self.help = help
        self.env = env                # alias environment names, after ours
        self.secret = secret
        self.flag = flag              # exposed as --name-with-dashes by add_arguments
        self.metavar = metavar

    @property
    def env_names(self) -> tuple:
        return (ENV_PREFIX + self.name.upper(),) + self.env

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting("config", _parse_str, None,
            "YAML configuration file (flat mapping of setting names to values)",
            metavar="FILE"),
    Setting("priority", _choice(*PRIORITIES), "availability",
            "what an agent failure does (rules or config that do not load, output unreachable, "
            "tracing unavailable): availability starts the workload anyway, degraded and saying "
            "so; security refuses to start it. Security also never drops events: the workload "
            "waits for the agent when the event ring is full",
            env=("SYSDIG_PRIORITY",)),
    Setting("logging", _choice(*LOG_LEVELS), "info",
            "agent log level", env=("SYSDIG_LOGGING",)),
    Setting("orchestrator", _parse_addresses, None,
            "orchestrator address HOST[:PORT], or several comma-separated to fail over between; "
            "unset = no orchestrator, alerts on stdout only",
            env=("SYSDIG_ORCHESTRATOR",), metavar="HOST[:PORT]"),
    Setting("orchestrator_port", _parse_port, DEFAULT_ORCHESTRATOR_PORT,
            "orchestrator port when the address has none",
            env=("SYSDIG_ORCHESTRATOR_PORT",), metavar="PORT"),
    Setting("access_key", _parse_str, None,
            "key the orchestrator requires from agents", env=("SYSDIG_ACCESS_KEY",),
            secret=True, metavar="KEY"),
    Setting("tls", _parse_bool, True,
            "use TLS to the orchestrator; plaintext only when set to false", flag=False),
    Setting("tls_ca", _parse_str, None,
            "CA bundle (PEM) that the orchestrator's certificate must chain to; "
            "unset = system trust store", metavar="FILE"),
    Setting("attach_foreign", _choice("trace", "alert", "never"), "trace",
            "processes that enter the container from outside the workload (docker exec, "
            "ECS Exec): trace attaches to them and follows their children, alert only "
            "reports them, never ignores them (active when the agent is the container's init)"),
    Setting("rules", _parse_list, [],
            "rules files or directories (comma-separated in the environment); "
            "empty = the built-in default ruleset", metavar="PATHS"),
    Setting("stdout", _parse_bool, True,
            "also print alerts on stdout when an orchestrator is configured", flag=False),
    Setting("alerts_to", _parse_alerts_to, None,
            "where alerts go: stdout (default), stderr, a file, or http(s)://HOST[:PORT]/PATH "
            "to POST each one as Falco JSON (Falco's http_output; falcosidekick accepts it), "
            "buffered and retried; tls_ca applies to https",
            metavar="stdout|stderr|PATH|URL"),
    Setting("output_format", _choice("text", "json"), "text",
            "stdout alert format: text or Falco-compatible JSON lines"),
    Setting("agent_id", _parse_str, None,
            "agent identity sent to the orchestrator; unset = derived from task metadata "
            "or hostname and pid", metavar="ID"),
    Setting("buffer_size", _positive(_parse_int), 10000,
            "maximum unacknowledged alerts kept for resend; the oldest are dropped beyond it",
            metavar="N"),
    Setting("buffer_bytes", _positive(_parse_int), 8 << 20,
            "memory bound of the unacknowledged alerts, in bytes (encoded); beyond it they go to "
            "spill_file when set, else the oldest are dropped", metavar="BYTES"),
    Setting("spill_file", _parse_str, None,
            "file where unacknowledged alerts are kept, so they survive memory pressure",
            metavar="FILE"),
    Setting("flush_timeout", _positive(_parse_float), 5.0,
            "seconds to keep delivering buffered alerts at shutdown", metavar="SECONDS"),
    Setting("heartbeat_interval", _positive(_parse_float), 10.0,
            "seconds between heartbeats to the orchestrator (and lines in the metrics file)",
            metavar="SECONDS"),
    Setting("metrics_file", _parse_str, None,
            "file that gets one JSON line of counters (events seen, dropped, processes traced...) "
            "every heartbeat interval, so a silent agent is visible from outside", metavar="FILE"),
    Setting("self_protect", _choice("deny", "alert"), "deny",
            "signals, ptrace, process_vm_* and /proc/PID/mem opens aimed at the agent from the "
            "workload: deny (refused with EPERM, and an alert) or alert only"),
    Setting("foreign_arch", _choice("decode", "deny"), "decode",
            "syscalls through another ABI (int 0x80 on x86_64, AArch32 on aarch64): decode them, "
            "or deny them with ENOSYS and an alert"),
    Setting("tracer_cpu", _choice("follow", "any"), "follow",
            "where the tracer thread runs: follow (moves to the CPU of the process it serves, "
            "so a stop and its resume stay on one CPU) or any (the scheduler decides). The "
            "workload's own CPU affinity is never changed"),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}

# Extra configuration documents merged into the environment layer (ours wins).
EXTRA_CONF_ENV = (ENV_PREFIX + "EXTRA_CONF", "SYSDIG_EXTRA_CONF")


def _suggest(name: str) -> str:
    import difflib
    close = difflib.get_close_matches(name, BY_NAME, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Config:
    """The effective configuration: attribute access plus where each value came from."""

    def __init__(self, values: dict[str, Any], sources: dict[str, str], warnings: list[str],
                 errors: list[str] | None = None):
        self._values = values
        self._sources = sources
        self.warnings = warnings
        self.errors = errors or []  # lenient loads: bad values replaced by their defaults

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name == "orchestrator":
            return self.orchestrator_address()
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no setting {name!r}{_suggest(name)}") from None

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)

    def raw(self, name: str) -> Any:
        """The value as configured, before derivation (orchestrator without default port)."""
        return self._values[name]

    def source(self, name: str) -> str:
        """Where the value came from: 'default', 'command line (--x)', 'env NAME', 'file PATH'."""
        if name not in BY_NAME:
            raise KeyError(f"no setting {name!r}{_suggest(name)}")
        return self._sources[name]

    def orchestrator_address(self) -> str | None:
        addresses = self.orchestrator_addresses()
        if not addresses:
            return None
        return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in addresses)

    def orchestrator_host_port(self) -> tuple[str, int] | None:
        addresses = self.orchestrator_addresses()
        return addresses[0] if addresses else None

    def orchestrator_addresses(self) -> list[tuple[str, int]]:
        """Every configured orchestrator, in failover order."""
        raw = self._values.get("orchestrator")
        if not raw:
            return []
        return [split_host_port(part, self._values["orchestrator_port"])  # type: ignore[misc]
                for part in raw.split(",")]

    def log_level(self) -> int:
        """The stdlib logging level for .logging (silent = above CRITICAL)."""
        import logging
        return {
            "silent": logging.CRITICAL + 10, "fatal": logging.CRITICAL,
            "critical": logging.CRITICAL, "error": logging.ERROR,
            "warning": logging.WARNING, "info": logging.INFO,
            "debug": logging.DEBUG, "trace": TRACE_LEVEL,
        }[self._values["logging"]]

    def as_dict(self, mask_secrets: bool = True) -> dict[str, Any]:
        return {s.name: (mask(self._values[s.name]) if s.secret and mask_secrets
                         else self._values[s.name]) for s in SETTINGS}

    def explain(self) -> list[str]:
        """One line per setting: name = value  (source); secrets masked."""
        shown = self.as_dict(mask_secrets=True)
        width = max(len(s.name) for s in SETTINGS)
        lines = []
        for s in SETTINGS:
            value = shown[s.name]
            text = "(unset)" if value is None else _format_value(value)
            lines.append(f"{s.name.ljust(width)} = {text}  [{self._sources[s.name]}]")
        if self._values.get("orchestrator"):
            lines.append(f"{'':{width}}   orchestrator address: {self.orchestrator_address()}")
        return lines

    def __repr__(self) -> str:
        return f"Config({self.as_dict(mask_secrets=True)!r})"


def mask(value: Any) -> Any:
    if value is None or value == "":
        return value
    return f"****** ({len(str(value))} chars)"


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value) if value else "[]"
    return str(value)


# --- layers ---------------------------------------------------------------------------

def _apply(setting: Setting, raw: Any, where: str) -> Any:
    try:
        return setting.parse(raw)
    except ValueError as exc:
        shown = "******" if setting.secret else repr(raw)
        raise ConfigError(f"{where}: bad value {shown} for {setting.name}: {exc}") from None


def _node_position(path: str, node: Any) -> str:
    mark = getattr(node, "start_mark", None)
    if mark is None:
        return path
    return f"{path}:{mark.line + 1}:{mark.column + 1}"


def _load_yaml_mapping(text: str, where: str) -> list[tuple[str, Any, str]]:
    """Parse a flat YAML mapping -> [(key, python value, 'where:line:col')]."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        pos = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{pos}: invalid YAML: {problem}") from None
    if root is None:
        return []
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{_node_position(where, root)}: expected a mapping of setting names to values")
    constructor = yaml.SafeLoader("")
    entries = []
    for key_node, value_node in root.value:
        try:
            key = constructor.construct_object(key_node, deep=True)
            value = constructor.construct_object(value_node, deep=True)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{_node_position(where, value_node)}: {exc}") from None
        entries.append((str(key), value, _node_position(where, key_node)))
    return entries


def _load_extra_conf(text: str, var: str) -> list[tuple[str, Any, str]]:
    stripped = text.strip()
    if not stripped:
        return []
    if stripped.startswith("{"):
        import json  # JSON is the common form; spare the yaml import for it
        try:
            doc = json.loads(stripped)
        except json.JSONDecodeError as exc:
            try:  # YAML flow mappings also start with "{"
                return _load_yaml_mapping(text, f"env {var}")
            except ConfigError:
                raise ConfigError(f"env {var}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"env {var}: expected a mapping of setting names to values")
        return [(str(k), v, f"env {var}") for k, v in doc.items()]
    return _load_yaml_mapping(text, f"env {var}")


def _set_from_entries(entries, label: str, strict: bool, values, sources, warnings,
                      seen: set, errors: list | None = None) -> None:
    for key, raw, where in entries:
        setting = BY_NAME.get(key)
        if setting is None:
            message = f"{where}: unknown setting {key!r}{_suggest(key)}"
            if strict:
                _fail(ConfigError(message), errors)
                continue
            warnings.append(message + "; ignored")
            continue
        if key in seen or key == "config":
            continue
        if raw is None:
            continue
        try:
            values[key] = _apply(setting, raw, where)
        except ConfigError as exc:
            _fail(exc, errors)
            continue
        sources[key] = f"{label} ({key})" if label.startswith("env ") else label
        seen.add(key)


def _fail(exc: ConfigError, errors: list | None) -> None:
    """Strict loads raise; lenient ones (errors is a list) note it and go on."""
    if errors is None:
        raise exc
    errors.append(str(exc))


def load_config(overrides: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None, *, lenient: bool = False) -> Config:
    """Build the effective configuration.

    overrides: command-line values by setting name; None means "not given".
    environ: defaults to os.environ.
    Raises ConfigError with the variable, flag or file position of a bad value; with
    lenient=True a bad value (or an unreadable/unparsable config file) is skipped, the
    setting falls back to the next layer, and the messages are in Config.errors: the
    agent must still be able to start the workload (--priority availability).
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    warnings: list[str] = []
    errors: list[str] | None = [] if lenient else None
    seen: set = set()

    for key, raw in (overrides or {}).items():
        setting = BY_NAME.get(key)
        if setting is None:
            raise ConfigError(f"command line: unknown setting {key!r}{_suggest(key)}")
        if raw is None:
            continue
        try:
            values[key] = _apply(setting, raw, f"command line {setting.option}")
        except ConfigError as exc:
            _fail(exc, errors)
            continue
        sources[key] = f"command line ({setting.option})"
        seen.add(key)

    for setting in SETTINGS:
        if setting.name in seen:
            continue
        for var in setting.env_names:
            raw = env.get(var)
            if raw is None or (raw == "" and setting.name != "access_key"):
                continue
            try:
                values[setting.name] = _apply(setting, raw, f"env {var}")
            except ConfigError as exc:
                _fail(exc, errors)
                continue
            sources[setting.name] = f"env {var}"
            seen.add(setting.name)
            break

    # Our own name wins over the Sysdig alias when both are given.
    for var in EXTRA_CONF_ENV:
        text = env.get(var)
        if text:
            try:
                entries = _load_extra_conf(text, var)
            except ConfigError as exc:
                _fail(exc, errors)
                continue
            _set_from_entries(entries, f"env {var}", False, values, sources, warnings, seen, errors)

    path = values.get("config")
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            entries = _load_yaml_mapping(text, path)
        except OSError as exc:
            _fail(ConfigError(f"config file {path} ({sources['config']}): {exc.strerror}"), errors)
            entries = []
        except UnicodeDecodeError as exc:
            _fail(ConfigError(f"config file {path} ({sources['config']}): not UTF-8 text ({exc.reason} "
                              f"at byte {exc.start})"), errors)
            entries = []
        except ConfigError as exc:
            _fail(exc, errors)
            entries = []
        _set_from_entries(entries, f"file {path}", True, values, sources, warnings, seen, errors)

    for setting in SETTINGS:
        if setting.name not in seen:
            default = setting.default
            values[setting.name] = list(default) if isinstance(default, list) else default
            sources[setting.name] = "default"

    if values["access_key"] == "":
        values["access_key"] = None
    return Config(values, sources, warnings, errors)


# --- command line ---------------------------------------------------------------------

def add_arguments(parser, names: tuple | list | None = None) -> None:
    """Add --flags for settings (all flag=True ones, or just `names`) to an argparse parser.

    Every flag defaults to None so that load_config can tell "not given" from a value.
    """
    for setting in SETTINGS:
        if names is not None and setting.name not in names:
            continue
        if names is None and not setting.flag:
            continue
        kwargs: dict[str, Any] = {"default": None, "dest": setting.name,
                                  "help": f"{setting.help} (env {', '.join(setting.env_names)})"}
        if setting.parse is _parse_bool:
            # --NAME and --no-NAME, as argparse's BooleanOptionalAction would make them, in
            # plain actions that cli.py's quick reading of `run` options understands too
            parser.add_argument(setting.option, action="store_const", const=True, **kwargs)
            parser.add_argument("--no-" + setting.option[2:], action="store_const", const=False,
                                default=None, dest=setting.name, help=f"the opposite of {setting.option}")
            continue
        choices = getattr(setting.parse, "choices", None)
        if choices:
            kwargs["choices"] = choices
        kwargs["metavar"] = setting.metavar or (None if choices else "VALUE")
        parser.add_argument(setting.option, **kwargs)


def overrides_from_args(args) -> dict[str, Any]:
    """The settings present on an argparse namespace (None = not given)."""
    return {s.name: getattr(args, s.name) for s in SETTINGS if hasattr(args, s.name)}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "config", help="show the effective configuration",
        description="Print the effective configuration (command line, then environment, "
                    "then config file, then defaults). Secrets are masked.")
    parser.add_argument("--explain", action="store_true",
                        help="also show where each value came from, and list every setting")
    add_arguments(parser, names=[s.name for s in SETTINGS])
    parser.set_defaults(func=_config_command)


def _config_command(args) -> int:
    import sys

    try:
        config = load_config(overrides_from_args(args))
    except ConfigError as exc:
        print(f"workload-agent config: error: {exc}", file=sys.stderr)
        return 2
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.explain:
        for line in config.explain():
            print(line)
        print()
        print("settings (environment names; first one wins):")
        for s in SETTINGS:
            print(f"  {s.name}: {', '.join(s.env_names)}{'  [secret]' if s.secret else ''}")
            print(f"      {s.help}")
    else:
        for name, value in config.as_dict(mask_secrets=True).items():
            if value is not None:
                print(f"{name}: {_format_value(value)}")
    return 0
