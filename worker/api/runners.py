"""``environment.runner`` as scripts see it: Locust's runner classes, states and messages.

Scripts ask ``isinstance(environment.runner, MasterRunner)`` (or ``WorkerRunner``) to
know their side, read ``state``, ``user_count``, ``target_user_count``, ``spawn_rate``,
``stats``, ``worker_index`` / ``worker_count``, call ``stop()`` and ``quit()``, and
exchange custom messages: ``register_message(name, handler, concurrent=False)`` and
``send_message(name, data=None, client_id=None)``, in Locust's wire format (so they work
with Locust workers too). A handler is called as Locust calls it,
``handler(environment=..., msg=...)``, where ``msg`` has ``type``, ``data`` and
``node_id``; with ``concurrent=True`` it runs in a greenlet of its own.

The classes here hold what both sides share; the master's runner
(``horde.master.runner``) and the worker's (``horde.worker.runner``) fill them in. horde
is always distributed, so nothing here is ever a ``LocalRunner`` (scripts may name it).

Imports: the standard library, gevent, structlog and horde.protocol.errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent
import structlog

from horde.protocol.errors import ScriptError

__all__ = [
    "STATE_CLEANUP",
    "STATE_INIT",
    "STATE_MISSING",
    "STATE_RUNNING",
    "STATE_SPAWNING",
    "STATE_STOPPED",
    "STATE_STOPPING",
    "LocalRunner",
    "MasterRunner",
    "Runner",
    "WorkerNode",
    "WorkerRunner",
]

log = structlog.get_logger("horde")

STATE_INIT = "ready"
STATE_SPAWNING = "spawning"
STATE_RUNNING = "running"
STATE_CLEANUP = "cleanup"
STATE_STOPPING = "stopping"
STATE_STOPPED = "stopped"
STATE_MISSING = "missing"

Handler = Callable[..., Any]


class Runner:
    """What both sides' runners offer scripts; subclasses fill in the figures."""

    def __init__(self, environment: Any) -> None:
        self.environment = environment
        self.custom_messages: dict[str, tuple[Handler, bool]] = {}
        """Registered handlers by message type: (handler, concurrent)."""

    def register_message(self, msg_type: str, listener: Handler, concurrent: bool = False) -> None:
        """Call ``listener(environment=..., msg=...)`` for each message of ``msg_type``."""
        if msg_type in self.custom_messages:
            raise ScriptError(
                f"Tried to register listener method for {msg_type}, but it already had a listener!"
            )
        self.custom_messages[msg_type] = (listener, concurrent)

    def deliver(self, message: Any) -> bool:
        """Hand a received custom message to its handler; False when none is registered."""
        entry = self.custom_messages.get(message.type)
        if entry is None:
            return False
        listener, concurrent = entry
        if concurrent:
            gevent.spawn(self._call, listener, message)
        else:
            self._call(listener, message)
        return True

    def _call(self, listener: Handler, message: Any) -> None:
        try:
            listener(environment=self.environment, msg=message)
        except Exception:  # a script's handler must not end the loop that received it
            log.exception("custom message handler failed", type=message.type)

    def send_message(self, msg_type: str, data: Any = None, client_id: str | None = None) -> None:
        """Send a custom message (to the master, or to one or every worker)."""
        raise NotImplementedError

    @property
    def state(self) -> str:
        """Locust's state name (:data:`STATE_INIT` ... :data:`STATE_MISSING`)."""
        raise NotImplementedError

    @property
    def user_count(self) -> int:
        """Users running now (on this worker, or on all on the master)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the test (users stop; the process stays)."""
        raise NotImplementedError

    def quit(self) -> None:
        """Stop the test and end the process (on the master: the workers too)."""
        raise NotImplementedError


class MasterRunner(Runner):
    """The master's runner (``isinstance`` tells a script it runs on the master)."""


class WorkerRunner(Runner):
    """A worker's runner (``isinstance`` tells a script it runs on a worker)."""


class LocalRunner(Runner):
    """Locust's single-process runner; horde never makes one (its runs are distributed)."""


class WorkerNode:
    """One worker as the master's ``runner.clients`` lists it (Locust's fields)."""

    def __init__(  # noqa: PLR0917 - Locust's positional fields
        self,
        id: str,
        state: str,
        user_count: int,
        cpu_usage: float,
        memory_usage: int,
        heartbeat: int,
    ) -> None:
        self.id = id
        self.state = state
        self.user_count = user_count
        self.cpu_usage = cpu_usage
        self.memory_usage = memory_usage
        self.heartbeat = heartbeat

    def __repr__(self) -> str:
        return f"WorkerNode(id={self.id!r}, state={self.state!r}, user_count={self.user_count})"
