"""Worker registry: records, ack indexes, states and the liveness sweep."""

from __future__ import annotations

import pytest

from horde.master.registry import (
    HeartbeatResult,
    Registry,
    WorkerMissing,
    WorkerRecord,
    WorkerState,
)


def beat(registry: Registry, worker_id: str, now: float, state: str = "running") -> HeartbeatResult:
    """Send a heartbeat with fixed usage figures."""
    return registry.heartbeat(worker_id, now, state=state, cpu=12.5, memory=1024)


def test_states_use_locust_strings_and_cleanup_means_stopping() -> None:
    """Every state's value is Locust's string; a reported "cleanup" reads as stopping."""
    assert [state.value for state in WorkerState] == [
        "ready",
        "spawning",
        "running",
        "stopping",
        "stopped",
        "missing",
    ]
    assert WorkerState("cleanup") is WorkerState.STOPPING
    with pytest.raises(ValueError):
        WorkerState("dancing")


def test_register_creates_a_ready_record_with_the_next_index() -> None:
    """New workers get 0-based indexes in arrival order and start ready."""
    registry = Registry()
    first = registry.register("hostA_1", 5.0, is_horde=True, version="0.1.0")
    second = registry.register("hostB_9", 6.0)
    assert first == WorkerRecord(
        worker_id="hostA_1",
        index=0,
        state=WorkerState.READY,
        last_heartbeat=5.0,
        connected_at=5.0,
        is_horde=True,
        version="0.1.0",
    )
    assert (second.index, second.host, first.host) == (1, "hostB", "hostA")
    assert len(registry) == 2
    assert "hostA_1" in registry
    assert "nobody" not in registry


def test_index_is_kept_while_known_and_forgotten_on_removal() -> None:
    """A worker keeps its index when it registers again; once removed, it is forgotten."""
    registry = Registry()
    for worker_id in ("a", "b", "c"):
        registry.register(worker_id, 0.0)
    registry.update_users("b", {"U": 4})
    beat(registry, "b", 1.0)
    again = registry.register("b", 2.0)
    assert (again.index, again.state, again.user_count, again.user_classes_count) == (
        1,
        WorkerState.READY,
        0,
        {},
    )
    removed = registry.remove("a")
    assert removed is not None and removed.index == 0
    assert registry.remove("a") is None
    assert registry.register("d", 3.0).index == 3
    assert registry.register("a", 4.0).index == 4
    assert [record.worker_id for record in registry.all()] == ["b", "c", "d", "a"]


def test_heartbeat_updates_state_and_usage() -> None:
    """A heartbeat refreshes the clock and overwrites state, usage and optional figures."""
    registry = Registry()
    registry.register("w", 0.0)
    result = registry.heartbeat(
        "w", 1.5, state="spawning", cpu=50.0, memory=2048, user_count=7, loop_lag=0.25
    )
    assert (result.known, result.revived) == (True, False)
    record = registry.get("w")
    assert record is result.record
    assert record is not None
    assert (record.last_heartbeat, record.state, record.cpu_usage, record.memory_usage) == (
        1.5,
        WorkerState.SPAWNING,
        50.0,
        2048,
    )
    assert (record.user_count, record.loop_lag) == (7, 0.25)
    beat(registry, "w", 2.0, state="cleanup")
    record = registry.get("w")
    assert record is not None
    assert (record.state, record.user_count, record.loop_lag) == (WorkerState.STOPPING, 7, 0.25)


def test_reregistration_clears_users_but_keeps_usage_figures() -> None:
    """A worker registering again has no users but keeps its last CPU and memory."""
    registry = Registry()
    registry.register("w", 0.0)
    registry.heartbeat("w", 1.0, state="running", cpu=40.0, memory=4096, user_count=3)
    record = registry.register("w", 2.0)
    assert (record.state, record.user_count) == (WorkerState.READY, 0)
    assert (record.cpu_usage, record.memory_usage) == (40.0, 4096)


def test_heartbeat_from_an_unknown_worker_is_reported_not_recorded() -> None:
    """Unknown workers are not added by a heartbeat."""
    registry = Registry()
    assert beat(registry, "ghost", 1.0) == HeartbeatResult(known=False, revived=False, record=None)
    assert len(registry) == 0


def test_update_users_and_set_state() -> None:
    """Reported users are stored (the count defaults to their sum); unknown ids give None.

    Records are immutable: each change returns (and stores) the worker's new record.
    """
    registry = Registry()
    registry.register("w", 0.0)
    record = registry.update_users("w", {"A": 2, "B": 3})
    assert record is not None
    assert (record.user_classes_count, record.user_count) == ({"A": 2, "B": 3}, 5)
    record = registry.update_users("w", {"A": 1}, 9)
    assert record is not None and record.user_count == 9
    record = registry.set_state("w", "stopped")
    assert record is registry.get("w") and record is not None
    assert record.state is WorkerState.STOPPED
    assert registry.update_users("x", {}) is None
    assert registry.set_state("x", WorkerState.READY) is None
    assert registry.get("x") is None


def test_active_and_counts_by_state() -> None:
    """Only ready, spawning and running workers are active; every state is counted."""
    registry = Registry()
    for index, state in enumerate(["running", "stopped", "ready", "spawning", "missing"]):
        registry.register(f"w{index}", 0.0)
        registry.set_state(f"w{index}", state)
    assert [record.worker_id for record in registry.active()] == ["w0", "w2", "w3"]
    assert registry.counts_by_state() == {
        WorkerState.READY: 1,
        WorkerState.SPAWNING: 1,
        WorkerState.RUNNING: 1,
        WorkerState.STOPPING: 0,
        WorkerState.STOPPED: 1,
        WorkerState.MISSING: 1,
    }


@pytest.mark.parametrize(
    ("silence", "missing"),
    [(0.0, False), (2.999, False), (3.0, False), (3.001, True), (10.0, True)],
)
def test_missing_only_after_more_than_liveness_intervals(silence: float, missing: bool) -> None:
    """With 3 x 1 s, a worker silent for exactly 3 s is alive and just over 3 s is missing."""
    registry = Registry()
    registry.register("w", 100.0)
    events = registry.sweep(100.0 + silence)
    assert bool(events) is missing
    record = registry.get("w")
    assert record is not None
    assert (record.state is WorkerState.MISSING) is missing


def test_sweep_timeline() -> None:
    """Each silent worker yields one event, later sweeps are quiet, a heartbeat revives it."""
    registry = Registry(interval=2.0, liveness=2)
    registry.register("a", 0.0)
    registry.register("b", 0.0)
    registry.update_users("a", {"U": 5})
    beat(registry, "a", 1.0)
    timeline: list[tuple[str, float, list[WorkerMissing] | bool]] = [
        ("sweep", 4.0, []),
        ("beat b", 4.5, False),
        ("sweep", 5.0, []),
        ("sweep", 5.5, [WorkerMissing("a", 0, WorkerState.RUNNING, 1.0, 4.5)]),
        ("sweep", 6.0, []),
        ("sweep", 60.0, [WorkerMissing("b", 1, WorkerState.RUNNING, 4.5, 55.5)]),
        ("sweep", 61.0, []),
        ("beat a", 62.0, True),
        ("beat a", 63.0, False),
        ("sweep", 66.0, []),
        ("sweep", 67.5, [WorkerMissing("a", 0, WorkerState.RUNNING, 63.0, 4.5)]),
    ]
    for action, now, expected in timeline:
        if action == "sweep":
            assert registry.sweep(now) == expected, now
        else:
            assert beat(registry, action.split()[1], now).revived is expected, now


def test_a_missing_worker_drops_its_users_and_leaves_dispatch() -> None:
    """Going missing clears reported users and removes the worker from the active set."""
    registry = Registry()
    registry.register("w", 0.0)
    registry.update_users("w", {"A": 3})
    registry.sweep(3.5)
    record = registry.get("w")
    assert record is not None
    assert (record.state, record.user_count, record.user_classes_count) == (
        WorkerState.MISSING,
        0,
        {},
    )
    assert registry.active() == []
    result = beat(registry, "w", 4.0, state="ready")
    assert result.revived
    assert [r.worker_id for r in registry.active()] == ["w"]


def test_timeout_is_liveness_times_interval() -> None:
    """The silence allowed before a worker is missing is liveness x interval."""
    assert Registry().timeout == 3.0
    assert Registry(interval=0.5, liveness=4).timeout == 2.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"interval": 0}, "interval"),
        ({"interval": -1.0}, "interval"),
        ({"interval": float("inf")}, "interval"),
        ({"liveness": 0}, "liveness"),
        ({"liveness": 2.5}, "liveness"),
    ],
)
def test_invalid_settings_are_rejected(kwargs: dict, field: str) -> None:
    """Non-positive intervals and liveness below one raise ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        Registry(**kwargs)
