"""Encode messages to bytes and decode bytes to messages, defensively.

The frame is Locust's: a msgpack array ``[type, data, node_id]``, map keys may be
integers, and datetimes travel as ``{"__datetime__": True, "as_str": ...}``.
:func:`decode_upstream` (what a master reads) and :func:`decode_downstream` (what a
worker reads) turn *any* byte string into a message or raise :class:`ProtocolError`;
they never raise anything else, so one bad frame cannot stop a receive loop.

Imports: the standard library, msgpack and :mod:`horde.protocol`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from math import isfinite
from typing import Any

import msgpack

from horde.protocol.errors import ProtocolError
from horde.protocol.locust_schema import typed_reports
from horde.protocol.locust_stats import COLUMNS_KEY, LocustStatsReport, locust_columns_many
from horde.protocol.messages import (
    DOWNSTREAM,
    UPSTREAM,
    LocustStats,
    MasterHeartbeat,
    Message,
    MessageType,
    UnknownMessage,
    WorkerHeartbeat,
)
from horde.protocol.packed import PACKED_KEY, unpack_entries_many

#: Frames larger than this are refused before they are parsed (bytes).
DEFAULT_MAX_FRAME = 16 * 1024 * 1024
_DATETIME_FORMAT = "%Y%m%dT%H:%M:%S.%f"
_DATETIME_MARKER = b"__datetime__"
_STATS_HEAD = b"\xa5stats"
"""The msgpack string ``"stats"``, as a Locust stats frame's type follows its array header."""
_HEARTBEAT_HEAD = b"\xa9heartbeat"
"""The msgpack string ``"heartbeat"``, as a heartbeat frame's type follows its array header."""

AnyMessage = Message | UnknownMessage
_HORDE_STATS = MessageType.HORDE_STATS.value
_LOCUST_STATS = MessageType.STATS.value


def _encode_hook(obj: object) -> object:
    if isinstance(obj, dt.datetime):
        return {"__datetime__": True, "as_str": obj.strftime(_DATETIME_FORMAT)}
    if isinstance(obj, tuple | frozenset | set):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _decode_hook(obj: dict[Any, Any]) -> object:
    if obj.get("__datetime__") is True and isinstance(obj.get("as_str"), str):
        return dt.datetime.strptime(obj["as_str"], _DATETIME_FORMAT)
    return obj


def encode(message: AnyMessage) -> bytes:
    """Serialise ``message`` as Locust's ``[type, data, node_id]`` msgpack array."""
    if type(message) is MasterHeartbeat and not message.extra:  # 5,000 a second: no detour
        beat = message.beat
        return _packb(("heartbeat", None if beat is None else {"beat": beat}, message.node_id))
    return encode_raw(message.type, message.to_data(), message.node_id)


_packb = msgpack.packb
_HEARTBEAT_KEYS = frozenset(
    {"state", "current_cpu_usage", "current_memory_usage", "user_count", "loop_lag", "beat"}
)
_EXACT = 1 << 53


def _plain_float(value: object) -> float | None:
    """``value`` as a float when it surely converts as ``as_float`` would; else None."""
    if type(value) is float:
        return value if isfinite(value) else None
    if type(value) is int and -_EXACT < value < _EXACT:
        return float(value)
    return None


def _plain_count(value: object) -> bool:
    """Whether ``value`` is None or a non-negative int (not a bool)."""
    return value is None or (type(value) is int and value >= 0)


def _worker_heartbeat(data: object, node_id: str) -> WorkerHeartbeat | None:
    """The heartbeat of plain, valid ``data`` (what every worker sends), else None.

    Builds exactly what :meth:`WorkerHeartbeat.from_data` builds, without its general
    validators; anything unusual (extra keys, odd types) returns None for the full path.
    """
    if type(data) is not dict or not data.keys() <= _HEARTBEAT_KEYS:
        return None
    state = data.get("state")
    cpu = _plain_float(data.get("current_cpu_usage", 0.0))
    memory = _plain_float(data.get("current_memory_usage", 0))
    user_count, lag, beat = data.get("user_count"), data.get("loop_lag"), data.get("beat")
    loop_lag = None if lag is None else _plain_float(lag)
    if (
        type(state) is not str
        or cpu is None
        or memory is None
        or (lag is not None and loop_lag is None)
        or not _plain_count(user_count)
        or not _plain_count(beat)
    ):
        return None
    return WorkerHeartbeat(node_id, state, cpu, int(memory), user_count, loop_lag, beat, {})


def _typed(raw: bytes, head: bytes) -> bool:
    """Whether frame ``raw``'s envelope type, right after its array header, is ``head``."""
    return raw[1 : 1 + len(head)] == head


def is_heartbeat_frame(raw: bytes) -> bool:
    """Whether ``raw`` looks like a heartbeat, judged from its type string alone (cheap).

    No validation: a frame that looks like one may still fail to decode.
    """
    return _typed(raw, _HEARTBEAT_HEAD)


def encode_raw(message_type: str, data: object, node_id: str) -> bytes:
    """Serialise a raw envelope; used for custom messages and by tests of hostile input."""
    packed = msgpack.packb((message_type, data, node_id), default=_encode_hook)
    assert isinstance(packed, bytes)
    return packed


def unpack_envelope(raw: object, *, max_size: int = DEFAULT_MAX_FRAME) -> tuple[str, Any, str]:
    """Return ``(type, data, node_id)`` from a frame, or raise :class:`ProtocolError`."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise ProtocolError(f"frame must be bytes, got {type(raw).__name__}", reason="type")
    if len(raw) > max_size:
        raise ProtocolError(f"frame of {len(raw)} bytes exceeds {max_size}", reason="size")
    # Only a frame holding the marker can hold a datetime. A Locust stats frame holds
    # hundreds of maps: when it lacks the marker, it skips the hook each map would call.
    plain = type(raw) is bytes and _typed(raw, _STATS_HEAD) and _DATETIME_MARKER not in raw
    hook = None if plain else _decode_hook
    try:
        envelope = msgpack.unpackb(
            raw, raw=False, strict_map_key=False, object_hook=hook, use_list=True
        )
    except Exception as exc:  # msgpack raises many types (ExtraData, ValueError, ...)
        raise ProtocolError(f"not msgpack: {type(exc).__name__}: {exc}", reason="msgpack") from None
    if not isinstance(envelope, list) or len(envelope) != 3:
        raise ProtocolError("frame is not a [type, data, node_id] array", reason="shape")
    message_type, data, node_id = envelope
    if not isinstance(message_type, str) or not isinstance(node_id, str):
        raise ProtocolError("frame type and node_id must be strings", reason="shape")
    return message_type, data, node_id


def _decode(raw: object, table: dict[str, type[Message]], max_size: int) -> AnyMessage:
    return _message(*unpack_envelope(raw, max_size=max_size), table)


def _message(
    message_type: str, data: Any, node_id: str, table: dict[str, type[Message]]
) -> AnyMessage:
    """The message of an unpacked envelope, validated; raise :class:`ProtocolError`."""
    if message_type == "heartbeat" and table is UPSTREAM:
        heartbeat = _worker_heartbeat(data, node_id)
        if heartbeat is not None:
            return heartbeat
    cls = table.get(message_type)
    if cls is None:
        return UnknownMessage(message_type, data, node_id)
    try:
        return cls.from_data(data, node_id)
    except ProtocolError:
        raise
    except Exception as exc:  # a validator bug must still not escape as another type
        raise ProtocolError(
            f"invalid {message_type} payload: {type(exc).__name__}: {exc}", reason="field"
        ) from None


def decode_upstream(raw: object, *, max_size: int = DEFAULT_MAX_FRAME) -> AnyMessage:
    """Decode a frame a worker sent to a master."""
    return _decode(raw, UPSTREAM, max_size)


def decode_upstream_many(
    raws: Sequence[object], *, max_size: int = DEFAULT_MAX_FRAME
) -> list[AnyMessage | ProtocolError]:
    """Decode frames workers sent to a master: each one's message, or its error.

    The same result as :func:`decode_upstream` frame by frame, but the entries of all
    ``horde.stats`` deltas (packed) and of all Locust ``stats`` reports among them are
    validated and decoded in one batch each
    (:func:`~horde.protocol.packed.unpack_entries_many`,
    :func:`~horde.protocol.locust_stats.locust_columns_many`). The verdicts travel to
    ``from_wire`` inside the payload dicts, under the delta's ``packed`` key (in place of
    the blobs) and under a report's :data:`~horde.protocol.locust_stats.COLUMNS_KEY`:
    msgpack never produces such objects, so a peer cannot forge one.
    """
    typed = _typed_reports(raws, max_size)
    unpacked: list[tuple[str, Any, str] | AnyMessage | ProtocolError] = []
    stats: list[dict[Any, Any]] = []
    reports: list[dict[Any, Any]] = []
    for index, raw in enumerate(raws):
        message = typed.get(index)
        if message is not None:
            unpacked.append(message)
            continue
        try:
            envelope = unpack_envelope(raw, max_size=max_size)
        except ProtocolError as exc:
            unpacked.append(exc)
            continue
        unpacked.append(envelope)
        data = envelope[1]
        if type(data) is dict:
            if envelope[0] == _HORDE_STATS and PACKED_KEY in data:
                stats.append(data)
            elif envelope[0] == _LOCUST_STATS:
                reports.append(data)
    _decode_batches(stats, reports)
    out: list[AnyMessage | ProtocolError] = []
    for item in unpacked:
        if not isinstance(item, tuple):  # an error, or a report the schema decoded
            out.append(item)
            continue
        try:
            out.append(_message(*item, UPSTREAM))
        except ProtocolError as exc:
            out.append(exc)
    return out


def _typed_reports(raws: Sequence[object], max_size: int) -> dict[int, AnyMessage]:
    """The Locust reports among ``raws`` that the typed schema decodes, by position.

    The schema decodes most Locust ``stats`` frames in a third of the time msgpack takes to
    build them as dicts, with every check done (:mod:`horde.protocol.locust_schema`); the
    rest, and any frame should this path fail, go the general way.
    """
    picked = [
        (k, raw)
        for k, raw in enumerate(raws)
        if isinstance(raw, bytes) and len(raw) <= max_size and _typed(raw, _STATS_HEAD)
    ]
    if not picked:
        return {}
    try:
        typed = typed_reports([raw for _, raw in picked])
        return {
            k: LocustStats(t.node_id, LocustStatsReport.from_typed(t.data, t.columns))
            for (k, _), t in zip(picked, typed, strict=True)
            if t is not None
        }
    except Exception:  # a bug here fails no frame: the general path decodes them all
        return {}


def _decode_batches(stats: list[dict[Any, Any]], reports: list[dict[Any, Any]]) -> None:
    """Leave in each payload the verdict its batch gave (see :func:`decode_upstream_many`).

    A validator bug fails no frame: each payload is then validated alone, guarded.
    """
    if len(stats) > 1:
        try:
            verdicts = unpack_entries_many([data[PACKED_KEY] for data in stats])
        except Exception:
            verdicts = [data[PACKED_KEY] for data in stats]
        for data, verdict in zip(stats, verdicts, strict=True):
            data[PACKED_KEY] = verdict
    if len(reports) > 1:
        try:
            for data, columns in zip(reports, locust_columns_many(reports), strict=True):
                data[COLUMNS_KEY] = columns
        except Exception:
            for data in reports:
                data.pop(COLUMNS_KEY, None)


def decode_downstream(raw: object, *, max_size: int = DEFAULT_MAX_FRAME) -> AnyMessage:
    """Decode a frame a master sent to a worker."""
    return _decode(raw, DOWNSTREAM, max_size)
