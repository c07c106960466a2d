"""Every message that travels between a master and its workers, as typed frozen classes.

Locust's envelope is ``[type, data, node_id]``; each class here knows its ``type`` string,
how to turn its fields into Locust's ``data`` (:meth:`to_data`) and how to build itself
from a decoded ``data`` value (:meth:`from_data`, which raises only ``ProtocolError``).
Messages are declared once, in two tables: :data:`UPSTREAM` (worker to master) and
:data:`DOWNSTREAM` (master to worker), because ``heartbeat``, ``spawning_complete`` and
``locustfile`` mean different things in each direction.

horde's own messages are namespaced (``horde.stats``, ``horde.stats_ack``,
``horde.epoch``, ``horde.rate``, ``horde.arrivals``) and are sent only between peers that
agreed on the horde extension during the handshake (see :func:`horde_marker_version`).
Unknown keys in a payload are kept in ``extra`` and sent on again.

This module gathers them: the base (:mod:`.base`), the two directions
(:mod:`.upstream`, :mod:`.downstream`) and the two tables the codec uses.

Imports: horde.protocol.
"""

from __future__ import annotations

from horde.protocol.base import (
    HORDE_CLIENT_VERSION,
    LOCUST_COMPAT_VERSION,
    PROTOCOL_VERSION,
    Message,
    MessageType,
    UnknownMessage,
    horde_marker_version,
)
from horde.protocol.downstream import (
    Ack,
    HordeEpoch,
    HordeStatsAck,
    LocustfileReply,
    MasterHeartbeat,
    MasterSpawningComplete,
    Quit,
    Reconnect,
    ScriptFile,
    Spawn,
    Stop,
)
from horde.protocol.ratewire import HordeArrivals, HordeRate
from horde.protocol.upstream import (
    ClientReady,
    ClientStopped,
    ExceptionReport,
    HordeStats,
    LocustfileRequest,
    LocustStats,
    Logs,
    Spawning,
    WorkerHeartbeat,
    WorkerQuit,
    WorkerSpawningComplete,
)

__all__ = [
    "DOWNSTREAM",
    "HORDE_CLIENT_VERSION",
    "LOCUST_COMPAT_VERSION",
    "PROTOCOL_VERSION",
    "UPSTREAM",
    "Ack",
    "ClientReady",
    "ClientStopped",
    "ExceptionReport",
    "HordeArrivals",
    "HordeEpoch",
    "HordeRate",
    "HordeStats",
    "HordeStatsAck",
    "LocustStats",
    "LocustfileReply",
    "LocustfileRequest",
    "Logs",
    "MasterHeartbeat",
    "MasterSpawningComplete",
    "Message",
    "MessageType",
    "Quit",
    "Reconnect",
    "ScriptFile",
    "Spawn",
    "Spawning",
    "Stop",
    "UnknownMessage",
    "WorkerHeartbeat",
    "WorkerQuit",
    "WorkerSpawningComplete",
    "horde_marker_version",
]


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
    HordeArrivals,
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
    HordeRate,
)
