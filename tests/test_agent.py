"""The worker runtime carrying out the agent's decisions with real users and a fake link (no
sockets); the decisions alone are tabled in test_agent_decisions.py."""

from __future__ import annotations

from typing import Any

import gevent

from horde.protocol import messages as m
from horde.worker.agent import WorkerAgent
from horde.worker.api.environment import Environment
from horde.worker.api.events import Events
from horde.worker.api.tasks import tag, task
from horde.worker.api.users import User
from horde.worker.api.wait import constant
from horde.worker.config import WorkerSettings
from horde.worker.loops import WorkerRuntime
from horde.worker.pool import UserPool
from horde.worker.stats import RequestRecorder
from horde.worker.transport import LinkStatus


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
        self.reregistered = 0

    def send(self, message: Any) -> None:
        self.sent.append(message)

    def reregister(self) -> None:
        self.reregistered += 1

    def take(self) -> list[Any]:
        sent, self.sent = self.sent, []
        return sent


def until(condition: Any, timeout: float = 5.0) -> None:
    """Yield to the users until ``condition()`` is truthy (bounded)."""
    with gevent.Timeout(timeout):
        while not condition():
            gevent.sleep(0.001)


class Busy(User):
    """A user always in the middle of a long task (a graceful stop would wait for it)."""

    wait_time = constant(0)

    @task
    def work(self) -> None:
        self.environment.events.request.fire(
            request_type="T", name="busy", response_time=1.0, response_length=0
        )
        gevent.sleep(60)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(
    horde: bool = True, clock: Clock | None = None, registered: bool = True, busy: bool = False
) -> tuple[WorkerRuntime, FakeLink]:
    events = Events()
    classes: dict[str, type[User]] = {"Idle": Idle, **({"Busy": Busy} if busy else {})}
    environment = Environment(events=events, user_classes=list(classes.values()))
    link = FakeLink()
    status = LinkStatus(horde=1 if horde else None, registered=registered)
    runtime = WorkerRuntime(
        WorkerAgent(WorkerSettings(node_id="w_1"), RequestRecorder()),
        link,  # type: ignore[arg-type]
        status=status,
        environment=environment,
        pool=UserPool(environment, classes),
        clock=lambda: 1000.0,
        monotonic=clock or Clock(),
    )
    events.request.add_listener(runtime.on_request)
    return runtime, link


def spawn(ts: float, n: int, run_id: str = "r1", **options: Any) -> m.Spawn:
    return m.Spawn("w_1", ts, {"Idle": n}, "http://127.0.0.1:1", 0.0, options, run_id, 0)


def test_spawn_applies_absolute_counts_and_reports_them() -> None:
    """A spawn is acknowledged with spawning, applied, and answered with the counts."""
    runtime, link = make()
    runtime.handle(spawn(1.0, 3))
    sent = link.take()
    assert sent[0] == m.Spawning("w_1")
    assert sent[-1] == m.WorkerSpawningComplete("w_1", {"Idle": 3}, 3)
    runtime.handle(spawn(2.0, 1))
    assert link.take()[-1] == m.WorkerSpawningComplete("w_1", {"Idle": 1}, 1)
    runtime.pool.stop_all(0)


def test_older_spawn_is_dropped() -> None:
    """A spawn whose timestamp is not newer than the last one changes nothing."""
    runtime, _ = make()
    runtime.handle(spawn(2.0, 2))
    runtime.handle(spawn(1.0, 5))
    assert runtime.pool.user_count == 2
    runtime.pool.stop_all(0)


def test_tags_in_parsed_options_filter_tasks() -> None:
    """Tags from the spawn's parsed_options decide which tasks users run."""
    runtime, _ = make()
    runtime.handle(spawn(1.0, 2, tags=["b"]))
    until(runtime.recorder._active)
    runtime.pool.stop_all(0)
    delta = runtime.recorder.take_horde_delta(
        run_id="r1", epoch=0, seq=1, now=1000.0, user_classes_count={}, user_count=0
    )
    assert {name for _, _, name in delta.names} == {"b"}


def test_stop_flushes_stats_then_reports_stopped_and_ready() -> None:
    """Stop ends the users, sends a final horde delta, client_stopped, then client_ready."""
    runtime, link = make()
    runtime.handle(spawn(1.0, 2))
    until(lambda: sum(e.num_requests for e in runtime.recorder._active()) == 2)
    link.take()
    runtime.handle(m.Stop("w_1"))
    sent = link.take()
    assert [type(x) for x in sent] == [m.HordeStats, m.ClientStopped, m.ClientReady]
    assert sent[0].delta.run_id == "r1"
    assert sum(e.num_requests for e in sent[0].delta.entries) == 2
    assert runtime.status.state == "ready"


def test_stats_go_in_locust_format_to_a_locust_master() -> None:
    """Without the horde extension the agent sends Locust's stats message."""
    runtime, link = make(horde=False)
    runtime.send_stats()
    (sent,) = link.take()
    assert isinstance(sent, m.LocustStats)


def test_new_epoch_drops_figures_of_the_old_one() -> None:
    """horde.epoch resets the recorder and tags later deltas with the new epoch."""
    runtime, link = make()
    runtime.handle(spawn(1.0, 1))
    until(runtime.recorder._active)
    runtime.handle(m.HordeEpoch("w_1", "r1", 4))
    runtime.send_stats()
    delta = link.take()[-1].delta
    assert (delta.epoch, delta.entries) == (4, ())
    runtime.pool.stop_all(0)


def test_spawn_of_an_unknown_class_is_reported_to_the_master() -> None:
    """A class missing from this worker's script becomes an exception report, not a crash."""
    runtime, link = make()
    runtime.handle(m.Spawn("w_1", 1.0, {"Nope": 1}, "", None, {}, "r1", 0))
    reports = [x for x in link.take() if isinstance(x, m.ExceptionReport)]
    assert reports and "Nope" in reports[0].msg


def test_new_log_lines_are_shipped_to_the_master() -> None:
    """The logs loop sends only new lines, in Locust's ``logs`` message, and nothing when idle."""
    from horde.logsetup import LogRing

    ring = LogRing(maxlen=3)
    events = Events()
    environment = Environment(events=events, user_classes=[Idle])
    link = FakeLink()
    runtime = WorkerRuntime(
        WorkerAgent(WorkerSettings(node_id="w_1", logs_interval=0.01), RequestRecorder()),
        link,  # type: ignore[arg-type]
        status=LinkStatus(horde=1),
        environment=environment,
        pool=UserPool(environment, {"Idle": Idle}),
        new_log_lines=ring.take_new,
    )
    loop = gevent.spawn(runtime._logs_loop, ring.take_new)
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


# --- faults: leases ----------------------------------------------------------------------


def lease_until(runtime: WorkerRuntime, deadline: float, seconds: float = 3.0) -> None:
    """Grant a lease and renew it as an echo of a beat sent at ``deadline - seconds`` would."""
    lease = runtime.status.lease
    lease.grant(seconds)
    beat = lease.unanswered + 1000 + int(deadline * 10)
    lease.sent(beat, deadline - seconds)
    lease.answered(beat)


def check_lease_at(runtime: WorkerRuntime, now: float) -> None:
    """Run the runtime's lease check with its monotonic clock at ``now``."""
    runtime.monotonic = Clock(now)
    runtime.check_lease()


def busy_spawn(ts: float, n: int, run_id: str = "r1", stop_timeout: float = 30.0) -> m.Spawn:
    return m.Spawn("w_1", ts, {"Busy": n}, "http://127.0.0.1:1", stop_timeout, {}, run_id, 0)


def requests_in(sent: list[Any]) -> int:
    return sum(e.num_requests for x in sent if isinstance(x, m.HordeStats) for e in x.delta.entries)


def test_lease_expiry_stops_busy_users_at_once_and_registers_again() -> None:
    """When the lease runs out, users in a task are killed without stop_timeout, the final
    delta goes out and the link registers again; until then nothing happens."""
    clock = Clock(100.0)
    runtime, link = make(clock=clock, busy=True)
    lease_until(runtime, 103.0)
    runtime.handle(busy_spawn(1.0, 2))
    until(runtime.recorder._active)
    link.take()
    check_lease_at(runtime, 102.99)
    assert (runtime.pool.greenlet_count, link.reregistered) == (2, 0)
    with gevent.Timeout(5):  # a graceful stop would wait 30 s
        check_lease_at(runtime, 103.0)
    sent = link.take()
    assert runtime.pool.greenlet_count == 0
    assert [type(x) for x in sent] == [m.HordeStats]
    assert requests_in(sent) == 2
    assert link.reregistered == 1
    assert (runtime.status.state, runtime.status.user_count) == ("ready", 0)
    check_lease_at(runtime, 104.0)  # no users: nothing more to do
    assert (link.take(), link.reregistered) == ([], 1)


def test_a_spawn_without_a_lease_waits_for_the_renewal() -> None:
    """A spawn that arrives when no lease holds starts its users once an echo renews it."""
    clock = Clock(200.0)
    runtime, link = make(clock=clock)
    lease_until(runtime, 150.0)  # expired long ago (e.g. after a partition)
    runtime.handle(spawn(1.0, 2))
    assert (runtime.pool.user_count, runtime.status.state) == (0, "spawning")
    assert [type(x) for x in link.take()] == [m.Spawning]
    check_lease_at(runtime, 200.0)
    assert runtime.pool.user_count == 0
    lease_until(runtime, 203.0)
    check_lease_at(runtime, 200.1)
    assert runtime.pool.user_count == 2
    assert link.take()[-1] == m.WorkerSpawningComplete("w_1", {"Idle": 2}, 2)
    runtime.pool.stop_all(0)


def test_a_stop_cancels_a_spawn_waiting_for_its_lease() -> None:
    """A stop after a spawn still waiting for a lease means the users never start."""
    runtime, _link = make(clock=Clock(200.0))
    runtime.status.lease.grant(3.0)
    runtime.handle(spawn(1.0, 2))
    runtime.handle(m.Stop("w_1"))
    lease_until(runtime, 203.0)
    check_lease_at(runtime, 200.0)
    assert runtime.pool.user_count == 0


def test_without_a_lease_grant_users_never_expire() -> None:
    """Under a Locust master (no lease in the ack) the lease check never stops users."""
    runtime, _link = make(horde=False, clock=Clock(0.0))
    runtime.handle(spawn(1.0, 2))
    check_lease_at(runtime, 1e9)
    assert runtime.pool.user_count == 2
    runtime.pool.stop_all(0)


def test_an_ack_while_users_run_stops_them() -> None:
    """Registering again (e.g. with a restarted master) stops running users at once."""
    runtime, link = make(busy=True)
    runtime.handle(busy_spawn(1.0, 3))
    until(lambda: sum(e.num_requests for e in runtime.recorder._active()) == 3)
    link.take()
    with gevent.Timeout(5):
        runtime.handle(m.Ack("w_1", index=0, horde=1, lease=3.0))
    assert runtime.pool.greenlet_count == 0
    assert requests_in(link.take()) == 3
    assert runtime.status.state == "ready"


# --- faults: lossless stats --------------------------------------------------------------


def record(runtime: WorkerRuntime, n: int, name: str = "x") -> None:
    for _ in range(n):
        runtime.recorder.record("T", name, 1.0, 0, None, 1000.0)


def deltas(sent: list[Any]) -> list[Any]:
    return [x.delta for x in sent if isinstance(x, m.HordeStats)]


def test_an_ack_drops_the_deltas_it_covers() -> None:
    """horde.stats_ack(run, seq) removes every delta up to seq from the outbox."""
    runtime, _link = make()
    runtime.handle(spawn(1.0, 0))
    for _ in range(3):
        runtime.send_stats()
    assert [d.seq for d in runtime.agent.outbox.unacked] == [1, 2, 3]
    runtime.handle(m.HordeStatsAck("w_1", "r1", 2))
    assert [d.seq for d in runtime.agent.outbox.unacked] == [3]
    runtime.handle(m.HordeStatsAck("w_1", "other", 3))
    assert [d.seq for d in runtime.agent.outbox.unacked] == [3]


def test_deltas_are_resent_after_a_reregistration_with_their_names() -> None:
    """An ack (a new registration) resends every unacknowledged delta in order, each name
    defined again in the first resent delta that uses it."""
    runtime, link = make()
    runtime.handle(spawn(1.0, 0))
    record(runtime, 2, "a")
    runtime.send_stats()
    record(runtime, 1, "a")
    record(runtime, 1, "b")
    runtime.send_stats()
    runtime.handle(m.HordeStatsAck("w_1", "r1", 1))
    link.take()
    runtime.handle(m.Ack("w_1", index=0, horde=1))
    (resent,) = deltas(link.take())
    assert resent.seq == 2
    assert {name for _, _, name in resent.names} == {"a", "b"}
    assert sum(e.num_requests for e in resent.entries) == 2


def test_deltas_are_resent_when_acks_stall() -> None:
    """Without ack progress for two stats intervals the unacknowledged deltas go again."""
    clock = Clock(0.0)
    runtime, link = make(clock=clock)
    runtime.handle(spawn(1.0, 0))
    runtime.send_stats()
    link.take()
    clock.now = 5.9
    runtime.resend_stats()
    assert link.take() == []
    clock.now = 6.0
    runtime.resend_stats()
    assert [d.seq for d in deltas(link.take())] == [1]


def test_a_full_window_takes_nothing_and_the_next_delta_covers_everything() -> None:
    """With four deltas unacknowledged no delta is taken; after an ack one delta carries all
    the requests recorded meanwhile."""
    runtime, link = make()
    runtime.handle(spawn(1.0, 0))
    for _ in range(4):
        record(runtime, 1)
        runtime.send_stats()
    link.take()
    for _ in range(3):
        record(runtime, 5, "y")
        runtime.send_stats()
    assert link.take() == []
    runtime.handle(m.HordeStatsAck("w_1", "r1", 4))
    runtime.send_stats()
    (one,) = deltas(link.take())
    assert one.seq == 5
    assert sum(e.num_requests for e in one.entries) == 15
    assert {name for _, _, name in one.names} == {"y"}


def test_no_delta_is_taken_while_unregistered() -> None:
    """An unregistered link takes no delta: the recorder keeps the figures for later."""
    runtime, link = make(registered=False)
    runtime.handle(spawn(1.0, 0))
    record(runtime, 3)
    runtime.send_stats()
    assert deltas(link.take()) == []
    runtime.status.registered = True
    runtime.send_stats()
    assert sum(e.num_requests for d in deltas(link.take()) for e in d.entries) == 3


def test_a_new_run_clears_the_outbox() -> None:
    """A spawn with another run id drops the old run's deltas and numbers from 1 again."""
    runtime, link = make()
    runtime.handle(spawn(1.0, 0))
    runtime.send_stats()
    runtime.send_stats()
    runtime.handle(spawn(2.0, 0, run_id="r2"))
    assert runtime.agent.outbox.unacked == ()
    link.take()
    runtime.send_stats()
    (delta,) = deltas(link.take())
    assert (delta.run_id, delta.seq) == ("r2", 1)


def test_stop_sends_a_final_delta_even_with_a_full_window() -> None:
    """A stop with four deltas unacknowledged still sends the final one, then stopped/ready."""
    runtime, link = make()
    runtime.handle(spawn(1.0, 0))
    for _ in range(4):
        runtime.send_stats()
    record(runtime, 7)
    link.take()
    runtime.handle(m.Stop("w_1"))
    sent = link.take()
    assert [type(x) for x in sent] == [m.HordeStats, m.ClientStopped, m.ClientReady]
    assert (sent[0].delta.seq, sum(e.num_requests for e in sent[0].delta.entries)) == (5, 7)


def test_quit_sends_a_final_delta_then_quit() -> None:
    """shutdown (SIGTERM) stops users, sends the final delta even with a full window, then quit."""
    runtime, link = make()
    runtime.handle(spawn(1.0, 0))
    for _ in range(4):
        runtime.send_stats()
    record(runtime, 2)
    link.take()
    runtime.shutdown()
    sent = link.take()
    assert [type(x) for x in sent] == [m.HordeStats, m.WorkerQuit]
    assert sum(e.num_requests for e in sent[0].delta.entries) == 2
    runtime.shutdown()  # a second signal changes nothing
    assert link.take() == []


def test_each_run_and_epoch_defines_its_names_again() -> None:
    """The first delta of a new run or epoch defines every name it uses, even names sent in
    deltas of the previous run (which a restarted master drops)."""
    runtime, link = make()
    runtime.handle(spawn(1.0, 0))
    record(runtime, 1, "a")
    runtime.send_stats()
    runtime.handle(spawn(2.0, 0, run_id="r2"))
    record(runtime, 1, "a")
    runtime.send_stats()
    runtime.handle(m.HordeEpoch("w_1", "r2", 1))
    record(runtime, 1, "a")
    runtime.send_stats()
    assert [(d.run_id, d.epoch, d.names) for d in deltas(link.take())] == [
        ("r1", 0, ((0, "T", "a"),)),
        ("r2", 0, ((0, "T", "a"),)),
        ("r2", 1, ((0, "T", "a"),)),
    ]


def test_the_runtime_carries_out_every_kind_of_action() -> None:
    """Every action type the agent may return has exactly one doer in the runtime."""
    from typing import get_args

    from horde.worker import agent as a

    runtime, _ = make()
    assert set(runtime._doers) == set(get_args(a.Action))
