"""The user API scripts subclass: ``User``, ``HttpUser`` and ``LoadTestShape``.

A :class:`User` runs in its own greenlet: ``on_start``, then tasks picked by weight with a
``wait_time`` pause between them (see ``horde.worker.api.tasks``), then ``on_stop`` when it is
stopped. Exceptions raised by the script are reported on ``events.user_error`` with the
formatted traceback and logged; a task's error does not end the user, an ``on_start`` error
does (as in Locust). :class:`HttpUser` adds ``self.client``, an :class:`HttpSession` on the
user's host, created on first use so that idle users hold no client, and Locust's ``rest``
JSON helpers (``FastHttpUser``, in :mod:`horde.worker.api.fasthttp`, shares that base,
:class:`SessionUser`). :class:`LoadTestShape`
is the base of load shapes, whose ``tick`` the master calls.

Imports: the standard library, gevent, structlog, ``horde.worker.api`` and ``horde.protocol``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import gevent
import structlog
from gevent import Greenlet, GreenletExit

from horde.protocol.errors import ConfigError
from horde.worker.api.client import HttpSession
from horde.worker.api.rest import RestMixin
from horde.worker.api.tasks import (
    RUNNING,
    STOPPING,
    WAITING,
    DefaultTaskSet,
    StopUser,
    TaskList,
    collect_tasks,
)

if TYPE_CHECKING:
    from gevent.pool import Group

    from horde.worker.api.environment import Environment

log = structlog.get_logger("horde.worker")


def _run_user(user: User) -> None:
    # a function of the user, so that ``greenlet.args[0]`` is the user (as in Locust)
    user.run()


class User:
    """A simulated user. Subclass it, declare tasks with ``@task`` (or ``tasks``), and set
    ``wait_time``; ``abstract = True`` marks a base class that is never spawned.

    Class attributes: ``host`` (default target, overridden by the spawn's host),
    ``weight`` and ``fixed_count`` (how the master divides users among classes),
    ``tasks``, ``wait_time`` and ``abstract``.
    """

    host: str | None = None
    weight: float = 1
    fixed_count: int = 0
    tasks: TaskList = []
    abstract: bool = True
    client: Any  # declared for type checkers; only users with a client (HttpUser) set it

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.tasks = collect_tasks(cls)
        if "abstract" not in cls.__dict__:
            cls.abstract = False

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        if environment.host:
            self.host = environment.host
        self._state: str | None = None
        self._greenlet: Greenlet | None = None
        self._group: Group | None = None
        self._taskset_instance: DefaultTaskSet | None = None
        self._cp_last_run = time.perf_counter()
        self._cp_last_wait_time = 0.0

    def wait_time(self) -> float:
        """Seconds to wait between tasks (0 unless the class sets ``wait_time``)."""
        return 0.0

    def on_start(self) -> None:
        """Called once when the user starts, before its first task."""

    def on_stop(self) -> None:
        """Called once when the user is stopped (also after a forced kill)."""

    def context(self) -> dict[str, Any]:
        """Extra ``context`` for this user's request events; override to add keys."""
        return {}

    @property
    def greenlet(self) -> Greenlet | None:
        """The greenlet running this user, once started."""
        return self._greenlet

    @property
    def group(self) -> Group | None:
        """The group the user's greenlet was spawned in, once started."""
        return self._group

    @classmethod
    def fullname(cls) -> str:
        """The class's dotted name, e.g. ``my_script.ShopUser``."""
        return f"{cls.__module__}.{cls.__qualname__}".replace(".<locals>", "")

    def start(self, group: Group) -> Greenlet:
        """Spawn the greenlet that runs this user in ``group`` and return it."""
        self._group = group
        self._greenlet = group.spawn(_run_user, self)
        return self._greenlet

    def run(self) -> None:
        """The user's life: ``on_start``, the task loop, ``on_stop``. Do not override."""
        self._state = RUNNING
        self._taskset_instance = DefaultTaskSet(self)
        try:
            try:
                self.on_start()
            except (StopUser, GreenletExit):
                raise
            except Exception as exc:
                self._report_error(exc)
                return
            self._taskset_instance.run()
        except (StopUser, GreenletExit):
            self._call_on_stop()
        except Exception as exc:  # e.g. a failing wait_time: the user cannot go on
            self._report_error(exc)
        finally:
            self._release_resources()

    def wait(self) -> None:
        """Sleep for ``wait_time()``; a user asked to stop gracefully stops here."""
        if self._taskset_instance is None:
            gevent.sleep(self.wait_time())
        else:
            self._taskset_instance.wait()

    def stop(self, force: bool = False, *, block: bool = True) -> bool:
        """Stop the user; returns True if its greenlet was killed at once.

        A waiting user (or any, with ``force``) is killed now, running ``on_stop``; a user in
        the middle of a task is marked stopping and stops when the task ends.
        """
        greenlet = self._greenlet
        if greenlet is None or greenlet.dead:
            return True
        if force or self._state in (None, WAITING):
            if greenlet is gevent.getcurrent():
                raise StopUser()
            greenlet.kill(block=block)
            return True
        if self._state == RUNNING:
            self._state = STOPPING
        return False

    def _call_on_stop(self) -> None:
        try:
            self.on_stop()
        except StopUser:
            pass
        except Exception as exc:
            self._report_error(exc)

    def _report_error(self, exc: Exception) -> None:
        """Log a script exception and fire ``events.user_error`` with its traceback object."""
        log.error("user error", user=type(self).__name__, error=repr(exc), exc_info=exc)
        self.environment.events.user_error.fire(
            user_instance=self, exception=exc, tb=exc.__traceback__
        )

    def _release_resources(self) -> None:
        """Free what the user holds once it has stopped (connections, for HttpUser)."""


class SessionUser(User, RestMixin):
    """The base of users with an HTTP ``self.client`` on the user's host (``HttpUser``,
    ``FastHttpUser``): the client is made by :meth:`new_client` on first use, so that idle
    users hold none, and closed when the user stops. ``rest``/``rest_`` come from
    :class:`~horde.worker.api.rest.RestMixin`."""

    abstract = True

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        if not self.host:
            raise ConfigError(
                f"{type(self).__name__} has no host: set its 'host' attribute or give a host"
                " when starting the test"
            )
        self._client: HttpSession | None = None

    def new_client(self) -> HttpSession:
        """Make this user's client (called once, on first use of ``self.client``)."""
        raise NotImplementedError

    @property
    def client(self) -> Any:
        """The user's HTTP session, created on first use (idle users hold none)."""
        client = self._client
        if client is None:
            client = self._client = self.new_client()
        return client

    @client.setter
    def client(self, value: HttpSession) -> None:
        self._client = value

    def _release_resources(self) -> None:
        if self._client is not None:
            self._client.close()


class HttpUser(SessionUser):
    """A user with an HTTP client, ``self.client``, whose base URL is the user's host.

    Class attributes tune the client: ``connection_timeout`` and ``network_timeout`` in
    seconds, ``insecure`` to skip TLS certificate checks, ``default_headers`` sent on every
    request. Locust's ``pool_manager`` (a urllib3 pool shared by users) is refused rather
    than ignored: horde's client has no urllib3 pools (``FastHttpUser.client_pool`` shares
    connections).
    """

    abstract = True
    connection_timeout: float = 60.0
    network_timeout: float = 60.0
    insecure: bool = False
    default_headers: ClassVar[dict[str, str] | None] = None
    pool_manager: Any = None

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        if self.pool_manager is not None:
            raise ConfigError(
                f"{type(self).__name__}.pool_manager: horde's HttpUser has no urllib3 pools;"
                " remove it (or use FastHttpUser with client_pool to share connections)"
            )

    def new_client(self) -> HttpSession:
        """An :class:`HttpSession` on the user's host with the class's settings."""
        return HttpSession(
            self.host,
            self.environment.events.request,
            self,
            connection_timeout=self.connection_timeout,
            network_timeout=self.network_timeout,
            insecure=self.insecure,
            headers=self.default_headers,
        )


class LoadTestShape:
    """Base of a load shape: the master calls ``tick()`` about once a second.

    ``tick`` returns ``(user_count, spawn_rate)``, ``(user_count, spawn_rate,
    user_classes)``, or ``None`` to end the test. ``runner``, if the master sets it, must
    have a ``user_count`` attribute.
    """

    abstract: ClassVar[bool] = True
    use_common_options: ClassVar[bool] = False
    runner: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "abstract" not in cls.__dict__:
            cls.abstract = False

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self.start_time = clock()

    def attach_clock(self, clock: Callable[[], float]) -> None:
        """Read run time from ``clock`` (the master drives shapes with its own ``now``)."""
        self._clock = clock

    def reset_time(self) -> None:
        """Restart the run-time clock from now."""
        self.start_time = self._clock()

    def get_run_time(self) -> float:
        """Seconds since the shape started (or since :meth:`reset_time`)."""
        return self._clock() - self.start_time

    def get_current_user_count(self) -> int:
        """The number of running users, as the runner reports it (0 without a runner)."""
        return int(getattr(self.runner, "user_count", 0))

    def tick(self) -> tuple[int, float] | tuple[int, float, list[type[User]] | None] | None:
        """The wanted ``(user_count, spawn_rate[, user_classes])`` now, or None to stop."""
        raise NotImplementedError(f"{type(self).__name__} must define tick()")
