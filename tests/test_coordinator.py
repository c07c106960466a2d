"""The coordinator as tables of events: messages in, messages out, with an injected clock."""

from __future__ import annotations

import pytest

from horde.master.config import MasterSettings
from horde.master.coordinator import CommandError, Coordinator, RunHooks, RunState, SwarmRequest
from horde.master.dispatch import UserClassSpec
from horde.master.registry import WorkerState
from horde.master.swarm import RunEnd, StopReason
from horde.protocol import messages as m
from horde.protocol.codec import AnyMessage
from horde.worker.stats import RequestRecorder

A = UserClassSpec("A", 1, 0)


class Outbox:
    """Collects what the coordinator sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, AnyMessage]] = []

    def __call__(self, identity: str, message: AnyMessage) -> None:
        self.sent.append((identity, message))

    def take(self, kind: type | None = None) -> list[tuple[str, AnyMessage]]:
        taken = [(i, msg) for i, msg in self.sent if kind is None or isinstance(msg, kind)]
        self.sent.clear()
        return taken

    def spawns(self) -> dict[str, dict[str, int]]:
        return {i: dict(msg.user_classes_count) for i, msg in self.take(m.Spawn)}  # type: ignore[attr-defined]


def make(
    *, classes: list[UserClassSpec] | None = None, **settings: object
) -> tuple[Coordinator, Outbox]:
    outbox = Outbox()
    runs = iter(f"run{i}" for i in range(1, 100))
    coordinator = Coordinator(
        MasterSettings(**settings),  # type: ignore[arg-type]
        classes or [A],
        outbox,
        scripts=(m.ScriptFile("s.py", "x = 1"),),
        new_run_id=lambda: next(runs),
    )
    return coordinator, outbox


def join(c: Coordinator, *workers: str, now: float = 0.0, horde: bool = True) -> None:
    for w in workers:
        c.handle(w, m.ClientReady(w, m.HORDE_CLIENT_VERSION if horde else "2.47.0"), now)


def test_client_ready_gets_an_ack_with_a_stable_index_and_the_horde_marker() -> None:
    """A horde worker is acked with index and horde version; a Locust worker without it."""
    c, out = make()
    join(c, "h_1")
    join(c, "h_2", horde=False)
    join(c, "h_1")
    acks = out.take(m.Ack)
    assert acks == [
        ("h_1", m.Ack("h_1", 0, horde=m.PROTOCOL_VERSION, lease=3.0)),
        ("h_2", m.Ack("h_2", 1, horde=None)),
        ("h_1", m.Ack("h_1", 0, horde=m.PROTOCOL_VERSION, lease=3.0)),
    ]


def test_swarm_without_workers_is_refused() -> None:
    """Starting with no worker connected is a CommandError, and nothing changes."""
    c, _ = make()
    with pytest.raises(CommandError):
        c.start(SwarmRequest(10, 1.0), 0.0)
    assert c.state is RunState.READY


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (SwarmRequest(-1, 1.0), "user_count"),
        (SwarmRequest(2_000_000, 1.0), "user_count"),
        (SwarmRequest(1, 0.0), "spawn_rate"),
        (SwarmRequest(1, float("inf")), "spawn_rate"),
    ],
)
def test_bad_swarm_requests_name_their_field(request_: SwarmRequest, field: str) -> None:
    """Out-of-range counts and rates raise CommandError naming the field."""
    c, _ = make()
    join(c, "h_1")
    with pytest.raises(CommandError) as info:
        c.start(request_, 0.0)
    assert info.value.field == field


def test_ramp_sends_absolute_counts_step_by_step() -> None:
    """20 users at 10/s on two workers: 5/5 now, 10/10 a second later, then running."""
    c, out = make()
    join(c, "h_1", "h_2")
    out.take()
    c.start(SwarmRequest(20, 10.0, "http://127.0.0.1:1"), 100.0)
    assert out.spawns() == {"h_1": {"A": 5}, "h_2": {"A": 5}}
    assert c.state is RunState.SPAWNING
    assert c.tick(100.5) <= 0.5
    assert out.spawns() == {}
    c.tick(101.0)
    sent = out.take()
    spawns = [msg for _, msg in sent if isinstance(msg, m.Spawn)]
    assert {s.host for s in spawns} == {"http://127.0.0.1:1"}
    assert c.state is RunState.RUNNING
    done = {i for i, msg in sent if isinstance(msg, m.MasterSpawningComplete)}
    assert done == {"h_1", "h_2"}
    assert c.placement.distribution == {"h_1": {"A": 10}, "h_2": {"A": 10}}


def test_spawn_carries_run_id_and_increasing_timestamps() -> None:
    """Each spawn names the run and its timestamps increase, so a worker drops none."""
    c, out = make()
    join(c, "h_1")
    out.take()
    c.start(SwarmRequest(3, 1.0), 5.0)
    c.tick(6.0)
    c.tick(7.0)
    spawns = [msg for _, msg in out.take(m.Spawn)]
    assert [s.run_id for s in spawns] == ["run1"] * 3  # type: ignore[attr-defined]
    stamps = [s.timestamp for s in spawns]  # type: ignore[attr-defined]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3


def test_heartbeat_is_answered_and_a_stranger_is_asked_to_reconnect() -> None:
    """Known workers get a heartbeat back; unknown ones get reconnect, not a crash."""
    c, out = make()
    join(c, "h_1")
    out.take()
    c.handle("h_1", m.WorkerHeartbeat("h_1", "ready", 1.0, 10), 0.5)
    c.handle("ghost", m.WorkerHeartbeat("ghost", "ready", 1.0, 10), 0.5)
    assert out.take() == [("h_1", m.MasterHeartbeat("h_1")), ("ghost", m.Reconnect("ghost"))]
    assert "ghost" not in c.registry


def test_missing_worker_users_move_once_its_lease_has_surely_expired() -> None:
    """A horde worker silent for 3 s is missing; its users move at lease + grace, not before."""
    c, out = make()
    join(c, "h_1", "h_2", "h_3")
    c.start(SwarmRequest(9, 100.0), 0.0)
    assert c.state is RunState.RUNNING
    out.take()
    for t in (1.0, 2.0, 3.0):
        for w in ("h_1", "h_2"):
            c.handle(w, m.WorkerHeartbeat(w, "running", 1.0, 10), t)
        c.sweep(t)
    assert c.registry.get("h_3").state is not WorkerState.MISSING  # type: ignore[union-attr]
    out.take()
    c.sweep(3.01)
    assert c.registry.get("h_3").state is WorkerState.MISSING  # type: ignore[union-attr]
    assert c.tick(3.01) <= 0.49  # its lease (from t=0) ends at 3.0, plus 0.5 s grace
    c.sweep(3.49)
    assert out.spawns() == {}
    c.sweep(3.5)
    assert out.spawns() == {"h_1": {"A": 5}, "h_2": {"A": 4}}
    assert "h_3" not in c.placement.distribution
    assert c.counters["worker_missing"] == 1


def test_a_missing_locust_worker_loses_its_users_at_once() -> None:
    """A Locust worker has no lease, so its users move as soon as it is missing."""
    c, out = make()
    join(c, "h_1")
    join(c, "l_2", horde=False)
    c.start(SwarmRequest(4, 100.0), 0.0)
    out.take()
    for t in (1.0, 2.0, 3.0):
        c.handle("h_1", m.WorkerHeartbeat("h_1", "running", 1.0, 10), t)
        c.sweep(t)
    c.sweep(3.01)
    assert out.spawns() == {"h_1": {"A": 4}}


def test_survivors_keep_their_users_when_one_quits() -> None:
    """A quitting worker's users are added to the others; nobody is cut and re-ramped."""
    c, out = make()
    join(c, "h_1", "h_2")
    c.start(SwarmRequest(10, 100.0), 0.0)
    out.take()
    c.handle("h_2", m.WorkerQuit("h_2"), 1.0)
    assert out.spawns() == {"h_1": {"A": 10}}
    assert "h_2" not in c.registry


def test_last_worker_leaving_stops_the_test() -> None:
    """With no worker left the test stops, as Locust's does, and the run was cut short."""
    c, _ = make()
    join(c, "h_1")
    c.start(SwarmRequest(2, 100.0, run_time=30.0), 0.0)
    c.handle("h_1", m.WorkerQuit("h_1"), 1.5)
    assert c.state is RunState.STOPPED
    assert c.snapshot(1.5).run.end == RunEnd(StopReason.NO_WORKERS, 1.5, 30.0)
    assert c.end is not None and c.end.reason.cut_short
    assert (
        c.end.describe()
        == "every worker was lost (no workers left) after 1.5 s of its 30 s run time"
    )


def test_joining_worker_gets_its_share_of_a_running_test() -> None:
    """A worker that joins mid-test receives users; the others only shed the delta."""
    c, out = make()
    join(c, "h_1")
    c.start(SwarmRequest(10, 100.0), 0.0)
    out.take()
    join(c, "h_2", now=1.0)
    c.tick(1.0)
    assert out.spawns() == {"h_1": {"A": 5}, "h_2": {"A": 5}}


def test_a_joining_worker_gets_its_share_at_the_spawn_rate() -> None:
    """A joiner's share moves over max(1, floor(rate)) users per step of 1/rate s."""
    c, out = make()
    join(c, "h_1")
    c.start(SwarmRequest(10, 2.0), 0.0)
    for now in (1.0, 2.0, 3.0, 4.0, 5.0):
        c.tick(now)
    assert c.state is RunState.RUNNING
    out.take()
    join(c, "h_2", now=10.0)
    moves = []
    for now in (10.0, 10.5, 11.0, 11.5, 12.0, 13.0):
        c.tick(now)
        moves.append((now, out.spawns()))
    assert moves[0] == (10.0, {"h_1": {"A": 8}, "h_2": {"A": 2}})
    assert moves[1] == (10.5, {})
    assert moves[2] == (11.0, {"h_1": {"A": 6}, "h_2": {"A": 4}})
    assert moves[4] == (12.0, {"h_1": {"A": 5}, "h_2": {"A": 5}})
    assert moves[5] == (13.0, {}) and c.placement.migrate_at is None


def test_stop_waits_for_every_worker_to_report_stopped() -> None:
    """Stop sends stop to all and the run is stopped once each answered client_stopped."""
    c, out = make()
    join(c, "h_1", "h_2")
    c.start(SwarmRequest(4, 100.0), 0.0)
    out.take()
    c.stop(1.0)
    assert {i for i, _ in out.take(m.Stop)} == {"h_1", "h_2"}
    assert c.state is RunState.STOPPING
    c.handle("h_1", m.ClientStopped("h_1"), 1.1)
    assert c.state is RunState.STOPPING
    c.handle("h_2", m.ClientStopped("h_2"), 1.2)
    assert c.state is RunState.STOPPED


def test_stop_gives_up_on_silent_workers_after_the_stop_wait() -> None:
    """A worker that never answers stop does not keep the run stopping forever."""
    c, _ = make(stop_wait=5.0)
    join(c, "h_1")
    c.start(SwarmRequest(1, 100.0), 0.0)
    c.stop(1.0)
    c.tick(5.9)
    assert c.state is RunState.STOPPING
    c.tick(6.0)
    assert c.state is RunState.STOPPED


def test_run_time_stops_the_test() -> None:
    """The run-time deadline stops the test on the tick that reaches it."""
    c, out = make()
    join(c, "h_1")
    c.start(SwarmRequest(1, 100.0, run_time=10.0), 0.0)
    assert c.tick(9.0) <= 1.0
    c.tick(10.0)
    assert c.state is RunState.STOPPING
    assert out.take(m.Stop)
    assert c.end == RunEnd(StopReason.RUN_TIME, 10.0, 10.0)


@pytest.mark.parametrize(
    ("reason", "cut_short"),
    [
        (StopReason.REQUESTED, False),
        (StopReason.RUN_TIME, False),
        (StopReason.SHAPE_FINISHED, False),
        (StopReason.SHAPE_FAILED, True),
        (StopReason.NO_WORKERS, True),
    ],
)
def test_only_an_unplanned_end_cuts_a_run_short(reason: StopReason, cut_short: bool) -> None:
    """A run ended by its run time, its shape's end or a stop request is not cut short."""
    assert reason.cut_short is cut_short


def test_a_new_run_forgets_how_the_last_one_ended() -> None:
    """A stop records why it came; the next run starts with no end and its own run time."""
    c, _ = make()
    join(c, "h_1")
    c.start(SwarmRequest(1, 100.0, run_time=10.0), 0.0)
    c.stop(2.0)
    c.handle("h_1", m.ClientStopped("h_1"), 2.5)
    join(c, "h_1", now=2.5)
    assert c.end == RunEnd(StopReason.REQUESTED, 2.0, 10.0)
    c.start(SwarmRequest(1, 100.0), 3.0)
    assert c.end is None and c.snapshot(3.0).run.end is None
    c.stop(4.0)
    assert c.end == RunEnd(StopReason.REQUESTED, 1.0, None)
    assert c.end.describe() == "a stop was requested after 1.0 s"


def _delta(recorder: RequestRecorder, run_id: str, epoch: int, seq: int) -> m.HordeStats:
    return m.HordeStats(
        "h_1",
        recorder.take_horde_delta(
            run_id=run_id, epoch=epoch, seq=seq, now=1.0, user_classes_count={"A": 2}, user_count=2
        ),
    )


def test_stats_of_the_current_run_and_epoch_are_merged_and_others_dropped() -> None:
    """Only deltas tagged with the current run id and epoch reach the merged stats."""
    c, _ = make()
    join(c, "h_1")
    c.start(SwarmRequest(2, 100.0), 0.0)
    recorder = RequestRecorder()
    recorder.record("GET", "/a", 1.5, 10, None, 1.0)
    c.handle("h_1", _delta(recorder, "run1", 0, 1), 1.0)
    recorder.record("GET", "/a", 1.5, 10, None, 1.0)
    c.handle("h_1", _delta(recorder, "old-run", 0, 2), 1.0)
    recorder.record("GET", "/a", 1.5, 10, None, 1.0)
    c.handle("h_1", _delta(recorder, "run1", 7, 2), 1.0)
    c.stats.fold()
    assert c.stats.total.num_requests == 1
    assert c.counters["stale_stats"] == 2
    assert c.registry.get("h_1").user_count == 2  # type: ignore[union-attr]


def test_deltas_are_merged_once_in_order_and_acknowledged() -> None:
    """Each (run, worker, seq) merges once, in order; the ack names the last seq merged."""
    c, out = make()
    join(c, "h_1")
    c.start(SwarmRequest(2, 100.0), 0.0)
    run = c.run_id
    recorder = RequestRecorder()
    deltas = []
    for seq in (1, 2, 3):
        recorder.record("GET", "/a", 1.5, 10, None, 1.0)
        deltas.append(_delta(recorder, run, 0, seq))
    events = [deltas[0], deltas[0], deltas[2], deltas[1], deltas[2], deltas[1]]
    acks = []
    for delta in events:
        c.handle("h_1", delta, 1.0)
        acks.append(out.take(m.HordeStatsAck)[-1][1].seq)
    assert acks == [1, 1, 1, 2, 3, 3]
    c.stats.fold()
    assert c.stats.total.num_requests == 3
    assert (c.counters["duplicate_stats"], c.counters["stats_gap"]) == (2, 1)


def test_reset_starts_a_new_epoch_and_tells_horde_workers() -> None:
    """Reset clears the figures, bumps the epoch and sends horde.epoch to horde workers."""
    c, out = make()
    join(c, "h_1")
    join(c, "l_1", horde=False)
    c.start(SwarmRequest(2, 100.0), 0.0)
    out.take()
    c.reset_stats(2.0)
    assert c.intake.epoch == 1
    assert out.take(m.HordeEpoch) == [("h_1", m.HordeEpoch("h_1", "run1", 1))]


def test_a_new_test_after_stop_gets_a_new_run_id() -> None:
    """Starting again after a stop begins a new run with fresh stats."""
    c, _ = make()
    join(c, "h_1")
    c.start(SwarmRequest(1, 100.0), 0.0)
    c.stop(1.0)
    c.handle("h_1", m.ClientStopped("h_1"), 1.0)
    join(c, "h_1", now=1.1)
    c.start(SwarmRequest(1, 100.0), 2.0)
    assert c.run_id == "run2"


def test_script_is_served_to_workers_without_one() -> None:
    """A locustfile request from any identity is answered with the master's script."""
    c, out = make()
    c.handle("x_download_locustfile_1", m.LocustfileRequest("x_download_locustfile_1"), 0.0)
    ((identity, reply),) = out.take()
    assert identity == "x_download_locustfile_1"
    assert reply == m.LocustfileReply(identity, (m.ScriptFile("s.py", "x = 1"),))


def test_unknown_types_and_exceptions_are_recorded_not_fatal() -> None:
    """Unknown message types are counted; task exceptions are grouped."""
    c, _ = make()
    join(c, "h_1")
    c.handle("h_1", m.UnknownMessage("custom", {}, "h_1"), 0.0)
    c.handle("h_1", m.ExceptionReport("h_1", "boom", "tb"), 0.0)
    assert c.counters["unknown_type"] == 1
    assert c.exceptions.groups()[0].count == 1


def test_classes_are_spread_by_weight_and_fixed_count() -> None:
    """Class targets follow weights, fixed_count first, across workers."""
    c, out = make(
        classes=[UserClassSpec("A", 3, 0), UserClassSpec("B", 1, 0), UserClassSpec("F", 1, 1)]
    )
    join(c, "h_1", "h_2")
    out.take()
    c.start(SwarmRequest(9, 100.0), 0.0)
    spawns = out.spawns()
    totals: dict[str, int] = {}
    for counts in spawns.values():
        for cls, n in counts.items():
            totals[cls] = totals.get(cls, 0) + n
    assert totals == {"A": 6, "B": 2, "F": 1}
    assert sorted(sum(v.values()) for v in spawns.values()) == [4, 5]


def test_tags_travel_in_every_spawn_as_locust_parsed_options() -> None:
    """--tags and --exclude-tags reach the workers in each spawn's parsed_options."""
    c, out = make(tags=("fast",), exclude_tags=("slow",))
    join(c, "h_1")
    out.take()
    c.start(SwarmRequest(1, 100.0), 0.0)
    ((_, spawn),) = out.take(m.Spawn)
    assert spawn.parsed_options == {"tags": ["fast"], "exclude_tags": ["slow"]}  # type: ignore[attr-defined]


def test_long_missing_workers_are_forgotten() -> None:
    """A worker missing longer than forget_missing_after leaves the registry."""
    c, _ = make(forget_missing_after=60.0)
    join(c, "h_1")
    c.sweep(3.5)
    assert c.registry.get("h_1").state is WorkerState.MISSING  # type: ignore[union-attr]
    c.sweep(60.0)
    assert "h_1" in c.registry
    c.sweep(60.01)
    assert "h_1" not in c.registry


def test_swarm_while_stopping_is_refused() -> None:
    """A swarm that arrives while workers are still stopping is refused with a reason."""
    c, _ = make()
    join(c, "h_1")
    c.start(SwarmRequest(1, 100.0), 0.0)
    c.stop(1.0)
    with pytest.raises(CommandError, match="stopping"):
        c.start(SwarmRequest(1, 100.0), 1.5)


def test_run_hooks_fire_once_per_run() -> None:
    """test_start fires when a run begins (not on a re-swarm), test_stop when it stopped."""
    calls: list[str] = []

    class Recorder(RunHooks):
        def test_start(self) -> None:
            calls.append("start")

        def test_stop(self) -> None:
            calls.append("stop")

    c = Coordinator(MasterSettings(), [A], Outbox(), hooks=Recorder())
    join(c, "h_1")
    c.start(SwarmRequest(1, 100.0), 0.0)
    c.start(SwarmRequest(2, 100.0), 1.0)
    c.stop(2.0)
    assert calls == ["start"]
    c.handle("h_1", m.ClientStopped("h_1"), 2.1)
    assert calls == ["start", "stop"]


def test_a_heartbeat_with_an_unknown_state_is_counted_and_keeps_the_worker() -> None:
    """An unknown (or 'missing') reported state is counted; liveness and the old state stay."""
    c, out = make()
    join(c, "h_1")
    c.handle("h_1", m.WorkerHeartbeat("h_1", "running", 1.0, 10), 1.0)
    for state in ("rea`y", "missing"):
        c.handle("h_1", m.WorkerHeartbeat("h_1", state, 1.0, 10), 2.0)
    record = c.registry.get("h_1")
    assert record is not None and record.state is WorkerState.RUNNING
    assert record.last_heartbeat == 2.0 and c.counters["malformed_state"] == 2
    assert len(out.take(m.MasterHeartbeat)) == 3


def test_stats_from_a_peer_that_never_registered_are_dropped() -> None:
    """A stranger's Locust stats or horde deltas never reach the merged figures."""
    c, out = make()
    join(c, "h_1")
    c.start(SwarmRequest(2, 100.0), 0.0)
    recorder = RequestRecorder()
    recorder.record("GET", "/a", 1.5, 10, None, 1.0)
    delta = recorder.take_horde_delta(
        run_id=c.run_id, epoch=0, seq=1, now=1.0, user_classes_count={}, user_count=0
    )
    c.handle("x_9", m.HordeStats("x_9", delta), 1.0)
    recorder.record("GET", "/a", 1.5, 10, None, 1.0)
    report = recorder.take_locust_report(now=1.0, user_classes_count={}, user_count=0)
    c.handle("x_9", m.LocustStats("x_9", report), 1.0)
    c.stats.fold()
    assert c.stats.total.num_requests == 0 and c.counters["unknown_worker"] == 2
    assert out.take(m.HordeStatsAck) == []


def test_a_worker_back_from_missing_gets_its_share_back_at_the_spawn_rate() -> None:
    """Missing, moved, back with its users stopped, then reconciled step by step."""
    c, out = make()
    join(c, "h_1", "h_2")
    c.start(SwarmRequest(8, 2.0), 0.0)
    for now in (1.0, 2.0, 3.0):
        c.tick(now)
        c.handle("h_1", m.WorkerHeartbeat("h_1", "running", 1.0, 10, beat=int(now)), now)
    assert c.state is RunState.RUNNING
    last_h2 = c.registry.get("h_2").last_heartbeat  # type: ignore[union-attr]
    out.take()
    events = []
    for now in (4.0, 5.0, 6.0, 6.6):
        c.handle("h_1", m.WorkerHeartbeat("h_1", "running", 1.0, 10), now)
        c.sweep(now)
        c.tick(now)
        events.append((now, c.registry.get("h_2").state.value, out.spawns()))  # type: ignore[union-attr]
    assert last_h2 == 0.0  # so its lease ended by 3.0 and its users may move from 3.5 on
    assert events == [
        (4.0, "missing", {"h_1": {"A": 8}}),
        (5.0, "missing", {}),
        (6.0, "missing", {}),
        (6.6, "missing", {}),
    ]
    join(c, "h_2", now=7.0)  # its lease ran out, so it registers again
    steps = []
    for now in (7.0, 8.0, 9.0):
        c.tick(now)
        steps.append(out.spawns())
    assert steps == [{"h_1": {"A": 6}, "h_2": {"A": 2}}, {"h_1": {"A": 4}, "h_2": {"A": 4}}, {}]
