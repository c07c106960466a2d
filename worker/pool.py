"""Spawns and stops user greenlets so the running counts match the master's targets.

:meth:`UserPool.apply` takes absolute counts per user class and acts at once (the master
paces the ramp): it starts the missing users and stops the surplus, newest first. Stopping
never blocks ``apply``: with ``environment.stop_timeout`` a busy user finishes its task and
is killed if it overruns, otherwise users are killed at once; either way ``on_stop`` runs.
A stopped user leaves :meth:`counts` immediately. :meth:`stop_all` ends a run and waits.

Imports: the standard library, gevent, structlog, ``horde.worker.api`` (the user API) and
``horde.protocol``.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from functools import partial

import gevent
import structlog
from gevent import Greenlet
from gevent.pool import Group

from horde.protocol.errors import ConfigError, HordeError, ScriptError
from horde.worker.api.environment import Environment
from horde.worker.api.users import User

log = structlog.get_logger("horde.worker")

KILL_WAIT = 5.0
"""Seconds :meth:`UserPool.stop_all` waits for killed users to finish ``on_stop``."""

ErrorCallback = Callable[[User, BaseException, str], None]


class UserPool:
    """The users running on one worker, by class name.

    ``on_error(user, exception, traceback_text)`` is called (in a greenlet of its own) when a
    user's greenlet dies of an exception the user loop did not handle; script errors in
    tasks, ``on_start`` and ``on_stop`` go to ``events.user_error`` instead.
    """

    def __init__(
        self,
        environment: Environment,
        user_classes: Mapping[str, type[User]],
        on_error: ErrorCallback | None = None,
    ) -> None:
        self.environment = environment
        self.user_classes = dict(user_classes)
        self._on_error = on_error
        self._group = Group()  # every user greenlet, running or stopping
        self._reapers = Group()  # greenlets that kill users overrunning stop_timeout
        # insertion-ordered, so popitem() gives the newest user
        self._live: dict[str, dict[User, None]] = {name: {} for name in self.user_classes}

    def counts(self) -> dict[str, int]:
        """Running users per class name (users being stopped are not counted)."""
        return {name: len(users) for name, users in self._live.items()}

    @property
    def user_count(self) -> int:
        """Running users in total."""
        return sum(len(users) for users in self._live.values())

    @property
    def greenlet_count(self) -> int:
        """User greenlets still alive, including users that are stopping."""
        return len(self._group)

    def apply(self, counts: Mapping[str, int], host: str | None = None) -> None:
        """Start or stop users so that each class runs ``counts[name]`` (absent means 0).

        A non-empty ``host`` becomes the environment's host, which new users take instead
        of their class's. Surplus users are stopped first; then, as in Locust, each new user
        starts as soon as it is created, so a slow ``__init__`` delays only the users after
        it. Raises :class:`ConfigError` for an unknown class or a bad count (nothing
        changes) and :class:`ScriptError` when a user cannot be created (the users started
        before it keep running, as in Locust).
        """
        targets = self._targets(counts)
        if host:
            self.environment.host = host
        for name, target in targets.items():
            surplus = len(self._live[name]) - target
            if surplus > 0:
                self._stop_newest(name, surplus)
        for name, target in targets.items():
            for _ in range(target - len(self._live[name])):
                self._start(name, self._create(name))

    def stop_all(self, timeout: float | None = None) -> None:
        """Stop every user and wait for them: busy users get ``timeout`` seconds to finish
        their task (``None`` means ``environment.stop_timeout``; 0 kills at once)."""
        limit = self.environment.stop_timeout if timeout is None else timeout
        users = [user for live in self._live.values() for user in live]
        for live in self._live.values():
            live.clear()
        if limit:
            for user in users:
                user.stop(force=False, block=False)
            if not self._group.join(timeout=limit):
                log.info("users still busy after stop timeout, killing them", timeout=limit)
        self._reapers.kill(block=False)
        self._group.kill(block=True, timeout=KILL_WAIT)
        if len(self._group):
            log.warning("user greenlets did not exit after kill", count=len(self._group))

    def _targets(self, counts: Mapping[str, int]) -> dict[str, int]:
        unknown = sorted(set(counts) - set(self.user_classes))
        if unknown:
            known = ", ".join(sorted(self.user_classes)) or "none"
            raise ConfigError(f"unknown user class(es) {', '.join(unknown)} (known: {known})")
        targets = {}
        for name in self.user_classes:
            count = counts.get(name, 0)
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ConfigError(f"user count for {name} must be a non-negative int: {count!r}")
            targets[name] = count
        return targets

    def _create(self, name: str) -> User:
        # A class without tasks (none declared, or all filtered out by tags) is spawned, as in
        # Locust: each of its users reports the error and ends; the other classes run.
        try:
            return self.user_classes[name](self.environment)
        except HordeError:
            raise
        except Exception as exc:
            raise ScriptError(f"could not create a {name} user: {exc!r}") from exc

    def _start(self, name: str, user: User) -> None:
        self._live[name][user] = None
        greenlet = user.start(self._group)
        greenlet.rawlink(partial(self._on_exit, name, user))

    def _on_exit(self, name: str, user: User, greenlet: Greenlet) -> None:
        # runs in the hub: must not block (gevent has cleared greenlet.args by now)
        self._live[name].pop(user, None)
        exc = greenlet.exception
        if exc is not None:
            text = "".join(traceback.format_exception(exc))
            log.error("user greenlet died", user=name, error=repr(exc))
            if self._on_error is not None:
                gevent.spawn(self._on_error, user, exc, text)

    def _stop_newest(self, name: str, count: int) -> None:
        live = self._live[name]
        users = [live.popitem()[0] for _ in range(count)]
        timeout = self.environment.stop_timeout
        busy = []
        for user in users:
            if not user.stop(force=not timeout, block=False) and user.greenlet is not None:
                busy.append(user.greenlet)
        if busy and timeout:
            self._reapers.spawn(self._reap, busy, timeout)

    def _reap(self, greenlets: list[Greenlet], timeout: float) -> None:
        """Kill the users still finishing their task ``timeout`` seconds after the stop."""
        gevent.joinall(greenlets, timeout=timeout)
        overdue = [greenlet for greenlet in greenlets if not greenlet.dead]
        if overdue:
            log.info("killing users that overran the stop timeout", count=len(overdue))
            for greenlet in overdue:
                greenlet.kill(block=False)
