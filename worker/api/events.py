"""Event hooks that user scripts and the worker use to observe a run.

An :class:`EventHook` is a list of listeners called with keyword arguments; :class:`Events`
groups the hooks a worker fires, with the names and arguments Locust uses, so listeners
written for Locust work unchanged. ``request`` is the public way a custom client records
a request::

    environment.events.request.fire(request_type="GRPC", name="Search", response_time=12.5,
                                    response_length=80, exception=None)

A listener that raises is logged and the remaining listeners still run. On every hook but
``request``, the user-flow exceptions (``StopUser``, ``RescheduleTask``,
``InterruptTaskSet``) pass through, as in Locust; ``request`` swallows every exception, so
recording a request can never break the user that made it.

Imports: the standard library, structlog and ``horde.worker.api.tasks`` (for the user-flow
exceptions).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from horde.worker.api.tasks import USER_FLOW_EXCEPTIONS

log = structlog.get_logger("horde.worker")

Listener = Callable[..., Any]


_FAILURES = [0]
"""Listeners that raised in this process (Locust's ``unhandled_greenlet_exception``)."""


def listener_failures() -> int:
    """How many times a listener raised in this process: one that fails in ``init`` ends
    the process with 1, and any later one makes a run that otherwise passed exit 2, as in
    Locust."""
    return _FAILURES[0]


class EventHook:
    """A named list of listeners fired with keyword arguments.

    A listener's user-flow exception (``StopUser``, ``RescheduleTask``, ...) goes on to the
    code that fired the hook, as in Locust: a ``request`` listener raising ``RescheduleTask``
    ends the task that made the request. Any other exception is logged and counted.
    """

    def __init__(self, name: str = "") -> None:
        self.name = name
        # copy-on-write: a new tuple on every change, so that firing needs no copy and a
        # listener may add or remove listeners while the hook fires
        self._listeners: tuple[Listener, ...] = ()

    def add_listener(self, listener: Listener) -> Listener:
        """Register ``listener``; returns it, so this works as a decorator."""
        self._listeners = (*self._listeners, listener)
        return listener

    def remove_listener(self, listener: Listener) -> None:
        """Unregister ``listener``; raises ``ValueError`` if it was not registered."""
        listeners = list(self._listeners)
        listeners.remove(listener)
        self._listeners = tuple(listeners)

    @property
    def listeners(self) -> tuple[Listener, ...]:
        """The registered listeners, in the order they are called."""
        return self._listeners

    def fire(self, *, reverse: bool = False, **kwargs: Any) -> None:
        """Call every listener with ``kwargs``; a failing listener does not stop the others."""
        listeners = self._listeners[::-1] if reverse else self._listeners
        for listener in listeners:
            try:
                listener(**kwargs)
            except USER_FLOW_EXCEPTIONS:
                raise
            except Exception:
                log.exception("event listener failed", hook=self.name, listener=repr(listener))
                _FAILURES[0] += 1

    @contextmanager
    def measure(
        self,
        request_type: str,
        name: str,
        response_length: int = 0,
        context: dict[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Time the ``with`` block and fire this hook as a request when it ends.

        The block may edit the yielded dict (for example ``response_length``); an exception
        raised in the block is recorded as the request's failure and not propagated.
        """
        start = time.perf_counter()
        meta: dict[str, Any] = {
            "request_type": request_type,
            "name": name,
            "response_length": response_length,
            "response": None,
            "context": context or {},
            "exception": None,
            "start_time": time.time(),
            "url": None,
        }
        try:
            yield meta
        except Exception as exc:
            meta["exception"] = exc
        finally:
            meta["response_time"] = (time.perf_counter() - start) * 1000.0
            self.fire(**meta)


class Events:
    """The hooks of one process, named, fired and signed as Locust 2.47's.

    Both sides: ``init(environment, runner, web_ui)``: the environment is built and the
    script loaded; ``test_start`` / ``test_stopping`` / ``test_stop(environment)``: a run
    starts, is about to stop its users, has stopped; ``spawning_complete(user_count)``: a
    ramp's users all run (the master first, then each worker on its word);
    ``quitting(environment)`` then ``quit(exit_code)``: the process is about to exit.

    Workers: ``request(request_type, name, response_time, response_length, response,
    context, exception, start_time, url)``: one request finished (``response_time`` in ms,
    ``exception`` None on success); ``user_error(user_instance, exception, tb)``: a task
    raised; ``report_to_master(client_id, data)``: a stats report is being built, and the
    keys listeners add to ``data`` travel with it to the master.

    Master: ``worker_connect(client_id)``: a worker registered; ``worker_report(client_id,
    data)``: a worker's stats report arrived (``data`` holds its ``user_count`` and the keys
    its ``report_to_master`` listeners added); ``reset_stats()``: the figures were reset.

    Declared for scripts that attach to them, as Locust has them:
    ``init_command_line_parser(parser)``, ``heartbeat_sent(client_id, timestamp)``,
    ``heartbeat_received(client_id, timestamp)``, ``usage_monitor(environment, cpu_usage,
    memory_usage)``, ``cpu_warning(environment, cpu_usage, message, timestamp)``.
    """

    NAMES = (
        "init",
        "init_command_line_parser",
        "test_start",
        "test_stopping",
        "test_stop",
        "spawning_complete",
        "request",
        "user_error",
        "report_to_master",
        "worker_report",
        "worker_connect",
        "reset_stats",
        "heartbeat_sent",
        "heartbeat_received",
        "usage_monitor",
        "cpu_warning",
        "quitting",
        "quit",
    )
    """Every hook, Locust 2.47's set."""

    def __init__(self) -> None:
        self.init = EventHook("init")
        self.init_command_line_parser = EventHook("init_command_line_parser")
        self.test_start = EventHook("test_start")
        self.test_stopping = EventHook("test_stopping")
        self.test_stop = EventHook("test_stop")
        self.spawning_complete = EventHook("spawning_complete")
        self.request = EventHook("request")
        self.user_error = EventHook("user_error")
        self.report_to_master = EventHook("report_to_master")
        self.worker_report = EventHook("worker_report")
        self.worker_connect = EventHook("worker_connect")
        self.reset_stats = EventHook("reset_stats")
        self.heartbeat_sent = EventHook("heartbeat_sent")
        self.heartbeat_received = EventHook("heartbeat_received")
        self.usage_monitor = EventHook("usage_monitor")
        self.cpu_warning = EventHook("cpu_warning")
        self.quitting = EventHook("quitting")
        self.quit = EventHook("quit")


events = Events()
"""The process-wide default hooks: ``from horde import events`` in scripts, used by the worker."""
