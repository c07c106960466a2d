"""Coordinated-omission corrected series and the cap on distinct names, as pure logic.

The wire form and its validation, the recorder's corrected figures and overflow entry,
frame splits, the master's merge (exact and order-independent), the coordinator's handling
of bad input, the pacing schedule with an injected clock, and the three outputs.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import random
from typing import Any

import gevent
import msgpack
import pytest
import structlog

from horde.master.config import MasterSettings
from horde.master.coordinator import Coordinator, SwarmRequest
from horde.master.corrected import CorrectedStats
from horde.master.csvout import CORRECTED_HEADER, corrected_csv
from horde.master.dispatch import UserClassSpec
from horde.master.jsonout import locust_json
from horde.master.stats import MergedStats
from horde.master.summary import corrected_table
from horde.protocol import messages as m
from horde.protocol.corrected import CORRECTED_KEY, CorrectedDelta, corrected_from_wire
from horde.protocol.counters import OVERFLOW_NAME
from horde.protocol.errors import ProtocolError
from horde.protocol.histogram import Histogram
from horde.worker.api import pacing
from horde.worker.api.wait import constant, constant_pacing, constant_throughput
from horde.worker.outbox import split_delta
from horde.worker.stats import RequestRecorder

T0 = 1_700_000_000.0


def take(rec: RequestRecorder, seq: int = 1) -> Any:
    return rec.take_horde_delta(
        run_id="r", epoch=0, seq=seq, now=T0 + 3, user_classes_count={"U": 1}, user_count=1
    )


def item(method: str = "GET", name: str = "/a", values: tuple[int, ...] = (1000,)) -> list[Any]:
    hist = Histogram()
    for us in values:
        hist.record(us)
    return [method, name, len(values), sum(values), min(values), max(values), hist.to_pairs()]


# --- wire form -----------------------------------------------------------------------------


def test_corrected_items_round_trip_and_none_is_empty() -> None:
    """Valid items decode to CorrectedDelta; a missing key is no items."""
    wire = [item(values=(900, 1100)), item("POST", "/b", (5,))]
    decoded = corrected_from_wire(msgpack.unpackb(msgpack.packb(wire)))
    assert decoded[0] == CorrectedDelta("GET", "/a", 2, 2000, 900, 1100, decoded[0].buckets)
    assert [d.to_wire() for d in decoded] == wire
    assert corrected_from_wire(None) == ()


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"a": 1}, "shape"),
        ([["GET", "/a", 1]], "shape"),
        ([["GET", "/a", "1", 5, 5, 5, [0, 1]]], "type"),
        ([["GET", "/a", 0, 0, 0, 0, []]], "field"),  # no requests
        ([["GET", "/a", 1, 5, 6, 5, [5, 1]]], "field"),  # min above max
        ([["GET", "/a", 1, 5, 5, 5, [5]]], "field"),  # odd pairs
        ([["GET", "/a", 1, 5, 5, 5, [99999, 1]]], "field"),  # bucket out of range
        ([["GET", "/a", 2, 5, 5, 5, [5, 1]]], "field"),  # counts do not add up
        ([["GET", "/a", 1, 5, 5, 5, [5, -1]]], "type"),
        ([["GET", "/a", 1, 5, 5, 5, [5, 1.0]]], "type"),
        ([[1, "/a", 1, 5, 5, 5, [5, 1]]], "type"),
    ],
)
def test_malformed_corrected_items_are_refused(bad: Any, reason: str) -> None:
    """Every malformed value raises ProtocolError with its reason, and nothing else."""
    with pytest.raises(ProtocolError) as caught:
        corrected_from_wire(bad)
    assert caught.value.reason == reason


# --- recorder --------------------------------------------------------------------------------


def test_recorder_adds_lateness_and_sends_the_series_in_horde_deltas_only() -> None:
    """Corrected = raw + lateness, per key; horde deltas carry it, Locust reports drop it."""
    rec = RequestRecorder()
    rec.record("GET", "/a", 10.0, 0, None, T0)
    rec.record_corrected("GET", "/a", 10.0, 0.030)
    rec.record("GET", "/a", 12.0, 0, None, T0)
    rec.record_corrected("GET", "/a", 12.0, 0.0)
    rec.record("GET", "/plain", 1.0, 0, None, T0)
    delta = take(rec)
    (got,) = corrected_from_wire(delta.extra[CORRECTED_KEY])
    assert (got.method, got.name, got.requests, got.total_us) == ("GET", "/a", 2, 52_000)
    assert (got.min_us, got.max_us) == (12_000, 40_000)
    assert CORRECTED_KEY not in take(rec, 2).extra  # taken: nothing left
    rec.record("GET", "/a", 10.0, 0, None, T0)
    rec.record_corrected("GET", "/a", 10.0, 0.5)
    rec.take_locust_report(now=T0 + 3, user_classes_count={}, user_count=0)
    assert CORRECTED_KEY not in take(rec, 3).extra


def test_names_beyond_the_cap_go_to_the_overflow_entry_with_one_warning() -> None:
    """The cap counts keys; later keys share their method's overflow entry, exactly."""
    rec = RequestRecorder(max_names=2)
    with structlog.testing.capture_logs() as logs:
        for i in range(5):
            rec.record("GET", f"/item/{i}", 1.0, 0, None, T0)
            rec.record_corrected("GET", f"/item/{i}", 1.0, 0.001)
        rec.record("POST", "/x", 1.0, 0, None, T0)
    delta = take(rec)
    names = sorted(name for _, _, name in delta.names)
    assert names == [OVERFLOW_NAME, OVERFLOW_NAME, "/item/0", "/item/1"]
    by_id = {eid: (method, name) for eid, method, name in delta.names}
    counts = {by_id[e.entry_id]: e.num_requests for e in delta.entries}
    assert counts[("GET", OVERFLOW_NAME)] == 3 and counts[("POST", OVERFLOW_NAME)] == 1
    assert sum(counts.values()) == 6 and rec.overflowed == 4
    fixed = {(d.method, d.name): d.requests for d in corrected_from_wire(delta.extra["corrected"])}
    assert fixed == {("GET", "/item/0"): 1, ("GET", "/item/1"): 1, ("GET", OVERFLOW_NAME): 3}
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 2  # one per overflowing method, not one per request
    with pytest.raises(ValueError, match="max_names"):
        RequestRecorder(max_names=0)


def test_split_deltas_carry_each_corrected_item_once() -> None:
    """A delta split to fit the frame limit spreads corrected items over the parts."""
    rec = RequestRecorder()
    for i in range(60):
        rec.record("GET", f"/n{i}", 1.0 + i, 0, None, T0)
        rec.record_corrected("GET", f"/n{i}", 1.0 + i, 0.002)
    delta = take(rec)
    defs = {eid: (eid, method, name) for eid, method, name in delta.names}

    def size(d: Any) -> int:
        return len(msgpack.packb(d.to_wire()))

    parts, dropped = split_delta(delta, 1500, size, defs)
    assert dropped == 0 and len(parts) > 2
    assert all(size(dataclasses.replace(p, names=tuple(defs.values()))) <= 1500 * 2 for p in parts)
    assert all(size(p) <= 1500 for p in parts)
    items = [d for p in parts for d in corrected_from_wire(p.extra.get(CORRECTED_KEY))]
    assert sorted(d.name for d in items) == sorted(f"/n{i}" for i in range(60))


# --- master ----------------------------------------------------------------------------------


def test_master_merge_is_exact_and_order_independent() -> None:
    """Any order of the same items gives the same figures, equal to one big histogram."""
    rng = random.Random(7)
    items = [
        CorrectedDelta(*corrected_from_wire([item("GET", f"/{k % 3}", values)])[0])
        for k, values in enumerate(
            tuple(rng.randint(50, 5_000_000) for _ in range(rng.randint(1, 40))) for _ in range(30)
        )
    ]
    results = []
    for order in (items, items[::-1], rng.sample(items, len(items))):
        stats = CorrectedStats()
        assert stats.merge(order) == 30
        total = stats.total
        results.append((total.count, total.total_us, total.min_us, total.max_us, total.hist))
    assert results[0] == results[1] == results[2]
    everything = Histogram()
    for d in items:
        everything.merge_pairs(d.buckets)
    assert results[0][4] == everything
    assert [e.name for e in stats.entries()] == ["/0", "/1", "/2"]


def test_master_cap_merges_late_names_into_the_overflow_entry() -> None:
    """Beyond max_names, new names merge into (method, OVERFLOW_NAME); nothing is lost."""
    stats = CorrectedStats(max_names=1)
    stats.merge(corrected_from_wire([item("GET", "/a"), item("GET", "/b"), item("GET", "/c")]))
    assert [(e.name, e.count) for e in stats.entries()] == [(OVERFLOW_NAME, 2), ("/a", 1)]
    assert stats.total.count == 3
    stats.reset()
    assert not stats and stats.entries() == []


def _coordinator() -> Coordinator:
    coordinator = Coordinator(
        MasterSettings(), [UserClassSpec("A", 1, 0)], lambda *_: None, new_run_id=lambda: "run1"
    )
    coordinator.handle("h_1", m.ClientReady("h_1", m.HORDE_CLIENT_VERSION), 0.0)
    coordinator.start(SwarmRequest(1, 100.0), 0.0)
    return coordinator


def test_coordinator_merges_corrected_series_and_drops_a_malformed_one_whole() -> None:
    """A delta's corrected items merge beside its raw entries; a malformed list is counted
    and dropped while the raw entries still merge."""
    c = _coordinator()
    rec = RequestRecorder()
    rec.record("GET", "/a", 10.0, 0, None, 1.0)
    rec.record_corrected("GET", "/a", 10.0, 0.005)
    delta = rec.take_horde_delta(
        run_id="run1", epoch=0, seq=1, now=1.0, user_classes_count={"A": 1}, user_count=1
    )
    c.handle("h_1", m.HordeStats("h_1", delta), 1.0)
    fixed = c.corrected.get("GET", "/a")
    assert fixed is not None and (fixed.count, fixed.min_us) == (1, 15_000)
    rec.record("GET", "/a", 10.0, 0, None, 1.0)
    bad = dataclasses.replace(
        rec.take_horde_delta(
            run_id="run1", epoch=0, seq=2, now=1.0, user_classes_count={"A": 1}, user_count=1
        ),
        extra={CORRECTED_KEY: [["GET", "/a", 5, 1, 1, 1, [1, 1]]]},
    )
    c.handle("h_1", m.HordeStats("h_1", bad), 1.0)
    assert c.counters["malformed_corrected"] == 1
    c.stats.fold()
    assert c.stats.total.num_requests == 2 and c.corrected.total.count == 1
    c.reset_stats(2.0)
    assert not c.corrected


# --- pacing ----------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Holder:
    """Stands for a user or TaskSet instance."""


def test_pacing_schedule_gives_the_lateness_of_each_iteration() -> None:
    """Due one period after the previous iteration was due; an overrun is charged once."""
    clock = Clock()
    wait = constant_pacing(1.0, clock=clock)
    user = Holder()
    assert pacing.is_pacing(type("U", (), {"wait_time": wait})())
    assert not pacing.is_pacing(type("U", (), {"wait_time": constant(1)})())
    assert getattr(constant_throughput(2.0), pacing.PACING_MARK)
    clock.now = 100.3  # first task took 0.3 s
    assert wait(user) == pytest.approx(1.0)
    clock.now = 101.32  # woke up 20 ms late
    pacing.mark_iteration_start(user, user)
    assert getattr(user, pacing.LATENESS_ATTR) == pytest.approx(0.02)
    clock.now = 102.82  # the task took 1.5 s: overran by 0.52 s past its due time
    assert wait(user) == 0.0
    pacing.mark_iteration_start(user, user)
    assert getattr(user, pacing.LATENESS_ATTR) == pytest.approx(0.52)
    clock.now = 103.0  # next one due at 102.82 + 1.0 (the schedule restarts)
    assert wait(user) == pytest.approx(0.82)
    clock.now = 103.82
    pacing.mark_iteration_start(user, user)
    assert getattr(user, pacing.LATENESS_ATTR) == pytest.approx(0.0)
    other = Holder()
    pacing.mark_iteration_start(other, other)  # not pacing: nothing noted
    assert not hasattr(other, pacing.LATENESS_ATTR)


def test_current_lateness_reads_the_user_of_the_running_greenlet() -> None:
    """A user's greenlet has it as first argument; pacing users start on time (0.0)."""

    class Paced:
        wait_time = constant_pacing(1.0)

    class Plain:
        wait_time = constant(1.0)

    late = Paced()
    setattr(late, pacing.LATENESS_ATTR, 0.25)
    seen = {}
    for label, user in (("fresh", Paced()), ("late", late), ("plain", Plain())):
        seen[label] = gevent.spawn(lambda _u: pacing.current_lateness(), user).get(timeout=5)
    assert seen == {"fresh": 0.0, "late": 0.25, "plain": None}
    assert pacing.current_lateness() is None  # the main greenlet runs no user


# --- outputs ---------------------------------------------------------------------------------


def _stats_with_corrected() -> tuple[MergedStats, CorrectedStats]:
    rec = RequestRecorder()
    for ms in (80.0, 81.0, 82.0):
        rec.record("GET", "/paced", ms, 0, None, T0)
        rec.record_corrected("GET", "/paced", ms, 0.030)
    rec.record("GET", "/plain", 1.0, 0, None, T0)
    delta = take(rec)
    stats = MergedStats(started_at=T0)
    stats.merge_horde("w", delta, T0 + 3)
    corrected = CorrectedStats()
    corrected.merge(corrected_from_wire(delta.extra[CORRECTED_KEY]))
    return stats, corrected


def test_outputs_show_the_corrected_series_beside_the_raw_one() -> None:
    """Summary rows raw then corrected, a JSON extra key on pacing entries only, and the
    corrected CSV with the requests CSV's time columns."""
    stats, corrected = _stats_with_corrected()
    table = corrected_table(stats, corrected).splitlines()
    assert "coordinated omission" in table[0]
    assert table[3].split()[:3] == ["GET", "/paced", "81.2"]  # raw median, bucket midpoint
    assert table[4].split()[:3] == ["corrected", "/paced", "111"]  # 30 ms later
    assert corrected_table(stats, CorrectedStats()) == ""
    entries = {e["name"]: e for e in locust_json(stats, corrected)}
    assert "corrected" not in entries["/plain"]
    fixed = entries["/paced"]["corrected"]
    assert fixed["num_requests"] == 3 and fixed["min_response_time"] == 110.0
    assert fixed["median_response_time"] == fixed["response_time_percentile_0.5"]
    assert fixed["median_response_time"] == pytest.approx(111.0, rel=0.004)
    assert list(locust_json(stats)[0]) == list(entries["/paced"])[:-1]  # Locust's keys first
    rows = list(csv.reader(io.StringIO(corrected_csv(corrected))))
    assert tuple(rows[0]) == CORRECTED_HEADER
    median = str(fixed["median_response_time"])
    assert [r[:4] for r in rows[1:]] == [
        ["GET", "/paced", "3", median],
        ["", "Aggregated", "3", median],
    ]
    assert list(csv.reader(io.StringIO(corrected_csv(CorrectedStats())))) == [
        list(CORRECTED_HEADER)
    ]
    assert list(itertools.islice(CORRECTED_HEADER, 3)) == ["Type", "Name", "Request Count"]
