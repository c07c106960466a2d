"""``horde.exception``: the exceptions Locust scripts import from ``locust.exception``.

The ones horde raises or reacts to are the user API's own (``StopUser``, ``StopTest``,
``RescheduleTask``, ``RescheduleTaskImmediately``, ``InterruptTaskSet``, ``ResponseError``,
``CatchResponseError``). ``LocustError`` is horde's root, :class:`HordeError`, so an
``except LocustError`` still catches horde's own errors. The RPC and runner errors exist
for scripts that name them in ``except`` clauses; horde never raises them.

Imports: the user API and horde.protocol.errors.
"""

from __future__ import annotations

from horde.protocol.errors import HordeError
from horde.protocol.errors import HordeError as LocustError
from horde.worker.api.response import CatchResponseError, ResponseError
from horde.worker.api.tasks import (
    InterruptTaskSet,
    RescheduleTask,
    RescheduleTaskImmediately,
    StopTest,
    StopUser,
)

__all__ = [
    "CatchResponseError",
    "InterruptTaskSet",
    "LocustError",
    "MissingWaitTimeError",
    "RPCError",
    "RPCReceiveError",
    "RPCSendError",
    "RescheduleTask",
    "RescheduleTaskImmediately",
    "ResponseError",
    "RunnerAlreadyExistsError",
    "StopTest",
    "StopUser",
]


class MissingWaitTimeError(HordeError):
    """Locust's error for a user without ``wait_time`` (horde's users wait 0 instead)."""


class RPCError(HordeError):
    """Locust's error for a failed master-worker message (horde reports its own)."""


class RPCSendError(RPCError):
    """Locust's error for a message that could not be sent."""


class RPCReceiveError(RPCError):
    """Locust's error for a message that could not be received."""


class RunnerAlreadyExistsError(HordeError):
    """Locust's error for a second runner in one environment (horde makes none)."""
