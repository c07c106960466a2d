"""Every message that travels between a master and its workers, as typed frozen classes.

Locust's envelope is ``[type, data, node_id]``; each class here knows its ``type`` string,
how to turn its fields into Locust's ``data`` (:meth:`to_data`) and how to build itself
from a decoded ``data`` value (:meth:`from_data`, which raises only ``ProtocolError``).
Messages are declared once, in two tables: :data:`UPSTREAM` (worker to master) and
:data:`DOWNSTREAM` (master to worker), because ``heartbeat``, ``spawning_complete`` and
``locustfile`` mean different things in each direction.

horde's own messages are namespaced (``horde.stats``, ``horde.stats_ack``,
``horde.epoch``) and are sent only between peers that agreed on the horde extension
during the handshake (see :func:`horde_marker_version`). Unknown keys in a payload are
kept in ``extra`` and sent on again.

Imports: the standard library and :mod:`horde.protocol`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Self

from horde.protocol import fields as f
from horde.protocol.errors import ProtocolError
from horde.protocol.stats import HordeStatsDelta, LocustStatsReport

#: The horde extension's protocol version, announced in ``client_ready`` and ``ack``.
PROTOCOL_VERSION = 1
#: The Locust version horde speaks; a Locust master compares its first four characters.
LOCUST_COMPAT_VERSION = "2.47.0"
_MARKER = "+horde."
#: What a horde worker sends in ``client_ready``: accepted by Locust, recognised by horde.
HORDE_CLIENT_VERSION = f"{LOCUST_COMPAT_VERSION}{_MARKER}{PROTOCOL_VERSION}"


class MessageType(StrEnum):
    """The ``type`` strings on the wire."""

    CLIENT_READY = "client_ready"
    ACK = "ack"
    HEARTBEAT = "heartbeat"
    SPAWN = "spawn"
    SPAWNING = "spawning"
    SPAWNING_COMPLETE = "spawning_complete"
    STATS = "stats"
    STOP = "stop"
    CLIENT_STOPPED = "client_stopped"
    QUIT = "quit"
    EXCEPTION = "exception"
    RECONNECT = "reconnect"
    LOCUSTFILE = "locustfile"
    LOGS = "logs"
    HORDE_STATS = "horde.stats"
    HORDE_STATS_ACK = "horde.stats_ack"
    HORDE_EPOCH = "horde.epoch"


def horde_marker_version(version: object) -> int | None:
    """Return the horde protocol version inside a ``client_ready`` version, or ``None``.

    ``"2.47.0+horde.1"`` gives 1; a plain Locust version, ``-1`` or garbage gives ``None``.
    """
    if not isinstance(version, str) or _MARKER not in version:
        return None
    tail = version.rsplit(_MARKER, 1)[1]
    return int(tail) if tail.isdigit() else None


@dataclass(frozen=True, slots=True)
class Message:
    """Base of every message: who it is from (upstream) or for (downstream)."""

    TYPE: ClassVar[MessageType]
    node_id: str

    def to_data(self) -> object:
        """Return Locust's ``data`` element for this message."""
        return None

    @classmethod
    def from_data(cls, data: object, node_id: str) -> Self:
        """Build the message from a decoded ``data`` element (``None`` for bare messages)."""
        return cls(node_id)

    @property
    def type(self) -> str:
        """The wire type string."""
        return str(self.TYPE)


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A message whose type this side does not know: kept whole for custom handlers."""

    type: str
    data: object
    node_id: str

    def to_data(self) -> object:
        """Return the payload as received."""
        return self.data


# --- worker -> master -------------------------------------------------------------------


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
    {"state", "current_cpu_usage", "current_memory_usage", "user_count", "loop_lag"}
)


@dataclass(frozen=True, slots=True)
class WorkerHeartbeat(Message):
    """A worker's periodic heartbeat: state, CPU percent, RSS bytes (and horde extras)."""

    TYPE = MessageType.HEARTBEAT
    state: str = "ready"
    cpu_usage: float = 0.0
    memory_usage: int = 0
    user_count: int | None = None
    loop_lag: float | None = None
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
        data.update(self.extra)
        return data

    @classmethod
    def from_data(cls, data: object, node_id: str) -> Self:
        d = f.as_map(data, "heartbeat")
        user_count = d.get("user_count")
        return cls(
            node_id,
            state=f.as_str(f.field(d, "state", "heartbeat"), "heartbeat state"),
            cpu_usage=f.as_float(d.get("current_cpu_usage", 0.0), "current_cpu_usage"),
            memory_usage=int(f.as_float(d.get("current_memory_usage", 0), "current_memory_usage")),
            user_count=None if user_count is None else f.as_count(user_count, "user_count"),
            loop_lag=f.as_opt_float(d.get("loop_lag"), "loop_lag"),
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
        data.update(self.extra)
        return data

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


@dataclass(frozen=True, slots=True)
class ExceptionReport(Message):
    """An exception raised in a user's task, with its formatted traceback."""

    TYPE = MessageType.EXCEPTION
    msg: str = ""
    traceback: str = ""
    extra: Mapping[Any, Any] = field(default_factory=dict)

    def to_data(self) -> object:
        data: dict[Any, Any] = {"msg": self.msg, "traceback": self.traceback}
        data.update(self.extra)
        return data

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


# --- master -> worker -------------------------------------------------------------------


_ACK_KEYS = frozenset({"index", "horde"})


@dataclass(frozen=True, slots=True)
class Ack(Message):
    """The master accepted a worker; ``horde`` is set when it speaks the horde extension."""

    TYPE = MessageType.ACK
    index: int = 0
    horde: int | None = None
    extra: Mapping[Any, Any] = field(default_factory=dict)

    def to_data(self) -> object:
        data: dict[Any, Any] = {"index": self.index}
        if self.horde is not None:
            data["horde"] = self.horde
        data.update(self.extra)
        return data

    @classmethod
    def from_data(cls, data: object, node_id: str) -> Self:
        d = f.as_map(data, "ack")
        horde = d.get("horde")
        return cls(
            node_id,
            index=f.as_count(f.field(d, "index", "ack"), "ack index"),
            horde=None if horde is None else f.as_count(horde, "ack horde"),
            extra=f.extra_keys(d, _ACK_KEYS),
        )


@dataclass(frozen=True, slots=True)
class MasterHeartbeat(Message):
    """The master's reply to a known worker's heartbeat."""

    TYPE = MessageType.HEARTBEAT
    extra: Mapping[Any, Any] = field(default_factory=dict)

    def to_data(self) -> object:
        return dict(self.extra) if self.extra else None

    @classmethod
    def from_data(cls, data: object, node_id: str) -> Self:
        return cls(node_id, dict(f.as_map_or_none(data, "heartbeat")))


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
        data.update(self.extra)
        return data

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


def _table(*classes: type[Message]) -> dict[str, type[Message]]:
    return {str(cls.TYPE): cls for cls in classes}


#: Messages a master accepts from workers, by wire type.
UPSTREAM: dict[str, type[Message]] = _table(
    ClientReady,
    WorkerHeartbeat,
    Spawning,
    WorkerSpawningComplete,
    LocustStats,
    HordeStats,
    ClientStopped,
    WorkerQuit,
    ExceptionReport,
    LocustfileRequest,
    Logs,
)

#: Messages a worker accepts from a master, by wire type.
DOWNSTREAM: dict[str, type[Message]] = _table(
    Ack,
    MasterHeartbeat,
    Spawn,
    MasterSpawningComplete,
    Stop,
    Quit,
    Reconnect,
    LocustfileReply,
    HordeStatsAck,
    HordeEpoch,
)
