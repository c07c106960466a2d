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
    "events": "horde.worker.api.events",
    "InterruptTaskSet": "horde.worker.api.tasks",
    "RescheduleTask": "horde.worker.api.tasks",
    "SequentialTaskSet": "horde.worker.api.tasks",
    "StopUser": "horde.worker.api.tasks",
    "TaskSet": "horde.worker.api.tasks",
    "tag": "horde.worker.api.tasks",
    "task": "horde.worker.api.tasks",
    "FastHttpUser": "horde.worker.api.fasthttp",
    "HttpUser": "horde.worker.api.users",
    "LoadTestShape": "horde.worker.api.users",
    "User": "horde.worker.api.users",
    "between": "horde.worker.api.wait",
    "constant": "horde.worker.api.wait",
    "constant_pacing": "horde.worker.api.wait",
    "constant_throughput": "horde.worker.api.wait",
    "poisson": "horde.worker.api.wait",
    "MarkovTaskSet": "horde.worker.api.markov",
    "transition": "horde.worker.api.markov",
    "transitions": "horde.worker.api.markov",
    "run_single_user": "horde.worker.api.debug",
    "wait_time": "horde.user",
    "Locust": "horde.deprecated",
    "HttpLocust": "horde.deprecated",
}

__all__ = [
    "FastHttpUser",
    "HttpLocust",
    "HttpUser",
    "InterruptTaskSet",
    "LoadTestShape",
    "Locust",
    "MarkovTaskSet",
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
    "poisson",
    "run_single_user",
    "tag",
    "task",
    "transition",
    "transitions",
    "wait_time",
]

if TYPE_CHECKING:
    from horde.deprecated import HttpLocust, Locust
    from horde.user import wait_time
    from horde.worker.api.debug import run_single_user
    from horde.worker.api.events import events
    from horde.worker.api.fasthttp import FastHttpUser
    from horde.worker.api.markov import MarkovTaskSet, transition, transitions
    from horde.worker.api.tasks import (
        InterruptTaskSet,
        RescheduleTask,
        SequentialTaskSet,
        StopUser,
        TaskSet,
        tag,
        task,
    )
    from horde.worker.api.users import HttpUser, LoadTestShape, User
    from horde.worker.api.wait import (
        between,
        constant,
        constant_pacing,
        constant_throughput,
        poisson,
    )


_SUBMODULES = {"clients", "contrib", "env", "event", "exception", "runners", "stats", "user"}
"""Modules reached as attributes after ``import horde as locust`` (``locust.stats.X = ...``),
as ``import locust`` makes Locust's submodules attributes."""


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"horde.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'horde' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
