import importlib
import os

import pytest


def require(ok: bool, reason: str = "") -> None:
    """Skip the calling module when something it needs is missing here; under CI=true,
    where .ci/run installs everything, fail instead: a build that lost the C extension
    must not pass by skipping every test that traces."""
    if ok:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (under CI=true this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def needs(module: str):
    """Import a module the calling test module needs (our C extension, a [test] extra),
    skipping or failing as require() does when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        require(False, f"cannot import {module}: {exc}")


def needs_tracing() -> None:
    """The C tracer is built and the kernel can run it."""
    from workload_agent.tracer.core import available
    require(*available())


def pytest_generate_tests(metafunc):
    # Tests that take `mode` (or `mode_args`) run in both tracing modes.
    if "mode" in metafunc.fixturenames:
        metafunc.parametrize("mode", ["seccomp", "ptrace"])


@pytest.fixture
def mode_args(mode):
    return [] if mode == "seccomp" else ["--no-seccomp"]


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    """A rules cache of the test's own (WORKLOAD_AGENT_RULES_CACHE), empty at first."""
    d = tmp_path / "cache"
    monkeypatch.setenv("WORKLOAD_AGENT_RULES_CACHE", str(d))
    return d
