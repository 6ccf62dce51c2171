import pytest


def pytest_generate_tests(metafunc):
    # Tests that take `mode` (or `mode_args`) run in both tracing modes.
    if "mode" in metafunc.fixturenames:
        metafunc.parametrize("mode", ["seccomp", "ptrace"])


@pytest.fixture
def mode_args(mode):
    return [] if mode == "seccomp" else ["--no-seccomp"]
