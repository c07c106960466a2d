"""The Prometheus exposition of a coordinator fed real messages, parsed back and checked."""

from __future__ import annotations

import math

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from horde.master.config import MasterSettings
from horde.master.coordinator import Coordinator, RunState, SwarmRequest
from horde.master.dispatch import UserClassSpec
from horde.master.metrics import CONTENT_TYPE, MAX_ENTRIES, render_metrics
from horde.master.registry import WorkerState
from horde.protocol import messages as m
from horde.worker.stats import RequestRecorder

Key = tuple[str, frozenset[tuple[str, str]]]
START = 100.0
HOSTILE = 'evil "quoted" \\ back\nslash'


def parse(text: bytes) -> dict[Key, float]:
    """Every sample of the exposition, keyed by (sample name, labels)."""
    samples: dict[Key, float] = {}
    for family in text_string_to_metric_families(text.decode("utf-8")):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = sample.value
    return samples


def value(samples: dict[Key, float], metric: str, /, **labels: str) -> float:
    """The value of one series (KeyError if absent)."""
    return samples[(metric, frozenset(labels.items()))]


def series(samples: dict[Key, float], name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Every series of sample ``name``, by labels."""
    return {labels: v for (n, labels), v in samples.items() if n == name}


def coordinator() -> Coordinator:
    """A coordinator with no worker and no stats."""
    return Coordinator(MasterSettings(), [UserClassSpec("A", 1, 0)], lambda i, msg: None)


def feed(c: Coordinator, worker: str, recorder: RequestRecorder, now: float) -> None:
    """Send ``worker``'s recorded requests to ``c`` as one horde stats delta."""
    delta = recorder.take_horde_delta(
        run_id=c.run_id, epoch=c.intake.epoch, seq=1, now=now, user_classes_count={}, user_count=0
    )
    c.handle(worker, m.HordeStats(worker, delta), now)


@pytest.fixture
def busy() -> Coordinator:
    """Three workers (one missing), a running test and requests on three entries."""
    c = coordinator()
    c.handle("h_1", m.ClientReady("h_1", m.HORDE_CLIENT_VERSION), START)
    c.handle("h_2", m.ClientReady("h_2", m.HORDE_CLIENT_VERSION), START)
    c.handle("l_1", m.ClientReady("l_1", "2.47.0"), START)
    c.start(SwarmRequest(4, 100.0), START)
    recorder = RequestRecorder()
    for ms in range(1, 101):  # 100 requests at 1..100 ms: 10 in second 101, 90 in 102
        recorder.record("GET", "/a", float(ms), 10, None, 101.5 if ms <= 10 else 102.5)
    for _ in range(5):
        recorder.record("POST", "/a", 20.0, 0, "boom", 102.5)
    recorder.record("GET", HOSTILE, None, 0, "no time", 101.5)
    feed(c, "h_1", recorder, 103.0)
    c.count_malformed("h_x", "msgpack", "not msgpack", 103.0)
    c.count_malformed("h_x", "msgpack", "not msgpack", 103.0)
    stale = recorder.take_horde_delta(
        run_id="old", epoch=0, seq=1, now=103.0, user_classes_count={}, user_count=0
    )
    c.handle("h_2", m.HordeStats("h_2", stale), 103.0)
    beat = m.WorkerHeartbeat
    c.handle("h_1", beat("h_1", "running", 12.5, 300 << 20, user_count=3, loop_lag=0.004), 104.0)
    c.handle("h_2", beat("h_2", "ready", 1.0, 100 << 20, user_count=1, loop_lag=0.0), 104.0)
    c.sweep(104.0)  # l_1 has been silent for 4 s > 3 s: missing
    return c


def test_entry_counters_rates_and_response_times(busy: Coordinator) -> None:
    """Each entry has its request and failure counts, current rates and quantiles in seconds."""
    s = parse(render_metrics(busy.snapshot(106.0)))
    get, post = {"method": "GET", "name": "/a"}, {"method": "POST", "name": "/a"}
    assert value(s, "horde_requests_total", **get) == 100
    assert value(s, "horde_failures_total", **get) == 0
    assert value(s, "horde_requests_total", **post) == 5
    assert value(s, "horde_failures_total", **post) == 5
    # The current window at 106 is seconds [100, 103): 100 requests over 3 s.
    assert value(s, "horde_current_requests_per_second", **get) == pytest.approx(100 / 3)
    assert value(s, "horde_current_failures_per_second", **post) == pytest.approx(5 / 3)
    for q, expected in (("0.5", 0.050), ("0.95", 0.095), ("0.99", 0.099)):
        got = value(s, "horde_response_time_seconds", quantile=q, **get)
        assert got == pytest.approx(expected, rel=0.01)
    assert value(s, "horde_response_time_average_seconds", **get) == pytest.approx(0.0505)
    assert value(s, "horde_response_time_seconds", quantile="0.5", **post) == pytest.approx(
        0.020, rel=0.01
    )
    assert value(s, "horde_entries") == 3


def test_aggregated_figures_have_their_own_families(busy: Coordinator) -> None:
    """The Aggregated row is exported unlabelled, never mixed into the per-entry families."""
    s = parse(render_metrics(busy.snapshot(106.0)))
    assert value(s, "horde_aggregated_requests_total") == 106
    assert value(s, "horde_aggregated_failures_total") == 6
    assert sum(series(s, "horde_requests_total").values()) == 106
    assert value(s, "horde_aggregated_current_requests_per_second") == pytest.approx(106 / 3)
    assert value(s, "horde_aggregated_current_failures_per_second") == pytest.approx(6 / 3)
    p99 = value(s, "horde_aggregated_response_time_seconds", quantile="0.99")
    assert p99 == pytest.approx(0.099, rel=0.01)
    average = value(s, "horde_aggregated_response_time_average_seconds")
    assert average == pytest.approx((5050 + 100) / 1000 / 105)
    names = {dict(labels)["name"] for labels in series(s, "horde_requests_total")}
    assert "Aggregated" not in names


def test_users_run_state_and_workers_by_state(busy: Coordinator) -> None:
    """Users, a one-hot run state and every worker state (zeros included) are exported."""
    s = parse(render_metrics(busy.snapshot(106.0)))
    assert busy.state is RunState.RUNNING
    assert value(s, "horde_users") == 4
    assert value(s, "horde_target_users") == 4
    assert series(s, "horde_run_state") == {
        frozenset({("state", state.value)}): float(state is RunState.RUNNING) for state in RunState
    }
    expected = dict.fromkeys((state.value for state in WorkerState), 0.0)
    expected.update(running=1, ready=1, missing=1)
    assert {dict(k)["state"]: v for k, v in series(s, "horde_workers").items()} == expected


def test_each_present_worker_reports_cpu_memory_users_and_loop_lag(busy: Coordinator) -> None:
    """Present workers are labelled by id; the missing Locust worker has no series."""
    s = parse(render_metrics(busy.snapshot(106.0)))
    assert value(s, "horde_worker_cpu_percent", worker="h_1") == 12.5
    assert value(s, "horde_worker_memory_bytes", worker="h_1") == 300 << 20
    assert value(s, "horde_worker_loop_lag_seconds", worker="h_1") == 0.004
    assert value(s, "horde_worker_users", worker="h_1") == 3
    assert value(s, "horde_worker_memory_bytes", worker="h_2") == 100 << 20
    workers = {dict(k)["worker"] for k in series(s, "horde_worker_cpu_percent")}
    assert workers == {"h_1", "h_2"}


def test_rejected_frames_and_other_events_are_counted_by_reason(busy: Coordinator) -> None:
    """Decode failures and stale stats are rejected frames; a missing worker is an event."""
    s = parse(render_metrics(busy.snapshot(106.0)))
    assert value(s, "horde_master_rejected_frames_total", reason="msgpack") == 2
    assert value(s, "horde_master_rejected_frames_total", reason="stale_stats") == 1
    assert value(s, "horde_master_rejected_frames_total", reason="size") == 0
    assert value(s, "horde_master_events_total", event="worker_missing") == 1


def test_hostile_label_values_are_escaped_and_round_trip(busy: Coordinator) -> None:
    """Quotes, backslashes and newlines in names are escaped; the parser reads them back."""
    text = render_metrics(busy.snapshot(106.0))
    assert b'name="evil \\"quoted\\" \\\\ back\\nslash"' in text
    s = parse(text)
    assert value(s, "horde_requests_total", method="GET", name=HOSTILE) == 1
    # A request without a response time has no quantiles yet: NaN, not a misleading 0.
    median = value(s, "horde_response_time_seconds", method="GET", name=HOSTILE, quantile="0.5")
    assert math.isnan(median)


def test_unencodable_names_are_replaced_not_fatal() -> None:
    """A name with a lone surrogate renders with a replacement character instead of failing."""
    c = coordinator()
    c.handle("h_1", m.ClientReady("h_1", m.HORDE_CLIENT_VERSION), START)
    c.start(SwarmRequest(1, 100.0), START)
    recorder = RequestRecorder()
    recorder.record("GET", "/x\ud800", 5.0, 0, None, 101.0)
    feed(c, "h_1", recorder, 101.0)
    s = parse(render_metrics(c.snapshot(102.0)))
    assert value(s, "horde_requests_total", method="GET", name="/x?") == 1


def test_per_entry_families_are_bounded_like_the_json_report() -> None:
    """With more entries than the bound, each family lists the first 500; totals count all."""
    c = coordinator()
    c.handle("h_1", m.ClientReady("h_1", m.HORDE_CLIENT_VERSION), START)
    c.start(SwarmRequest(1, 100.0), START)
    recorder = RequestRecorder()
    for i in range(MAX_ENTRIES + 100):
        recorder.record("GET", f"/item/{i:04d}", 1.0, 0, None, 101.0)
    feed(c, "h_1", recorder, 101.0)
    s = parse(render_metrics(c.snapshot(102.0)))
    for name in ("horde_requests_total", "horde_current_requests_per_second"):
        assert len(series(s, name)) == MAX_ENTRIES
    assert len(series(s, "horde_response_time_seconds")) == MAX_ENTRIES * 3
    assert value(s, "horde_entries") == MAX_ENTRIES + 100
    assert value(s, "horde_aggregated_requests_total") == MAX_ENTRIES + 100
    names = {dict(k)["name"] for k in series(s, "horde_requests_total")}
    assert max(names) == f"/item/{MAX_ENTRIES - 1:04d}"


def test_an_idle_master_renders_every_family_with_zeros_and_nans() -> None:
    """Before any worker or request: zero counts, NaN quantiles and a ready run state."""
    s = parse(render_metrics(coordinator().snapshot(0.0)))
    assert value(s, "horde_aggregated_requests_total") == 0
    assert math.isnan(value(s, "horde_aggregated_response_time_seconds", quantile="0.5"))
    assert value(s, "horde_run_state", state="ready") == 1
    assert value(s, "horde_workers", state="missing") == 0
    assert value(s, "horde_users") == 0
    assert not series(s, "horde_requests_total")


def test_rendering_leaves_the_global_registry_alone(busy: Coordinator) -> None:
    """Nothing horde renders is registered in prometheus-client's process-global registry."""
    render_metrics(busy.snapshot(106.0))
    render_metrics(busy.snapshot(107.0))
    names = {metric.name for metric in prometheus_client.REGISTRY.collect()}
    assert not {name for name in names if name.startswith("horde_")}
    assert CONTENT_TYPE.startswith("text/plain; version=")
