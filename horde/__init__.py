"""horde: a distributed load generator with Locust's user API.

User scripts import what they need from here::

    from horde import HttpUser, task, between

The names are loaded lazily (PEP 562), so ``import horde`` alone, as the ``horde``
command does first, imports nothing else: the command can monkey-patch with gevent
before any module that uses sockets is loaded. Importing horde starts nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "events": "horde.worker.events",
    "InterruptTaskSet": "horde.worker.tasks",
    "RescheduleTask": "horde.worker.tasks",
    "SequentialTaskSet": "horde.worker.tasks",
    "StopUser": "horde.worker.tasks",
    "TaskSet": "horde.worker.tasks",
    "tag": "horde.worker.tasks",
    "task": "horde.worker.tasks",
    "HttpUser": "horde.worker.users",
    "LoadTestShape": "horde.worker.users",
    "User": "horde.worker.users",
    "between": "horde.worker.wait",
    "constant": "horde.worker.wait",
    "constant_pacing": "horde.worker.wait",
    "constant_throughput": "horde.worker.wait",
}

__all__ = [
    "HttpUser",
    "InterruptTaskSet",
    "LoadTestShape",
    "RescheduleTask",
    "SequentialTaskSet",
    "StopUser",
    "TaskSet",
    "User",
    "__version__",
    "between",
    "constant",
    "constant_pacing",
    "constant_throughput",
    "events",
    "tag",
    "task",
]

if TYPE_CHECKING:
    from horde.worker.events import events
    from horde.worker.tasks import (
        InterruptTaskSet,
        RescheduleTask,
        SequentialTaskSet,
        StopUser,
        TaskSet,
        tag,
        task,
    )
    from horde.worker.users import HttpUser, LoadTestShape, User
    from horde.worker.wait import between, constant, constant_pacing, constant_throughput


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'horde' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
