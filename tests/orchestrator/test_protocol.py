"""Frame encoding/decoding, validation, and a hypothesis fuzz of the decoder."""
from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import given, settings, strategies as st

from workload_agent.orchestrator import protocol as p


def _frames():
    return [
        p.hello("agent-1", "inst", "0.1.0", "key", {"task_arn": "arn:x"}, acked=3, bundle_hash="sha256:0"),
        p.welcome("0.1.0", 7, p.DEFAULT_MAX_FRAME),
        p.alerts(5, [{"rule": "r", "output": "o", "priority": "Warning"}]),
        p.ack(9),
        p.heartbeat({"events": 10, "drops": 0}, bundle_hash="sha256:1"),
        p.rules({"a.yaml": "- rule: x\n"}),
        p.error(p.ERR_AUTH, "bad key"),
    ]


def test_round_trip_through_split_stream():
    stream = b"".join(p.encode(f) for f in _frames())
    dec = p.FrameDecoder()
    out = []
    for i in range(0, len(stream), 3):  # byte-by-byte-ish arrival
        out.extend(dec.feed(stream[i:i + 3]))
    assert out == _frames()
    assert dec.pending == 0


def test_truncated_frame_is_pending_not_decoded():
    data = p.encode(p.ack(1))
    dec = p.FrameDecoder()
    assert list(dec.feed(data[:-1])) == []
    assert dec.pending == len(data) - 1


def test_oversized_length_is_refused_before_reading_body():
    dec = p.FrameDecoder(max_frame=100)
    with pytest.raises(p.ProtocolError) as err:
        list(dec.feed(struct.pack(">I", 101)))
    assert err.value.code == p.ERR_TOO_LARGE
    with pytest.raises(p.ProtocolError):
        p.encode(p.alerts(1, [{"x": "y" * 200}]), max_frame=100)


@pytest.mark.parametrize("payload,fragment", [
    (msgpack.packb([1, 2]), "must be a msgpack map"),
    (msgpack.packb({"type": "nope"}), "unknown frame type"),
    (msgpack.packb({"type": "ack"}), "missing field 'seq'"),
    (msgpack.packb({"type": "ack", "seq": True}), "must be int"),
    (msgpack.packb({"type": "ack", "seq": -1}), "out of range"),
    (msgpack.packb({"type": "alerts", "first_seq": 1, "alerts": []}), "empty batch"),
    (msgpack.packb({"type": "alerts", "first_seq": 0, "alerts": [{}]}), "first_seq out of range"),
    (msgpack.packb({"type": "alerts", "first_seq": 1, "alerts": [3]}), "alert 0 must be a map"),
    (msgpack.packb({"type": "heartbeat", "counters": {"a": "b"}}), "counters"),
    (msgpack.packb({"type": "rules", "hash": "h", "files": [{"name": 1}]}), "file 0"),
    (msgpack.packb({"type": "ack", "seq": 1}) + b"\x00", "not one msgpack map"),
    (b"\xc1", "not one msgpack map"),
    (msgpack.packb({"type": "ack", "seq": msgpack.ExtType(1, b"x")}), "extension type"),
    (b"\x81\xa4type\xa3a\xff\xff", "not one msgpack map"),  # invalid utf-8
])
def test_malformed_payloads(payload, fragment):
    dec = p.FrameDecoder()
    with pytest.raises(p.ProtocolError, match=fragment):
        list(dec.feed(struct.pack(">I", len(payload)) + payload))


def test_zero_length_frame():
    with pytest.raises(p.ProtocolError, match="zero-length"):
        list(p.FrameDecoder().feed(b"\x00\x00\x00\x00"))


def test_rules_hash_checked_and_order_independent():
    frame = p.rules({"b.yaml": "b", "a.yaml": "a"})
    assert p.frame_files(frame) == {"a.yaml": "a", "b.yaml": "b"}
    assert frame["hash"] == p.bundle_hash([("b.yaml", "b"), ("a.yaml", "a")])
    # moving bytes between name and content must change the hash
    assert p.bundle_hash([("ab", "c")]) != p.bundle_hash([("a", "bc")])
    frame["files"][0]["content"] = "tampered"
    with pytest.raises(p.ProtocolError, match="hash"):
        p.frame_files(frame)


def test_deeply_nested_payload_is_an_error_not_a_crash():
    payload = b"\x91" * 100000 + b"\x00"
    with pytest.raises(p.ProtocolError):
        list(p.FrameDecoder().feed(struct.pack(">I", len(payload)) + payload))


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**63, max_value=2**64 - 1)
    | st.floats(allow_nan=False) | st.text(max_size=20) | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8) | st.integers(min_value=-2**63, max_value=2**64 - 1), children, max_size=4),
    max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=64))
def test_fuzz_decoder_raw_bytes(data, chunk):
    dec = p.FrameDecoder(max_frame=200)
    try:
        for i in range(0, len(data), chunk):
            for frame in dec.feed(data[i:i + chunk]):
                assert frame["type"] in p.FRAME_FIELDS
    except p.ProtocolError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(p.FRAME_FIELDS)), st.dictionaries(st.text(max_size=12), msgpack_values, max_size=6))
def test_fuzz_decoder_structured_maps(ftype, fields):
    body = dict(fields, type=ftype)
    payload = msgpack.packb(body, use_bin_type=True)
    try:
        (frame,) = list(p.FrameDecoder().feed(struct.pack(">I", len(payload)) + payload))
    except p.ProtocolError:
        return
    # whatever passed validation can be sent on unchanged (the server forwards frames)
    assert list(p.FrameDecoder().feed(p.encode(frame))) == [frame]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_frames()), max_size=8), st.integers(min_value=1, max_value=50))
def test_fuzz_valid_stream_any_split(frames, chunk):
    stream = b"".join(p.encode(f) for f in frames)
    dec = p.FrameDecoder()
    out = []
    for i in range(0, len(stream), chunk):
        out.extend(dec.feed(stream[i:i + chunk]))
    assert out == frames
