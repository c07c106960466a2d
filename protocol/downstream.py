"""Messages a master sends to its workers, as typed frozen classes.

Each knows its wire ``type``, its Locust ``data`` (:meth:`to_data`) and how to build
itself from decoded data (:meth:`from_data`, raising only ``ProtocolError``).

Imports: the standard library and horde.protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from horde.protocol import fields as f
from horde.protocol.base import Message, MessageType
from horde.protocol.errors import ProtocolError

_ACK_KEYS = frozenset({"index", "horde", "lease"})


def _opt_lease(value: object) -> float | None:
    lease = f.as_opt_float(value, "ack lease")
    if lease is not None and not 0 < lease < 3600:
        raise ProtocolError(f"ack lease must be in (0, 3600) s, got {lease}", reason="field")
    return lease


@dataclass(frozen=True, slots=True)
class Ack(Message):
    """The master accepted a worker; ``horde`` is set when it speaks the horde extension.

    ``lease`` (horde) is how long, in seconds from the send time of a heartbeat, the master's
    answer to that heartbeat lets the worker keep its users running.
    """

    TYPE = MessageType.ACK
    index: int = 0
    horde: int | None = None
    lease: float | None = None
    extra: Mapping[Any, Any] = field(default_factory=dict)

    def to_data(self) -> object:
        data: dict[Any, Any] = {"index": self.index}
        if self.horde is not None:
            data["horde"] = self.horde
        if self.lease is not None:
            data["lease"] = self.lease
        return f.merge_extra(data, self.extra)

    @classmethod
    def from_data(cls, data: object, node_id: str) -> Self:
        d = f.as_map(data, "ack")
        return cls(
            node_id,
            index=f.as_count(f.field(d, "index", "ack"), "ack index"),
            horde=f.as_opt_count(d.get("horde"), "ack horde"),
            lease=_opt_lease(d.get("lease")),
            extra=f.extra_keys(d, _ACK_KEYS),
        )


@dataclass(frozen=True, slots=True)
class MasterHeartbeat(Message):
    """The master's reply to a known worker's heartbeat; ``beat`` echoes the worker's."""

    TYPE = MessageType.HEARTBEAT
    beat: int | None = None
    extra: Mapping[Any, Any] = field(default_factory=dict)

    def to_data(self) -> object:
        data: dict[Any, Any] = {"beat": self.beat} if self.beat is not None else {}
        data = f.merge_extra(data, self.extra)
        return data or None

    @classmethod
    def from_data(cls, data: object, node_id: str) -> Self:
        d = f.as_map_or_none(data, "heartbeat")
        return cls(
            node_id,
            beat=f.as_opt_count(d.get("beat"), "heartbeat beat"),
            extra=f.extra_keys(d, frozenset({"beat"})),
        )


_SPAWN_KEYS = frozenset(
    {
        "timestamp",
        "user_classes_count",
        "host",
        "stop_timeout",
        "parsed_options",
        "run_id",
        "epoch",
    }
)


@dataclass(frozen=True, slots=True)
class Spawn(Message):
    """Absolute user counts per class for one worker, with the run's host and options."""

    TYPE = MessageType.SPAWN
    timestamp: float = 0.0
    user_classes_count: Mapping[str, int] = field(default_factory=dict)
    host: str = ""
    stop_timeout: float | None = None
    parsed_options: Mapping[str, Any] = field(default_factory=dict)
    run_id: str = ""
    epoch: int = 0
    extra: Mapping[Any, Any] = field(default_factory=dict)

    def to_data(self) -> object:
        data: dict[Any, Any] = {
            "timestamp": self.timestamp,
            "user_classes_count": dict(self.user_classes_count),
            "host": self.host,
            "stop_timeout": self.stop_timeout,
            "parsed_options": dict(self.parsed_options),
            "run_id": self.run_id,
            "epoch": self.epoch,
        }
        return f.merge_extra(data, self.extra)

    @classmethod
    def from_data(cls, data: object, node_id: str) -> Self:
        d = f.as_map(data, "spawn")
        options = f.as_map_or_none(d.get("parsed_options"), "parsed_options")
        return cls(
            node_id,
            timestamp=f.as_float(f.field(d, "timestamp", "spawn"), "spawn timestamp"),
            user_classes_count=f.as_counts(
                f.field(d, "user_classes_count", "spawn"), "user_classes_count"
            ),
            host=f.as_opt_str(d.get("host"), "spawn host") or "",
            stop_timeout=f.as_opt_float(d.get("stop_timeout"), "stop_timeout"),
            parsed_options={str(k): v for k, v in options.items()},
            run_id=f.as_opt_str(d.get("run_id"), "run_id") or "",
            epoch=f.as_count(d.get("epoch", 0), "epoch"),
            extra=f.extra_keys(d, _SPAWN_KEYS),
        )


@dataclass(frozen=True, slots=True)
class MasterSpawningComplete(Message):
    """The master finished a ramp: ``user_count`` users run in all."""

    TYPE = MessageType.SPAWNING_COMPLETE
    user_count: int = 0

    def to_data(self) -> object:
        return {"user_count": self.user_count}

    @classmethod
    def from_data(cls, data: object, node_id: str) -> Self:
        d = f.as_map(data, "spawning_complete")
        return cls(node_id, f.as_count(d.get("user_count", 0), "user_count"))


@dataclass(frozen=True, slots=True)
class Stop(Message):
    """Stop every user; the worker answers ``client_stopped`` then ``client_ready``."""

    TYPE = MessageType.STOP


@dataclass(frozen=True, slots=True)
class Quit(Message):
    """Stop and exit."""

    TYPE = MessageType.QUIT


@dataclass(frozen=True, slots=True)
class Reconnect(Message):
    """Rebuild the socket and register again."""

    TYPE = MessageType.RECONNECT


@dataclass(frozen=True, slots=True)
class ScriptFile:
    """One user script sent to a worker: its file name and source text."""

    filename: str
    contents: str


@dataclass(frozen=True, slots=True)
class LocustfileReply(Message):
    """The master's answer to a :class:`LocustfileRequest`: the scripts, or an error."""

    TYPE = MessageType.LOCUSTFILE
    files: tuple[ScriptFile, ...] = ()
    error: str | None = None

    def to_data(self) -> object:
        if self.error is not None:
            return {"error": self.error}
        return {
            "locustfiles": [{"filename": s.filename, "contents": s.contents} for s in self.files]
        }

    @classmethod
    def from_data(cls, data: object, node_id: str) -> Self:
        d = f.as_map(data, "locustfile reply")
        if "error" in d:
            return cls(node_id, error=f.as_str(d["error"], "locustfile error"))
        raw = f.field(d, "locustfiles", "locustfile reply")
        if not isinstance(raw, list):
            raise ProtocolError("locustfiles must be a list", reason="type")
        files = []
        for item in raw:
            entry = f.as_map(item, "locustfile")
            files.append(
                ScriptFile(
                    f.as_str(f.field(entry, "filename", "locustfile"), "filename"),
                    f.as_str(f.field(entry, "contents", "locustfile"), "contents"),
                )
            )
        return cls(node_id, tuple(files))


@dataclass(frozen=True, slots=True)
class HordeStatsAck(Message):
    """The master merged this worker's horde stats deltas up to ``seq`` of ``run_id``."""

    TYPE = MessageType.HORDE_STATS_ACK
    run_id: str = ""
    seq: int = 0

    def to_data(self) -> object:
        return {"run_id": self.run_id, "seq": self.seq}

    @classmethod
    def from_data(cls, data: object, node_id: str) -> Self:
        d = f.as_map(data, "horde.stats_ack")
        return cls(
            node_id,
            f.as_str(f.field(d, "run_id", "horde.stats_ack"), "run_id"),
            f.as_count(f.field(d, "seq", "horde.stats_ack"), "seq"),
        )


@dataclass(frozen=True, slots=True)
class HordeEpoch(Message):
    """Stats were reset: tag deltas with ``epoch`` from now on and drop older figures."""

    TYPE = MessageType.HORDE_EPOCH
    run_id: str = ""
    epoch: int = 0

    def to_data(self) -> object:
        return {"run_id": self.run_id, "epoch": self.epoch}

    @classmethod
    def from_data(cls, data: object, node_id: str) -> Self:
        d = f.as_map(data, "horde.epoch")
        return cls(
            node_id,
            f.as_str(f.field(d, "run_id", "horde.epoch"), "run_id"),
            f.as_count(f.field(d, "epoch", "horde.epoch"), "epoch"),
        )
