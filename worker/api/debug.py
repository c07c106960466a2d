"""``run_single_user``: one user, in this process, printing each request (for a debugger).

As Locust's ``locust.run_single_user``: a script ends with
``if __name__ == "__main__": run_single_user(MyUser)`` and is run with plain ``python``
(or in a debugger). It builds an environment, fires ``init`` and ``test_start`` as a run
would (never ``test_stop`` nor ``quit``), and runs one user until it stops or the process
is interrupted, printing one line per request: type, name, status (or the error), and on
request the response length, time, context and request payload.

Imports: the standard library (logging) and the user API.
"""

from __future__ import annotations

import logging
from typing import Any

from horde.worker.api.environment import Environment
from horde.worker.api.events import events as default_events
from horde.worker.api.users import User

__all__ = ["PrintListener", "run_single_user"]


class PrintListener:
    """Prints every request the environment records, one line each."""

    def __init__(
        self,
        environment: Environment,
        *,
        include_length: bool = False,
        include_time: bool = False,
        include_context: bool = False,
        include_payload: bool = False,
    ) -> None:
        self.include_length = include_length
        self.include_time = include_time
        self.include_context = include_context
        self.include_payload = include_payload
        environment.events.request.add_listener(self.on_request)
        header = ["type", "name".ljust(50), "resp_ms" if include_time else "", "exception"]
        print("\t".join(h for h in header if h), flush=True)

    def on_request(
        self,
        *,
        request_type: str,
        name: str,
        response_time: float,
        response_length: int,
        exception: BaseException | None = None,
        context: Any = None,
        response: Any = None,
        **_: Any,
    ) -> None:
        """One request: its line on stdout."""
        status = getattr(response, "status_code", "")
        outcome = f"{type(exception).__name__}: {exception}" if exception else str(status)
        parts = [request_type, name.ljust(50)]
        if self.include_time:
            parts.append(f"{response_time:.0f}")
        parts.append(outcome)
        if self.include_length:
            parts.append(str(response_length))
        if self.include_context:
            parts.append(repr(context or {}))
        if self.include_payload:
            request = getattr(response, "request", None)
            parts.append(repr(getattr(request, "body", None)))
        print("\t".join(parts), flush=True)


_made: dict[str, Environment] = {}
"""The environment of this process's single users (made by the first call)."""


def run_single_user(  # noqa: PLR0917 - Locust's signature, positional flags included
    user_class: type[User],
    include_length: bool = False,
    include_time: bool = False,
    include_context: bool = False,
    include_payload: bool = False,
    loglevel: str | None = "WARNING",
) -> None:
    """Run one ``user_class`` user in this process until it stops, printing its requests."""
    if loglevel:
        logging.basicConfig(level=loglevel.upper())
    environment = _made.get("env")
    if environment is None:
        environment = _made["env"] = Environment(events=default_events, user_classes=[user_class])
        PrintListener(
            environment,
            include_length=include_length,
            include_time=include_time,
            include_context=include_context,
            include_payload=include_payload,
        )
        environment.events.init.fire(environment=environment, runner=None, web_ui=None)
    environment.user_classes = [user_class]
    environment.events.test_start.fire(environment=environment)
    user = user_class(environment)
    environment.single_user_instance = user  # type: ignore[attr-defined]  # as Locust
    user.run()
