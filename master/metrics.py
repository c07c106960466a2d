"""The master's figures in Prometheus' text format, for ``GET /metrics``.

Responsibility: turn a snapshot of the master (merged stats, workers, run state,
rejected frame counters) into Prometheus metric families. Every call builds its own
``CollectorRegistry`` holding one collector bound to the snapshot: nothing is registered
globally and nothing lives between scrapes. Times are in seconds, memory in
bytes. Per-entry families carry ``method`` and ``name`` labels and list at most
:data:`MAX_ENTRIES` entries (as the JSON report); the ``Aggregated`` figures have families
of their own (``horde_aggregated_*``), so summing a per-entry family never counts a request
twice. Label values are user input; prometheus-client escapes quotes, backslashes and
newlines.

Imports: the standard library, prometheus_client and horde.master.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from horde.master.arrivalsout import arrival_families
from horde.master.registry import WorkerState
from horde.master.report import MAX_ROWS
from horde.master.snapshot import MasterSnapshot, RunSnapshot
from horde.master.stats import MergedEntry, MergedStats
from horde.master.swarm import RunState
from horde.master.verdict import VerdictReport

__all__ = [
    "CONTENT_TYPE",
    "MAX_ENTRIES",
    "QUANTILES",
    "HordeCollector",
    "render_metrics",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The ``Content-Type`` of :func:`render_metrics`' output."""
MAX_ENTRIES = MAX_ROWS
"""Most (method, name) entries exported per family: the label cardinality bound."""
QUANTILES = (0.5, 0.95, 0.99)
"""Response-time quantiles exported per entry and for the aggregate."""
ENTRY_LABELS = ("method", "name")
REJECTED_PREFIX = "malformed_"
"""Coordinator counters ``malformed_<reason>`` count frames that failed to decode."""
REJECTED_REASONS = ("msgpack", "shape", "type", "field", "size", "frames", "identity")
"""Decode-failure reasons always exported (0 until seen), so ``rate()`` sees the first one."""
DROPPED_COUNTERS = ("unknown_type", "stale_stats", "handler_error")
"""Coordinator counters of frames that decoded but were dropped; exported as reasons too."""
KEY_REASONS = ("wrong_key", "revoked_key")
"""A CURVE master's reasons (always exported there): a frame under a worker identity
from another key than the one it registered with, and a frame under a revoked key."""
HANDSHAKES_REFUSED = "rejected_handshakes"
"""The counter of CURVE handshakes the ZAP handler refused (exported on its own)."""


def _label(value: str) -> str:
    """A label value that encodes as UTF-8 (lone surrogates become ``?``)."""
    if value.isascii():
        return value
    return value.encode("utf-8", "replace").decode("utf-8")


def _seconds(ms: float) -> float:
    """Milliseconds to seconds, rounded to the nanosecond (drops float noise)."""
    return round(ms / 1000.0, 9)


def _timed(entry: MergedEntry) -> int:
    """Requests of ``entry`` that have a response time."""
    return entry.num_requests - entry.num_none_requests


def _entry_families(entries: list[MergedEntry], now: float) -> list[Metric]:
    """Per-entry counters, rates and response times, labelled by method and name."""
    requests = CounterMetricFamily(
        "horde_requests", "Requests made, per entry.", labels=ENTRY_LABELS
    )
    failures = CounterMetricFamily(
        "horde_failures", "Requests that failed, per entry.", labels=ENTRY_LABELS
    )
    rps = GaugeMetricFamily(
        "horde_current_requests_per_second",
        "Requests per second over the current window, per entry.",
        labels=ENTRY_LABELS,
    )
    fps = GaugeMetricFamily(
        "horde_current_failures_per_second",
        "Failures per second over the current window, per entry.",
        labels=ENTRY_LABELS,
    )
    quantiles = GaugeMetricFamily(
        "horde_response_time_seconds",
        "Response-time quantiles since the run (or the last reset) began, per entry.",
        labels=(*ENTRY_LABELS, "quantile"),
    )
    average = GaugeMetricFamily(
        "horde_response_time_average_seconds",
        "Mean response time, per entry.",
        labels=ENTRY_LABELS,
    )
    for entry in entries:
        labels = [_label(entry.method), _label(entry.name)]
        requests.add_metric(labels, entry.num_requests)
        failures.add_metric(labels, entry.num_failures)
        rps.add_metric(labels, entry.current_rps(now))
        fps.add_metric(labels, entry.current_fail_per_sec(now))
        for q, value in _quantiles(entry):
            quantiles.add_metric([*labels, str(q)], value)
        average.add_metric(labels, _average(entry))
    return [requests, failures, rps, fps, quantiles, average]


def _quantiles(entry: MergedEntry) -> list[tuple[float, float]]:
    """(quantile, seconds) pairs of ``entry``; NaN before any timed request."""
    if not _timed(entry):
        return [(q, math.nan) for q in QUANTILES]
    return [
        (q, _seconds(ms)) for q, ms in zip(QUANTILES, entry.percentiles_ms(QUANTILES), strict=True)
    ]


def _average(entry: MergedEntry) -> float:
    """Mean response time of ``entry`` in seconds; NaN before any timed request."""
    return _seconds(entry.avg_response_time_ms) if _timed(entry) else math.nan


def _aggregated_families(stats: MergedStats, now: float) -> list[Metric]:
    """The ``Aggregated`` figures: every request, whatever its entry."""
    total = stats.total
    quantiles = GaugeMetricFamily(
        "horde_aggregated_response_time_seconds",
        "Response-time quantiles of all requests since the run (or the last reset) began.",
        labels=("quantile",),
    )
    for q, value in _quantiles(total):
        quantiles.add_metric([str(q)], value)
    return [
        CounterMetricFamily(
            "horde_aggregated_requests", "Requests made, all entries.", value=total.num_requests
        ),
        CounterMetricFamily(
            "horde_aggregated_failures",
            "Requests that failed, all entries.",
            value=total.num_failures,
        ),
        GaugeMetricFamily(
            "horde_aggregated_current_requests_per_second",
            "Requests per second over the current window, all entries.",
            value=total.current_rps(now),
        ),
        GaugeMetricFamily(
            "horde_aggregated_current_failures_per_second",
            "Failures per second over the current window, all entries.",
            value=total.current_fail_per_sec(now),
        ),
        quantiles,
        GaugeMetricFamily(
            "horde_aggregated_response_time_average_seconds",
            "Mean response time of all requests.",
            value=_average(total),
        ),
    ]


def _run_families(run: RunSnapshot, entry_count: int) -> list[Metric]:
    """Users, run state and the number of entries."""
    state = GaugeMetricFamily(
        "horde_run_state", "1 for the test's current state, 0 for the others.", labels=("state",)
    )
    for run_state in RunState:
        state.add_metric([run_state.value], 1.0 if run.state is run_state else 0.0)
    return [
        GaugeMetricFamily("horde_users", "Users the workers report running.", value=run.user_count),
        GaugeMetricFamily(
            "horde_target_users",
            "Users requested for the test (the ramp's goal; 0 when stopped).",
            value=run.target_total,
        ),
        state,
        GaugeMetricFamily(
            "horde_entries",
            f"Distinct (method, name) entries; per-entry families list at most {MAX_ENTRIES}.",
            value=entry_count,
        ),
    ]


def _worker_families(snapshot: MasterSnapshot) -> list[Metric]:
    """Workers by state, and each present worker's users, CPU, memory and loop lag."""
    by_state = GaugeMetricFamily("horde_workers", "Known workers, by state.", labels=("state",))
    for worker_state, count in snapshot.workers_by_state.items():
        by_state.add_metric([worker_state.value], count)
    labels = ("worker",)
    users = GaugeMetricFamily("horde_worker_users", "Users a worker reports.", labels=labels)
    cpu = GaugeMetricFamily(
        "horde_worker_cpu_percent", "A worker's CPU use, in percent.", labels=labels
    )
    memory = GaugeMetricFamily(
        "horde_worker_memory_bytes", "A worker's resident memory.", labels=labels
    )
    lag = GaugeMetricFamily(
        "horde_worker_loop_lag_seconds",
        "A worker's worst event-loop lag since its previous heartbeat (horde workers only).",
        labels=labels,
    )
    for record in snapshot.workers:
        if record.state is WorkerState.MISSING:
            continue  # its last figures are stale; the series end with it
        worker = [_label(record.worker_id)]
        users.add_metric(worker, record.user_count)
        cpu.add_metric(worker, record.cpu_usage)
        memory.add_metric(worker, record.memory_usage)
        if record.loop_lag is not None:
            lag.add_metric(worker, record.loop_lag)
    return [by_state, users, cpu, memory, lag]


def _counter_families(counters: Mapping[str, int], *, secure: bool = False) -> list[Metric]:
    """The coordinator's counters: rejected frames by reason, other events by name, and on
    a CURVE master (``secure``) the refused handshakes."""
    reasons = (*REJECTED_REASONS, *(KEY_REASONS if secure else ()), *DROPPED_COUNTERS)
    rejected = dict.fromkeys(reasons, 0)
    events: dict[str, int] = {}
    families: list[Metric] = []
    if secure:
        handshakes = CounterMetricFamily(
            "horde_master_rejected_handshakes",
            "CURVE handshakes refused: the peer's key is not on the allow-list.",
        )
        handshakes.add_metric([], counters.get(HANDSHAKES_REFUSED, 0))
        families.append(handshakes)
    for key, value in counters.items():
        if key == HANDSHAKES_REFUSED:
            continue
        if key.startswith(REJECTED_PREFIX):
            reason = key[len(REJECTED_PREFIX) :]
            rejected[reason] = rejected.get(reason, 0) + value
        elif key in DROPPED_COUNTERS:
            rejected[key] += value
        else:
            events[key] = value
    frames = CounterMetricFamily(
        "horde_master_rejected_frames",
        "Frames the master dropped: undecodable (by decode reason), of an unknown type, "
        "stale stats, or failing in their handler.",
        labels=("reason",),
    )
    for reason in sorted(rejected):
        frames.add_metric([_label(reason)], rejected[reason])
    other = CounterMetricFamily(
        "horde_master_events",
        "Other events the master counted (workers missing, failed sends, strangers).",
        labels=("event",),
    )
    for event in sorted(events):
        other.add_metric([_label(event)], events[event])
    return [*families, frames, other]


def _verdict_families(report: VerdictReport) -> list[Metric]:
    """Each threshold's value and verdict, and the generator's health: only for a run
    with thresholds, or whose generator was saturated (else nothing, as before them)."""
    if not report.results and report.saturation is None:
        return []
    labels = ("threshold",)
    passing = GaugeMetricFamily(
        "horde_threshold_passing", "1 while a threshold passes, 0 once it fails.", labels=labels
    )
    value = GaugeMetricFamily(
        "horde_threshold_value",
        "A threshold's measured value (seconds for times; absent before any data).",
        labels=labels,
    )
    for r in report.results:
        name = [_label(r.threshold.text)]
        passing.add_metric(name, 1.0 if r.ok else 0.0)
        if r.value is not None:
            value.add_metric(name, r.value / 1000.0 if r.unit == "ms" else r.value)
    healthy = GaugeMetricFamily(
        "horde_generator_ok",
        "0 once a worker's CPU or loop lag stayed over its limit too long in this run.",
        value=1.0 if report.saturation is None else 0.0,
    )
    return [passing, value, healthy]


class HordeCollector:
    """A prometheus-client collector of one snapshot of the master."""

    def __init__(self, snapshot: MasterSnapshot) -> None:
        """Bind the collector to ``snapshot`` (its figures at the snapshot's ``now``)."""
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        """Yield every family (called once per render)."""
        snapshot = self.snapshot
        now = snapshot.run.now
        snapshot.stats.fold()
        entries = snapshot.stats.entries()
        yield from _run_families(snapshot.run, len(entries))
        yield from _entry_families(entries[:MAX_ENTRIES], now)
        yield from _aggregated_families(snapshot.stats, now)
        yield from _worker_families(snapshot)
        secure = snapshot.settings.curve is not None
        yield from _counter_families(snapshot.counters, secure=secure)
        yield from _verdict_families(snapshot.verdict)
        yield from arrival_families(snapshot.arrivals)


def render_metrics(snapshot: MasterSnapshot) -> bytes:
    """The snapshot's figures in Prometheus' text format (serve with :data:`CONTENT_TYPE`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HordeCollector(snapshot))
    return generate_latest(registry)
