"""The codec: Locust's envelope, round trips, and garbage that only ever yields ProtocolError."""

from __future__ import annotations

import contextlib
import datetime as dt

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horde.protocol import messages as m
from horde.protocol.codec import (
    decode_downstream,
    decode_upstream,
    encode,
    encode_raw,
    unpack_envelope,
)
from horde.protocol.errors import HordeError, ProtocolError

UPSTREAM_SAMPLES = [
    m.ClientReady("host_1"),
    m.ClientReady("host_1", "2.47.0"),
    m.ClientReady("host_1", -1),
    m.WorkerHeartbeat("host_1", "running", 12.5, 1024),
    m.WorkerHeartbeat("host_1", "running", 12.5, 1024, user_count=3, loop_lag=0.01),
    m.Spawning("host_1"),
    m.WorkerSpawningComplete("host_1", {"A": 2, "B": 1}, 3),
    m.ClientStopped("host_1"),
    m.WorkerQuit("host_1"),
    m.ExceptionReport("host_1", "ValueError('x')", "Traceback ..."),
    m.LocustfileRequest("host_download_locustfile_1"),
    m.Logs("host_1", ("one", "two")),
]

DOWNSTREAM_SAMPLES = [
    m.Ack("host_1", 0),
    m.Ack("host_1", 3, horde=m.PROTOCOL_VERSION),
    m.MasterHeartbeat("host_1"),
    m.Spawn("host_1", 1.5, {"A": 3}, "http://127.0.0.1:1", 2.0, {"x": 1}, "run1", 2),
    m.MasterSpawningComplete("host_1", 10),
    m.Stop("host_1"),
    m.Quit("host_1"),
    m.Reconnect("host_1"),
    m.LocustfileReply("host_1", (m.ScriptFile("a.py", "print(1)"),)),
    m.LocustfileReply("host_1", error="nope"),
    m.HordeStatsAck("host_1", "run1", 7),
    m.HordeEpoch("host_1", "run1", 1),
]


@pytest.mark.parametrize("message", UPSTREAM_SAMPLES, ids=lambda msg: msg.type)
def test_upstream_round_trip(message: m.Message) -> None:
    """Every worker-to-master message decodes to an equal message."""
    assert decode_upstream(encode(message)) == message


@pytest.mark.parametrize("message", DOWNSTREAM_SAMPLES, ids=lambda msg: msg.type)
def test_downstream_round_trip(message: m.Message) -> None:
    """Every master-to-worker message decodes to an equal message."""
    assert decode_downstream(encode(message)) == message


def test_envelope_is_locusts_three_element_array() -> None:
    """A frame is msgpack [type, data, node_id], byte for byte as Locust's ack example."""
    raw = encode(m.Ack("abc", 0))
    assert (
        raw
        == bytes([0x93, 0xA3])
        + b"ack"
        + bytes([0x81, 0xA5])
        + b"index"
        + bytes([0x00, 0xA3])
        + b"abc"
    )


def test_decodes_a_frame_built_by_locust() -> None:
    """A heartbeat serialised by Locust's own Message class decodes as a heartbeat."""
    from locust.rpc.protocol import Message as LocustMessage

    raw = LocustMessage(
        "heartbeat",
        {"state": "running", "current_cpu_usage": 3.0, "current_memory_usage": 100},
        "h_1",
    ).serialize()
    decoded = decode_upstream(raw)
    assert decoded == m.WorkerHeartbeat("h_1", "running", 3.0, 100)


def test_locust_decodes_horde_spawn() -> None:
    """Locust's decoder reads a horde spawn, extra run_id key included."""
    from locust.rpc.protocol import Message as LocustMessage

    spawn = m.Spawn("w", 2.0, {"A": 1}, "http://127.0.0.1:9", None, {}, "r1", 0)
    decoded = LocustMessage.unserialize(encode(spawn))
    assert decoded.type == "spawn"
    assert decoded.data["user_classes_count"] == {"A": 1}
    assert decoded.data["run_id"] == "r1"


def test_unknown_keys_are_kept() -> None:
    """Unknown payload keys survive decoding and re-encoding."""
    raw = encode_raw("heartbeat", {"state": "ready", "custom": [1, 2]}, "w")
    message = decode_upstream(raw)
    assert isinstance(message, m.WorkerHeartbeat)
    assert message.extra == {"custom": [1, 2]}
    assert decode_upstream(encode(message)) == message


def test_unknown_type_is_returned_whole() -> None:
    """A type this side does not know arrives as UnknownMessage, for custom handlers."""
    message = decode_upstream(encode_raw("my_custom", {"a": 1}, "w"))
    assert message == m.UnknownMessage("my_custom", {"a": 1}, "w")


def test_datetimes_travel_as_locust_encodes_them() -> None:
    """A datetime in a payload is encoded as Locust's __datetime__ map and decoded back."""
    when = dt.datetime(2026, 11, 25, 12, 30, 1, 5000)
    raw = encode_raw("my_custom", {"when": when}, "w")
    assert msgpack.unpackb(raw, raw=False)[1]["when"]["__datetime__"] is True
    assert decode_upstream(raw).data == {"when": when}  # type: ignore[union-attr]


def test_horde_marker_in_client_ready() -> None:
    """A horde worker's version carries the marker; Locust's versions do not."""
    assert m.ClientReady("w").horde_version == m.PROTOCOL_VERSION
    assert m.HORDE_CLIENT_VERSION[:4] == "2.47"
    assert m.ClientReady("w", "2.47.0").horde_version is None
    assert m.ClientReady("w", -1).horde_version is None
    assert m.horde_marker_version("2.47.0+horde.x") is None


BAD_FRAMES = [
    b"",
    b"\xc1",
    b"\x93",
    msgpack.packb([1, 2, 3]),
    msgpack.packb(["heartbeat", {}, "w", "extra"]),
    msgpack.packb({"type": "heartbeat"}),
    msgpack.packb(["heartbeat", None, "w"]),
    msgpack.packb(["heartbeat", {"state": 3}, "w"]),
    msgpack.packb(["heartbeat", {"state": "x", "current_cpu_usage": "hot"}, "w"]),
    msgpack.packb(["client_ready", {"v": 1}, "w"]),
    msgpack.packb(["exception", {"traceback": "t"}, "w"]),
    msgpack.packb(["stats", [], "w"]),
    msgpack.packb(["horde.stats", "nope", "w"]),
    msgpack.packb(["my_custom", 1, "w"]) + b"trailing",
]


BAD_DOWNSTREAM = [
    msgpack.packb(["spawn", {"timestamp": 1}, "w"]),
    msgpack.packb(["spawn", {"timestamp": 1, "user_classes_count": {"A": -1}}, "w"]),
    msgpack.packb(["ack", None, "w"]),
    msgpack.packb(["ack", {"index": "zero"}, "w"]),
    msgpack.packb(["spawn", {"timestamp": float("nan"), "user_classes_count": {}}, "w"]),
    msgpack.packb(["locustfile", {"locustfiles": [{"filename": "a.py"}]}, "w"]),
    msgpack.packb(["horde.stats_ack", {"run_id": "r", "seq": -1}, "w"]),
    msgpack.packb(["heartbeat", [1], "w"]),
]


@pytest.mark.parametrize("raw", BAD_FRAMES)
def test_bad_upstream_frames_raise_protocol_error(raw: bytes) -> None:
    """Malformed worker frames of every kind raise ProtocolError and nothing else."""
    with pytest.raises(ProtocolError):
        decode_upstream(raw)


@pytest.mark.parametrize("raw", BAD_DOWNSTREAM + BAD_FRAMES[:6])
def test_bad_downstream_frames_raise_protocol_error(raw: bytes) -> None:
    """Malformed master frames raise ProtocolError and nothing else."""
    with pytest.raises(ProtocolError):
        decode_downstream(raw)


def test_oversized_frame_is_refused_before_parsing() -> None:
    """A frame over the size limit is a ProtocolError with reason 'size'."""
    with pytest.raises(ProtocolError) as info:
        unpack_envelope(b"\x00" * 101, max_size=100)
    assert info.value.reason == "size"


def test_protocol_error_is_a_horde_error() -> None:
    """Catching HordeError also catches codec errors."""
    assert issubclass(ProtocolError, HordeError)


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=6) | st.integers(-(2**31), 2**31), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_never_raise_anything_else(raw: bytes) -> None:
    """Random bytes decode to a message or raise ProtocolError."""
    for decode in (decode_upstream, decode_downstream):
        with contextlib.suppress(ProtocolError):
            decode(raw)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(sorted({*m.UPSTREAM, *m.DOWNSTREAM, "zzz"})),
    msgpack_values,
    st.text(max_size=8),
)
def test_wellformed_envelopes_with_random_payloads(kind: str, data: object, node: str) -> None:
    """Any payload under any known type decodes or raises ProtocolError, never another error."""
    raw = msgpack.packb([kind, data, node])
    for decode in (decode_upstream, decode_downstream):
        with contextlib.suppress(ProtocolError):
            decode(raw)


def test_extra_keys_never_override_known_fields() -> None:
    """An extra key that collides with a known field cannot change what is sent."""
    message = m.WorkerHeartbeat("w", "running", 1.0, 5, extra={"state": "spoofed", "x": 1})
    decoded = decode_upstream(encode(message))
    assert isinstance(decoded, m.WorkerHeartbeat)
    assert decoded.state == "running" and decoded.extra == {"x": 1}
