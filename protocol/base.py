"""The envelope's vocabulary: message types, the message base class, version markers.

Imports: the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Self

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
    HORDE_RATE = "horde.rate"
    HORDE_ARRIVALS = "horde.arrivals"


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
