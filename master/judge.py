"""The judge loop: every second, the run's verdict is brought up to date.

Responsibility: :func:`judge_once` feeds the coordinator's
:class:`~horde.master.verdict.Verdict` a snapshot and, when ``--abort-on-fail`` says so,
stops the run (:data:`~horde.master.swarm.StopReason.THRESHOLD_FAILED`);
:func:`judge_loop` does it every :data:`JUDGE_INTERVAL` seconds, for as long as the
master lives (it sleeps: the only impure part of the verdict). The decisions are the
verdict's own, taking ``now``.

Imports: gevent, structlog, horde.master.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gevent
import structlog

from horde.master.swarm import StopReason
from horde.master.verdict import VerdictReport

if TYPE_CHECKING:
    from horde.master.loops import MasterLoops

__all__ = ["JUDGE_INTERVAL", "judge_loop", "judge_once"]

log = structlog.get_logger("horde.master")
JUDGE_INTERVAL = 1.0
"""Seconds between two checks of the thresholds and the generator's health."""


def judge_once(loops: MasterLoops) -> VerdictReport:
    """Bring the verdict up to date now; stop the run if it must be aborted."""
    snapshot = loops.snapshot()
    verdict = loops.coordinator.verdict
    report = verdict.observe(snapshot)
    if verdict.should_abort(snapshot.run.now):
        failed = [r.threshold.text for r in report.results if not r.ok]
        log.error("a threshold failed: stopping the run (--abort-on-fail)", thresholds=failed)
        loops.command(lambda c, now: c.stop(now, StopReason.THRESHOLD_FAILED))
        report = verdict.report
    return report


def judge_loop(loops: MasterLoops) -> None:
    """:func:`judge_once` every :data:`JUDGE_INTERVAL` seconds, forever."""
    while True:
        gevent.sleep(JUDGE_INTERVAL)
        try:
            judge_once(loops)
        except Exception:  # a bug here must not end the run's other loops
            log.exception("judging the run failed")
