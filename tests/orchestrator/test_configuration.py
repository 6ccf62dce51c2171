"""Configuration layering: command line > environment (ours > SYSDIG_*) > extra conf > file > defaults."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workload_agent import configuration
from workload_agent.configuration import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]


def test_defaults_with_empty_environment():
    cfg = load_config({}, environ={})
    assert cfg.priority == "availability"
    assert cfg.logging == "info"
    assert cfg.orchestrator is None
    assert cfg.access_key is None
    assert cfg.rules == []
    assert cfg.source("priority") == "default"


def test_sysdig_aliases_are_read():
    env = {"SYSDIG_ORCHESTRATOR": "orch.internal", "SYSDIG_ORCHESTRATOR_PORT": "7000",
           "SYSDIG_ACCESS_KEY": "k3y", "SYSDIG_LOGGING": "DEBUG", "SYSDIG_PRIORITY": "security"}
    cfg = load_config(None, environ=env)
    assert cfg.orchestrator == "orch.internal:7000"
    assert cfg.orchestrator_host_port() == ("orch.internal", 7000)
    assert cfg.access_key == "k3y"
    assert cfg.logging == "debug"
    assert cfg.priority == "security"
    assert cfg.source("access_key") == "env SYSDIG_ACCESS_KEY"


def test_own_name_beats_alias_and_command_line_beats_env():
    env = {"WORKLOAD_AGENT_PRIORITY": "security", "SYSDIG_PRIORITY": "availability",
           "WORKLOAD_AGENT_LOGGING": "error"}
    cfg = load_config({"logging": "trace", "priority": None}, environ=env)
    assert cfg.priority == "security"
    assert cfg.source("priority") == "env WORKLOAD_AGENT_PRIORITY"
    assert cfg.logging == "trace"
    assert cfg.source("logging") == "command line (--logging)"
    assert cfg.log_level() == configuration.TRACE_LEVEL


def test_port_in_address_wins_over_port_setting():
    cfg = load_config({"orchestrator": "10.0.0.1:6000"}, environ={"SYSDIG_ORCHESTRATOR_PORT": "7000"})
    assert cfg.orchestrator == "10.0.0.1:6000"
    cfg = load_config({"orchestrator": "[::1]"}, environ={})
    assert cfg.orchestrator == "[::1]:6667"


def test_file_layer_below_env_and_positions_in_errors(tmp_path):
    conf = tmp_path / "agent.yaml"
    conf.write_text("priority: security\nbuffer_size: 50\nrules: [a.yaml, b.yaml]\n")
    cfg = load_config({"config": str(conf)}, environ={"WORKLOAD_AGENT_BUFFER_SIZE": "70"})
    assert cfg.priority == "security"
    assert cfg.source("priority") == f"file {conf}"
    assert cfg.buffer_size == 70
    assert cfg.rules == ["a.yaml", "b.yaml"]

    conf.write_text("priority: security\nbuffer_size: lots\n")
    with pytest.raises(ConfigError) as err:
        load_config(None, environ={"WORKLOAD_AGENT_CONFIG": str(conf)})
    assert f"{conf}:2:1" in str(err.value) and "buffer_size" in str(err.value)

    conf.write_text("prority: security\n")
    with pytest.raises(ConfigError, match="did you mean 'priority'"):
        load_config({"config": str(conf)}, environ={})

    conf.write_text("priority: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"{conf}:\d+:\d+: invalid YAML"):
        load_config({"config": str(conf)}, environ={})


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml.*No such file"):
        load_config(None, environ={"WORKLOAD_AGENT_CONFIG": str(tmp_path / "nope.yaml")})


@pytest.mark.parametrize("var,value", [
    ("SYSDIG_LOGGING", "loud"), ("SYSDIG_PRIORITY", "speed"),
    ("SYSDIG_ORCHESTRATOR_PORT", "70000"), ("WORKLOAD_AGENT_BUFFER_SIZE", "0"),
    ("WORKLOAD_AGENT_TLS", "maybe"), ("SYSDIG_ORCHESTRATOR", "host:port"),
])
def test_bad_env_value_names_the_variable(var, value):
    with pytest.raises(ConfigError) as err:
        load_config(None, environ={var: value})
    assert var in str(err.value)


def test_bad_secret_is_not_echoed(tmp_path):
    conf = tmp_path / "agent.yaml"
    conf.write_text("access_key: [hunter2]\n")
    with pytest.raises(ConfigError) as err:
        load_config({"config": str(conf)}, environ={})
    assert "access_key" in str(err.value) and "hunter2" not in str(err.value)


def test_extra_conf_json_and_yaml_sit_between_env_and_file(tmp_path):
    conf = tmp_path / "agent.yaml"
    conf.write_text("heartbeat_interval: 3\nflush_timeout: 9\n")
    env = {"SYSDIG_EXTRA_CONF": json.dumps({"heartbeat_interval": 1.5, "collector": "x"}),
           "WORKLOAD_AGENT_CONFIG": str(conf), "WORKLOAD_AGENT_FLUSH_TIMEOUT": "2"}
    cfg = load_config(None, environ=env)
    assert cfg.heartbeat_interval == 1.5
    assert cfg.source("heartbeat_interval") == "env SYSDIG_EXTRA_CONF (heartbeat_interval)"
    assert cfg.flush_timeout == 2.0
    # keys of the Sysdig agent we do not know must not break existing task definitions
    assert any("collector" in w for w in cfg.warnings)

    cfg = load_config(None, environ={"SYSDIG_EXTRA_CONF": "priority: security\nlogging: warning\n"})
    assert (cfg.priority, cfg.logging) == ("security", "warning")

    with pytest.raises(ConfigError, match="SYSDIG_EXTRA_CONF"):
        load_config(None, environ={"SYSDIG_EXTRA_CONF": '{"priority": "fast"}'})


def test_overrides_unknown_name_is_an_error():
    with pytest.raises(ConfigError, match="did you mean 'access_key'"):
        load_config({"acess_key": "x"}, environ={})


def test_argparse_flags_round_trip():
    parser = argparse.ArgumentParser()
    configuration.add_arguments(parser)
    args = parser.parse_args(["--orchestrator", "o:1", "--priority", "security"])
    cfg = load_config(configuration.overrides_from_args(args), environ={"SYSDIG_PRIORITY": "availability"})
    assert cfg.orchestrator == "o:1"
    assert cfg.priority == "security"
    assert cfg.source("access_key") == "default"


def _run_config_cli(argv, env):
    code = ("import sys, argparse; from workload_agent import configuration as c;"
            "p = argparse.ArgumentParser(); s = p.add_subparsers();"
            "c.register(s); a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))")
    return subprocess.run([sys.executable, "-c", code, *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=30)


def test_config_explain_masks_secrets_and_names_sources():
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO),
           "SYSDIG_ACCESS_KEY": "super-secret-key-123", "SYSDIG_ORCHESTRATOR": "orch",
           "SYSDIG_EXTRA_CONF": '{"buffer_size": 42}'}
    proc = _run_config_cli(["config", "--explain", "--priority", "security"], env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "super-secret-key-123" not in out and "super-secret-key-123" not in proc.stderr
    assert "access_key" in out and "******" in out and "env SYSDIG_ACCESS_KEY" in out
    assert "command line (--priority)" in out
    assert "orchestrator address: orch:6667" in out
    assert "env SYSDIG_EXTRA_CONF (buffer_size)" in out


def test_config_cli_bad_value_is_a_clear_error_not_a_traceback():
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), "SYSDIG_LOGGING": "noisy"}
    proc = _run_config_cli(["config"], env)
    assert proc.returncode == 2
    assert "SYSDIG_LOGGING" in proc.stderr and "Traceback" not in proc.stderr


def test_import_and_env_only_load_are_light():
    code = ("import sys; from workload_agent.configuration import load_config;"
            "c = load_config(None, environ={'SYSDIG_PRIORITY': 'security'});"
            "print(sorted(m for m in ('yaml', 'dataclasses', 'difflib', 'json', 'typing', 'logging')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


from hypothesis import example, given, settings, strategies as st  # noqa: E402

# every variable we read, except the config file path (random text there reads files)
_env_names = sorted(({n for s in configuration.SETTINGS for n in s.env_names}
                     | set(configuration.EXTRA_CONF_ENV)) - {"WORKLOAD_AGENT_CONFIG"})


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(_env_names), st.text(max_size=40), max_size=6))
def test_fuzz_environment_gives_config_or_config_error(env):
    try:
        cfg = load_config(None, environ=env)
    except ConfigError as exc:
        # the message names one of the variables that were set
        assert any(name in str(exc) for name in env), str(exc)
        return
    for s in configuration.SETTINGS:
        assert cfg.source(s.name) in ("default",) or cfg.source(s.name).startswith("env ")
    cfg.explain()


@pytest.mark.parametrize("text", ["::]", "[[::1]:1", "a]:1", "[a", "[::1]]:1", "x[y"])
def test_brackets_outside_an_ipv6_address_are_refused(text):
    with pytest.raises(ValueError, match="bad address"):
        configuration.split_host_port(text, 1)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30), st.integers(min_value=1, max_value=65535))
@example("::]", 1)   # once taken as a bare IPv6 host that no address could write back
def test_fuzz_split_host_port(text, port):
    try:
        host, got = configuration.split_host_port(text, port)
    except ValueError:
        return
    assert host and (got == port or 1 <= got <= 65535)
    # what it accepts, it reproduces
    rebuilt = f"[{host}]:{got}" if ":" in host else f"{host}:{got}"
    assert configuration.split_host_port(rebuilt) == (host, got)


def test_several_orchestrators_and_alerts_to_url():
    cfg = load_config(None, environ={"WORKLOAD_AGENT_ORCHESTRATOR": "a:1, b ,[::1]:3",
                                     "SYSDIG_ORCHESTRATOR_PORT": "7000",
                                     "WORKLOAD_AGENT_ALERTS_TO": "https://sidekick:2801/"})
    assert cfg.orchestrator_addresses() == [("a", 1), ("b", 7000), ("::1", 3)]
    assert cfg.orchestrator_host_port() == ("a", 1)
    assert cfg.orchestrator == "a:1,b:7000,[::1]:3"
    assert cfg.alerts_to == "https://sidekick:2801/"
    with pytest.raises(ConfigError, match="WORKLOAD_AGENT_ORCHESTRATOR.*port 99999"):
        load_config(None, environ={"WORKLOAD_AGENT_ORCHESTRATOR": "a:1,b:99999"})
    with pytest.raises(ConfigError, match="WORKLOAD_AGENT_ALERTS_TO.*alerts_to"):
        load_config(None, environ={"WORKLOAD_AGENT_ALERTS_TO": "https://:2801/"})


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["http://", "https://"]), st.text(max_size=40))
def test_fuzz_alerts_to_urls(scheme, rest):
    try:
        cfg = load_config(None, environ={"WORKLOAD_AGENT_ALERTS_TO": scheme + rest})
    except ConfigError as exc:
        assert "WORKLOAD_AGENT_ALERTS_TO" in str(exc)
        return
    from workload_agent.outputs.falco_http import FalcoHttp

    FalcoHttp(cfg.alerts_to)  # what the setting accepts, the sender takes
