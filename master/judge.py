"""The judge loop: every second, the run's verdict is brought up to date; the JUnit file.

Responsibility: :func:`judge_once` feeds the coordinator's
:class:`~horde.master.verdict.Verdict` a snapshot and, when ``--abort-on-fail`` says so,
stops the run (:data:`~horde.master.swarm.StopReason.THRESHOLD_FAILED`);
:func:`judge_loop` does it every :data:`JUDGE_INTERVAL` seconds, for as long as the
master lives (it sleeps: the only impure part of the verdict). The decisions are the
verdict's own, taking ``now``. :func:`write_junit` writes the ``--junit`` file at the end.

Imports: gevent, structlog, horde.master.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import gevent
import structlog

from horde.master.swarm import StopReason
from horde.master.verdict import VerdictReport
from horde.master.verdict_out import junit_xml

if TYPE_CHECKING:
    from horde.master.loops import MasterLoops

__all__ = ["JUDGE_INTERVAL", "judge_loop", "judge_once", "write_junit"]

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


def write_junit(loops: MasterLoops, path: str) -> None:
    """Write the ``--junit`` file of the last run (a failure is logged, never raised)."""
    snap = loops.snapshot()
    end = snap.run.end
    started = snap.stats.start_time or snap.run.now
    xml = junit_xml(
        snap.verdict,
        duration=end.after if end is not None else snap.run.now - started,
        timestamp=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started)),
        hostname=socket.gethostname(),
    )
    try:
        Path(path).write_text(xml, encoding="utf-8")
        log.info("JUnit file written", path=path)
    except OSError as exc:
        log.error("cannot write the JUnit file", path=path, error=str(exc))


def judge_loop(loops: MasterLoops) -> None:
    """:func:`judge_once` every :data:`JUDGE_INTERVAL` seconds, forever."""
    while True:
        gevent.sleep(JUDGE_INTERVAL)
        try:
            judge_once(loops)
        except Exception:  # a bug here must not end the run's other loops
            log.exception("judging the run failed")
