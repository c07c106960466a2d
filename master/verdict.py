"""A run's verdict: its thresholds and its generator's health, followed from snapshots.

Responsibility: :class:`Verdict` is what the master knows about whether the current run
passes. Fed a :class:`~horde.master.snapshot.MasterSnapshot` about every second (by the
runtime's judge loop) and once when the run has stopped, it starts over when a new run
begins (its id changes) or the run's thresholds change, samples every present worker's
CPU and loop lag into a :class:`~horde.master.saturation.SaturationWatch`, checks the
thresholds (:class:`~horde.master.threshold_watch.ThresholdWatch`), and keeps an
immutable :class:`VerdictReport` that every output reads. It decides when
``--abort-on-fail`` stops a run (:meth:`Verdict.should_abort`). Pure: ``now`` comes
with the snapshot.

Imports: the standard library and horde.master.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from horde.master.registry import WorkerState
from horde.master.saturation import Saturation, SaturationWatch
from horde.master.swarm import RunState
from horde.master.threshold_syntax import Threshold
from horde.master.threshold_watch import ThresholdResult, ThresholdWatch
from horde.master.thresholds import ThresholdInputs

if TYPE_CHECKING:
    from horde.master.snapshot import MasterSnapshot

__all__ = ["Verdict", "VerdictReport"]

_FOLLOWED = (RunState.SPAWNING, RunState.RUNNING, RunState.STOPPING)


@dataclass(frozen=True, slots=True)
class VerdictReport:
    """The run's verdict at one moment: each threshold's result, and the generator's health."""

    run_id: str = ""
    results: tuple[ThresholdResult, ...] = ()
    saturation: Saturation | None = None
    """The stretch that flagged the generator as saturated (None: it was not)."""
    final: bool = False
    """Whether the run has stopped and this is its last word."""
    aborted: bool = False
    """Whether ``--abort-on-fail`` stopped the run."""

    @property
    def passed(self) -> bool:
        """Whether every threshold passes."""
        return all(r.ok for r in self.results)

    def to_json(self) -> dict[str, Any]:
        """The ``GET /stats/thresholds`` document (and the ``--json`` key)."""
        return {
            "run_id": self.run_id,
            "final": self.final,
            "passed": self.passed,
            "aborted": self.aborted,
            "generator_ok": self.saturation is None,
            "generator_note": None if self.saturation is None else self.saturation.describe(),
            "thresholds": [r.to_json() for r in self.results],
        }


class Verdict:
    """The current run's thresholds and generator health (see the module docstring)."""

    def __init__(self, abort_on_fail: bool = False, abort_grace: float = 0.0) -> None:
        self.abort_on_fail = abort_on_fail
        self.abort_grace = abort_grace
        self._run_id = ""
        self._thresholds: tuple[Threshold, ...] = ()
        self._watch = ThresholdWatch((), 0.0)
        self._health = SaturationWatch()
        self._started_at = 0.0
        self._aborted = False
        self.report = VerdictReport()
        """The latest :class:`VerdictReport` (replaced at each observation)."""

    def observe(self, snapshot: MasterSnapshot) -> VerdictReport:
        """Follow the run in ``snapshot``; a stopped run gets its final check once."""
        run, now = snapshot.run, snapshot.run.now
        if not run.run_id:
            return self.report
        if run.run_id != self._run_id or snapshot.thresholds != self._thresholds:
            self._begin(run.run_id, snapshot.thresholds, snapshot.stats.start_time or now)
        elif self.report.final:
            return self.report
        final = run.state not in _FOLLOWED
        for record in snapshot.workers:
            if record.state is WorkerState.MISSING:
                self._health.forget(record.worker_id)
            else:
                self._health.observe(record.worker_id, record.cpu_usage, record.loop_lag, now)
        results: tuple[ThresholdResult, ...] = ()
        if self._thresholds:
            results = tuple(self._watch.check(self._inputs(snapshot), final=final))
        self.report = VerdictReport(run.run_id, results, self._health.flag, final, self._aborted)
        return self.report

    def _begin(self, run_id: str, thresholds: tuple[Threshold, ...], started_at: float) -> None:
        """A new run (or new thresholds for the running one): start over."""
        if run_id != self._run_id:
            self._health = SaturationWatch()
            self._aborted = False
        self._run_id = run_id
        self._thresholds = thresholds
        self._started_at = started_at
        self._watch = ThresholdWatch(thresholds, started_at)
        self.report = VerdictReport(run_id)

    def _inputs(self, snapshot: MasterSnapshot) -> ThresholdInputs:
        """The snapshot's figures, folded, as thresholds read them."""
        stats = snapshot.stats
        stats.fold()
        return ThresholdInputs(
            now=snapshot.run.now,
            entries=stats.entries(),
            total=stats.total,
            start=stats.start_time,
            last=stats.last_request_timestamp,
            dropped_iterations={f.user_class: f.dropped for f in snapshot.arrivals},
            generator_ok=self._health.ok,
        )

    def should_abort(self, now: float) -> bool:
        """Whether ``--abort-on-fail`` stops the run now: a threshold fails, past the grace.

        Answers True once per run (the caller stops it); later calls answer False.
        """
        report = self.report
        if not self.abort_on_fail or self._aborted or report.final or not report.results:
            return False
        if now - self._started_at < self.abort_grace or not self._watch.failing_now:
            return False
        self._aborted = True
        self.report = VerdictReport(
            report.run_id, report.results, report.saturation, report.final, True
        )
        return True
