"""Messages a worker sends to its master, as typed frozen classes.

Each knows its wire ``type``, its Locust ``data`` (:meth:`to_data`) and how to build
itself from decoded data (:meth:`from_data`, raising only ``ProtocolError``).

Imports: the standard library and horde.protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from horde.protocol import fields as f
from horde.protocol.base import HORDE_CLIENT_VERSION, Message, MessageType, horde_marker_version
from horde.protocol.errors import ProtocolError
from horde.protocol.locust_stats import LocustStatsReport
from horde.protocol.stats import HordeStatsDelta


@dataclass(frozen=True, slots=True)
class ClientReady(Message):
    """A worker announces itself; ``version`` is Locust's version string (or -1)."""

    TYPE = MessageType.CLIENT_READY
    version: object = HORDE_CLIENT_VERSION

    def to_data(self) -> object:
        return self.version

    @classmethod
    def from_data(cls, data: object, node_id: str) -> Self:
        if not (data is None or isinstance(data, str | int)) or isinstance(data, bool):
            raise ProtocolError("client_ready version must be a string or integer", reason="type")
        return cls(node_id, data)

    @property
    def horde_version(self) -> int | None:
        """The horde protocol version the worker speaks, or ``None`` for a Locust worker."""
        return horde_marker_version(self.version)


_HEARTBEAT_KEYS = frozenset(
    {"state", "current_cpu_usage", "current_memory_usage", "user_count", "loop_lag", "beat"}
)


@dataclass(frozen=True, slots=True)
class WorkerHeartbeat(Message):
    """A worker's periodic heartbeat: state, CPU percent, RSS bytes (and horde extras).

    ``beat`` (horde) numbers the worker's heartbeats; the master echoes it in its reply so
    that the worker can renew its lease from the send time of the beat answered.
    """

    TYPE = MessageType.HEARTBEAT
    state: str = "ready"
    cpu_usage: float = 0.0
    memory_usage: int = 0
    user_count: int | None = None
    loop_lag: float | None = None
    beat: int | None = None
    extra: Mapping[Any, Any] = field(default_factory=dict)

    def to_data(self) -> object:
        data: dict[Any, Any] = {
            "state": self.state,
            "current_cpu_usage": self.cpu_usage,
            "current_memory_usage": self.memory_usage,
        }
        if self.user_count is not None:
            data["user_count"] = self.user_count
        if self.loop_lag is not None:
            data["loop_lag"] = self.loop_lag
        if self.beat is not None:
            data["beat"] = self.beat
        return f.merge_extra(data, self.extra)

    @classmethod
    def from_data(cls, data: object, node_id: str) -> Self:
        d = f.as_map(data, "heartbeat")
        return cls(
            node_id,
            state=f.as_str(f.field(d, "state", "heartbeat"), "heartbeat state"),
            cpu_usage=f.as_float(d.get("current_cpu_usage", 0.0), "current_cpu_usage"),
            memory_usage=int(f.as_float(d.get("current_memory_usage", 0), "current_memory_usage")),
            user_count=f.as_opt_count(d.get("user_count"), "user_count"),
            loop_lag=f.as_opt_float(d.get("loop_lag"), "loop_lag"),
            beat=f.as_opt_count(d.get("beat"), "beat"),
            extra=f.extra_keys(d, _HEARTBEAT_KEYS),
        )


@dataclass(frozen=True, slots=True)
class Spawning(Message):
    """A worker received a ``spawn`` and is applying it."""

    TYPE = MessageType.SPAWNING


_COUNTS_KEYS = frozenset({"user_classes_count", "user_count"})


@dataclass(frozen=True, slots=True)
class WorkerSpawningComplete(Message):
    """A worker reached the counts of the last ``spawn``."""

    TYPE = MessageType.SPAWNING_COMPLETE
    user_classes_count: Mapping[str, int] = field(default_factory=dict)
    user_count: int = 0
    extra: Mapping[Any, Any] = field(default_factory=dict)

    def to_data(self) -> object:
        data = {"user_classes_count": dict(self.user_classes_count), "user_count": self.user_count}
        return f.merge_extra(data, self.extra)

    @classmethod
    def from_data(cls, data: object, node_id: str) -> Self:
        d = f.as_map(data, "spawning_complete")
        counts = f.as_counts(d.get("user_classes_count"), "user_classes_count")
        total = d.get("user_count")
        return cls(
            node_id,
            user_classes_count=counts,
            user_count=sum(counts.values()) if total is None else f.as_count(total, "user_count"),
            extra=f.extra_keys(d, _COUNTS_KEYS),
        )


@dataclass(frozen=True, slots=True)
class LocustStats(Message):
    """A stats delta in Locust's format (from a Locust worker, or to a Locust master)."""

    TYPE = MessageType.STATS
    report: LocustStatsReport

    def to_data(self) -> object:
        return self.report.to_wire()

    @classmethod
    def from_data(cls, data: object, node_id: str) -> Self:
        return cls(node_id, LocustStatsReport.from_wire(data))


@dataclass(frozen=True, slots=True)
class HordeStats(Message):
    """A stats delta in horde's compact format (interned entries, log-linear histograms)."""

    TYPE = MessageType.HORDE_STATS
    delta: HordeStatsDelta

    def to_data(self) -> object:
        return self.delta.to_wire()

    @classmethod
    def from_data(cls, data: object, node_id: str) -> Self:
        return cls(node_id, HordeStatsDelta.from_wire(data))


@dataclass(frozen=True, slots=True)
class ClientStopped(Message):
    """A worker stopped its users after a ``stop``."""

    TYPE = MessageType.CLIENT_STOPPED


@dataclass(frozen=True, slots=True)
class WorkerQuit(Message):
    """A worker is leaving."""

    TYPE = MessageType.QUIT


_EXCEPTION_KEYS = frozenset({"msg", "traceback"})
UNHANDLED = "horde_unhandled"
"""Extra key of an :class:`ExceptionReport` for a spawn the worker could not carry out."""


@dataclass(frozen=True, slots=True)
class ExceptionReport(Message):
    """An exception raised in a user's task, with its formatted traceback.

    A horde worker that could not carry out a spawn (a user class it cannot create) sets
    the extra key :data:`UNHANDLED` (Locust's masters ignore extra keys): in Locust that is
    an unhandled greenlet exception, which makes an otherwise clean run exit 2.
    """

    TYPE = MessageType.EXCEPTION
    msg: str = ""
    traceback: str = ""
    extra: Mapping[Any, Any] = field(default_factory=dict)

    @property
    def unhandled(self) -> bool:
        """Whether this reports a failed spawn rather than a task's exception."""
        return bool(self.extra.get(UNHANDLED))

    def to_data(self) -> object:
        data: dict[Any, Any] = {"msg": self.msg, "traceback": self.traceback}
        return f.merge_extra(data, self.extra)

    @classmethod
    def from_data(cls, data: object, node_id: str) -> Self:
        d = f.as_map(data, "exception")
        return cls(
            node_id,
            msg=f.as_str(f.field(d, "msg", "exception"), "exception msg"),
            traceback=f.as_str(d.get("traceback", ""), "exception traceback"),
            extra=f.extra_keys(d, _EXCEPTION_KEYS),
        )


@dataclass(frozen=True, slots=True)
class LocustfileRequest(Message):
    """A worker started without a script asks the master for it (Locust's ``-f -``)."""

    TYPE = MessageType.LOCUSTFILE
    version: object = HORDE_CLIENT_VERSION

    def to_data(self) -> object:
        return {"version": self.version}

    @classmethod
    def from_data(cls, data: object, node_id: str) -> Self:
        d = f.as_map_or_none(data, "locustfile request")
        return cls(node_id, d.get("version"))


@dataclass(frozen=True, slots=True)
class Logs(Message):
    """A worker's recent log lines."""

    TYPE = MessageType.LOGS
    lines: tuple[str, ...] = ()

    def to_data(self) -> object:
        return {"worker_id": self.node_id, "logs": list(self.lines)}

    @classmethod
    def from_data(cls, data: object, node_id: str) -> Self:
        d = f.as_map(data, "logs")
        raw = f.field(d, "logs", "logs")
        if not isinstance(raw, list):
            raise ProtocolError("logs must be a list", reason="type")
        return cls(node_id, tuple(f.as_str(line, "log line") for line in raw))
