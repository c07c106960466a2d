"""Users that never yield must not silence their worker (issue 17): real master and workers.

A user with no ``wait_time`` whose task does no I/O keeps the gevent loop busy all the
time. The worker's link thread must still heartbeat, take the master's answers and keep
its lease, and the gevent side must still send a stats report every interval. Each worker
runs batch-scheduled, as ``horde run``'s local workers once did (they inherited the
master's ``SCHED_BATCH``), on one core of its own: a woken link thread then never preempts
the spinning thread, which makes its starvation certain where it is only likely otherwise.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from horde.master.process import children_scheduled
from tests.support import SCRIPTS, get_json, post, processes, start_master, wait_for

pytestmark = pytest.mark.process

RUN_TIME = 7.0
"""Seconds of spinning: more than twice the 3 s lease that used to run out."""
STATS_INTERVAL = 1.0
"""The workers' stats interval in these tests (the default is 3 s)."""
REPORT_GAP = 2.5 * STATS_INTERVAL
"""The longest a busy worker's request count may stand still while its users run."""
BOUND = RUN_TIME + 40.0
"""Seconds the whole run may take on a loaded CI machine, start-up and stop included."""


@contextmanager
def one_core(index: int) -> Iterator[None]:
    """Processes started inside this block run on one core (the ``index``-th of ours)."""
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[index % len(cores)]})
    try:
        yield
    finally:
        os.sched_setaffinity(0, cores)


@dataclass(frozen=True)
class Sample:
    """One look at the master's ``/stats/requests``."""

    at: float
    state: str
    workers: dict[str, dict[str, Any]]


def watch_run(web: str, bound: float) -> list[Sample]:
    """Sample ``/stats/requests`` every 0.1 s until the run has stopped (at most ``bound`` s)."""
    samples: list[Sample] = []
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        report = get_json(f"{web}/stats/requests")
        workers = {w["id"]: w for w in report["workers"]}
        samples.append(Sample(time.monotonic(), report["state"], workers))
        if report["state"] == "stopped":
            return samples
        time.sleep(0.1)
    raise AssertionError(f"the run did not stop within {bound} s")


def growth_gaps(samples: list[Sample], worker: str) -> list[float]:
    """Seconds between the moments ``worker``'s request count grew, from the run's start to
    its stop; fails if the count ever went down."""
    running = [s for s in samples if s.state in ("spawning", "running")]
    last_at, last_count = running[0].at, 0
    gaps = []
    for sample in running:
        count = sample.workers[worker]["requests"]
        assert count >= last_count, f"{worker}'s count went down: {last_count} -> {count}"
        if count > last_count:
            gaps.append(sample.at - last_at)
            last_at, last_count = sample.at, count
    gaps.append(running[-1].at - last_at)
    return gaps


@pytest.mark.parametrize("workers", [1, 2])
def test_spinning_users_run_their_full_time_and_report_every_interval(workers: int) -> None:
    """Users that never wait keep their worker's lease for the whole run time, and each
    worker's iteration count grows in every stats report."""
    with processes() as procs:
        master = start_master(procs, "spinning.py")
        started = []
        for index in range(workers):
            with children_scheduled("SCHED_BATCH"), one_core(index):
                started.append(
                    procs.horde(
                        "worker", "--master", f"127.0.0.1:{master.zmq_port}",
                        "-f", str(SCRIPTS / "spinning.py"),
                        "--stats-interval", str(STATS_INTERVAL),
                    )
                )  # fmt: skip
        wait_for(
            lambda: len(get_json(f"{master.web}/stats/requests")["workers"]) == workers,
            30,
            f"{workers} workers",
        )
        status, _ = post(
            f"{master.web}/swarm", {"user_count": 2, "spawn_rate": 2, "run_time": f"{RUN_TIME}s"}
        )
        assert status == 200
        samples = watch_run(master.web, BOUND)
        outputs = [procs.output(proc) for proc in started]
        master_output = procs.output(master.proc)
    for output in outputs:
        assert "lease expired" not in output, output[-4000:]
    assert "no workers left" not in master_output, master_output[-4000:]
    assert "cut short" not in master_output, master_output[-4000:]
    running = [s for s in samples if s.state in ("spawning", "running")]
    assert running[-1].at - running[0].at >= RUN_TIME - 0.5, "the run ended early"
    for sample in running:
        for worker in sample.workers.values():
            assert worker["state"] != "missing", worker
    for worker in samples[-1].workers:
        gaps = growth_gaps(samples, worker)
        assert len(gaps) >= RUN_TIME / REPORT_GAP, gaps
        assert max(gaps) <= REPORT_GAP, f"{worker}'s count stood still: {gaps}"
