"""The local worker processes of ``horde run`` and ``horde demo``: start, watch, reap.

Each worker is ``python -P -m horde worker`` with the flags of its
:class:`~horde.worker.config.WorkerSettings` and :class:`~horde.logsetup.LogSettings`
(their ``to_argv``): the same interpreter, and so the same installed horde, as the command
that starts it. ``-P`` keeps the current folder off ``sys.path``, so a ``horde/`` folder
there (a source checkout) cannot shadow the installed package. Workers share our standard
error, so whatever they print (a traceback at start) is shown as they print it.

:meth:`LocalWorkers.watch` polls the children from the master's gevent loop and reports
each one that exits with a non-zero code (a worker the master let go exits with 0); the
caller decides whether that ends the run (a worker that dies before any test started: its
script or settings are broken) or is a lost worker whose users move to the others.
:meth:`LocalWorkers.reap` waits for them after ``quit`` and kills, by PID, any that stay.

Workers run under Linux's normal scheduling policy, not the ``SCHED_BATCH`` the master
sets for itself (:func:`horde.master.process.children_scheduled`).

Imports: the standard library, gevent, structlog, horde.logsetup, horde.master.process,
horde.worker.config.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gevent
import structlog

from horde.logsetup import LogSettings
from horde.master.process import children_scheduled
from horde.worker.config import WorkerSettings

__all__ = ["EXIT_WAIT", "WATCH_INTERVAL", "LocalWorkers", "WorkerExit", "worker_command"]

log = structlog.get_logger("horde")

WATCH_INTERVAL = 0.2
"""Seconds between two looks at the local workers' exit codes."""
EXIT_WAIT = 10.0
"""Seconds local workers get to exit after ``quit`` before they are killed."""


def worker_command(settings: WorkerSettings, logs: LogSettings) -> list[str]:
    """The command line of one local worker process."""
    return [
        sys.executable,
        "-P",  # no current folder on sys.path: the installed horde, whatever cwd holds
        "-m",
        "horde",
        "worker",
        *settings.to_argv(),
        *logs.to_argv(),
    ]


@dataclass(frozen=True, slots=True)
class WorkerExit:
    """A local worker that ended on its own: its PID and exit code."""

    pid: int
    code: int


def first_failure(codes: Sequence[tuple[int, int | None]]) -> WorkerExit | None:
    """The first ``(pid, exit code or None while running)`` that failed, if any."""
    for pid, code in codes:
        if code is not None and code != 0:
            return WorkerExit(pid, code)
    return None


class LocalWorkers:
    """Local worker processes this command started; it stops exactly those, by PID."""

    def __init__(self, processes: Sequence[subprocess.Popen[bytes]]) -> None:
        self.processes = list(processes)
        self.failure: WorkerExit | None = None

    @classmethod
    def start(cls, count: int, settings: WorkerSettings, logs: LogSettings) -> LocalWorkers:
        """Start ``count`` workers with ``settings``."""
        command = worker_command(settings, logs)
        with children_scheduled():  # not the master's SCHED_BATCH
            processes = [subprocess.Popen(command, stdin=subprocess.DEVNULL) for _ in range(count)]
        workers = cls(processes)
        log.info("started local workers", count=count, pids=workers.pids)
        return workers

    @property
    def pids(self) -> list[int]:
        """Their process ids."""
        return [proc.pid for proc in self.processes]

    def poll(self) -> WorkerExit | None:
        """The first worker that has exited with a failure, if one has."""
        return first_failure([(proc.pid, proc.poll()) for proc in self.processes])

    def _new_failures(self, seen: set[int]) -> list[WorkerExit]:
        """Workers that failed since the last look (``seen`` holds those reported)."""
        found = []
        for proc in self.processes:
            failure = first_failure([(proc.pid, proc.poll())])
            if failure is not None and failure.pid not in seen:
                seen.add(failure.pid)
                found.append(failure)
        return found

    def watch(self, on_failure: Callable[[WorkerExit], bool]) -> gevent.Greenlet:
        """Poll the workers every :data:`WATCH_INTERVAL` and call ``on_failure`` for each
        that has failed; when it returns True (the run ends), remember the failure in
        :attr:`failure` and stop watching. Kill the greenlet before telling the workers
        to quit."""

        def loop() -> None:
            seen: set[int] = set()
            while True:
                for failure in self._new_failures(seen):
                    if on_failure(failure):
                        self.failure = failure
                        return
                gevent.sleep(WATCH_INTERVAL)

        return gevent.spawn(loop)

    def reap(self, wait: float = EXIT_WAIT) -> None:
        """Wait for the workers to exit after ``quit``; kill (by PID) any that do not."""
        deadline = gevent.get_hub().loop.now() + wait
        for proc in self.processes:
            while proc.poll() is None and gevent.get_hub().loop.now() < deadline:
                gevent.sleep(0.05)
            if proc.poll() is None:
                log.warning("worker did not exit, killing it", pid=proc.pid)
                proc.kill()
                proc.wait()
