"""horde's one exception tree.

Every error horde raises on purpose derives from :class:`HordeError`, so a caller can
catch the whole family with one clause. The branches:

- :class:`ProtocolError`: bytes that are not a valid message (bad msgpack, wrong shape,
  wrong types). The codec raises nothing else.
- :class:`TransportError`: a socket failed. :class:`SendError` and :class:`ReceiveError`
  are subclasses, so a heartbeat loop that catches ``TransportError`` also catches a
  failed send (unlike Locust, whose send errors escape its heartbeat handler).
- :class:`ConfigError`: a setting, flag or script that cannot be used; the message names it.
- :class:`ScriptError`: a user script that fails to load, defines no usable users, or whose
  load shape answers something that is not a load step (``horde.master.shape.ShapeError``).
- :class:`RequestError`: a control request the master refuses; ``field`` names the culprit.
  ``horde.master.forms.FieldError`` (a ``/swarm`` field that cannot be read) and
  ``horde.master.swarm.CommandError`` (a command the master's limits or the run's state
  refuse) are its subclasses, and the web API answers either with a 400.

Errors about a bad value (:class:`RequestError` and its subclasses, ``ShapeError``) are
also a ``ValueError``, as Python's own are. Subclasses that belong to one side live in
that side's module, beside the code that raises them; every one derives from a class here.

Imports: the standard library only.
"""

from __future__ import annotations


class HordeError(Exception):
    """Root of every error horde raises on purpose."""


class ProtocolError(HordeError):
    """A frame or payload that is not a valid horde/Locust message.

    ``reason`` is a short machine-friendly tag (``"msgpack"``, ``"shape"``, ``"type"``,
    ``"field"``, ``"size"``) used to count rejections; the message says what was wrong.
    """

    def __init__(self, message: str, *, reason: str = "shape") -> None:
        super().__init__(message)
        self.reason = reason


class TransportError(HordeError):
    """A ZeroMQ socket operation failed."""


class SendError(TransportError):
    """A message could not be sent (peer unroutable, queue full, socket closed)."""


class ReceiveError(TransportError):
    """A message could not be received from the socket."""


class InitListenerError(HordeError):
    """A script's ``init`` listener raised: the process ends with 1, as Locust's does."""


class ConfigError(HordeError):
    """A setting, flag or environment variable that cannot be used; the message names it."""


class ScriptError(HordeError):
    """A user script that cannot be loaded, defines no usable user classes, or misbehaves."""


class RequestError(HordeError, ValueError):
    """A control request that cannot be carried out; ``field`` names the culprit, if one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
