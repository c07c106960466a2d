"""The user API: task declaration and picking, TaskSets, tags, wait times, events, the loop."""

from __future__ import annotations

import random
import traceback
from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import gevent
import gevent.event
import pytest
from gevent.pool import Group

import horde
from horde.protocol.errors import ConfigError
from horde.worker.api.environment import Environment
from horde.worker.api.events import EventHook, Events
from horde.worker.api.tasks import TaskTable, filter_tasks, task_table
from horde.worker.api.users import HttpUser, LoadTestShape, User
from horde.worker.api.wait import between, constant, constant_pacing, constant_throughput


def wait_until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    """Yield to other greenlets until ``predicate()`` holds; fail after ``timeout`` seconds."""
    with gevent.Timeout(timeout, AssertionError("condition not reached in time")):
        while not predicate():
            gevent.sleep(0.001)


def make_env(**kwargs: Any) -> Environment:
    """An environment with its own hooks, so tests never share listeners."""
    return Environment(events=Events(), **kwargs)


def start(user: User) -> Group:
    """Run ``user`` in a fresh group and return the group."""
    group = Group()
    user.start(group)
    return group


# --- declaring tasks ---------------------------------------------------------------------


def test_task_decorator_with_and_without_weight_expands_tasks() -> None:
    """``@task`` counts once and ``@task(3)`` three times in the class's ``tasks`` list."""

    class Shopper(User):
        @horde.task
        def browse(self) -> None: ...

        @horde.task(3)
        def buy(self) -> None: ...

    names = Counter(entry.__name__ for entry in Shopper.tasks)
    assert names == {"browse": 1, "buy": 3}
    assert Shopper.abstract is False


def test_tasks_attribute_as_dict_and_list_and_inheritance() -> None:
    """``tasks`` may be a dict of weights; subclasses add to their bases' tasks."""

    def a(user: User) -> None: ...

    def b(user: User) -> None: ...

    class Base(User):
        tasks = {a: 2, b: 1}

    class Child(Base):
        tasks = {b: 1}

    assert Counter(Base.tasks) == {a: 2, b: 1}
    assert Counter(Child.tasks) == {a: 2, b: 2}


def test_bad_task_declarations_are_rejected_at_class_creation() -> None:
    """A non-callable task, a bad weight or a bare ``@tag`` fail when the class is made."""
    with pytest.raises(TypeError):

        class NotCallable(User):
            tasks = ["nope"]

    with pytest.raises(TypeError):
        horde.task(-1)(lambda user: None)
    with pytest.raises(ValueError):
        horde.tag()


def test_task_table_picks_in_proportion_to_weight() -> None:
    """With a seeded generator, picks follow the declared weights within 2 %."""

    def light(user: User) -> None: ...

    def heavy(user: User) -> None: ...

    table = TaskTable([], [light] + [heavy] * 3)
    rng = random.Random(1234)
    picks = Counter(table.pick(rng.random) for _ in range(20000))
    assert table.tasks == (light, heavy)
    assert table.cumulative == [1, 4]
    assert abs(picks[heavy] / 20000 - 0.75) < 0.02


def test_task_table_is_cached_per_class_and_rebuilt_when_tasks_change() -> None:
    """The table is built once per class and filter, and again if ``tasks`` is replaced."""

    class Cached(User):
        @horde.task
        def one(self) -> None: ...

    first = task_table(Cached, None, None)
    assert task_table(Cached, None, None) is first
    Cached.tasks = [*Cached.tasks, *Cached.tasks]
    assert task_table(Cached, None, None) is not first


def test_user_loop_runs_tasks_by_weight() -> None:
    """A running user picks its tasks in the declared proportion."""
    random.seed(7)
    seen: list[str] = []

    class Weighted(User):
        @horde.task(1)
        def rare(self) -> None:
            seen.append("rare")

        @horde.task(4)
        def common(self) -> None:
            seen.append("common")

    group = start(Weighted(make_env()))
    wait_until(lambda: len(seen) >= 2000)
    group.kill()
    share = Counter(seen[:2000])["common"] / 2000
    assert abs(share - 0.8) < 0.04


# --- task sets ---------------------------------------------------------------------------


def test_nested_taskset_runs_until_interrupt_then_parent_resumes() -> None:
    """A nested TaskSet runs with on_start/on_stop around it until it interrupts."""
    log: list[str] = []

    class Inner(horde.TaskSet):
        def on_start(self) -> None:
            log.append("inner start")

        def on_stop(self) -> None:
            log.append("inner stop")

        @horde.task
        def step(self) -> None:
            log.append("step")
            assert isinstance(self.user, Outer)
            assert self.parent is self.user
            if log.count("step") % 2 == 0:
                self.interrupt()

    class Outer(User):
        tasks = [Inner]

    group = start(Outer(make_env()))
    wait_until(lambda: log.count("inner stop") >= 2)
    group.kill()
    assert log[:8] == ["inner start", "step", "step", "inner stop"] * 2


def test_sequential_taskset_runs_tasks_in_declaration_order() -> None:
    """A SequentialTaskSet cycles through its tasks in the order they were declared."""
    log: list[str] = []

    def middle(taskset: horde.SequentialTaskSet) -> None:
        log.append("middle")

    class Steps(horde.SequentialTaskSet):
        @horde.task
        def first(self) -> None:
            log.append("first")

        tasks = [middle]

        @horde.task
        def last(self) -> None:
            log.append("last")

    class Walker(User):
        tasks = [Steps]

    group = start(Walker(make_env()))
    wait_until(lambda: len(log) >= 6)
    group.kill()
    assert log[:6] == ["first", "middle", "last"] * 2


def test_reschedule_and_interrupt_at_root_keep_the_user_running() -> None:
    """RescheduleTask and an interrupt at the root end a task early; the user loops on."""
    env = make_env()
    errors: list[BaseException] = []
    env.events.user_error.add_listener(lambda exception, **_: errors.append(exception))
    log: list[str] = []

    class Rescheduler(User):
        @horde.task
        def early(self) -> None:
            log.append("early")
            if len(log) % 2:
                raise horde.RescheduleTask()
            raise horde.InterruptTaskSet(reschedule=False)

    group = start(Rescheduler(env))
    wait_until(lambda: len(log) >= 4)
    group.kill()
    assert errors == []


# --- tags --------------------------------------------------------------------------------


class Tagged(User):
    """A user whose tasks carry tags, for the tag tests."""

    abstract = True

    @horde.tag("read")
    @horde.task
    def read(self) -> None: ...

    @horde.tag("write", "slow")
    @horde.task
    def write(self) -> None: ...

    @horde.task
    def untagged(self) -> None: ...

    @horde.tag("nested")
    @horde.task
    class Nested(horde.TaskSet):
        @horde.task
        def inside(self) -> None: ...


def test_tags_select_and_exclude_tasks() -> None:
    """``tags`` keeps tasks with a listed tag; ``exclude_tags`` drops tasks with one."""

    def names(tags: set[str] | None, exclude: set[str] | None) -> set[str]:
        kept = filter_tasks(
            Tagged,
            frozenset(tags) if tags else None,
            frozenset(exclude) if exclude else None,
        )
        return {entry.__name__ for entry in kept}

    assert names({"read"}, None) == {"read"}
    assert names({"nested"}, None) == {"Nested"}
    assert names(None, {"slow"}) == {"read", "untagged", "Nested"}
    assert names({"read", "write"}, {"slow"}) == {"read"}
    assert names(None, None) == {"read", "write", "untagged", "Nested"}


def test_running_user_only_runs_tasks_matching_the_environment_tags() -> None:
    """Tag filters in the environment decide which tasks a user runs."""
    log: list[str] = []

    class Filtered(User):
        @horde.tag("yes")
        @horde.task
        def wanted(self) -> None:
            log.append("wanted")

        @horde.task(10)
        def unwanted(self) -> None:
            log.append("unwanted")

    group = start(Filtered(make_env(tags=["yes"])))
    wait_until(lambda: len(log) >= 50)
    group.kill()
    assert set(log) == {"wanted"}


def test_user_with_all_tasks_filtered_out_reports_an_error_and_ends() -> None:
    """A user left with no tasks by the tag filter fires user_error and stops."""
    env = make_env(tags=["nothing-has-this"])
    errors: list[BaseException] = []
    env.events.user_error.add_listener(lambda exception, **_: errors.append(exception))

    class Empty(User):
        @horde.task
        def only(self) -> None: ...

    group = start(Empty(env))
    assert group.join(timeout=3)
    assert isinstance(errors[0], ConfigError)


# --- wait times --------------------------------------------------------------------------


def test_between_and_constant_return_waits_in_range() -> None:
    """``between`` stays within its bounds and ``constant`` always returns its value."""
    random.seed(3)
    waits = [between(1.0, 2.5)(None) for _ in range(1000)]
    assert all(1.0 <= wait <= 2.5 for wait in waits)
    assert max(waits) - min(waits) > 1.0
    assert constant(4)(None) == 4


def test_constant_pacing_measures_from_the_last_task_start() -> None:
    """Pacing waits out the rest of the period after each task, or 0 if it overran."""
    now = [0.0]
    pacing = constant_pacing(10, clock=lambda: now[0])
    user = SimpleNamespace()
    assert pacing(user) == 10  # no previous task: a full period
    now[0] = 13.0  # the task started at 10 and took 3 s
    assert pacing(user) == 7
    now[0] = 35.0  # started at 20, overran the period
    assert pacing(user) == 0
    now[0] = 36.0  # started at 35, took 1 s
    assert pacing(user) == 9


def test_constant_throughput_is_pacing_by_the_inverse_rate_per_instance() -> None:
    """``constant_throughput(n)`` paces at 1/n seconds and tracks each user separately."""
    now = [0.0]
    throughput = constant_throughput(4, clock=lambda: now[0])
    alice, bob = SimpleNamespace(), SimpleNamespace()
    assert throughput(alice) == 0.25
    now[0] = 0.35
    assert throughput(alice) == pytest.approx(0.15)
    assert throughput(bob) == 0.25
    with pytest.raises(ValueError):
        constant_throughput(0)


# --- errors, stopping --------------------------------------------------------------------


def test_task_error_fires_user_error_with_traceback_and_user_goes_on() -> None:
    """A failing task is reported with its traceback object; later tasks still run."""
    env = make_env()
    reports: list[dict[str, Any]] = []
    env.events.user_error.add_listener(lambda **kwargs: reports.append(kwargs))
    runs: list[int] = []

    class Flaky(User):
        @horde.task
        def flaky(self) -> None:
            runs.append(1)
            if len(runs) == 1:
                raise ValueError("first run fails")

    user = Flaky(env)
    group = start(user)
    wait_until(lambda: len(runs) >= 3)
    group.kill()
    assert len(reports) == 1
    assert reports[0]["user_instance"] is user
    assert isinstance(reports[0]["exception"], ValueError)
    frames = "".join(traceback.format_tb(reports[0]["tb"]))
    assert "flaky" in frames and 'raise ValueError("first run fails")' in frames


def test_on_start_error_is_reported_and_ends_the_user_without_on_stop() -> None:
    """An exception in on_start is reported, and the user ends without running tasks."""
    env = make_env()
    errors: list[BaseException] = []
    env.events.user_error.add_listener(lambda exception, **_: errors.append(exception))
    log: list[str] = []

    class BadStart(User):
        def on_start(self) -> None:
            raise RuntimeError("login failed")

        def on_stop(self) -> None:
            log.append("stop")

        @horde.task
        def work(self) -> None:
            log.append("work")

    group = start(BadStart(env))
    assert group.join(timeout=3)
    assert [str(error) for error in errors] == ["login failed"]
    assert log == []


def test_stop_user_exception_runs_on_stop_and_ends_the_greenlet() -> None:
    """Raising StopUser in a task ends the user after its on_stop."""
    log: list[str] = []

    class Quitter(User):
        def on_stop(self) -> None:
            log.append("stop")

        @horde.task
        def leave(self) -> None:
            log.append("task")
            raise horde.StopUser()

    group = start(Quitter(make_env()))
    assert group.join(timeout=3)
    assert log == ["task", "stop"]


def test_graceful_stop_lets_the_running_task_finish() -> None:
    """``stop(force=False)`` on a busy user waits for its task, then runs on_stop."""
    release = gevent.event.Event()
    log: list[str] = []

    class Busy(User):
        wait_time = constant(0)

        def on_stop(self) -> None:
            log.append("stop")

        @horde.task
        def work(self) -> None:
            log.append("begin")
            release.wait(3)
            log.append("end")

    user = Busy(make_env())
    group = start(user)
    wait_until(lambda: log == ["begin"])
    assert user.stop(force=False) is False
    assert user.greenlet is not None and not user.greenlet.dead
    release.set()
    assert group.join(timeout=3)
    assert log == ["begin", "end", "stop"]


def test_forced_stop_kills_a_waiting_user_and_runs_on_stop() -> None:
    """``stop(force=True)`` kills the user at once, and its on_stop still runs."""
    log: list[str] = []

    class Sleeper(User):
        wait_time = constant(30)

        def on_stop(self) -> None:
            log.append("stop")

        @horde.task
        def work(self) -> None:
            log.append("task")

    user = Sleeper(make_env())
    start(user)
    wait_until(lambda: log == ["task"])
    assert user.stop(force=True) is True
    assert log == ["task", "stop"]


# --- HttpUser, shapes, events, environment, package --------------------------------------


def test_http_user_needs_a_host_and_the_environment_host_wins() -> None:
    """HttpUser without any host is a ConfigError; the environment's host overrides the class's."""

    class Site(HttpUser):
        host = "http://class.example"

        @horde.task
        def home(self) -> None: ...

    class Hostless(HttpUser):
        @horde.task
        def home(self) -> None: ...

    assert Site(make_env()).client.base_url == "http://class.example"
    overridden = Site(make_env(host="http://spawn.example"))
    assert overridden.host == "http://spawn.example"
    assert overridden.client.base_url == "http://spawn.example"
    with pytest.raises(ConfigError):
        Hostless(make_env())


def test_load_test_shape_reports_run_time_from_its_clock() -> None:
    """A shape's run time comes from its injected clock and can be reset."""
    now = [100.0]

    class Ramp(LoadTestShape):
        def tick(self) -> tuple[int, float] | None:
            return (10, 1.0) if self.get_run_time() < 60 else None

    shape = Ramp(clock=lambda: now[0])
    assert Ramp.abstract is False and LoadTestShape.abstract is True
    now[0] = 130.0
    assert shape.get_run_time() == 30.0
    assert shape.tick() == (10, 1.0)
    now[0] = 170.0
    assert shape.tick() is None
    shape.reset_time()
    assert shape.get_run_time() == 0.0


def test_event_hook_isolates_failing_listeners() -> None:
    """A failing listener is logged and the others still run; removal works."""
    hook = EventHook("test")
    calls: list[int] = []

    def broken(**_: Any) -> None:
        raise RuntimeError("listener bug")

    hook.add_listener(broken)
    second = hook.add_listener(lambda value, **_: calls.append(value))
    hook.fire(value=1)
    hook.remove_listener(second)
    hook.fire(value=2)
    assert calls == [1]


def test_user_flow_exceptions_pass_through_every_hook() -> None:
    """StopUser raised by a listener propagates, from the request hook too, as in Locust."""
    events = Events()

    def stopper(**_: Any) -> None:
        raise horde.StopUser()

    events.user_error.add_listener(stopper)
    events.request.add_listener(stopper)
    with pytest.raises(horde.StopUser):
        events.user_error.fire(user_instance=None, exception=None, tb="")
    with pytest.raises(horde.StopUser):
        events.request.fire(request_type="GET", name="/", response_time=1.0, response_length=0)


def test_a_request_listener_raising_reschedule_task_ends_the_task_early() -> None:
    """Locust's response_validations pattern: a request listener raising RescheduleTask on a
    failure ends the task at that request; the user goes on with its next iteration."""
    env = make_env()
    steps: list[str] = []

    def on_request(exception: object = None, **_: Any) -> None:
        if exception:
            raise horde.RescheduleTask()

    env.events.request.add_listener(on_request)

    class Flow(User):
        wait_time = horde.constant(0)

        @horde.task
        def flow(self) -> None:
            steps.append("first")
            fire = self.environment.events.request.fire
            fire(request_type="GET", name="/", response_time=1.0, response_length=0,
                 exception=ValueError("failed"))  # fmt: skip
            steps.append("after")

    group = start(Flow(env))
    wait_until(lambda: len(steps) >= 3)
    group.kill()
    assert set(steps) == {"first"}


def test_measure_fires_a_request_with_time_and_failure() -> None:
    """``request.measure`` records the block's duration and any exception it raised."""
    events = Events()
    seen: list[dict[str, Any]] = []
    events.request.add_listener(lambda **kwargs: seen.append(kwargs))
    with events.request.measure("GRPC", "Search") as meta:
        meta["response_length"] = 12
    with events.request.measure("GRPC", "Search"):
        raise KeyError("missing")
    assert seen[0]["exception"] is None and seen[0]["response_length"] == 12
    assert seen[0]["response_time"] >= 0
    assert isinstance(seen[1]["exception"], KeyError)


def test_environment_options_read_as_attributes_and_empty_tags_mean_no_filter() -> None:
    """Custom options read as keys or attributes; an empty tag list is no filter."""
    env = Environment(parsed_options={"think": 2}, tags=[], exclude_tags=["x"])
    assert env.parsed_options.think == 2
    assert env.parsed_options["think"] == 2
    assert env.tags is None
    assert env.exclude_tags == frozenset({"x"})
    assert env.events is horde.events
    with pytest.raises(AttributeError):
        _ = env.parsed_options.missing


def test_package_exports_the_locust_style_api() -> None:
    """``from horde import ...`` offers every name a Locust script needs."""
    for name in horde.__all__:
        assert getattr(horde, name) is not None
    assert horde.__version__ == "0.1.0"
    assert issubclass(horde.HttpUser, horde.User)
