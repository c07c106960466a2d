"""Pure decisions behind the web routes: /swarm forms, task ratios, load shapes, history."""

from __future__ import annotations

from typing import Any

import pytest

from horde.master.config import MasterSettings
from horde.master.coordinator import CommandError, Coordinator, RunState, SwarmRequest
from horde.master.dispatch import UserClassSpec
from horde.master.forms import FieldError, form_from_pairs, parse_swarm
from horde.master.history import History, HistoryPoint
from horde.master.shape import ShapeError, ShapeRunner, read_tick
from horde.master.tasks import tasks_document
from horde.protocol import messages as m
from horde.worker.api.tasks import TaskSet, task
from horde.worker.api.users import LoadTestShape, User

# --- /swarm forms ----------------------------------------------------------------------


def test_swarm_form_takes_every_field_and_allowed_option() -> None:
    """Every /swarm field and run option is parsed and coerced to its type."""
    form = form_from_pairs(
        [
            ("user_count", "12"),
            ("spawn_rate", "2.5"),
            ("host", "http://127.0.0.1:8080"),
            ("run_time", "1h20m"),
            ("user_classes", "A"),
            ("user_classes", "B"),
            ("tags", "checkout"),
            ("exclude_tags", "slow,admin"),
            ("stop_timeout", "3"),
            ("profile", "nightly"),
        ],
        ["user_classes", "tags", "exclude_tags"],
    )
    request = parse_swarm(form)
    assert request == SwarmRequest(
        user_count=12,
        spawn_rate=2.5,
        host="http://127.0.0.1:8080",
        run_time=4800.0,
        user_classes=("A", "B"),
        options={
            "tags": ["checkout"],
            "exclude_tags": ["slow", "admin"],
            "stop_timeout": 3.0,
            "profile": "nightly",
        },
    )


def test_swarm_json_body_and_shape_without_user_count() -> None:
    """A JSON body uses JSON types; with a shape, user_count may be left out."""
    request = parse_swarm({"shape_class": "Steps", "tags": ["a", "a", "b"], "run_time": 30})
    assert request.shape_class == "Steps" and request.user_count == 0
    assert request.options == {"tags": ["a", "b"]} and request.run_time == 30.0


def test_a_swarm_without_shape_class_goes_to_the_default_shape() -> None:
    """The script's only shape (the default) takes a swarm that names none, as in Locust;
    a named one still wins, and without a default the form's users run."""
    request = parse_swarm({"user_count": "5"}, default_shape="Steps")
    assert request.shape_class == "Steps"
    assert parse_swarm({}, default_shape="Steps").shape_class == "Steps"
    assert parse_swarm({"shape_class": "Other"}, default_shape="Steps").shape_class == "Other"
    assert parse_swarm({"user_count": "5"}).shape_class is None


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({}, "user_count"),
        ({"user_count": True}, "user_count"),
        ({"user_count": "1e400"}, "user_count"),
        ({"user_count": [1]}, "user_count"),
        ({"user_count": "1", "spawn_rate": "0"}, "spawn_rate"),
        ({"user_count": "1", "spawn_rate": "nan"}, "spawn_rate"),
        ({"user_count": "1", "host": "ftp://x"}, "host"),
        ({"user_count": "1", "host": "http://"}, "host"),
        ({"user_count": "1", "host": "http://[::1"}, "host"),
        ({"user_count": "1", "host": "http://x:99999"}, "host"),
        ({"user_count": "1", "host": "http://a b"}, "host"),
        ({"user_count": "1", "run_time": "0"}, "run_time"),
        ({"user_count": "1", "run_time": [1]}, "run_time"),
        ({"user_count": "1", "stop_timeout": "-1"}, "stop_timeout"),
        ({"user_count": "1", "tags": [1, 2]}, "tags"),
        ({"user_count": "1", "tags": ["x"] * 101}, "tags"),
        ({"user_count": "1", "tags": ["x" * 201]}, "tags"),
        ({"user_count": "1", "profile": "a\nb"}, "profile"),
        ({"user_count": "1", "csv": "/tmp/x"}, "csv"),
        ({"user_count": "1", "web_auth": "a:b"}, "web_auth"),
        ({"user_count": "1", "shape_class": 3}, "shape_class"),
    ],
)
def test_bad_swarm_fields_name_the_field(form: dict[str, Any], field: str) -> None:
    """Each bad or forbidden field raises FieldError naming it."""
    with pytest.raises(FieldError) as caught:
        parse_swarm(form)
    assert caught.value.field == field and field in str(caught.value)


# --- the coordinator with class choice, options and shapes ------------------------------


def _coordinator(
    shapes: dict[str, Any] | None = None, **settings: Any
) -> tuple[Coordinator, list[Any]]:
    sent: list[Any] = []
    coordinator = Coordinator(
        MasterSettings(**settings),
        [UserClassSpec("A", 1), UserClassSpec("B", 1), UserClassSpec("C", 2)],
        lambda identity, message: sent.append(message),
        shapes=shapes,
    )
    for worker in ("w1", "w2"):
        coordinator.handle(worker, m.ClientReady(worker), 0.0)
    return coordinator, sent


def _placed(coordinator: Coordinator) -> dict[str, int]:
    totals: dict[str, int] = {}
    for counts in coordinator.placement.distribution.values():
        for name, n in counts.items():
            totals[name] = totals.get(name, 0) + n
    return totals


def test_user_classes_choice_places_only_those_classes() -> None:
    """A /swarm that picks classes places users only in them; the others get 0."""
    coordinator, sent = _coordinator()
    coordinator.start(SwarmRequest(6, 100.0, user_classes=("A", "C")), 0.0)
    coordinator.tick(1.0)
    assert _placed(coordinator) == {"A": 2, "B": 0, "C": 4}
    spawns = [s for s in sent if isinstance(s, m.Spawn)]
    assert all(set(s.user_classes_count) == {"A", "B", "C"} for s in spawns)


def test_run_options_reach_the_workers_spawn() -> None:
    """Allowed run options ride in every spawn's parsed_options; stop_timeout in its field."""
    coordinator, sent = _coordinator(tags=("base",))
    options = {"exclude_tags": ["slow"], "stop_timeout": 4.0}
    coordinator.start(SwarmRequest(2, 100.0, options=options), 0.0)
    coordinator.tick(1.0)
    spawn = [s for s in sent if isinstance(s, m.Spawn)][-1]
    assert spawn.parsed_options == {"tags": ["base"], "exclude_tags": ["slow"], "stop_timeout": 4.0}
    assert spawn.stop_timeout == 4.0


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (SwarmRequest(2, 1.0, user_classes=("Nope",)), "user_classes"),
        (SwarmRequest(2, 1.0, user_classes=()), "user_classes"),
        (SwarmRequest(2, 1.0, shape_class="Nope"), "shape_class"),
        (SwarmRequest(2_000_000, 1.0), "user_count"),
    ],
)
def test_unknown_classes_and_shapes_are_command_errors(request_: SwarmRequest, field: str) -> None:
    """Unknown class or shape names and too many users are refused, naming the field."""
    coordinator, _ = _coordinator()
    with pytest.raises(CommandError) as caught:
        coordinator.start(request_, 0.0)
    assert caught.value.field == field
    assert coordinator.state is RunState.READY


class Steps(LoadTestShape):
    """4 users for 10 s, then 8 users of class A for 10 s, then stop."""

    def tick(self) -> tuple[int, float] | tuple[int, float, list[str] | None] | None:
        run_time = self.get_run_time()
        if run_time < 10:
            return (4, 100.0)
        if run_time < 20:
            return (8, 100.0, ["A"])
        return None


def test_a_shape_drives_users_classes_and_the_end_of_the_test() -> None:
    """The shape's ticks set users and classes on the coordinator's clock, then stop it."""
    coordinator, _ = _coordinator(shapes={"Steps": Steps})
    coordinator.start(SwarmRequest(shape_class="Steps"), 100.0)
    coordinator.tick(101.0)
    assert coordinator.placement.applied_total == 4 and coordinator.state is RunState.RUNNING
    for now in (105.0, 109.9, 110.0, 111.0):
        coordinator.tick(now)
    assert _placed(coordinator) == {"A": 8, "B": 0, "C": 0}
    coordinator.tick(120.0)
    assert coordinator.state in (RunState.STOPPING, RunState.STOPPED)


class Broken(LoadTestShape):
    """A shape whose tick fails."""

    def tick(self) -> None:
        raise RuntimeError("boom")


def test_a_failing_shape_is_reported_and_stops_the_test() -> None:
    """An exception in tick() becomes an exception entry and stops the run."""
    coordinator, _ = _coordinator(shapes={"Broken": Broken})
    coordinator.start(SwarmRequest(shape_class="Broken"), 0.0)
    assert coordinator.state in (RunState.STOPPING, RunState.STOPPED)
    groups = coordinator.exceptions.groups()
    assert groups and "boom" in groups[0].to_json()["msg"]


@pytest.mark.parametrize(
    "answer",
    [(1,), (1, 2, 3, 4), ("1", 1), (1, 0), (1, float("nan")), (-1, 1), (1, 1, ["Z"]), "x"],
)
def test_bad_tick_answers_are_shape_errors(answer: Any) -> None:
    """Anything but (users, rate[, classes]) or None is refused with a clear error."""
    with pytest.raises(ShapeError):
        read_tick(answer, ["A"], 100)


def test_tick_accepts_classes_by_class_or_name() -> None:
    """User classes may be given as classes (as in Locust) or by name."""

    class A(User):
        pass

    step = read_tick((3, 1, [A, "B"]), ["A", "B"], 100)
    assert step is not None and step.user_classes == ("A", "B")
    assert read_tick(None, [], 1) is None


def test_shape_runner_ticks_once_per_interval() -> None:
    """tick() is due every interval on the caller's clock."""
    runner = ShapeRunner("Steps", Steps(), 50.0, known_classes=["A"], max_users=10)
    assert runner.due(50.0)
    runner.step(50.0)
    assert not runner.due(50.5) and runner.due(51.0)


# --- task ratios -------------------------------------------------------------------------


class Browse(TaskSet):
    """A nested task set with two tasks, 1:3."""

    @task(1)
    def read(self) -> None:
        """Read."""

    @task(3)
    def list_(self) -> None:
        """List."""


class Shopper(User):
    """Two tasks and a task set."""

    tasks = {Browse: 2}

    @task(2)
    def buy(self) -> None:
        """Buy."""


class Visitor(User):
    """One task."""

    @task
    def look(self) -> None:
        """Look."""


def test_task_ratios_match_locusts_document() -> None:
    """Per-class ratios are within the class; total ratios are shares of all picks."""
    doc = tasks_document([Shopper, Visitor], {"Shopper": 3, "Visitor": 1})
    per_class = doc["per_class"]
    assert per_class["Shopper"]["ratio"] == 0.75
    shopper_tasks = per_class["Shopper"]["tasks"]
    assert shopper_tasks["buy"]["ratio"] == 0.5 and shopper_tasks["Browse"]["ratio"] == 0.5
    assert shopper_tasks["Browse"]["tasks"]["list_"]["ratio"] == 0.75
    total = doc["total"]["Shopper"]["tasks"]
    assert total["Browse"]["ratio"] == 0.375
    assert total["Browse"]["tasks"]["read"]["ratio"] == pytest.approx(0.375 / 4)
    assert doc["total"]["Visitor"]["tasks"]["look"]["ratio"] == 0.25


def test_task_ratios_with_no_users_running() -> None:
    """With nothing running, class shares are 0 and nothing divides by zero."""
    doc = tasks_document([Visitor], {})
    assert doc["per_class"]["Visitor"] == {"ratio": 0.0, "tasks": {"look": {"ratio": 1.0}}}


# --- history -------------------------------------------------------------------------------


def _point(t: float) -> HistoryPoint:
    return HistoryPoint(t, 1, 1.0, 0.0, 1.0, 2.0, 1, 0)


def test_history_is_bounded_and_keeps_the_whole_run() -> None:
    """A full history drops every other point and doubles its interval."""
    history = History(interval=1.0, max_points=4)
    t = 0.0
    while len(history.points()) < 4 or t < 20:
        if history.due(t):
            history.add(_point(t))
        t += 0.5
    times = [p.time for p in history.points()]
    assert len(times) <= 4 and times[0] <= 2.0 and times[-1] >= 16.0
    assert history.interval > 1.0
    history.clear()
    assert history.points() == [] and history.due(0.0) and history.interval == 1.0


def test_changing_users_keeps_the_run_time_limit() -> None:
    """A /swarm that only changes the user count keeps the running test's run time."""
    coordinator, _ = _coordinator()
    coordinator.start(SwarmRequest(2, 100.0, run_time=2.0), 0.0)
    coordinator.start(SwarmRequest(4, 100.0), 1.0)
    assert coordinator.deadline == 2.0
    coordinator.tick(2.0)
    for worker in ("w1", "w2"):
        coordinator.handle(worker, m.ClientStopped(worker), 2.1)
        coordinator.handle(worker, m.ClientReady(worker), 2.1)  # as workers do after a stop
    assert coordinator.state is RunState.STOPPED
    coordinator.start(SwarmRequest(2, 100.0), 2.2)
    assert coordinator.deadline is None  # a new run starts without the old limit
