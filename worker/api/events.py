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


class EventHook:
    """A named list of listeners fired with keyword arguments.

    ``shielded`` hooks swallow every ``Exception`` a listener raises (after logging it);
    other hooks let the user-flow exceptions through.
    """

    def __init__(self, name: str = "", *, shielded: bool = False) -> None:
        self.name = name
        self.shielded = shielded
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
                if not self.shielded:
                    raise
                log.exception("user-flow exception in event listener ignored", hook=self.name)
            except Exception:
                log.exception("event listener failed", hook=self.name, listener=repr(listener))

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
    """The hooks of one worker, named and fired as Locust's.

    - ``init(environment)``: the environment is built and the script loaded.
    - ``test_start(environment)`` / ``test_stop(environment)``: a run starts or ends here.
    - ``request(request_type, name, response_time, response_length, response, context,
      exception, start_time, url)``: one request finished; ``response_time`` is in ms
      (``None`` if unknown) and ``exception`` is ``None`` on success.
    - ``user_error(user_instance, exception, tb)``: a task raised; ``tb`` is its traceback
      object (as in Locust).
    - ``spawning_complete(user_count)``: the requested users are all running.
    - ``quitting(environment)``: the worker is about to exit.
    - ``report_to_master(client_id, data)``: a report is being built; listeners may add keys.
    """

    def __init__(self) -> None:
        self.init = EventHook("init")
        self.test_start = EventHook("test_start")
        self.test_stop = EventHook("test_stop")
        self.request = EventHook("request", shielded=True)
        self.user_error = EventHook("user_error")
        self.spawning_complete = EventHook("spawning_complete")
        self.quitting = EventHook("quitting")
        self.report_to_master = EventHook("report_to_master")


events = Events()
"""The process-wide default hooks: ``from horde import events`` in scripts, used by the worker."""
