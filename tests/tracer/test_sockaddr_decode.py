"""sockaddr bytes -> addresses and Falco's SOCKADDR / SOCKTUPLE text."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import struct

import pytest
from hypothesis import given, settings, strategies as st

from workload_agent.events.sockaddr import (SockAddr, format_sockaddr, format_tuple, make_tuple,
                                            parse_sockaddr)


def sin(ip: str, port: int) -> bytes:
    return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton(ip) + b"\0" * 8


def sin6(ip: str, port: int, scope: int = 0) -> bytes:
    return (struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", port, 0)
            + socket.inet_pton(socket.AF_INET6, ip) + struct.pack("=I", scope))


def sun(path: bytes, addrlen=None) -> bytes:
    raw = struct.pack("=H", socket.AF_UNIX) + path
    return raw if addrlen is None else raw[:addrlen]


def test_ipv4():
    sa = parse_sockaddr(sin("10.1.2.3", 8080))
    assert sa == SockAddr(socket.AF_INET, ip="10.1.2.3", port=8080)
    assert format_sockaddr(sa) == "10.1.2.3:8080"


def test_ipv6():
    sa = parse_sockaddr(sin6("2001:db8::1", 443))
    assert (sa.family, sa.ip, sa.port) == (socket.AF_INET6, "2001:db8::1", 443)
    assert format_sockaddr(sa) == "2001:db8::1:443"


def test_ipv6_without_scope_id_still_decodes():
    sa = parse_sockaddr(sin6("::1", 22)[:24])
    assert (sa.ip, sa.port) == ("::1", 22)


def test_unix_path_and_abstract_and_unnamed():
    assert parse_sockaddr(sun(b"/run/docker.sock\0")).path == "/run/docker.sock"
    # Without a terminating NUL (addrlen exactly covers the path).
    assert parse_sockaddr(sun(b"/tmp/s")).path == "/tmp/s"
    # An abstract name is every byte the length covers: an embedded NUL is part of it
    # (shown as "@", as ss does); trailing NULs are the padding of a sizeof() length.
    abstract = parse_sockaddr(sun(b"\0my-abstract\0other"))
    assert abstract.path == "@my-abstract@other"
    assert format_sockaddr(abstract) == "@my-abstract@other"
    assert parse_sockaddr(sun(b"\0my-abstract" + b"\0" * 90)).path == "@my-abstract"
    assert parse_sockaddr(sun(b"")).path == ""


def test_netlink():
    raw = struct.pack("=HHII", socket.AF_NETLINK, 0, 1234, 5)
    sa = parse_sockaddr(raw)
    assert (sa.family, sa.nl_pid, sa.nl_groups) == (socket.AF_NETLINK, 1234, 5)
    assert format_sockaddr(sa) == "family 16"


def test_short_buffers_give_family_only_or_none():
    assert parse_sockaddr(b"") is None
    assert parse_sockaddr(b"\x02") is None
    short = parse_sockaddr(sin("1.2.3.4", 80)[:5])
    assert short == SockAddr(socket.AF_INET)
    assert format_sockaddr(short) == "family 2"
    assert format_sockaddr(None) == "NULL"


def _kernel_sockname(sock: socket.socket) -> bytes:
    """The raw sockaddr bytes the kernel writes for getsockname(2)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    buf = ctypes.create_string_buffer(128)
    ln = ctypes.c_uint32(128)
    if libc.getsockname(sock.fileno(), buf, ctypes.byref(ln)) != 0:
        raise OSError(ctypes.get_errno(), "getsockname")
    return buf.raw[:ln.value]


def test_real_kernel_sockaddrs(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert parse_sockaddr(_kernel_sockname(s)) == SockAddr(socket.AF_INET, "127.0.0.1", port)
    if socket.has_ipv6:
        try:
            s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s6.bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback")
        with s6:
            port = s6.getsockname()[1]
            got = parse_sockaddr(_kernel_sockname(s6))
            assert (got.ip, got.port) == ("::1", port)
    path = str(tmp_path / "sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as u:
        u.bind(path)
        assert parse_sockaddr(_kernel_sockname(u)).path == path
    name = "wa-test-%d" % os.getpid()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as a:
        a.bind("\0" + name)
        assert parse_sockaddr(_kernel_sockname(a)).path == "@" + name


def test_tuple_ipv4():
    t = make_tuple(parse_sockaddr(sin("172.17.0.2", 40000)), parse_sockaddr(sin("1.2.3.4", 443)))
    assert format_tuple(t) == "172.17.0.2:40000->1.2.3.4:443"


def test_tuple_unknown_local_end_is_zero_address():
    t = make_tuple(None, parse_sockaddr(sin("8.8.8.8", 53)))
    assert format_tuple(t) == "0.0.0.0:0->8.8.8.8:53"
    t6 = make_tuple(None, parse_sockaddr(sin6("2001:db8::2", 80)))
    assert format_tuple(t6) == ":::0->2001:db8::2:80"


def test_tuple_ipv4_mapped_shown_as_ipv4():
    t = make_tuple(parse_sockaddr(sin6("::ffff:10.0.0.5", 5555)),
                   parse_sockaddr(sin6("::ffff:10.0.0.9", 80)))
    assert format_tuple(t) == "10.0.0.5:5555->10.0.0.9:80"


def test_tuple_unix():
    t = make_tuple(None, parse_sockaddr(sun(b"/var/run/docker.sock\0")))
    assert t.path == "/var/run/docker.sock"
    assert format_tuple(t) == "0->0 /var/run/docker.sock"


def test_tuple_of_nothing_is_none():
    assert make_tuple(None, None) is None
    assert make_tuple(None, parse_sockaddr(struct.pack("=HHII", socket.AF_NETLINK, 0, 0, 0))) is None
    assert format_tuple(None) == "NULL"


@settings(deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data):
    sa = parse_sockaddr(data)
    text = format_sockaddr(sa)
    assert isinstance(text, str)
    t = make_tuple(sa, sa)
    assert isinstance(format_tuple(t), str)


@settings(deadline=None)
@given(st.sampled_from([socket.AF_INET, socket.AF_INET6, socket.AF_UNIX, socket.AF_NETLINK]),
       st.binary(max_size=130))
def test_arbitrary_bodies_of_known_families_never_raise(family, body):
    sa = parse_sockaddr(struct.pack("=H", family) + body)
    assert sa is not None and sa.family == family
    format_sockaddr(sa)
    format_tuple(make_tuple(None, sa))
