"""A worker's ``environment.runner.stats``: its own requests under Locust's names.

Responsibility: :class:`WorkerStatsView`, the requests this worker recorded since its last
stats report, as a Locust worker's ``environment.stats`` holds them (Locust's worker resets
them at each report too), under Locust's ``RequestStats`` / ``StatsEntry`` names
(``total``, ``entries``, ``get(name, method)``, ``num_requests``, ``fail_ratio``,
``avg_response_time`` and the other times in ms, ``get_response_time_percentile``). A view
is taken when read: later requests do not change it. The merged figures of the whole
fleet are the master's (``horde.master.runner``).

Imports: horde.protocol (counters) and the worker's recorder.
"""

from __future__ import annotations

from horde.protocol.counters import EntryCounters
from horde.worker.stats import RequestRecorder

__all__ = ["WorkerEntryView", "WorkerStatsView"]

AGGREGATED = "Aggregated"
"""The name of the total entry, as Locust's."""


class WorkerEntryView:
    """One entry (or the total) of a worker's recent requests, Locust's names, ms."""

    def __init__(self, counters: EntryCounters) -> None:
        c = self._counters = counters
        self.name = c.name
        self.method = c.method
        self.num_requests = c.num_requests
        self.num_none_requests = c.num_none_requests
        self.num_failures = c.num_failures
        self.num_reqs_per_sec = dict(c.req_per_sec)
        self.num_fail_per_sec = dict(c.fail_per_sec)
        self.total_response_time = c.total_rt_us / 1000.0
        self.total_content_length = c.total_content_length
        self.min_response_time = None if c.min_rt_us is None else c.min_rt_us / 1000.0
        self.max_response_time = c.max_rt_us / 1000.0
        timed = c.num_requests - c.num_none_requests
        self.avg_response_time = self.total_response_time / timed if timed > 0 else 0.0
        self.fail_ratio = c.num_failures / c.num_requests if c.num_requests else 0.0
        self.avg_content_length = c.total_content_length / c.num_requests if c.num_requests else 0.0

    def get_response_time_percentile(self, percent: float) -> float:
        """The response time (ms) below which ``percent`` (0..1) of the requests fell."""
        c = self._counters
        return c.hist.percentile(percent, min_us=c.min_rt_us, max_us=c.max_rt_us) / 1000.0

    @property
    def median_response_time(self) -> float:
        """The 50th percentile (ms)."""
        return self.get_response_time_percentile(0.5)


class WorkerStatsView:
    """A worker's requests since its last report: ``total``, ``entries``, ``get``."""

    def __init__(self, recorder: RequestRecorder) -> None:
        current = recorder.current()
        total = EntryCounters("", AGGREGATED)
        for counters in current:
            total.add(counters)
        self.total = WorkerEntryView(total)
        self.entries = {(c.name, c.method): WorkerEntryView(c) for c in current}

    def get(self, name: str, method: str) -> WorkerEntryView:
        """The entry of ``name`` and ``method`` (an empty one when none was recorded)."""
        found = self.entries.get((name, method))
        return found if found is not None else WorkerEntryView(EntryCounters(method, name))
