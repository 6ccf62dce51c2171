"""Fuzzing the configuration parsers: any config file, environment value or extra
configuration document gives a Config or a ConfigError naming where (strict), and a
Config with the bad values listed (lenient, what `run` and `instrument` use). Never
another exception: a traceback at container start is the workload not starting."""
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workload_agent.configuration import BY_NAME, EXTRA_CONF_ENV, SETTINGS, ConfigError, load_config

NAMES = [s.name for s in SETTINGS if s.name != "config"]
ENV_NAMES = [n for s in SETTINGS if s.name != "config" for n in s.env_names]

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                    st.text(max_size=30), st.sampled_from(["security", "json", "1", "-3", "0x10", "[", "{a: 1}"]))
yaml_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                             st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                           max_leaves=6)


def yaml_text(draw_mapping):
    import yaml
    return yaml.safe_dump(draw_mapping, allow_unicode=True)


def check(load):
    try:
        cfg = load(False)
    except ConfigError as exc:
        assert str(exc)  # says where
    else:
        assert cfg.priority in ("availability", "security")
    cfg = load(True)  # lenient: never raises
    assert cfg.priority in ("availability", "security")
    for err in cfg.errors:
        assert isinstance(err, str) and err
    return cfg


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.one_of(st.sampled_from(NAMES), st.text(max_size=12)), yaml_values, max_size=6))
def test_config_file_mapping(tmp_path, doc):
    path = tmp_path / "agent.yaml"
    path.write_text(yaml_text(doc), encoding="utf-8")
    check(lambda lenient: load_config({"config": str(path)}, environ={}, lenient=lenient))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
def test_config_file_bytes(tmp_path, raw):
    path = tmp_path / "agent.yaml"
    path.write_bytes(raw)
    check(lambda lenient: load_config({"config": str(path)}, environ={}, lenient=lenient))


env_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(ENV_NAMES + list(EXTRA_CONF_ENV)), env_text, max_size=6))
def test_environment(environ):
    environ.pop("WORKLOAD_AGENT_CONFIG", None)  # files are the tests above
    cfg = check(lambda lenient: load_config(None, environ=environ, lenient=lenient))
    # what did parse is what was given, parsed: a lenient load keeps every good value
    for setting in SETTINGS:
        for var in setting.env_names:
            raw = environ.get(var)
            if raw is None or raw == "":
                continue
            try:
                want = setting.parse(raw)
            except ValueError:
                continue
            if cfg.source(setting.name) == f"env {var}":
                assert getattr(cfg, setting.name) == want or setting.name in ("orchestrator", "access_key")
            break


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.printable, max_size=120))
def test_extra_conf_documents(text):
    check(lambda lenient: load_config(None, environ={"WORKLOAD_AGENT_EXTRA_CONF": text}, lenient=lenient))


def test_lenient_keeps_the_good_and_names_the_bad(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text("output_format: json\nbuffer_size: -3\nnosuch: 1\n")
    cfg = load_config({"config": str(path)}, environ={"SYSDIG_PRIORITY": "security", "WORKLOAD_AGENT_TLS": "maybe"},
                      lenient=True)
    assert cfg.output_format == "json" and cfg.priority == "security"
    assert cfg.buffer_size == BY_NAME["buffer_size"].default and cfg.tls is True
    text = "\n".join(cfg.errors)
    assert "agent.yaml:2:" in text and "buffer_size" in text and "WORKLOAD_AGENT_TLS" in text
    assert "nosuch" in text  # an unknown key in the file is an error there too
