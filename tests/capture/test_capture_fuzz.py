"""Parsers fed garbage: only their own clear errors come out."""
from __future__ import annotations

import shlex
import struct
import zlib

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workload_agent.capture.format import FORMAT_VERSION, MAGIC, CaptureError, CaptureReader
from workload_agent.capture.inline import SETTERS, InlineEventError, _unsplittable, build_event
from workload_agent.capture.ruletest import SpecFileError, load_test_file
from tests.capture.strategies import events

PREFIX = MAGIC + struct.pack("<H", FORMAT_VERSION)


def _chunk(raw: bytes) -> bytes:
    data = zlib.compress(raw)
    head = b"WAck" + struct.pack("<III", len(data), len(raw), zlib.crc32(data))
    return head + struct.pack("<I", zlib.crc32(head)) + data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=200).map(lambda b: PREFIX + b),
                 st.binary(max_size=300).map(lambda b: PREFIX + _chunk(b)),
                 st.lists(st.binary(max_size=40), max_size=4).map(lambda bs: PREFIX + b"".join(map(_chunk, bs)))))
def test_reader_raises_only_capture_errors(tmp_path, data):
    path = tmp_path / "f.wacap"
    path.write_bytes(data)
    try:
        reader = CaptureReader(str(path))
        list(reader.records())
    except CaptureError as exc:
        assert str(exc).startswith(str(path))


values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                   max_size=3), max_leaves=5)
keys = st.sampled_from(sorted(SETTERS) + ["proc.aname[3]", "proc.apid[1]", "evt.arg.flags", "evt.arg.name",
                                          "bogus.field", "proc.aname[x]"])


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(keys, values, max_size=6))
def test_inline_events_raise_only_inline_errors(fields):
    fields.setdefault("evt.type", "openat")
    try:
        build_event(fields)
    except InlineEventError:
        pass


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="ab '\"\\\t", max_size=14))
def test_inline_word_splitting_fails_where_shlex_does(text):
    """The position an inline error names comes from our own scan: it must fail exactly
    on the texts shlex.split fails on."""
    try:
        shlex.split(text)
        splits = True
    except ValueError:
        splits = False
    why = _unsplittable(text)
    assert (why is None) == splits, why
    if why is not None:
        with pytest.raises(InlineEventError, match="at character"):
            build_event({"evt.type": "openat", "proc.cmdline": "sh " + text})


case_values = st.recursive(st.none() | st.booleans() | st.integers(-2, 3) | st.sampled_from(
    ["rules.yaml", "x", "openat", "Warning", "nope", ""]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["name", "rules", "events", "capture", "command", "expect", "not_fire", "rule",
                         "priority", "output_fields", "count", "timeout", "rule_matching", "tests", "evt.type",
                         "no_other_alerts", "bogus"]), inner, max_size=4), max_leaves=12)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case_values)
def test_test_file_loader_raises_only_spec_errors(tmp_path, doc):
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(doc))
    try:
        load_test_file(str(path))
    except SpecFileError as exc:
        assert str(exc).startswith(str(path))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=80))
def test_test_file_loader_on_arbitrary_text(tmp_path, text):
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_test_file(str(path))
    except SpecFileError:
        pass


def _recorded(evs) -> bytes:
    import io

    from workload_agent.capture.format import CaptureWriter

    buf = io.BytesIO()
    w = CaptureWriter(buf, {"hostname": "h"}, chunk_bytes=1 << 30, flush_seconds=1e9)
    for ev in evs:
        w.write_event(ev)
    w.close()
    return buf.getvalue()


def _chunks(data: bytes):
    """The raw (decompressed) payloads of a capture's chunks."""
    pos, out = len(PREFIX), []
    while pos < len(data):
        clen = struct.unpack_from("<I", data, pos + 4)[0]
        out.append(zlib.decompress(data[pos + 20:pos + 20 + clen]))
        pos += 20 + clen
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(st.lists(events(), min_size=1, max_size=3), st.data())
def test_damage_inside_valid_chunks_raises_only_capture_errors(tmp_path, evs, data):
    """Records whose bytes were changed under a valid checksum (a bug in some writer, not
    a disk): reading them, params included, fails only with CaptureError."""
    raws = _chunks(_recorded(evs))
    i = data.draw(st.integers(0, len(raws) - 1))
    raw = bytearray(raws[i])
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    raws[i] = bytes(raw)
    path = tmp_path / "f.wacap"
    path.write_bytes(PREFIX + b"".join(map(_chunk, raws)))
    try:
        reader = CaptureReader(str(path))
        for item in reader.records():
            for p in getattr(item, "params", None) or ():
                getattr(p, "raw", None)
    except CaptureError as exc:
        assert str(exc).startswith(str(path))
