"""Arrival rates with real processes: a master, horde workers and ``horde target`` each in
its own process, iterations counted by the target from their ``X-Horde-Iteration`` header.

The figures asserted are the issue's: over 20 s at 500 iterations/s the achieved total is
within 1% of the schedule and every second within 5%; when one of three workers is
SIGKILLed the fleet's rate is back within 5% within 2 s of the loss being detected and no
iteration index repeats; a pool too small for a slow target drops iterations, counted, and
starts none late.
"""

from __future__ import annotations

import csv
import math
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    SCRIPTS,
    Processes,
    free_port,
    get_json,
    processes,
    start_master,
    start_target,
    wait_for,
)

pytestmark = pytest.mark.process

MAX_START_DELAY = 0.010


def _iterations(target: str) -> list[tuple[float, str]]:
    """What the target saw: (arrival wall time, ``class:index``) per iteration."""
    return [(float(t), str(tag)) for t, tag in get_json(f"{target}/iterations", timeout=30)]


def _worker(procs: Processes, master_port: int, script: str, *extra: str) -> Any:
    return procs.horde(
        "worker", "--master", f"127.0.0.1:{master_port}", "-f", str(SCRIPTS / script), *extra
    )


def _fleet_master(
    procs: Processes,
    target: str,
    workers: int,
    rate: int,
    run_time: str,
    *extra: str,
    wait: bool = True,
) -> Any:
    """A headless master of ``arrival_fast.py`` at ``rate``/s that waits for ``workers``."""
    return start_master(
        procs, "arrival_fast.py", "--headless", "--expect-workers", str(workers),
        "--arrival-rate", str(rate), "-t", run_time, "-H", target, *extra, wait=wait,
    )  # fmt: skip


def _arrivals_csv(prefix: Path) -> dict[str, dict[str, str]]:
    with open(f"{prefix}_arrivals.csv", encoding="utf-8") as fh:
        return {row["User class"]: row for row in csv.DictReader(fh)}


def _wait_exit(proc: subprocess.Popen[str], timeout: float) -> int:
    return wait_for(lambda: proc.poll() is not None, timeout, "the master's exit") and int(
        proc.returncode
    )


def _counts(seen: list[tuple[float, str]], start: float, seconds: int) -> list[int]:
    """Iterations per whole second from ``start``."""
    per = Counter(math.floor(t - start) for t, _ in seen)
    return [per[s] for s in range(seconds)]


@pytest.mark.timeout(120)
def test_two_workers_hold_500_per_second_to_1_percent(tmp_path: Path) -> None:
    """2 workers at 500 it/s for 20 s: the target's count between the first and last second
    is within 1% of the schedule, every second within 5%, none repeated, few dropped."""
    with processes() as procs:
        target = start_target(procs)
        csv_prefix = str(tmp_path / "run")
        master = _fleet_master(procs, target, 2, 500, "21s", "--csv", csv_prefix, wait=False)
        for _ in range(2):
            _worker(procs, master.zmq_port, "arrival_fast.py")
        assert _wait_exit(master.proc, 90) == 0, procs.output(master.proc)[-3000:]
        seen = _iterations(target)
        start = min(t for t, _ in seen)
        per_second = _counts(seen, start, 20)
        inner = per_second[1:-1]  # not the first and last second
        rows = _arrivals_csv(tmp_path / "run")
        print(f"\nper second at 500/s: {per_second}; {rows}")
        assert abs(sum(inner) - 500 * len(inner)) <= 0.01 * 500 * len(inner), per_second
        assert all(abs(n - 500) <= 25 for n in inner), per_second
        tags = Counter(tag for _, tag in seen)
        assert max(tags.values()) == 1
        row = rows["Api"]
        started, dropped = int(row["Started"]), int(row["Dropped"])
        assert started == len(seen)
        # on 2 cores shared by 4 processes a worker is sometimes descheduled past the 10 ms
        # start delay: those few iterations are dropped (counted), never started late
        assert dropped <= 0.005 * int(row["Scheduled"])
        assert abs(int(row["Scheduled"]) - started - dropped) <= 2


@pytest.mark.timeout(120)
def test_a_lost_workers_rate_moves_to_the_survivors_without_repeats() -> None:
    """SIGKILL one of three workers: within 2 s after it is detected missing the fleet's
    rate is back within 5% of 300/s, and no iteration index was sent twice."""
    with processes() as procs:
        target = start_target(procs)
        master = _fleet_master(procs, target, 3, 300, "16s")
        workers = [_worker(procs, master.zmq_port, "arrival_fast.py") for _ in range(3)]
        wait_for(
            lambda: len(_iterations(target)) > 1500, 40, "five seconds of iterations", interval=0.5
        )
        victim = workers[2]
        victim.send_signal(signal.SIGKILL)
        killed = time.time()

        def missing() -> bool:
            rows = get_json(f"{master.web}/stats/requests")["workers"]
            return any(row["state"] == "missing" for row in rows)

        wait_for(missing, 10, "the killed worker missing", interval=0.02)
        detected = time.time()
        assert _wait_exit(master.proc, 60) == 0, procs.output(master.proc)[-3000:]
        seen = _iterations(target)
        tags = Counter(tag for _, tag in seen)
        assert max(tags.values()) == 1, [t for t, n in tags.items() if n > 1][:10]
        end = max(t for t, _ in seen)
        windows = [
            sum(1 for t, _ in seen if at <= t < at + 1) for at in _steps(detected + 1, end - 1)
        ]
        back = _recovery(seen, detected, end)
        print(
            f"\nmissing {detected - killed:.2f} s after the kill; rate back within 5%"
            f" {back:.2f} s after detection; windows from +1 s: {windows}"
        )
        assert windows and all(abs(n - 300) <= 15 for n in windows), windows


def _steps(first: float, last: float, step: float = 0.1) -> list[float]:
    count = max(0, int((last - first) / step))
    return [first + i * step for i in range(count)]


def _recovery(seen: list[tuple[float, str]], detected: float, end: float) -> float:
    """Seconds after detection from which every 1 s window holds 300/s within 5%."""
    times = sorted(t for t, _ in seen)
    starts = _steps(detected - 3, end - 1, 0.05)
    good = [abs(sum(1 for t in times if at <= t < at + 1) - 300) <= 15 for at in starts]
    last_bad = max((i for i, ok in enumerate(good) if not ok), default=-1)
    return starts[last_bad + 1] + 1 - detected if last_bad + 1 < len(starts) else math.inf


@pytest.mark.timeout(90)
def test_a_pool_too_small_drops_iterations_and_starts_none_late(tmp_path: Path) -> None:
    """100 it/s of a 100 ms page on a pool of 5 users (50 it/s at most): about half are
    dropped and counted, every iteration the target saw started within the max delay, and
    a ``dropped_iterations==0`` threshold on the class fails the run."""
    with processes() as procs:
        target = start_target(procs)
        port = free_port()
        run = procs.horde(
            "run",
            "-f",
            str(SCRIPTS / "arrival_slow.py"),
            "--headless",
            "-H",
            target,
            "--workers",
            "1",
            "--web-port",
            str(port),
            "--arrival-pool",
            "5",
            "-t",
            "6s",
            "--csv",
            str(tmp_path / "slow"),
            "--threshold",
            "Slow: dropped_iterations==0",
            "--threshold",
            "Other: dropped_iterations==0",
        )
        code = _wait_exit(run, 60)
        seen = _iterations(target)
        rows = _arrivals_csv(tmp_path / "slow")
        started, dropped = int(rows["Slow"]["Started"]), int(rows["Slow"]["Dropped"])
        print(f"\nslow target, pool of 5: started {started}, dropped {dropped}")
        assert started == len(seen)
        assert 200 <= started <= 300 and 250 <= dropped <= 350
        assert int(rows["Total"]["Dropped"]) == dropped
        # due time of index k is origin + k / 100; arrival - k / 100 is origin + lateness +
        # the request's way to the target, least for the earliest-started iteration
        offsets = [t - int(tag.split(":")[1]) / 100 for t, tag in seen]
        late = max(offsets) - min(offsets)
        assert late <= MAX_START_DELAY + 0.010, late
        output = procs.output(run)
        assert "Arrival-rate iterations" in output
        # the thresholds read the same figure: the class's drops fail the run (99), and a
        # class without any passes
        assert code == 99, output[-2000:]
        verdicts = [line for line in output.splitlines() if "dropped_iterations==0" in line]
        assert any("Slow:" in line and "FAIL" in line.upper() for line in verdicts), verdicts
        assert any("Other:" in line and "PASS" in line.upper() for line in verdicts), verdicts
