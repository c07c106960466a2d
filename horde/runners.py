"""``horde.runners``: what scripts import from ``locust.runners``.

The runner classes (for ``isinstance(environment.runner, MasterRunner)``), Locust's state
names, ``WorkerNode``, and Locust's module constants, with horde's values where horde has
the setting (the heartbeat, the stats and log intervals). ``LocalRunner`` and
``DistributedRunner`` exist to be named; horde's runs are always distributed, and
``environment.runner`` is a ``MasterRunner`` on the master and a ``WorkerRunner`` on a
worker. ``locust_exception_handler`` and ``ExceptionDict``/``WorkerNodes`` are Locust's
internals' names, given for imports; horde's master groups exceptions itself.

Imports: the user API, horde.protocol.defaults and the worker's settings constants.
"""

from __future__ import annotations

from typing import Any

from horde.protocol.defaults import DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_LIVENESS
from horde.worker.api.runners import (
    STATE_CLEANUP,
    STATE_INIT,
    STATE_MISSING,
    STATE_RUNNING,
    STATE_SPAWNING,
    STATE_STOPPED,
    STATE_STOPPING,
    LocalRunner,
    MasterRunner,
    Runner,
    WorkerNode,
    WorkerRunner,
)

__all__ = [
    "CONNECT_RETRY_COUNT",
    "CONNECT_TIMEOUT",
    "CPU_MONITOR_INTERVAL",
    "CPU_WARNING_THRESHOLD",
    "FALLBACK_INTERVAL",
    "HEARTBEAT_DEAD_INTERNAL",
    "HEARTBEAT_INTERVAL",
    "HEARTBEAT_LIVENESS",
    "LOCUST_STATE_STOPPING",
    "MASTER_HEARTBEAT_TIMEOUT",
    "STATE_CLEANUP",
    "STATE_INIT",
    "STATE_MISSING",
    "STATE_RUNNING",
    "STATE_SPAWNING",
    "STATE_STOPPED",
    "STATE_STOPPING",
    "WORKER_LOG_REPORT_INTERVAL",
    "WORKER_REPORT_INTERVAL",
    "DistributedRunner",
    "ExceptionDict",
    "LocalRunner",
    "MasterRunner",
    "Runner",
    "WorkerNode",
    "WorkerNodes",
    "WorkerRunner",
    "locust_exception_handler",
]

HEARTBEAT_INTERVAL = DEFAULT_HEARTBEAT_INTERVAL
HEARTBEAT_LIVENESS = DEFAULT_HEARTBEAT_LIVENESS
HEARTBEAT_DEAD_INTERNAL = -60
MASTER_HEARTBEAT_TIMEOUT = 60
FALLBACK_INTERVAL = 5
CONNECT_TIMEOUT = 5
CONNECT_RETRY_COUNT = 60
CPU_MONITOR_INTERVAL = 10.0
CPU_WARNING_THRESHOLD = 90
WORKER_REPORT_INTERVAL = 3.0
WORKER_LOG_REPORT_INTERVAL = 10
LOCUST_STATE_STOPPING = STATE_STOPPING


class DistributedRunner(Runner):
    """Locust's base of the master's and the workers' runners (named, never made)."""


class ExceptionDict(dict[str, Any]):
    """Locust's exception table type (named for imports)."""


class WorkerNodes(dict[str, WorkerNode]):
    """Locust's table of workers by id (``runner.clients`` is a plain dict of them)."""


def locust_exception_handler(exception: BaseException) -> None:
    """Locust's hook for uncaught greenlet exceptions; horde logs them itself."""
