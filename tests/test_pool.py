"""UserPool: absolute targets, newest-first stops, stop timeouts, host override, errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gevent
import gevent.event
import pytest

import horde
from horde.protocol.errors import ConfigError, ScriptError
from horde.worker.api.environment import Environment
from horde.worker.api.events import Events
from horde.worker.api.users import User
from horde.worker.api.wait import constant
from horde.worker.pool import UserPool


def wait_until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    """Yield to other greenlets until ``predicate()`` holds; fail after ``timeout`` seconds."""
    with gevent.Timeout(timeout, AssertionError("condition not reached in time")):
        while not predicate():
            gevent.sleep(0.001)


class Idle(User):
    """A user that records its life and sleeps between cheap tasks."""

    wait_time = constant(30)
    started: list[Idle] = []
    stopped: list[Idle] = []

    def on_start(self) -> None:
        Idle.started.append(self)

    def on_stop(self) -> None:
        Idle.stopped.append(self)

    @horde.task
    def idle(self) -> None: ...


class Other(User):
    """A second class, for multi-class targets."""

    wait_time = constant(30)

    @horde.task
    def idle(self) -> None: ...


gate = gevent.event.Event()


class Busy(User):
    """A user whose task blocks until ``gate`` opens, to test graceful stops."""

    log: list[str] = []

    def on_stop(self) -> None:
        Busy.log.append("stop")

    @horde.task
    def work(self) -> None:
        Busy.log.append("begin")
        gate.wait(5)
        Busy.log.append("end")


@pytest.fixture
def pool() -> Iterator[UserPool]:
    """A pool of Idle and Other users in an environment of its own; cleaned up after."""
    Idle.started.clear()
    Idle.stopped.clear()
    environment = Environment(events=Events())
    users = UserPool(environment, {"Idle": Idle, "Other": Other, "Busy": Busy})
    yield users
    gate.set()
    users.stop_all(0)
    gate.clear()
    Busy.log.clear()


def test_apply_spawns_up_to_the_targets(pool: UserPool) -> None:
    """Targets are reached at once; classes not named are held at zero."""
    pool.apply({"Idle": 3, "Other": 2})
    assert pool.counts() == {"Idle": 3, "Other": 2, "Busy": 0}
    assert pool.user_count == 5
    wait_until(lambda: len(Idle.started) == 3)


def test_apply_down_stops_the_newest_users_first(pool: UserPool) -> None:
    """Lowering a target stops the most recently started users, running their on_stop."""
    pool.apply({"Idle": 2})
    wait_until(lambda: len(Idle.started) == 2)
    pool.apply({"Idle": 5})
    wait_until(lambda: len(Idle.started) == 5)
    newest = set(Idle.started[2:])
    pool.apply({"Idle": 2})
    assert pool.counts()["Idle"] == 2
    wait_until(lambda: len(Idle.stopped) == 3)
    assert set(Idle.stopped) == newest
    wait_until(lambda: pool.greenlet_count == 2)


def test_graceful_stop_waits_for_the_task_and_leaves_counts_at_once(pool: UserPool) -> None:
    """With a stop timeout, a busy user leaves the counts now and stops after its task."""
    pool.environment.stop_timeout = 5
    pool.apply({"Busy": 1})
    wait_until(lambda: Busy.log == ["begin"])
    pool.apply({"Busy": 0})
    assert pool.counts()["Busy"] == 0
    assert pool.greenlet_count == 1
    gate.set()
    wait_until(lambda: pool.greenlet_count == 0)
    assert Busy.log == ["begin", "end", "stop"]


def test_user_overrunning_the_stop_timeout_is_killed(pool: UserPool) -> None:
    """A busy user still in its task after the stop timeout is killed; on_stop runs."""
    pool.environment.stop_timeout = 0.05
    pool.apply({"Busy": 1})
    wait_until(lambda: Busy.log == ["begin"])
    pool.apply({"Busy": 0})
    wait_until(lambda: pool.greenlet_count == 0)
    assert Busy.log == ["begin", "stop"]


def test_without_stop_timeout_users_are_killed_at_once(pool: UserPool) -> None:
    """With no stop timeout, a busy user is killed mid-task."""
    pool.apply({"Busy": 1})
    wait_until(lambda: Busy.log == ["begin"])
    pool.apply({})
    wait_until(lambda: pool.greenlet_count == 0)
    assert Busy.log == ["begin", "stop"]


def test_stop_all_stops_everyone_and_waits(pool: UserPool) -> None:
    """stop_all leaves no user greenlet behind and runs every on_stop."""
    pool.apply({"Idle": 4, "Other": 1})
    wait_until(lambda: len(Idle.started) == 4)
    pool.stop_all(timeout=1)
    assert pool.counts() == {"Idle": 0, "Other": 0, "Busy": 0}
    assert pool.greenlet_count == 0
    assert len(Idle.stopped) == 4


def test_spawn_host_overrides_the_class_host() -> None:
    """A non-empty host given to apply() reaches new users; without one the class's wins."""
    hosts: list[str | None] = []

    class Hosted(User):
        host = "http://class.example"
        wait_time = constant(30)

        def on_start(self) -> None:
            hosts.append(self.host)

        @horde.task
        def idle(self) -> None: ...

    hosted = UserPool(Environment(events=Events()), {"Hosted": Hosted})
    try:
        hosted.apply({"Hosted": 1}, host="")
        wait_until(lambda: len(hosts) == 1)
        hosted.apply({"Hosted": 2}, host="http://spawn.example")
        wait_until(lambda: len(hosts) == 2)
        assert hosts == ["http://class.example", "http://spawn.example"]
    finally:
        hosted.stop_all(0)


def test_bad_targets_are_config_errors_and_change_nothing(pool: UserPool) -> None:
    """Unknown classes and negative counts raise ConfigError before anything starts."""
    with pytest.raises(ConfigError, match="Nobody"):
        pool.apply({"Nobody": 1})
    with pytest.raises(ConfigError, match="non-negative"):
        pool.apply({"Idle": -1})
    assert pool.user_count == 0


def test_class_without_runnable_tasks_spawns_users_that_report_and_end(pool: UserPool) -> None:
    """A class whose tasks are all filtered out by tags is spawned, as in Locust: its user
    fires user_error with the ConfigError and ends, and the pool counts it no more."""
    errors: list[BaseException] = []
    pool.environment.events.user_error.add_listener(lambda exception, **_: errors.append(exception))
    pool.environment.set_tags(["absent"], None)
    pool.apply({"Idle": 1})
    wait_until(lambda: pool.user_count == 0 and bool(errors))
    assert isinstance(errors[0], ConfigError)


def test_failing_constructor_is_a_script_error_after_the_users_before_it() -> None:
    """A user whose __init__ raises makes apply() fail with ScriptError; as in Locust, the
    users created before it run, and none after it is created."""

    class Broken(User):
        def __init__(self, environment: Environment) -> None:
            super().__init__(environment)
            raise ValueError("bad init")

        @horde.task
        def idle(self) -> None: ...

    broken = UserPool(Environment(events=Events()), {"Idle": Idle, "Broken": Broken})
    with pytest.raises(ScriptError, match="bad init"):
        broken.apply({"Idle": 1, "Broken": 1})
    assert broken.counts() == {"Idle": 1, "Broken": 0}
    broken.stop_all(0)


def test_each_user_starts_as_soon_as_it_is_created() -> None:
    """A slow __init__ delays only the users after it: the first runs its task while the
    later ones are still being created, as Locust spawns them."""
    ran: list[int] = []
    seen_when_created: list[int] = []

    class Slow(User):
        wait_time = constant(10)

        def __init__(self, environment: Environment) -> None:
            seen_when_created.append(len(ran))
            gevent.sleep(0.05)
            super().__init__(environment)

        @horde.task
        def work(self) -> None:
            ran.append(1)

    pool = UserPool(Environment(events=Events()), {"Slow": Slow})
    pool.apply({"Slow": 3})
    assert seen_when_created[0] == 0 and seen_when_created[2] >= 1
    pool.stop_all(0)


def test_crashed_greenlet_is_reported_and_leaves_the_counts() -> None:
    """A user greenlet dying of an unhandled exception calls on_error and is uncounted."""

    class Crashing(User):
        def run(self) -> None:
            raise RuntimeError("loop bug")

        @horde.task
        def idle(self) -> None: ...

    reports: list[tuple[Any, ...]] = []
    crashing = UserPool(
        Environment(events=Events()),
        {"Crashing": Crashing},
        on_error=lambda *args: reports.append(args),
    )
    crashing.apply({"Crashing": 1})
    wait_until(lambda: bool(reports))
    user, exception, text = reports[0]
    assert isinstance(user, Crashing)
    assert str(exception) == "loop bug"
    assert "RuntimeError: loop bug" in text
    assert crashing.counts() == {"Crashing": 0}


def test_user_that_stops_itself_leaves_the_counts(pool: UserPool) -> None:
    """A user raising StopUser is removed from the counts when its greenlet ends."""

    class Once(User):
        @horde.task
        def once(self) -> None:
            raise horde.StopUser()

    once = UserPool(Environment(events=Events()), {"Once": Once})
    once.apply({"Once": 3})
    assert once.counts() == {"Once": 3}
    wait_until(lambda: once.user_count == 0)
