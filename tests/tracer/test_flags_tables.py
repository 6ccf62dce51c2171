"""Falco flag tables and kernel -> PPM conversions, checked against values the
tests compute themselves from the stdlib and from the reference's worked examples."""
from __future__ import annotations

import errno
import os
import signal
import socket
import stat

import pytest
from hypothesis import given, settings, strategies as st

from workload_agent.events import flags as F


# --- rendering algorithm (§2.3) ---------------------------------------------------

def test_render_flags_walks_table_in_order_and_clears_bits():
    table = (("A", 6), ("B", 4), ("C", 2), ("ZERO", 0), ("D", 1))
    # A takes bits 2|4, so B and C must not appear again.
    assert F.render_flags(7, table) == "A|D"
    assert F.render_flags(4, table) == "B"
    assert F.render_flags(0, table) == "ZERO"
    assert F.render_flags(8, table) == ""


def test_render_flags_stops_at_exact_whole_value_match():
    table = (("ALL", 3), ("ONE", 1), ("TWO", 2))
    assert F.render_flags(3, table) == "ALL"


def test_render_enum_shows_every_alias():
    assert F.render_enum(1, F.SOCKET_FAMILIES) == "AF_LOCAL|AF_UNIX"
    assert F.render_enum(16, F.SOCKET_FAMILIES) == "AF_ROUTE|AF_NETLINK"
    assert F.render_enum(10, F.BPF_COMMANDS) == "BPF_PROG_TEST_RUN|BPF_PROG_RUN"
    assert F.render_enum(33, F.PRCTL_OPTIONS) == "PR_MCE_KILL|PR_MCE_KILL"
    assert F.render_enum(5, F.BPF_COMMANDS) == "BPF_PROG_LOAD"
    assert F.render_enum(0x59616D61, F.PRCTL_OPTIONS) == ""


# --- open flags (§2.2.1) ------------------------------------------------------------

PPM = dict(F.FILE_FLAGS)


@pytest.mark.parametrize("kernel, expect_names", [
    (os.O_RDONLY | os.O_CLOEXEC, "O_RDONLY|O_CLOEXEC"),
    (os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "O_TRUNC|O_CREAT|O_WRONLY"),
    (os.O_RDWR | os.O_CREAT | os.O_EXCL, "O_EXCL|O_CREAT|O_RDWR"),
    (os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK, "O_NONBLOCK|O_APPEND|O_WRONLY"),
    (os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, "O_DIRECTORY|O_RDONLY|O_CLOEXEC"),
    (os.O_WRONLY | os.O_SYNC, "O_SYNC|O_DSYNC|O_WRONLY"),
    (os.O_WRONLY | os.O_DSYNC, "O_DSYNC|O_WRONLY"),
    (os.O_RDWR | os.O_TMPFILE, "O_DIRECTORY|O_RDWR|O_TMPFILE"),
    # Flags Falco does not represent vanish.
    (os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NOATIME, "O_RDONLY"),
])
def test_open_flags_render_like_falco(kernel, expect_names):
    ppm = F.open_flags_to_ppm(kernel)
    assert F.render_flags(ppm, F.FILE_FLAGS) == expect_names


def test_open_flag_ppm_values_from_reference_examples():
    assert F.open_flags_to_ppm(os.O_RDONLY | os.O_CLOEXEC) == 4097
    assert F.open_flags_to_ppm(os.O_WRONLY | os.O_CREAT | os.O_TRUNC) == 262
    assert F.open_flags_to_ppm(os.O_RDWR | os.O_CREAT | os.O_EXCL) == 39


def test_access_mode_three_is_rdonly_and_no_access_mode_for_pipe_flags():
    assert F.open_flags_to_ppm(3) & 3 == PPM["O_RDONLY"]
    assert F.open_flags_to_ppm(os.O_CLOEXEC | os.O_NONBLOCK, access_mode=False) == (
        PPM["O_CLOEXEC"] | PPM["O_NONBLOCK"])
    assert F.render_flags(F.open_flags_to_ppm(0, access_mode=False), F.FILE_FLAGS) == "O_NONE"


def test_kernel_largefile_bit_is_mapped_even_though_glibc_says_zero():
    bit = 0o400000 if F.HOST_ARCH in ("aarch64", "arm64") else 0o100000
    assert F.open_flags_to_ppm(bit) & PPM["O_LARGEFILE"]


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=(1 << 32) - 1))
def test_open_flags_ppm_only_uses_table_bits(kernel):
    ppm = F.open_flags_to_ppm(kernel)
    all_bits = 0
    for _, v in F.FILE_FLAGS:
        all_bits |= v
    assert ppm & ~all_bits == 0
    names = F.render_flags(ppm, F.FILE_FLAGS).split("|")
    assert sum(n in ("O_RDONLY", "O_WRONLY", "O_RDWR") for n in names) == 1


def test_open_mode_only_with_creat_or_tmpfile():
    assert F.open_mode(os.O_RDONLY, 0o644) == 0
    assert F.open_mode(os.O_CREAT | os.O_WRONLY, 0o100644) == 0o644
    assert F.open_mode(os.O_TMPFILE | os.O_RDWR, 0o600) == 0o600
    # O_DIRECTORY alone shares a bit with O_TMPFILE but does not create files.
    assert F.open_mode(os.O_DIRECTORY, 0o600) == 0


def test_socket_type_flags():
    t = socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
    assert F.sock_type_flags_to_ppm(t) == 64 | 4096
    assert F.sock_type_flags_to_ppm(socket.SOCK_DGRAM) == 0


# --- families, signals, errno, modes: values agree with the stdlib ----------------------

def test_socket_families_agree_with_socket_module():
    for name, value in F.SOCKET_FAMILIES:
        if hasattr(socket, name):
            assert getattr(socket, name) == value, name
    assert dict(F.SOCKET_FAMILIES)["AF_INET6"] == 10
    assert dict(F.SOCKET_FAMILIES)["AF_PACKET"] == 17
    assert F.socket_family_to_ppm(socket.AF_INET) == socket.AF_INET
    assert F.socket_family_to_ppm(27) == 0  # unknown families are sent as AF_UNSPEC
    values = [v for _, v in F.SOCKET_FAMILIES]
    assert values == sorted(values)


def test_signal_names_are_the_canonical_ones():
    for n in range(1, 32):
        name = F.signal_name(n)
        assert name.startswith("SIG")
        if hasattr(signal, name):
            assert getattr(signal, name) == n
    assert F.signal_name(signal.SIGABRT) == "SIGABRT"
    assert F.signal_name(signal.SIGCHLD) == "SIGCHLD"
    assert F.signal_name(signal.SIGIO) == "SIGIO"
    assert F.signal_name(16) == "SIGSTKFLT"
    assert F.signal_name(0) == ""
    assert F.signal_name(signal.SIGRTMIN) == ""


def test_errno_names():
    assert F.errno_name(-errno.ENOENT) == "ENOENT"
    assert F.errno_name(-errno.EINPROGRESS) == "EINPROGRESS"
    assert F.errno_name(-11) == "EAGAIN"
    assert F.errno_name(-35) == "EDEADLK"
    assert F.errno_name(-95) == "EOPNOTSUPP"
    assert F.errno_name(-126) == ""  # ENOKEY and later are not named by Falco
    assert F.errno_name(-133) == ""
    assert F.errno_name(-512) == "ERESTARTSYS"
    assert F.errno_name(0) == "" and F.errno_name(5) == "" and F.errno_name(None) == ""
    for n in list(range(1, 41)) + list(range(42, 58)) + list(range(59, 126)):
        name = F.errno_name(-n)
        assert getattr(errno, name) == n, (n, name)


def test_mode_rendering():
    assert F.render_mode(0o4755) == (
        "S_IXOTH|S_IROTH|S_IXGRP|S_IRGRP|S_IXUSR|S_IWUSR|S_IRUSR|S_ISUID")
    assert F.render_mode(stat.S_IXGRP) == "S_IXGRP"
    assert F.render_mode(0) == ""
    # file-type bits are dropped
    assert F.render_mode(stat.S_IFREG | 0o600) == "S_IWUSR|S_IRUSR"


def test_capability_names():
    assert F.capability_names(0) == ""
    assert F.capability_names((1 << 21) | (1 << 0)) == "CAP_CHOWN CAP_SYS_ADMIN"
    assert F.capability_names(1 << 40) == "CAP_CHECKPOINT_RESTORE"
    assert len(F.CAPABILITIES) == 41


# --- clone, ptrace, mount, resolve conversions -----------------------------------------

def test_clone_flags_conversion_matches_reference_example():
    unshare = F.CLONE_LINUX["CLONE_NEWUSER"] | F.CLONE_LINUX["CLONE_NEWNS"]
    ppm = F.clone_flags_to_ppm(unshare)
    assert ppm == 1048608
    assert F.render_flags(ppm, F.CLONE_FLAGS) == "CLONE_NEWNS|CLONE_NEWUSER"
    assert F.render_flags(F.clone_flags_to_ppm(0x40000000), F.CLONE_FLAGS) == "CLONE_NEWNET"
    assert F.render_flags(F.clone_flags_to_ppm(0), F.CLONE_FLAGS) == ""
    # CLONE_PIDFD is not mapped by Falco.
    assert F.clone_flags_to_ppm(0x1000) == 0


def test_clone_kernel_values_agree_with_os_when_available():
    checked = 0
    for name, value in F.CLONE_LINUX.items():
        if hasattr(os, name):
            assert getattr(os, name) == value, name
            checked += 1
    if not checked:
        pytest.skip("this Python's os module has no CLONE_* constants (3.12+)")


def test_thread_clone_flags_render():
    glibc_thread = 0x3D0F00  # CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID
    names = F.render_flags(F.clone_flags_to_ppm(glibc_thread), F.CLONE_FLAGS).split("|")
    assert set(names) == {"CLONE_FILES", "CLONE_FS", "CLONE_PARENT_SETTID", "CLONE_SIGHAND",
                          "CLONE_SYSVSEM", "CLONE_THREAD", "CLONE_VM", "CLONE_CHILD_CLEARTID",
                          "CLONE_SETTLS"}


def test_ptrace_requests():
    def name(linux):
        return F.render_enum(F.ptrace_request_to_ppm(linux), F.PTRACE_REQUESTS)
    assert name(0) == "PTRACE_TRACEME"
    assert name(16) == "PTRACE_ATTACH"
    assert name(0x4206) == "PTRACE_SEIZE"
    assert name(4) == "PTRACE_POKETEXT"
    assert name(5) == "PTRACE_POKEDATA"
    assert name(0x7777) == "PTRACE_UNKNOWN"
    if F.HOST_ARCH == "x86_64":
        assert name(13) == "PTRACE_SETREGS"
    else:
        assert name(13) == "PTRACE_UNKNOWN"


def test_mount_flags_strip_magic():
    ms_bind, ms_rec = 4096, 16384
    ppm = F.mount_flags_to_ppm(0xC0ED0000 | ms_bind | ms_rec)
    assert ppm == ms_bind | ms_rec
    assert F.render_flags(ppm, F.MOUNT_FLAGS) == "BIND|REC"
    assert F.mount_flags_to_ppm(0x12340000) == 0x12340000


def test_resolve_flags_are_renumbered():
    kernel = F.RESOLVE_LINUX["RESOLVE_NO_XDEV"] | F.RESOLVE_LINUX["RESOLVE_BENEATH"]
    assert kernel == 0x01 | 0x08
    ppm = F.resolve_flags_to_ppm(kernel)
    assert ppm == 16 | 1
    assert F.render_flags(ppm, F.OPENAT2_FLAGS) == "RESOLVE_BENEATH|RESOLVE_NO_XDEV"


def test_memfd_flags_match_os():
    ppm = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    assert F.render_flags(ppm, F.MEMFD_CREATE_FLAGS) == "MFD_CLOEXEC|MFD_ALLOW_SEALING"


def test_every_table_is_reachable_by_name():
    for name, table in F.TABLES.items():
        assert table, name
        for entry_name, value in table:
            assert isinstance(entry_name, str) and isinstance(value, int)
