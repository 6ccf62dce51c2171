"""Our kernel numbers against python-ptrace's (GPL, test-only oracle; never imported
by workload_agent/)."""
from __future__ import annotations

import pytest

from workload_agent.events import flags as F

from tests.conftest import needs  # noqa: E402

# python-ptrace is a [test] extra: under CI it is there, so a missing one fails.
posix_arg = needs("ptrace.syscall.posix_arg")
posix_constants = needs("ptrace.syscall.posix_constants")
ptrace_func = needs("ptrace.binding.func")


def test_clone_flag_values():
    theirs = {name: value for value, name in posix_arg.CLONE_FLAGS_BITMASK}
    common = set(theirs) & set(F.CLONE_LINUX)
    assert len(common) >= 15
    for name in common:
        assert F.CLONE_LINUX[name] == theirs[name], name


def test_socket_family_values():
    ours = {}
    for name, value in F.SOCKET_FAMILIES:
        ours.setdefault(value, set()).add(name)
    for value, name in posix_constants.SOCKET_FAMILY.items():
        if name == "AF_FILE":  # glibc's old alias of AF_UNIX/AF_LOCAL
            name = "AF_UNIX"
        assert name in ours.get(value, ()), (value, name)


def test_ptrace_request_values():
    aliases = {"PTRACE_PEEKUSER": "PTRACE_PEEKUSR", "PTRACE_POKEUSER": "PTRACE_POKEUSR"}
    checked = 0
    for attr in dir(ptrace_func):
        if not attr.startswith("PTRACE_") or attr.startswith(("PTRACE_O_", "PTRACE_EVENT_")):
            continue
        name = aliases.get(attr, attr)
        if name in F.PTRACE_LINUX:
            assert F.PTRACE_LINUX[name] == getattr(ptrace_func, attr), name
            checked += 1
    assert checked >= 15


def test_open_flag_values_we_take_from_os():
    if F.HOST_ARCH != "x86_64":
        pytest.skip("python-ptrace's open flag table holds the x86 values")
    theirs = {name: value for value, name in posix_arg.OPEN_FLAGS_BITMASK}
    import os
    for name in ("O_CREAT", "O_EXCL", "O_TRUNC", "O_APPEND", "O_NONBLOCK", "O_DIRECTORY",
                 "O_CLOEXEC", "O_DIRECT"):
        if name in theirs:
            assert getattr(os, name) == theirs[name], name
