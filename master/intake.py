"""Stats intake: which workers' reports count, in what order, and what they add up to.

Responsibility: a stats report from a worker becomes figures here. A horde delta is
merged once and in order per (run, worker, seq) and acknowledged; a delta of another
stats epoch only teaches its names; a Locust report counts while a run is known. Merged
figures go to :class:`~horde.master.stats.MergedStats` (and the corrected series to
:class:`~horde.master.corrected.CorrectedStats`); each worker's request count is kept for
the workers table. :meth:`StatsIntake.reset` starts the figures over (a new run or stats
epoch) and :meth:`StatsIntake.forget` drops a departed worker. Pure: acks go through the
injected ``send``, events to the injected :class:`~horde.master.counters.Counters`.

Imports: the standard library, horde.master and horde.protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from horde.master.corrected import CorrectedStats
from horde.master.counters import Counters
from horde.master.stats import MergedStats
from horde.protocol import messages as m
from horde.protocol.codec import AnyMessage
from horde.protocol.corrected import CORRECTED_KEY, corrected_from_wire
from horde.protocol.errors import ProtocolError

Send = Callable[[str, AnyMessage], None]
UserCounts = tuple[Mapping[str, int], int]
"""What a report says the worker runs: users per class, and in all."""


class StatsIntake:
    """Sequencing, acks and epochs of stats reports; the merged figures they make."""

    def __init__(
        self, stats: MergedStats, corrected: CorrectedStats, counters: Counters, send: Send
    ) -> None:
        self.stats = stats
        self.corrected = corrected
        self.epoch = 0
        self.worker_requests: dict[str, int] = {}
        """Requests each present worker reported in this stats epoch."""
        self._counters = counters
        self._send = send
        self._seq: dict[str, tuple[str, int]] = {}  # worker -> (run id, last seq merged)

    def merge(
        self, worker_id: str, message: m.LocustStats | m.HordeStats, run_id: str, now: float
    ) -> UserCounts | None:
        """Merge one report of the run ``run_id``; return the users it reports, if it counted."""
        if isinstance(message, m.HordeStats):
            delta = message.delta
            if not self._in_sequence(worker_id, delta.run_id, delta.seq, run_id):
                return None
            if delta.epoch != self.epoch:
                self._counters.count("stale_stats")
                self.stats.define_names(worker_id, delta.names)  # later deltas refer to them
                return None
            self.stats.merge_horde(worker_id, delta, now)
            if CORRECTED_KEY in delta.extra:
                self._merge_corrected(delta.extra[CORRECTED_KEY])
            requests = delta.request_count()
            counts, total = delta.user_classes_count, delta.user_count
        else:
            if not run_id:
                self._counters.count("stale_stats")
                return None
            self.stats.merge_locust(worker_id, message.report, now)
            requests = message.report.stats_total.num_requests
            counts, total = message.report.user_classes_count, message.report.user_count
        self.worker_requests[worker_id] = self.worker_requests.get(worker_id, 0) + requests
        return counts, total

    def _merge_corrected(self, wire: object) -> None:
        """Merge a delta's corrected series; a malformed one is counted and dropped whole."""
        try:
            items = corrected_from_wire(wire)
        except ProtocolError:
            self._counters.count("malformed_corrected")
            return
        self.corrected.merge(items)

    def _in_sequence(self, worker_id: str, delta_run: str, seq: int, run_id: str) -> bool:
        """Whether a horde delta is the next one of this run; acknowledge what we have.

        Each (run, worker, seq) is merged once and in order: a duplicate or a delta after
        a gap is not merged, and the ack repeats the last seq merged (the worker resends
        from there). Deltas of other runs are dropped unacknowledged.
        """
        if not delta_run or delta_run != run_id:
            self._counters.count("stale_stats")
            return False
        known_run, merged = self._seq.get(worker_id, (delta_run, 0))
        if known_run != delta_run:
            merged = 0
        accept = seq == merged + 1
        if accept:
            merged = seq
        else:
            self._counters.count("duplicate_stats" if seq <= merged else "stats_gap")
        self._seq[worker_id] = (delta_run, merged)
        self._send(worker_id, m.HordeStatsAck(worker_id, delta_run, merged))
        return accept

    def reset(self, now: float, epoch: int) -> None:
        """Start the figures over at stats epoch ``epoch`` (sequences go on)."""
        self.epoch = epoch
        self.stats.reset(now)
        self.corrected.reset()
        self.worker_requests.clear()

    def forget(self, worker_id: str) -> None:
        """Drop everything known of ``worker_id``: its names, sequence and request count."""
        self.stats.forget_worker(worker_id)
        self._seq.pop(worker_id, None)
        self.worker_requests.pop(worker_id, None)
