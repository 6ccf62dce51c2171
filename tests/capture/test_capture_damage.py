"""Truncated, corrupted and too-new capture files."""
from __future__ import annotations

import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workload_agent.capture.format import (
    FORMAT_VERSION, MAGIC, CaptureError, CaptureReader, CaptureVersionError, CaptureWriter, Drop,
)
from workload_agent.rules.event import Event, Process


def _capture(n_events=30, per_chunk=4) -> bytes:
    buf = io.BytesIO()
    w = CaptureWriter(buf, {"hostname": "h"}, chunk_bytes=1 << 30, flush_seconds=1e9)
    p = Process(10, name="sh")
    for i in range(n_events):
        p.name = f"p{i // 7}"
        w.write_event(Event("openat", ts=i, num=i + 1, proc=p))
        if i % per_chunk == per_chunk - 1:
            w.flush()
    w.close()
    return buf.getvalue()


FULL = _capture()


def _read(tmp_path, data: bytes):
    path = tmp_path / "c.wacap"
    path.write_bytes(data)
    reader = CaptureReader(str(path))
    return reader, list(reader.records())


def test_complete_file(tmp_path):
    reader, got = _read(tmp_path, FULL)
    assert reader.complete and reader.truncated is None
    assert [e.num for e in got] == list(range(1, 31))


def test_cut_at_every_byte_replays_a_prefix_and_says_so(tmp_path):
    whole = [e.num for e in _read(tmp_path, FULL)[1]]
    header_end = None
    for cut in range(len(FULL)):
        try:
            reader, got = _read(tmp_path, FULL[:cut])
        except CaptureError as exc:
            # Only a cut inside the prefix or the header chunk is fatal, and it says why.
            assert header_end is None, f"cut at {cut}: {exc}"
            assert "c.wacap" in str(exc)
            continue
        header_end = header_end or cut
        nums = [e.num for e in got]
        assert nums == whole[:len(nums)], cut
        assert reader.truncated and not reader.complete, cut
        assert f"byte {cut}" in reader.truncated
    first_chunk_end = 10 + 16 + struct.unpack_from("<I", FULL, 14)[0]
    assert header_end == first_chunk_end


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(FULL) - 1), st.integers(1, 255))
def test_a_flipped_byte_is_an_error_with_its_chunk_offset(tmp_path_factory, at, xor):
    data = bytearray(FULL)
    data[at] ^= xor
    tmp = tmp_path_factory.mktemp("flip")
    try:
        reader, got = _read(tmp, bytes(data))
    except CaptureVersionError as exc:
        assert 8 <= at < 10 and "newer" in str(exc)
        return
    except CaptureError as exc:
        assert exc.offset is not None and exc.offset <= at, (at, str(exc))
        assert str(exc).startswith(str(tmp / "c.wacap") + ": at byte ")
        return
    # A damaged length may look like a cut file; it must then say it is incomplete.
    assert reader.truncated, at


def test_newer_version_names_the_file_and_both_versions(tmp_path):
    data = FULL[:8] + struct.pack("<H", FORMAT_VERSION + 1) + FULL[10:]
    with pytest.raises(CaptureVersionError) as err:
        _read(tmp_path, data)
    msg = str(err.value)
    assert str(tmp_path / "c.wacap") in msg
    assert f"version {FORMAT_VERSION + 1}" in msg and f"version {FORMAT_VERSION})" in msg


def test_not_a_capture(tmp_path):
    with pytest.raises(CaptureError, match="not a workload-agent capture"):
        _read(tmp_path, b"rule: x\n" * 4)
    with pytest.raises(CaptureError, match="too short"):
        _read(tmp_path, MAGIC[:5])
    with pytest.raises(CaptureError, match="No such file"):
        CaptureReader(str(tmp_path / "missing.wacap"))


def test_drop_records_keep_their_place(tmp_path):
    buf = io.BytesIO()
    w = CaptureWriter(buf, {})
    w.write_event(Event("openat", num=1))
    w.write_drop(5, 3)
    w.write_event(Event("openat", num=2))
    w.close()
    _, got = _read(tmp_path, buf.getvalue())
    assert [(type(x).__name__, getattr(x, "num", None) or getattr(x, "count", None)) for x in got] == [
        ("Event", 1), ("Drop", 3), ("Event", 2)]
    assert isinstance(got[1], Drop) and got[1].ts == 5
