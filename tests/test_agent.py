"""The worker agent's handlers, driven with messages and a fake link (no sockets)."""

from __future__ import annotations

from typing import Any

import gevent

from horde.protocol import messages as m
from horde.worker.agent import WorkerAgent
from horde.worker.config import WorkerSettings
from horde.worker.environment import Environment
from horde.worker.events import Events
from horde.worker.pool import UserPool
from horde.worker.stats import RequestRecorder
from horde.worker.tasks import tag, task
from horde.worker.transport import LinkStatus
from horde.worker.users import User
from horde.worker.wait import constant


class Idle(User):
    wait_time = constant(60)

    @tag("a")
    @task
    def tagged_a(self) -> None:
        self.environment.events.request.fire(
            request_type="T", name="a", response_time=1.0, response_length=0
        )

    @tag("b")
    @task
    def tagged_b(self) -> None:
        self.environment.events.request.fire(
            request_type="T", name="b", response_time=1.0, response_length=0
        )


class FakeLink:
    """Collects what the agent sends."""

    endpoint = "tcp://127.0.0.1:1"

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, message: Any) -> None:
        self.sent.append(message)

    def take(self) -> list[Any]:
        sent, self.sent = self.sent, []
        return sent


def until(condition: Any, timeout: float = 5.0) -> None:
    """Yield to the users until ``condition()`` is truthy (bounded)."""
    with gevent.Timeout(timeout):
        while not condition():
            gevent.sleep(0.001)


def make(horde: bool = True) -> tuple[WorkerAgent, FakeLink]:
    events = Events()
    environment = Environment(events=events, user_classes=[Idle])
    link = FakeLink()
    status = LinkStatus(horde=1 if horde else None)
    agent = WorkerAgent(
        WorkerSettings(node_id="w_1"),
        link,  # type: ignore[arg-type]
        status=status,
        environment=environment,
        pool=UserPool(environment, {"Idle": Idle}),
        recorder=RequestRecorder(),
        clock=lambda: 1000.0,
    )
    events.request.add_listener(agent._on_request)
    return agent, link


def spawn(ts: float, n: int, run_id: str = "r1", **options: Any) -> m.Spawn:
    return m.Spawn("w_1", ts, {"Idle": n}, "http://127.0.0.1:1", 0.0, options, run_id, 0)


def test_spawn_applies_absolute_counts_and_reports_them() -> None:
    """A spawn is acknowledged with spawning, applied, and answered with the counts."""
    agent, link = make()
    agent.handle(spawn(1.0, 3))
    sent = link.take()
    assert sent[0] == m.Spawning("w_1")
    assert sent[-1] == m.WorkerSpawningComplete("w_1", {"Idle": 3}, 3)
    agent.handle(spawn(2.0, 1))
    assert link.take()[-1] == m.WorkerSpawningComplete("w_1", {"Idle": 1}, 1)
    agent.pool.stop_all(0)


def test_older_spawn_is_dropped() -> None:
    """A spawn whose timestamp is not newer than the last one changes nothing."""
    agent, _ = make()
    agent.handle(spawn(2.0, 2))
    agent.handle(spawn(1.0, 5))
    assert agent.pool.user_count == 2
    agent.pool.stop_all(0)


def test_tags_in_parsed_options_filter_tasks() -> None:
    """Tags from the spawn's parsed_options decide which tasks users run."""
    agent, _ = make()
    agent.handle(spawn(1.0, 2, tags=["b"]))
    until(agent.recorder._active)
    agent.pool.stop_all(0)
    delta = agent.recorder.take_horde_delta(
        run_id="r1", epoch=0, seq=1, now=1000.0, user_classes_count={}, user_count=0
    )
    assert {name for _, _, name in delta.names} == {"b"}


def test_stop_flushes_stats_then_reports_stopped_and_ready() -> None:
    """Stop ends the users, sends a final horde delta, client_stopped, then client_ready."""
    agent, link = make()
    agent.handle(spawn(1.0, 2))
    until(lambda: sum(e.num_requests for e in agent.recorder._active()) == 2)
    link.take()
    agent.handle(m.Stop("w_1"))
    sent = link.take()
    assert [type(x) for x in sent] == [m.HordeStats, m.ClientStopped, m.ClientReady]
    assert sent[0].delta.run_id == "r1"
    assert sum(e.num_requests for e in sent[0].delta.entries) == 2
    assert agent.status.state == "ready"


def test_stats_go_in_locust_format_to_a_locust_master() -> None:
    """Without the horde extension the agent sends Locust's stats message."""
    agent, link = make(horde=False)
    agent.send_stats()
    (sent,) = link.take()
    assert isinstance(sent, m.LocustStats)


def test_new_epoch_drops_figures_of_the_old_one() -> None:
    """horde.epoch resets the recorder and tags later deltas with the new epoch."""
    agent, link = make()
    agent.handle(spawn(1.0, 1))
    until(agent.recorder._active)
    agent.handle(m.HordeEpoch("w_1", "r1", 4))
    agent.send_stats()
    delta = link.take()[-1].delta
    assert (delta.epoch, delta.entries) == (4, ())
    agent.pool.stop_all(0)


def test_spawn_of_an_unknown_class_is_reported_to_the_master() -> None:
    """A class missing from this worker's script becomes an exception report, not a crash."""
    agent, link = make()
    agent.handle(m.Spawn("w_1", 1.0, {"Nope": 1}, "", None, {}, "r1", 0))
    reports = [x for x in link.take() if isinstance(x, m.ExceptionReport)]
    assert reports and "Nope" in reports[0].msg


def test_new_log_lines_are_shipped_to_the_master() -> None:
    """The logs loop sends only new lines, in Locust's ``logs`` message, and nothing when idle."""
    from horde.logsetup import LogRing

    ring = LogRing(maxlen=3)
    events = Events()
    environment = Environment(events=events, user_classes=[Idle])
    link = FakeLink()
    agent = WorkerAgent(
        WorkerSettings(node_id="w_1", logs_interval=0.01),
        link,  # type: ignore[arg-type]
        status=LinkStatus(horde=1),
        environment=environment,
        pool=UserPool(environment, {"Idle": Idle}),
        recorder=RequestRecorder(),
        new_log_lines=ring.take_new,
    )
    loop = gevent.spawn(agent._logs_loop, ring.take_new)
    try:
        for line in ("one", "two", "three", "four"):
            ring.append(line)
        until(lambda: link.sent)
        ring.append("five")
        until(lambda: len(link.sent) >= 2)
        gevent.sleep(0.05)
    finally:
        loop.kill()
    assert [msg.lines for msg in link.sent] == [("two", "three", "four"), ("five",)]
    assert all(isinstance(msg, m.Logs) and msg.node_id == "w_1" for msg in link.sent)
